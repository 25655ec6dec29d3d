/// The algorithmic reference for `WeightMatrix`: every product decodes W one element at a time
/// with `WeightMatrix.element` (the reference bf16/f16 conversions and d·q for Q8_0) and sums in
/// plain loops. Obviously correct, slow; the fast kernels are tested against it.
public enum ReferenceWeightKernels {
    /// y[i, j] = Σ_k x[i, k]·W[j, k] for i < m, j < W.rows (k < W.cols).
    public static func apply(_ w: WeightMatrix, _ x: UnsafePointer<Float>, rows m: Int, ldx: Int,
                             into y: UnsafeMutablePointer<Float>, ldy: Int) {
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

    /// out[(i − rows.lowerBound)·cols + k] = W[i, k].
    public static func dequantize(_ w: WeightMatrix, rows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        for i in rows { for k in 0..<w.cols { out[(i - rows.lowerBound) * w.cols + k] = w.element(i, k) } }
    }
}
