/// The algorithmic reference for `WeightMatrix`: every product decodes W one element at a time
/// with `WeightMatrix.element` (the reference bf16/f16 conversions and d·q for Q8_0) and sums in
/// plain loops. Obviously correct, slow; the fast kernels are tested against it.
public enum ReferenceWeightKernels {
    /// y[i, j] = Σ_k x[i, k]·W[j, k] for i < m, j < W.rows (k < W.cols).
    ///
    /// One row through a Q8_0 matrix (the matvec) reads x as the kernel does: each full block of
    /// 32 rounded to int16 with one scale (`int16Activations`).
    public static func apply(_ w: WeightMatrix, _ x: UnsafePointer<Float>, rows m: Int, ldx: Int,
                             into y: UnsafeMutablePointer<Float>, ldy: Int) {
        if m == 1, case .q8_0 = w.storage {
            let rounded = int16Activations(UnsafeBufferPointer(start: x, count: w.cols))
            for j in 0..<w.rows {
                var acc: Float = 0
                for k in 0..<w.cols { acc += rounded[k] * w.element(j, k) }
                y[j] = acc
            }
            return
        }
        for i in 0..<m {
            for j in 0..<w.rows {
                var acc: Float = 0
                for k in 0..<w.cols { acc += x[i * ldx + k] * w.element(j, k) }
                y[i * ldy + j] = acc
            }
        }
    }

    /// y[i, k] = Σ_j x[i, j]·W[j, k] for i < m, k < W.cols (j < W.rows): the product with W
    /// itself, not Wᵀ.
    public static func applyTransposed(_ w: WeightMatrix, _ x: UnsafePointer<Float>, rows m: Int, ldx: Int,
                                       into y: UnsafeMutablePointer<Float>, ldy: Int) {
        for i in 0..<m {
            for k in 0..<w.cols {
                var acc: Float = 0
                for j in 0..<w.rows { acc += x[i * ldx + j] * w.element(j, k) }
                y[i * ldy + k] = acc
            }
        }
    }

    /// x as the Q8_0 matvec sees it: each full block of 32 becomes d·q with d = max|x|/32767 and
    /// q = x·(32767/max|x|) rounded to nearest even (0 for an all-zero block); a block holding a
    /// NaN or an infinity becomes all NaN (nothing non-finite is rounded away); a short last
    /// block stays as it is.
    public static func int16Activations(_ x: UnsafeBufferPointer<Float>) -> [Float] {
        var out = Array(x)
        let bs = Q8_0.blockSize
        for b in 0..<(x.count / bs) {
            let block = b * bs ..< (b + 1) * bs
            if block.contains(where: { !x[$0].isFinite }) {
                for k in block { out[k] = .nan }
                continue
            }
            let amax = block.reduce(Float(0)) { max($0, abs(x[$1])) }
            let inv: Float = amax > 0 ? 32767 / amax : 0, d = amax / 32767
            for k in block { out[k] = (x[k] * inv).rounded(.toNearestOrEven) * d }
        }
        return out
    }

    /// out[(i − rows.lowerBound)·cols + k] = W[i, k].
    public static func dequantize(_ w: WeightMatrix, rows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        for i in rows { for k in 0..<w.cols { out[(i - rows.lowerBound) * w.cols + k] = w.element(i, k) } }
    }
}
