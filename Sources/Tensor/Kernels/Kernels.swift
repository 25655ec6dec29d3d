import CKernelSupport
import COpenBLAS
import Foundation

/// The fast kernels: SIMD8 loops over unsafe buffers (AVX2+FMA on x86-64) and OpenBLAS sgemm.
///
/// Every function has the same signature and meaning as its twin in `ReferenceKernels`, the
/// algorithmic reference the tests hold it to.
public enum Kernels {
    /// C = alpha · A · op(B) + beta · C (see `ReferenceKernels.gemm`). A single row against a
    /// [n, k] weight uses the SIMD matvec, which streams the weight once at memory speed without
    /// BLAS's call overhead; a batch of rows goes to OpenBLAS sgemm. Both are split across the
    /// `WorkerPool` lanes (matvec over output rows, sgemm over output columns), with OpenBLAS
    /// itself kept on one thread: its own workers busy-wait after every call and would fight the
    /// pool's for the same cores (see `BLAS.useCallerThreadOnly`).
    ///
    /// FLOPs: 2·m·n·k. Bytes: 4·(m·k + n·k + m·n) at least.
    public static func gemm(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
        c: UnsafeMutablePointer<Float>, ldc: Int,
        alpha: Float = 1, beta: Float = 0
    ) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        let pool = WorkerPool.shared
        if m == 1 && transposeB && alpha == 1 && beta == 0 {
            let chunks = WeightMatrix.matvecChunks(rows: n, bytes: Double(n * k * 4), lanes: pool.laneCount)
            guard chunks > 1 else {
                matvec(weight: b, ldw: ldb, rows: n, cols: k, x: a, y: c)
                return
            }
            let per = ((n + chunks - 1) / chunks + 3) & ~3
            pool.run(chunks: (n + per - 1) / per, StridedMatvec(b: b, ldb: ldb, n: n, k: k, a: a, c: c, per: per))
            return
        }
        let chunks = gemmChunks(m: m, n: n, k: k, lanes: pool.laneCount)
        guard chunks > 1 else {
            sgemm(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, transposeB: transposeB, c: c, ldc: ldc,
                  alpha: alpha, beta: beta)
            return
        }
        let per = ((n + chunks - 1) / chunks + 15) & ~15
        pool.run(chunks: (n + per - 1) / per,
                 ColumnBlocks(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, transposeB: transposeB, c: c, ldc: ldc,
                              alpha: alpha, beta: beta, per: per))
    }

    /// Chunk i of a matvec: rows [i·per, (i+1)·per) of a [n, k] weight with row stride ldb.
    struct StridedMatvec: PoolTask {
        let b: UnsafePointer<Float>, ldb: Int, n: Int, k: Int, a: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>
        let per: Int
        func callAsFunction(_ i: Int, _ scratch: Scratch) {
            let lo = i * per, hi = min(n, lo + per)
            matvec(weight: b + lo * ldb, ldw: ldb, rows: hi - lo, cols: k, x: a, y: c + lo)
        }
    }

    /// Chunk i of an sgemm: columns [i·per, (i+1)·per) of C, which need rows of B stored [n, k]
    /// (transposeB) or columns of B stored [k, n].
    struct ColumnBlocks: PoolTask {
        let m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int
        let transposeB: Bool, c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float, per: Int
        func callAsFunction(_ i: Int, _ scratch: Scratch) {
            let lo = i * per, hi = min(n, lo + per)
            sgemm(m: m, n: hi - lo, k: k, a: a, lda: lda, b: transposeB ? b + lo * ldb : b + lo, ldb: ldb,
                  transposeB: transposeB, c: c + lo, ldc: ldc, alpha: alpha, beta: beta)
        }
    }

    /// Pieces an sgemm is cut into along n: 1 below ~2·10⁵ multiply-adds (a few microseconds,
    /// less than a hand-off is worth), else up to 4 per lane with at least 32 columns each.
    static func gemmChunks(m: Int, n: Int, k: Int, lanes: Int) -> Int {
        guard lanes > 1, m * n * k >= 200_000, n >= 64 else { return 1 }
        return max(1, min(4 * lanes, n / 32))
    }

    /// One OpenBLAS sgemm call on the calling thread, row-major, C = alpha·A·op(B) + beta·C.
    @inline(__always)
    static func sgemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      transposeB: Bool, c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float = 1, beta: Float = 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// y[j] = W[j, :] · x for W stored [rows, cols] with row stride `ldw`.
    /// Four rows at a time share each load of x; two accumulators per row hide FMA latency.
    public static func matvec(weight w: UnsafePointer<Float>, ldw: Int, rows: Int, cols: Int,
                              x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        let k8 = cols & ~7
        var j = 0
        while j + 4 <= rows {
            let w0 = w + j * ldw, w1 = w0 + ldw, w2 = w1 + ldw, w3 = w2 + ldw
            var a0 = V8(), a1 = V8(), a2 = V8(), a3 = V8()
            var p = 0
            while p < k8 {
                let xv = load8(x + p)
                a0.addProduct(load8(w0 + p), xv)
                a1.addProduct(load8(w1 + p), xv)
                a2.addProduct(load8(w2 + p), xv)
                a3.addProduct(load8(w3 + p), xv)
                p += 8
            }
            var s0 = a0.sum(), s1 = a1.sum(), s2 = a2.sum(), s3 = a3.sum()
            while p < cols {
                let xv = x[p]
                s0 += w0[p] * xv; s1 += w1[p] * xv; s2 += w2[p] * xv; s3 += w3[p] * xv
                p += 1
            }
            y[j] = s0; y[j + 1] = s1; y[j + 2] = s2; y[j + 3] = s3
            j += 4
        }
        while j < rows {
            y[j] = dot(w + j * ldw, x, count: cols)
            j += 1
        }
    }

    /// Asks for [p, p + bytes) in L2, one prefetch per 64-byte line: a hint that never faults.
    /// For data a caller knows it reads soon but that is no longer cached (MLA's latent cache rows
    /// after a layer's weights have streamed through). No reference twin: it computes nothing.
    public static func prefetch(_ p: UnsafeRawPointer, bytes: Int) {
        WeightKernels.prefetch(p, bytes: bytes)
    }

    /// Σ p[range]: the read probes' stream (calibration's read bandwidth, bench's decode roof).
    /// Four independent SIMD8 accumulators (32 floats a step) so the adds wait on memory, not on
    /// each other's latency, and prefetching as the float matvec does (`StreamPrefetch`), so the
    /// roof is this machine's rate for the kernels' way of streaming. A probe, not arithmetic: no
    /// reference twin.
    public static func streamSum(_ p: UnsafePointer<Float>, _ range: Range<Int>,
                                 prefetch: StreamPrefetch = .current) -> Float {
        switch prefetch {
        case .everyLine: streamSum(p, range, everyLine: true)
        case .pageAhead: streamSum(p, range, everyLine: false)
        }
    }

    @inline(never)
    private static func streamSum(_ p: UnsafePointer<Float>, _ range: Range<Int>, everyLine: Bool) -> Float {
        var s0 = V8(), s1 = V8(), s2 = V8(), s3 = V8()
        var i = range.lowerBound
        let end = range.upperBound
        let lineAhead = StreamPrefetch.lineAheadBytes(elementBytes: 4)
        let lineEnd = UInt(bitPattern: p + end) &- UInt(lineAhead)
        let pageEnd = UInt(bitPattern: p + end) &- UInt(StreamPrefetch.pageAheadBytes)
        while i + 32 <= end {
            if everyLine {
                WeightKernels.prefetchLinesAhead(p + i, bytes: 128, ahead: lineAhead, below: lineEnd)
            } else {
                // The page the step enters, if it enters one, as the matvec does.
                WeightKernels.forEachPageBoundary(from: UInt(bitPattern: p + i), bytes: 128, below: pageEnd) { boundary in
                    tinyseek_prefetch_l2(UnsafeRawPointer(bitPattern: boundary + UInt(StreamPrefetch.pageAheadBytes)))
                }
            }
            s0 += load8(p + i); s1 += load8(p + i + 8); s2 += load8(p + i + 16); s3 += load8(p + i + 24)
            i += 32
        }
        var s = ((s0 + s1) + (s2 + s3)).sum()
        while i < end { s += p[i]; i += 1 }
        return s
    }

    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int) -> Float {
        var acc0 = V8(), acc1 = V8()
        var i = 0
        while i + 16 <= n {
            acc0.addProduct(load8(a + i), load8(b + i))
            acc1.addProduct(load8(a + i + 8), load8(b + i + 8))
            i += 16
        }
        if i + 8 <= n { acc0.addProduct(load8(a + i), load8(b + i)); i += 8 }
        var s = (acc0 + acc1).sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, eps: Float,
                               count n: Int, out: UnsafeMutablePointer<Float>) {
        let ss = dot(x, x, count: n)
        let inv = 1 / (ss / Float(max(n, 1)) + eps).squareRoot()
        var i = 0
        let vinv = V8(repeating: inv)
        while i + 8 <= n { store8(load8(x + i) * vinv * load8(weight + i), out + i); i += 8 }
        while i < n { out[i] = x[i] * inv * weight[i]; i += 1 }
    }

    public static func softmax(_ x: UnsafeMutablePointer<Float>, count n: Int, valid: Int) {
        let v = min(max(valid, 0), n)
        var i = v
        while i < n { x[i] = 0; i += 1 }
        guard v > 0 else { return }
        var mx = -Float.infinity
        i = 0
        if v >= 8 {
            var m8 = V8(repeating: -.infinity)
            while i + 8 <= v { m8 = max8(m8, load8(x + i)); i += 8 }
            mx = m8.max()
        }
        while i < v { mx = max(mx, x[i]); i += 1 }
        var sum8 = V8()
        var sum: Float = 0
        let vmx = V8(repeating: mx)
        i = 0
        while i + 8 <= v { let e = exp8(load8(x + i) - vmx); store8(e, x + i); sum8 += e; i += 8 }
        while i < v { let e = Foundation.exp(x[i] - mx); x[i] = e; sum += e; i += 1 }
        sum += sum8.sum()
        scale(x, by: 1 / sum, count: v)
    }

    /// `softmax` of `rows` rows of `count` scores, row i keeping its first
    /// firstValid + i / rowsPerStep entries (causal masking of (token, head) rows: every
    /// `rowsPerStep` rows belong to the next token). Split over the pool once the rows hold
    /// enough exponentials to pay for the hand-off (a long context's decode step: 16 heads ×
    /// thousands of positions), else on the calling thread.
    public static func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, count n: Int, firstValid: Int, rowsPerStep: Int,
                                   pool: WorkerPool = .shared) {
        let task = SoftmaxRows(x: x, rows: rows, n: n, firstValid: firstValid, rowsPerStep: max(rowsPerStep, 1),
                               per: max(1, (rows + 2 * pool.laneCount - 1) / (2 * pool.laneCount)))
        guard rows * n >= 16_384, rows > 1, pool.laneCount > 1 else {
            task.run(0..<rows)
            return
        }
        pool.run(chunks: (rows + task.per - 1) / task.per, task)
    }

    /// Chunk c: rows [c·per, (c+1)·per).
    struct SoftmaxRows: PoolTask {
        let x: UnsafeMutablePointer<Float>, rows: Int, n: Int, firstValid: Int, rowsPerStep: Int, per: Int
        func callAsFunction(_ c: Int, _ scratch: Scratch) { run(c * per ..< min(rows, (c + 1) * per)) }

        func run(_ range: Range<Int>) {
            for i in range { softmax(x + i * n, count: n, valid: firstValid + i / rowsPerStep) }
        }
    }

    public static func silu(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        var i = 0
        while i + 8 <= n { let v = load8(x + i); store8(v / (1 + exp8(-v)), x + i); i += 8 }
        while i < n { x[i] = x[i] / (1 + Foundation.exp(-x[i])); i += 1 }
    }

    /// out = 1 / (1 + e^-x): the V3 router's scores. (libm's expf an element is ~15 ns, which
    /// made a decode token's 64 scores ~1 µs of each MoE layer's serial routing.)
    public static func sigmoid(_ x: UnsafePointer<Float>, count n: Int, out: UnsafeMutablePointer<Float>) {
        var i = 0
        while i + 8 <= n { store8(1 / (1 + exp8(-load8(x + i))), out + i); i += 8 }
        while i < n { out[i] = 1 / (1 + Foundation.exp(-x[i])); i += 1 }
    }

    public static func siluMul(_ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>,
                               count n: Int, out: UnsafeMutablePointer<Float>) {
        var i = 0
        while i + 8 <= n {
            let g = load8(gate + i)
            store8(g / (1 + exp8(-g)) * load8(up + i), out + i)
            i += 8
        }
        while i < n { out[i] = gate[i] / (1 + Foundation.exp(-gate[i])) * up[i]; i += 1 }
    }

    public static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int, out: UnsafeMutablePointer<Float>) {
        var i = 0
        while i + 8 <= n { store8(load8(a + i) + load8(b + i), out + i); i += 8 }
        while i < n { out[i] = a[i] + b[i]; i += 1 }
    }

    public static func mul(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int, out: UnsafeMutablePointer<Float>) {
        var i = 0
        while i + 8 <= n { store8(load8(a + i) * load8(b + i), out + i); i += 8 }
        while i < n { out[i] = a[i] * b[i]; i += 1 }
    }

    public static func scale(_ x: UnsafeMutablePointer<Float>, by s: Float, count n: Int) {
        var i = 0
        let vs = V8(repeating: s)
        while i + 8 <= n { store8(load8(x + i) * vs, x + i); i += 8 }
        while i < n { x[i] *= s; i += 1 }
    }

    public static func addScaled(_ x: UnsafePointer<Float>, by alpha: Float, to y: UnsafeMutablePointer<Float>, count n: Int) {
        var i = 0
        let va = V8(repeating: alpha)
        while i + 8 <= n {
            var acc = load8(y + i)
            acc.addProduct(va, load8(x + i))
            store8(acc, y + i)
            i += 8
        }
        while i < n { y[i] += alpha * x[i]; i += 1 }
    }

    public static func rope(_ x: UnsafeMutablePointer<Float>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
                            half: Int, layout: RopeLayout) {
        switch layout {
        case .halfSplit:
            var i = 0
            while i + 8 <= half {
                let a = load8(x + i), b = load8(x + i + half), c = load8(cos + i), s = load8(sin + i)
                store8(a * c - b * s, x + i)
                store8(b * c + a * s, x + i + half)
                i += 8
            }
            while i < half {
                let a = x[i], b = x[i + half]
                x[i] = a * cos[i] - b * sin[i]
                x[i + half] = b * cos[i] + a * sin[i]
                i += 1
            }
        case .interleaved:
            // Rotary dims are small (32-64); pairs are adjacent, so a scalar loop is as fast as a shuffle.
            for i in 0..<half {
                let a = x[2 * i], b = x[2 * i + 1]
                x[2 * i] = a * cos[i] - b * sin[i]
                x[2 * i + 1] = b * cos[i] + a * sin[i]
            }
        }
    }

    /// Index of the largest value (the first one on ties); nil for an empty input.
    ///
    /// Two passes, as `ReferenceKernels.argmax` decides (the first index of the largest value;
    /// NaNs never win, unless x[0] is one): the maximum, 32 floats a step in four SIMD8 running
    /// maxima, then the first index holding it. The one-pass scalar scan is a chain of dependent
    /// compares, ~1 float a cycle: 27 µs of every decode step for a 32000-entry vocabulary.
    public static func argmax(_ x: UnsafeBufferPointer<Float>) -> Int? {
        guard let base = x.baseAddress, !x.isEmpty else { return nil }
        let n = x.count
        var best = base[0]
        if best.isNaN { return 0 }
        // A lane takes a value only when it is greater (false for NaN), like the scalar scan.
        var m0 = V8(repeating: best), m1 = m0, m2 = m0, m3 = m0
        var i = 0
        while i + 32 <= n {
            let a = load8(base + i), b = load8(base + i + 8), c = load8(base + i + 16), d = load8(base + i + 24)
            m0.replace(with: a, where: a .> m0); m1.replace(with: b, where: b .> m1)
            m2.replace(with: c, where: c .> m2); m3.replace(with: d, where: d .> m3)
            i += 32
        }
        m0.replace(with: m1, where: m1 .> m0); m2.replace(with: m3, where: m3 .> m2)
        m0.replace(with: m2, where: m2 .> m0)
        for lane in 0..<8 where m0[lane] > best { best = m0[lane] }
        while i < n { if base[i] > best { best = base[i] }; i += 1 }
        // The first element equal to it (±0 compare equal, as they do in the scalar scan).
        let target = V8(repeating: best)
        var j = 0
        while j + 8 <= n {
            if any(load8(base + j) .== target) { break }
            j += 8
        }
        while j < n && base[j] != best { j += 1 }
        return j
    }

    /// Top-k by a partial selection: O(n·k) with a small sorted window, which beats a full sort
    /// for the k ≤ 8 of expert routing and the k ≤ 100 of sampling. Allocates the result; the
    /// router uses `topK(_:k:indices:values:)`.
    public static func topK(_ x: UnsafeBufferPointer<Float>, k: Int) -> [(index: Int, value: Float)] {
        let k = min(max(k, 0), x.count)
        guard k > 0 else { return [] }
        var indices = [Int](repeating: 0, count: k), values = [Float](repeating: 0, count: k)
        let n = indices.withUnsafeMutableBufferPointer { i in
            values.withUnsafeMutableBufferPointer { v in topK(x, k: k, indices: i.baseAddress!, values: v.baseAddress!) }
        }
        return (0..<n).map { (indices[$0], values[$0]) }
    }

    /// The k largest values and their indices, largest first, ties keeping the lower index first
    /// (as `ReferenceKernels.topK`), written into caller buffers of at least k entries; returns
    /// how many were written, min(k, n). Allocates nothing: the MoE router calls it per token.
    /// A value enters the window only if it beats the smallest kept one, and slides up past every
    /// kept value it is strictly greater than.
    @discardableResult
    public static func topK(_ x: UnsafeBufferPointer<Float>, k: Int,
                            indices: UnsafeMutablePointer<Int>, values: UnsafeMutablePointer<Float>) -> Int {
        let k = min(max(k, 0), x.count)
        guard k > 0, let base = x.baseAddress else { return 0 }
        var count = 0
        for i in 0..<x.count {
            let v = base[i]
            if count == k && !(v > values[k - 1]) { continue }
            var pos = count == k ? k - 1 : count   // when full, the smallest kept value drops out
            while pos > 0 && values[pos - 1] < v {
                values[pos] = values[pos - 1]
                indices[pos] = indices[pos - 1]
                pos -= 1
            }
            values[pos] = v
            indices[pos] = i
            if count < k { count += 1 }
        }
        return count
    }

    /// Converts IEEE half to float32 (F16C on x86-64 through Swift's Float16 vector conversion).
    public static func f16ToF32(_ src: UnsafePointer<UInt16>, count n: Int, out: UnsafeMutablePointer<Float>) {
        #if arch(x86_64) || arch(arm64)
        var i = 0
        while i + 8 <= n {
            let h = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float16>.self)
            store8(V8(h), out + i)
            i += 8
        }
        while i < n { out[i] = Float(Float16(bitPattern: src[i])); i += 1 }
        #else
        for i in 0..<n { out[i] = ReferenceKernels.f16ToF32(src[i]) }
        #endif
    }

    /// Converts bfloat16 to float32: a 16-bit shift into the high half.
    public static func bf16ToF32(_ src: UnsafePointer<UInt16>, count n: Int, out: UnsafeMutablePointer<Float>) {
        var i = 0
        while i + 8 <= n {
            let h = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<UInt16>.self)
            let w = SIMD8<UInt32>(truncatingIfNeeded: h) &<< 16
            store8(unsafeBitCast(w, to: V8.self), out + i)
            i += 8
        }
        while i < n { out[i] = Float(bitPattern: UInt32(src[i]) << 16); i += 1 }
    }
}
