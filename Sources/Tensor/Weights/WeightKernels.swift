import CKernelSupport

/// The fast kernels behind `WeightMatrix`: batch-1 matvecs that stream each weight format once,
/// widening to float32 in registers, and the decoders that turn rows into float32 tiles for sgemm.
///
/// A decode step is ~250 matvecs over weights far larger than the caches, so each must run at
/// memory speed: 8 weights per SIMD step, x in L1, several independent accumulators. The widening
/// costs a few instructions per 16 or 32 bytes of weights; what matters is keeping enough cache
/// misses in flight (see the notes on each kernel and on prefetching).
///
/// `ReferenceWeightKernels` holds the definitions these are tested against.
enum WeightKernels {
    // Prefetching (Q8_0 matvec): while a loop reads a group of rows, it
    // prefetches the group `ahead(groupBytes:)` groups further on (at least `prefetchBytes` ahead)
    // into L2, one line per 64 bytes consumed, and a range starts by prefetching its first groups.
    // Measured on Zen 4: a four-row 16-bit matvec without it reached only half the bytes/s of an
    // F32 one (the out-of-order window holds fewer bytes' worth of widening instructions than of
    // plain FMAs, so fewer misses were in flight); Q8_0 gained 30% from it. Into L2 rather than L1 because the distance is a good part of L1's 32 KB;
    // at least 8 KB because one group of a short row (an expert's down_proj, 256 columns: 2 KB in
    // BF16, 1 KB in Q8_0) arrives too soon to hide a memory latency.

    /// Minimum prefetch distance in bytes.
    static let prefetchBytes = 8192
    /// Passes of four rows the transposed product prefetches ahead.
    static let transposedAhead = 4

    /// Groups of four rows to prefetch ahead, for groups of `groupBytes`.
    @inline(__always)
    static func ahead(groupBytes: Int) -> Int { max(1, (prefetchBytes + groupBytes - 1) / max(groupBytes, 1)) }

    /// Prefetches [p, p + bytes) into L2.
    @inline(__always)
    static func prefetch(_ p: UnsafeRawPointer, bytes: Int) {
        var o = 0
        while o < bytes { tinyseek_prefetch_l2(p + o); o += 64 }
    }

    // MARK: Batch-1 matvec, one entry point per format

    /// y[j] = Σ_k W[j, k]·x[k] for j in `rows` (y is indexed by j, not j − rows.lowerBound).
    /// Runs inside a pool job: Q8_0 keeps x quantised in the lane's `scratch` for the job.
    /// The float formats prefetch as `prefetch` says (the process's policy; tests try both).
    /// F32 with AVX-512 and every-line prefetching runs `tinyseek_matvec_f32_avx512` (rows_avx512.h:
    /// decode steps 0.92-0.94× as long as with the AVX2 kernel here); the rest run the AVX2 kernels.
    static func matvec(_ w: WeightView, rows: Range<Int>, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                       scratch: Scratch, prefetch: StreamPrefetch = .current, isa: VectorISA = .current) {
        let everyLine = prefetch == .everyLine
        switch w.storage {
        case let .f32(p) where isa == .avx512 && everyLine:
            tinyseek_matvec_f32_avx512(p, w.cols, rows.lowerBound, rows.upperBound, x, y,
                                       StreamPrefetch.lineAheadBytes(elementBytes: 4), w.rows * w.cols * 4)
        case let .f32(p): matvec(F32Lanes.self, p, cols: w.cols, rows: rows, matrixRows: w.rows, x: x, y: y, everyLine: everyLine)
        case let .bf16(p): matvec(BF16Lanes.self, p, cols: w.cols, rows: rows, matrixRows: w.rows, x: x, y: y, everyLine: everyLine)
        case let .f16(p): matvec(F16Lanes.self, p, cols: w.cols, rows: rows, matrixRows: w.rows, x: x, y: y, everyLine: everyLine)
        case let .q8_0(v, s):
            let (xq, xd) = scratch.quantized(x, blocks: w.cols / Q8_0.blockSize)
            matvecQ8(values: v, scales: s, cols: w.cols, rows: rows, x: x, xq: xq, xd: xd, y: y)
        }
    }

    /// x's first `blocks` blocks of 32 as int16 with one float scale each (`tinyseek_quantize_i16`:
    /// d = max|x|/32767, q = round(x/d)), for the Q8_0 matvec.
    static func quantizeActivations(_ x: UnsafePointer<Float>, blocks: Int, values: UnsafeMutablePointer<Int16>,
                                    scales: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            scales[b] = tinyseek_quantize_i16(x + b * Q8_0.blockSize, values + b * Q8_0.blockSize)
        }
    }

    /// One generic body for the three float formats; `L` says how 8 weights become a V8.
    ///
    /// One row at a time, 32 weights a step in four accumulators: the weights are read as a single
    /// sequential stream (rows are contiguous), which the hardware prefetcher follows best. Measured
    /// against the earlier four-rows-at-a-time kernel with software prefetch (A/B, interleaved runs
    /// of the benchmark model's decode): +2% F32, +10% BF16 tokens/s; sharing the loads of x
    /// between rows saves nothing when the loop waits on memory. Q8_0 keeps four rows and software
    /// prefetch: its widening costs more instructions per byte, and there one stream was 15% slower.
    ///
    /// Prefetching follows `StreamPrefetch` (`everyLine` or not). `pageAhead`: one software prefetch per 4 KB
    /// page, 16 KB ahead of the row being read: the hardware prefetchers stop at page boundaries,
    /// so each new page of the stream otherwise starts with a TLB walk and demand misses. Touching
    /// one line of the page 16 KB early gets both out of the way (interleaved A/B runs of the
    /// benchmark model's F32 decode on Zen 4: 94% → 97% of the read roof at 30 GB/s free; a
    /// prefetch of every line, as Q8_0 does, lost 10–20% there). *Per page*, not per row: a row
    /// shorter than a page (the experts' down, 1 KB in F32 and 512 bytes in 16 bits; q_b's
    /// 1.5 KB) used to issue one for each row, several a page, and in the VM's fast state that
    /// stream read at 0.93 of a plain sum against 1.00 with one a page (a C loop of this kernel
    /// over scattered 1 MB matrices of 1 KB rows, 1612 interleaved rounds at ~55-65 GB/s on two
    /// lanes; 1.01 and 1.03 at ~33). So a row prefetches for each page boundary it crosses (or
    /// starts on). `everyLine`: each step of 32 weights prefetches its lines 4 KB ahead (8 KB in
    /// 16 bits: `StreamPrefetch.lineAheadBytes`), which on an Intel Xeon, where a core alone
    /// streams far less than the memory can, keeps more misses in flight (see `StreamPrefetch`).
    /// Neither reaches past the matrix: a view (one head's W_UV inside kv_b_proj) would otherwise
    /// pull in the rows after it that nobody reads, 25% more traffic for 64 KB views.
    @inline(__always)
    static func matvec<L: Lanes>(_: L.Type, _ w: UnsafePointer<L.Element>, cols: Int, rows: Range<Int>, matrixRows: Int,
                                 x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, everyLine: Bool) {
        let k32 = cols & ~31
        let rowBytes = UInt(cols * MemoryLayout<L.Element>.stride)
        let matrixEnd = UInt(bitPattern: w + matrixRows * cols)
        let pageEnd = matrixEnd &- UInt(StreamPrefetch.pageAheadBytes)
        let lineAhead = StreamPrefetch.lineAheadBytes(elementBytes: MemoryLayout<L.Element>.stride)
        let lineEnd = matrixEnd &- UInt(lineAhead)
        for j in rows {
            let r = w + j * cols
            var a0 = V8(), a1 = V8(), a2 = V8(), a3 = V8()
            var p = 0
            if !everyLine {
                forEachPageBoundary(from: UInt(bitPattern: r), bytes: rowBytes, below: pageEnd) { boundary in
                    tinyseek_prefetch_l2(UnsafeRawPointer(bitPattern: boundary + UInt(StreamPrefetch.pageAheadBytes)))
                }
            }
            while p < k32 {
                if everyLine { prefetchLinesAhead(r + p, bytes: 32 * MemoryLayout<L.Element>.stride, ahead: lineAhead, below: lineEnd) }
                a0.addProduct(L.decode8(r + p), load8(x + p))
                a1.addProduct(L.decode8(r + p + 8), load8(x + p + 8))
                a2.addProduct(L.decode8(r + p + 16), load8(x + p + 16))
                a3.addProduct(L.decode8(r + p + 24), load8(x + p + 24))
                p += 32
            }
            while p + 8 <= cols { a0.addProduct(L.decode8(r + p), load8(x + p)); p += 8 }
            var s = ((a0 + a1) + (a2 + a3)).sum()
            while p < cols { s += L.scalar(r[p]) * x[p]; p += 1 }
            y[j] = s
        }
    }

    /// `StreamPrefetch.everyLine`'s step: prefetches into L2 the lines of [p, p + bytes) moved
    /// `ahead` bytes on, unless p is at or past `limit` (the stream's end minus `ahead`). A hint:
    /// never faults.
    @inline(__always)
    static func prefetchLinesAhead(_ p: UnsafeRawPointer, bytes: Int, ahead: Int, below limit: UInt) {
        guard UInt(bitPattern: p) < limit else { return }
        var o = 0
        while o < bytes {
            tinyseek_prefetch_l2(p + (ahead + o))
            o += 64
        }
    }

    /// Calls `body` with each 4 KB page boundary in [start, start + bytes) that lies below
    /// `limit`: where a stream over those bytes enters a new page (or starts on one).
    @inline(__always)
    static func forEachPageBoundary(from start: UInt, bytes: UInt, below limit: UInt, _ body: (UInt) -> Void) {
        var boundary = (start + 4095) & ~4095
        while boundary < start + bytes && boundary < limit {
            body(boundary)
            boundary += 4096
        }
    }

    /// Q8_0 against x quantised per block of 32 to int16 (`quantizeActivations`): each block's
    /// Σ w·q is exact in int32 (`tinyseek_dot_q8_i16`: vpmovsxbw, vpmaddwd), then scaled by
    /// d_w·d_x and accumulated in float32. A short last block (cols not a multiple of 32) uses x
    /// itself (`tailDot`).
    ///
    /// Why int16: widening every weight to float32 (sign-extend, convert, FMA: the previous
    /// kernel) made Q8_0 compute-bound at ~22 GB/s per core even from L2, below the ~35 GB/s a
    /// core streams from memory; the integer dot needs half the vector instructions per block.
    /// Rounding x to 16 bits moves each product by at most max|x_block|/65534 of its weight,
    /// ~256 times less than the weights' own 8-bit rounding (`ReferenceWeightKernels` quantises x
    /// the same way, so the kernel is still tested to float rounding).
    ///
    /// Four rows at a time share the x loads, with software prefetch (see above).
    static func matvecQ8(values: UnsafePointer<Int8>, scales: UnsafePointer<UInt16>, cols: Int, rows: Range<Int>,
                         x: UnsafePointer<Float>, xq: UnsafePointer<Int16>, xd: UnsafePointer<Float>,
                         y: UnsafeMutablePointer<Float>) {
        // At most 4 × 64 scales at a time: 1 KB, which Swift always puts on the stack (a buffer
        // for a whole 2816-column row, 1408 bytes, went to the heap on every call).
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * rowScaleBlocks) { rowScales in
            matvecQ8(values: values, scales: scales, cols: cols, rows: rows, x: x, xq: xq, xd: xd, y: y,
                     rowScales: rowScales.baseAddress!)
        }
    }

    /// Blocks of a row whose scales d_w·d_x `matvecQ8` converts at a time.
    static let rowScaleBlocks = 64

    @inline(__always)
    private static func matvecQ8(values: UnsafePointer<Int8>, scales: UnsafePointer<UInt16>, cols: Int, rows: Range<Int>,
                                 x: UnsafePointer<Float>, xq: UnsafePointer<Int16>, xd: UnsafePointer<Float>,
                                 y: UnsafeMutablePointer<Float>, rowScales: UnsafeMutablePointer<Float>) {
        let bs = Q8_0.blockSize, blocks = Q8_0.blocks(cols), full = cols / bs
        let groupsAhead = ahead(groupBytes: 4 * cols)
        var j = rows.lowerBound
        prefetch(UnsafeRawPointer(values + j * cols), bytes: min(groupsAhead * 4 * cols, rows.count * cols))
        prefetch(UnsafeRawPointer(scales + j * blocks), bytes: min(groupsAhead * 8 * blocks, rows.count * 2 * blocks))
        while j + 4 <= rows.upperBound {
            let q0 = values + j * cols, q1 = q0 + cols, q2 = q1 + cols, q3 = q2 + cols
            let d0 = scales + j * blocks, d1 = d0 + blocks, d2 = d1 + blocks, d3 = d2 + blocks
            var a0 = V8(), a1 = V8(), a2 = V8(), a3 = V8()
            // Prefetch the group `groupsAhead` on: values 4·32 bytes a block, and its scales.
            var ahead = UnsafeRawPointer(q0) + groupsAhead * 4 * cols
            prefetch(UnsafeRawPointer(d0 + groupsAhead * 4 * blocks), bytes: 8 * blocks)
            // Each row's block scales d_w·d_x, converted eight at a time before the blocks they
            // scale, `rowScaleBlocks` blocks at a time.
            var b0 = 0
            while b0 < full {
                let n = min(rowScaleBlocks, full - b0), seg = rowScaleBlocks
                tinyseek_q8_row_scales(d0 + b0, xd + b0, rowScales, n)
                tinyseek_q8_row_scales(d1 + b0, xd + b0, rowScales + seg, n)
                tinyseek_q8_row_scales(d2 + b0, xd + b0, rowScales + 2 * seg, n)
                tinyseek_q8_row_scales(d3 + b0, xd + b0, rowScales + 3 * seg, n)
                let e0 = UnsafePointer(rowScales), e1 = e0 + seg, e2 = e1 + seg, e3 = e2 + seg
                for b in b0..<(b0 + n) {
                    tinyseek_prefetch_l2(ahead); tinyseek_prefetch_l2(ahead + 64)
                    ahead += 4 * bs
                    let o = b * bs, xb = xq + o, e = b - b0
                    a0.addProduct(tinyseek_dot_q8_i16(q0 + o, xb), V8(repeating: e0[e]))
                    a1.addProduct(tinyseek_dot_q8_i16(q1 + o, xb), V8(repeating: e1[e]))
                    a2.addProduct(tinyseek_dot_q8_i16(q2 + o, xb), V8(repeating: e2[e]))
                    a3.addProduct(tinyseek_dot_q8_i16(q3 + o, xb), V8(repeating: e3[e]))
                }
                b0 += n
            }
            var s0 = a0.sum(), s1 = a1.sum(), s2 = a2.sum(), s3 = a3.sum()
            if full < blocks {
                s0 += tailDot(q0, d0, cols: cols, x: x); s1 += tailDot(q1, d1, cols: cols, x: x)
                s2 += tailDot(q2, d2, cols: cols, x: x); s3 += tailDot(q3, d3, cols: cols, x: x)
            }
            y[j] = s0; y[j + 1] = s1; y[j + 2] = s2; y[j + 3] = s3
            j += 4
        }
        while j < rows.upperBound {
            let q = values + j * cols, d = scales + j * blocks
            var a = V8()
            for b in 0..<full {
                let o = b * bs
                a.addProduct(tinyseek_dot_q8_i16(q + o, xq + o), V8(repeating: half(d[b]) * xd[b]))
            }
            var s = a.sum()
            if full < blocks { s += tailDot(q, d, cols: cols, x: x) }
            y[j] = s
            j += 1
        }
    }

    /// The last, short block of a row (cols not a multiple of 32), scalar.
    static func tailDot(_ q: UnsafePointer<Int8>, _ d: UnsafePointer<UInt16>, cols: Int, x: UnsafePointer<Float>) -> Float {
        let b = cols / Q8_0.blockSize
        var s: Float = 0
        for k in b * Q8_0.blockSize..<cols { s += Float(q[k]) * x[k] }
        return s * half(d[b])
    }

    // MARK: Transposed batch-1 product: y[cols] = xᵀ·W = Σ_j x[j]·W[j, :]

    /// Accumulates rows scaled by x (an axpy per row, widening each row on the fly): MLA's
    /// q̃ = W_UK,hᵀ·q_nope reads one head's rows of kv_b_proj this way, in their stored format.
    static func matvecTransposed(_ w: WeightView, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        let cols = w.cols
        switch w.storage {
        case let .f32(p): matvecTransposed(FloatRows<F32Lanes>(w: p, cols: cols), rows: w.rows, cols: cols, x: x, y: y)
        case let .bf16(p): matvecTransposed(FloatRows<BF16Lanes>(w: p, cols: cols), rows: w.rows, cols: cols, x: x, y: y)
        case let .f16(p): matvecTransposed(FloatRows<F16Lanes>(w: p, cols: cols), rows: w.rows, cols: cols, x: x, y: y)
        case let .q8_0(v, s):
            matvecTransposed(Q8Rows(values: v, scales: s, cols: cols, blocks: Q8_0.blocks(cols)), rows: w.rows, cols: cols, x: x, y: y)
        }
    }

    /// Four rows a pass: y[k..k+8] is loaded and stored once per four rows (not once per row),
    /// which was the cost of a row-at-a-time axpy; the sum still runs over rows in order.
    @inline(__always)
    static func matvecTransposed<D: RowDecoder>(_ d: D, rows: Int, cols: Int, x: UnsafePointer<Float>,
                                                y: UnsafeMutablePointer<Float>) {
        y.update(repeating: 0, count: cols)
        // Four rows a pass read four short streams at once (one head's W_UK: 64 rows of 1 KB in
        // F32), too short for the hardware prefetcher to pick up, so the passes `transposedAhead`
        // further on are prefetched line by line (q_absorb on the benchmark model, F32, interleaved A/B: 14–18 → 17–21 GB/s).
        let rowBytes = rows > 1 ? d.rowBase(1) - d.rowBase(0) : 0
        prefetch(d.rowBase(0), bytes: min(rows, 4 * transposedAhead) * rowBytes)
        var j = 0
        while j + 4 <= rows {
            if j + 4 * transposedAhead + 4 <= rows { prefetch(d.rowBase(j + 4 * transposedAhead), bytes: 4 * rowBytes) }
            let a0 = V8(repeating: x[j]), a1 = V8(repeating: x[j + 1])
            let a2 = V8(repeating: x[j + 2]), a3 = V8(repeating: x[j + 3])
            var k = 0
            while k + 8 <= cols {
                var acc = load8(y + k)
                acc.addProduct(d.decode8(j, k), a0)
                acc.addProduct(d.decode8(j + 1, k), a1)
                acc.addProduct(d.decode8(j + 2, k), a2)
                acc.addProduct(d.decode8(j + 3, k), a3)
                store8(acc, y + k)
                k += 8
            }
            while k < cols {
                for r in j..<(j + 4) { y[k] += x[r] * d.scalar(r, k) }
                k += 1
            }
            j += 4
        }
        while j < rows {
            let a = V8(repeating: x[j])
            var k = 0
            while k + 8 <= cols {
                var acc = load8(y + k)
                acc.addProduct(d.decode8(j, k), a)
                store8(acc, y + k)
                k += 8
            }
            while k < cols { y[k] += x[j] * d.scalar(j, k); k += 1 }
            j += 1
        }
    }

    // MARK: Decoding rows to float32 (tiles for sgemm)

    /// out[(i − rows.lowerBound)·cols + k] = W[i, k] for i in `rows`.
    static func dequantize(_ w: WeightView, rows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let cols = w.cols, n = rows.count * cols, r0 = rows.lowerBound
        guard n > 0 else { return }
        switch w.storage {
        case let .f32(p): out.update(from: p + r0 * cols, count: n)
        case let .bf16(p): Kernels.bf16ToF32(p + r0 * cols, count: n, out: out)
        case let .f16(p): Kernels.f16ToF32(p + r0 * cols, count: n, out: out)
        case let .q8_0(v, s):
            let blocks = Q8_0.blocks(cols)
            for i in rows {
                let q = v + i * cols, o = out + (i - r0) * cols
                for b in 0..<blocks {
                    let lo = b * Q8_0.blockSize, hi = min(lo + Q8_0.blockSize, cols)
                    let d = half(s[i * blocks + b])
                    let vd = V8(repeating: d)
                    var k = lo
                    while k + 8 <= hi { store8(int8x8(q + k) * vd, o + k); k += 8 }
                    while k < hi { o[k] = Float(q[k]) * d; k += 1 }
                }
            }
        }
    }
}

// MARK: - Lane decoders

/// How a float format turns 8 consecutive stored elements into 8 float32 lanes.
protocol Lanes {
    associatedtype Element
    static func decode8(_ p: UnsafePointer<Element>) -> V8
    static func scalar(_ e: Element) -> Float
}

enum F32Lanes: Lanes {
    @inline(__always) static func decode8(_ p: UnsafePointer<Float>) -> V8 { load8(p) }
    @inline(__always) static func scalar(_ e: Float) -> Float { e }
}

/// bfloat16 is the top half of a float32: zero-extend to 32 bits and shift left by 16.
enum BF16Lanes: Lanes {
    @inline(__always) static func decode8(_ p: UnsafePointer<UInt16>) -> V8 { tinyseek_bf16x8_to_f32(p) }
    @inline(__always) static func scalar(_ e: UInt16) -> Float { Float(bitPattern: UInt32(e) << 16) }
}

/// IEEE half: the vector Float16 → Float conversion is one `vcvtph2ps` with F16C.
enum F16Lanes: Lanes {
    @inline(__always) static func decode8(_ p: UnsafePointer<UInt16>) -> V8 {
        #if arch(x86_64) || arch(arm64)
        return V8(UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float16>.self))
        #else
        return V8((0..<8).map { ReferenceKernels.f16ToF32(p[$0]) })
        #endif
    }
    @inline(__always) static func scalar(_ e: UInt16) -> Float { half(e) }
}

/// 8 signed bytes as 8 floats (sign-extend, convert), in C so it is always inlined (see kernel_support.h).
@inline(__always)
func int8x8(_ q: UnsafePointer<Int8>) -> V8 { tinyseek_i8x8_to_f32(q) }

/// An IEEE half bit pattern as a float.
@inline(__always)
func half(_ bits: UInt16) -> Float {
    #if arch(x86_64) || arch(arm64)
    return Float(Float16(bitPattern: bits))
    #else
    return ReferenceKernels.f16ToF32(bits)
    #endif
}

/// Eight float32 weights of row j from column p (p a multiple of 8, p + 8 ≤ cols), or one: how
/// the transposed product reads each format.
protocol RowDecoder {
    func decode8(_ j: Int, _ p: Int) -> V8
    func scalar(_ j: Int, _ p: Int) -> Float
    func rowBase(_ j: Int) -> UnsafeRawPointer
}

struct FloatRows<L: Lanes>: RowDecoder {
    let w: UnsafePointer<L.Element>
    let cols: Int
    @inline(__always) func decode8(_ j: Int, _ p: Int) -> V8 { L.decode8(w + j * cols + p) }
    @inline(__always) func scalar(_ j: Int, _ p: Int) -> Float { L.scalar(w[j * cols + p]) }
    @inline(__always) func rowBase(_ j: Int) -> UnsafeRawPointer { UnsafeRawPointer(w + j * cols) }
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
}
