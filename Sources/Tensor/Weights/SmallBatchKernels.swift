import CKernelSupport

/// y[m, rows] = x[m, cols]·Wᵀ for a few rows of activations (2 ≤ m ≤ `WeightKernels.smallBatch`)
/// straight from the stored weights: batched decode, where m is the number of sequences, and
/// experts with a few tokens. On CPUs with AVX-512 the C kernel in rows_avx512.h does it
/// (`VectorISA`); what follows is the portable AVX2 kernel, used otherwise.
///
/// Decoding tiles of W to float32 for sgemm (the path for large m) costs a pass over the tile
/// per call, which for a handful of rows is slower than the product itself (measured: a BF16
/// 256×1024 product took twice as long at m = 2 as at m = 1, and 8× at m = 16). Here each weight
/// is widened in registers and used for several rows of x at once: two rows of W against four
/// rows of x per step, eight accumulators, W decoded once per four x rows (from L1 after the first
/// four), x read from L1/L2. Up to m ≈ 8 this is memory-bound like the matvec.
extension WeightKernels {
    /// Largest m that takes this path rather than decoded tiles + sgemm.
    static let smallBatch = 16

    /// Largest m for which `WeightMatrix.apply` takes this path. With AVX-512, `smallBatch` for
    /// every format (the 16-lane kernel stays under the memory roof up to 16 rows; see
    /// rows_avx512.h). With AVX2: `smallBatch` for 16-bit weights,
    /// 8 for F32 (whose sgemm needs no decoding) and Q8_0 (whose weights this kernel widens one by
    /// one to float). At 9-16 rows the kernel does 2·m FLOPs per weight it streams, and the
    /// whole-matrix products of batched decode (the LM head, the projections) became
    /// compute-bound: with sgemm from 9 rows, F32 tg64@16 went 318-322 → 334-338 tokens/s and
    /// Q8_0 251-270 → 274-276 (decoded tiles), while BF16 went 285-290 → 261-262 and stays
    /// (alternating runs on the Xeon host, OpenBLAS SkylakeX kernels); from 4 rows F32 tg64@4
    /// lost 12%. (`MatvecBatch` items keep this kernel up to 16 rows: their 64 KB pieces are too
    /// small for sgemm's packing.)
    static func smallBatchLimit(_ storage: WeightMatrix.Storage, isa: VectorISA = .current) -> Int {
        if isa == .avx512 { return smallBatch }
        switch storage {
        case .f32, .q8_0: return 8
        case .bf16, .f16: return smallBatch
        }
    }

    static func smallBatch(_ w: WeightView, rows: Range<Int>, m: Int, x: UnsafePointer<Float>, ldx: Int,
                           y: UnsafeMutablePointer<Float>, ldy: Int, isa: VectorISA = .current) {
        let cols = w.cols
        if isa == .avx512 && ldy < Int(Int32.max) / 8 {   // the kernel scatters into y with 32-bit offsets
            smallBatchAVX512(w, rows: rows, m: m, x: x, ldx: ldx, y: y, ldy: ldy)
            return
        }
        switch w.storage {
        case let .f32(p): smallBatch(FloatRows<F32Lanes>(w: p, cols: cols), cols: cols, rows: rows, m: m, x: x, ldx: ldx, y: y, ldy: ldy)
        case let .bf16(p): smallBatch(FloatRows<BF16Lanes>(w: p, cols: cols), cols: cols, rows: rows, m: m, x: x, ldx: ldx, y: y, ldy: ldy)
        case let .f16(p): smallBatch(FloatRows<F16Lanes>(w: p, cols: cols), cols: cols, rows: rows, m: m, x: x, ldx: ldx, y: y, ldy: ldy)
        case let .q8_0(v, s):
            smallBatchQ8(values: v, scales: s, cols: cols, rows: rows, m: m, x: x, ldx: ldx, y: y, ldy: ldy)
        }
    }

    /// The AVX-512 kernel (`tinyseek_rows_avx512`, rows_avx512.h): two rows of W against eight of
    /// x per pass, 16 floats a step. It prefetches every line into L2 as far ahead as the float
    /// matvec does (`StreamPrefetch.lineAheadBytes`), and at least two rows on: it streams two
    /// adjacent rows, so anything nearer is being read already.
    static func smallBatchAVX512(_ w: WeightView, rows: Range<Int>, m: Int, x: UnsafePointer<Float>, ldx: Int,
                                 y: UnsafeMutablePointer<Float>, ldy: Int) {
        guard !rows.isEmpty, m > 0 else { return }
        let format: Int32, base: UnsafeRawPointer, scales: UnsafePointer<UInt16>?, elementBytes: Int
        switch w.storage {
        case let .f32(p): (format, base, scales, elementBytes) = (Int32(TINYSEEK_F32), UnsafeRawPointer(p), nil, 4)
        case let .bf16(p): (format, base, scales, elementBytes) = (Int32(TINYSEEK_BF16), UnsafeRawPointer(p), nil, 2)
        case let .f16(p): (format, base, scales, elementBytes) = (Int32(TINYSEEK_F16), UnsafeRawPointer(p), nil, 2)
        case let .q8_0(v, s): (format, base, scales, elementBytes) = (Int32(TINYSEEK_Q8_0), UnsafeRawPointer(v), s, 1)
        }
        let ahead = max(StreamPrefetch.lineAheadBytes(elementBytes: max(2, elementBytes)), 2 * w.cols * elementBytes)
        tinyseek_rows_avx512(base, scales, w.cols, format, rows.lowerBound, rows.upperBound, x, ldx, m, y, ldy, ahead)
    }

    /// Q8_0: the same tiling, walked block by block so each row's scale is loaded once per 32
    /// weights (loading it per 8 made this 1.5× slower than BF16); the short last block of a row
    /// and odd pairs go through the generic kernel.
    static func smallBatchQ8(values: UnsafePointer<Int8>, scales: UnsafePointer<UInt16>, cols: Int, rows: Range<Int>, m: Int,
                             x: UnsafePointer<Float>, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int) {
        let bs = Q8_0.blockSize, blocks = Q8_0.blocks(cols), full = cols / bs
        let decoder = Q8Rows(values: values, scales: scales, cols: cols, blocks: blocks)
        guard full == blocks else {
            smallBatch(decoder, cols: cols, rows: rows, m: m, x: x, ldx: ldx, y: y, ldy: ldy)
            return
        }
        let distance = ahead(groupBytes: 2 * cols) * 2
        var j = rows.lowerBound
        prefetch(UnsafeRawPointer(values + j * cols), bytes: min(distance, rows.count) * cols)
        while j + 2 <= rows.upperBound {
            if j + distance < rows.upperBound { prefetch(UnsafeRawPointer(values + (j + distance) * cols), bytes: 2 * cols) }
            let q0 = values + j * cols, q1 = q0 + cols
            let d0 = scales + j * blocks, d1 = d0 + blocks
            var i = 0
            while i < m {
                let t = min(4, m - i)
                let x0 = x + i * ldx, x1 = x + (i + min(1, t - 1)) * ldx
                let x2 = x + (i + min(2, t - 1)) * ldx, x3 = x + (i + min(3, t - 1)) * ldx
                var a00 = V8(), a01 = V8(), a02 = V8(), a03 = V8()
                var a10 = V8(), a11 = V8(), a12 = V8(), a13 = V8()
                if t <= 2 {
                    // One or two rows of x (an expert with one or two tokens): half the products of
                    // the four-row step, where the missing rows repeated the last one and were
                    // dropped (measured from L2 at m = 2: 17-20 µs → 12-15 µs for a 256×1024
                    // matrix; three rows still run as four, cheaper than a second pass over W).
                    for b in 0..<full {
                        let s0 = V8(repeating: half(d0[b])), s1 = V8(repeating: half(d1[b]))
                        var p = b * bs
                        for _ in 0..<(bs / 8) {
                            let w0 = int8x8(q0 + p) * s0, w1 = int8x8(q1 + p) * s1
                            let v0 = load8(x0 + p), v1 = load8(x1 + p)
                            a00.addProduct(w0, v0); a01.addProduct(w0, v1); a10.addProduct(w1, v0); a11.addProduct(w1, v1)
                            p += 8
                        }
                    }
                } else {
                    for b in 0..<full {
                        let s0 = V8(repeating: half(d0[b])), s1 = V8(repeating: half(d1[b]))
                        var p = b * bs
                        for _ in 0..<(bs / 8) {
                            let w0 = int8x8(q0 + p) * s0, w1 = int8x8(q1 + p) * s1
                            let v0 = load8(x0 + p), v1 = load8(x1 + p), v2 = load8(x2 + p), v3 = load8(x3 + p)
                            a00.addProduct(w0, v0); a01.addProduct(w0, v1); a02.addProduct(w0, v2); a03.addProduct(w0, v3)
                            a10.addProduct(w1, v0); a11.addProduct(w1, v1); a12.addProduct(w1, v2); a13.addProduct(w1, v3)
                            p += 8
                        }
                    }
                }
                let s0 = SIMD4<Float>(a00.sum(), a01.sum(), a02.sum(), a03.sum())
                let s1 = SIMD4<Float>(a10.sum(), a11.sum(), a12.sum(), a13.sum())
                for r in 0..<t {
                    y[(i + r) * ldy + j] = s0[r]
                    y[(i + r) * ldy + j + 1] = s1[r]
                }
                i += 4
            }
            j += 2
        }
        if j < rows.upperBound {
            smallBatch(decoder, cols: cols, rows: j..<rows.upperBound, m: m, x: x, ldx: ldx, y: y, ldy: ldy)
        }
    }

    @inline(__always)
    static func smallBatch<D: RowDecoder>(_ d: D, cols: Int, rows: Range<Int>, m: Int, x: UnsafePointer<Float>, ldx: Int,
                                          y: UnsafeMutablePointer<Float>, ldy: Int) {
        let k8 = cols & ~7
        let distance = ahead(groupBytes: 2 * d.rowBytes) * 2   // rows ahead, at least `prefetchBytes`
        var j = rows.lowerBound
        prefetch(d.rowBase(j), bytes: min(distance, rows.count) * d.rowBytes)
        while j < rows.upperBound {
            // Two rows of W; the last of an odd range is paired with itself and its twin dropped.
            let pair = j + 1 < rows.upperBound
            let j1 = pair ? j + 1 : j
            if j + distance < rows.upperBound { prefetch(d.rowBase(j + distance), bytes: 2 * d.rowBytes) }
            var i = 0
            while i < m {
                // Four rows of x; missing ones (m not a multiple of 4) repeat the last and are dropped.
                let t = min(4, m - i)
                let x0 = x + i * ldx, x1 = x + (i + min(1, t - 1)) * ldx
                let x2 = x + (i + min(2, t - 1)) * ldx, x3 = x + (i + min(3, t - 1)) * ldx
                var a00 = V8(), a01 = V8(), a02 = V8(), a03 = V8()
                var a10 = V8(), a11 = V8(), a12 = V8(), a13 = V8()
                var p = 0
                if t <= 2 {
                    // One or two rows of x: half the products (see `smallBatchQ8`).
                    while p < k8 {
                        let w0 = d.decode8(j, p), w1 = d.decode8(j1, p)
                        let v0 = load8(x0 + p), v1 = load8(x1 + p)
                        a00.addProduct(w0, v0); a01.addProduct(w0, v1); a10.addProduct(w1, v0); a11.addProduct(w1, v1)
                        p += 8
                    }
                } else {
                    while p < k8 {
                        let w0 = d.decode8(j, p), w1 = d.decode8(j1, p)
                        let v0 = load8(x0 + p), v1 = load8(x1 + p), v2 = load8(x2 + p), v3 = load8(x3 + p)
                        a00.addProduct(w0, v0); a01.addProduct(w0, v1); a02.addProduct(w0, v2); a03.addProduct(w0, v3)
                        a10.addProduct(w1, v0); a11.addProduct(w1, v1); a12.addProduct(w1, v2); a13.addProduct(w1, v3)
                        p += 8
                    }
                }
                var s0 = SIMD4<Float>(a00.sum(), a01.sum(), a02.sum(), a03.sum())
                var s1 = SIMD4<Float>(a10.sum(), a11.sum(), a12.sum(), a13.sum())
                while p < cols {
                    let w0 = d.scalar(j, p), w1 = d.scalar(j1, p)
                    let v = SIMD4<Float>(x0[p], x1[p], x2[p], x3[p])
                    s0 += w0 * v
                    s1 += w1 * v
                    p += 1
                }
                for r in 0..<t {
                    y[(i + r) * ldy + j] = s0[r]
                    if pair { y[(i + r) * ldy + j1] = s1[r] }
                }
                i += 4
            }
            j += pair ? 2 : 1
        }
    }
}

/// Eight float32 weights of row j from column p (p a multiple of 8, p + 8 ≤ cols), or one.
protocol RowDecoder {
    func decode8(_ j: Int, _ p: Int) -> V8
    func scalar(_ j: Int, _ p: Int) -> Float
    func rowBase(_ j: Int) -> UnsafeRawPointer
    var rowBytes: Int { get }
}

struct FloatRows<L: Lanes>: RowDecoder {
    let w: UnsafePointer<L.Element>
    let cols: Int
    @inline(__always) func decode8(_ j: Int, _ p: Int) -> V8 { L.decode8(w + j * cols + p) }
    @inline(__always) func scalar(_ j: Int, _ p: Int) -> Float { L.scalar(w[j * cols + p]) }
    @inline(__always) func rowBase(_ j: Int) -> UnsafeRawPointer { UnsafeRawPointer(w + j * cols) }
    var rowBytes: Int { cols * MemoryLayout<L.Element>.stride }
}

/// Q8_0 rows: 8 values times their block's scale (8 divides 32, so the 8 share one block).
struct Q8Rows: RowDecoder {
    let values: UnsafePointer<Int8>
    let scales: UnsafePointer<UInt16>
    let cols: Int, blocks: Int
    @inline(__always) func decode8(_ j: Int, _ p: Int) -> V8 {
        int8x8(values + j * cols + p) * V8(repeating: half(scales[j * blocks + p / Q8_0.blockSize]))
    }
    @inline(__always) func scalar(_ j: Int, _ p: Int) -> Float {
        Float(values[j * cols + p]) * half(scales[j * blocks + p / Q8_0.blockSize])
    }
    @inline(__always) func rowBase(_ j: Int) -> UnsafeRawPointer { UnsafeRawPointer(values + j * cols) }
    var rowBytes: Int { cols }
}
