import Foundation

/// The algorithmic reference for every kernel: plain loops, no SIMD, no BLAS.
///
/// Each function here has a fast twin in `Kernels` with the same signature; tests run both
/// on random inputs and require agreement. Keep these obviously correct, not fast.
public enum ReferenceKernels {
    /// C[m, n] = alpha * A[m, k] · op(B) + beta * C, with op(B) = Bᵀ for B stored [n, k]
    /// (`transposeB`, the PyTorch Linear layout) or B for B stored [k, n]. Leading dimensions
    /// are row strides in elements, so strided views (one head of a [T, H, d] tensor) work.
    public static func gemm(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
        c: UnsafeMutablePointer<Float>, ldc: Int,
        alpha: Float = 1, beta: Float = 0
    ) {
        for i in 0..<m {
            for j in 0..<n {
                var acc: Float = 0
                for p in 0..<k {
                    let bv = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                    acc += a[i * lda + p] * bv
                }
                let old = beta == 0 ? 0 : beta * c[i * ldc + j]
                c[i * ldc + j] = alpha * acc + old
            }
        }
    }

    /// out[i] = x[i] / sqrt(mean(x²) + eps) * weight[i], for one row of length n.
    public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, eps: Float,
                               count n: Int, out: UnsafeMutablePointer<Float>) {
        var ss: Float = 0
        for i in 0..<n { ss += x[i] * x[i] }
        let inv = 1 / (ss / Float(max(n, 1)) + eps).squareRoot()
        for i in 0..<n { out[i] = x[i] * inv * weight[i] }
    }

    /// Numerically stable softmax in place over the first `valid` of `n` entries; the rest
    /// (masked positions, e.g. the causal future) are set to 0.
    public static func softmax(_ x: UnsafeMutablePointer<Float>, count n: Int, valid: Int) {
        let v = min(max(valid, 0), n)
        guard v > 0 else { for i in 0..<n { x[i] = 0 }; return }
        var mx = -Float.infinity
        for i in 0..<v { mx = max(mx, x[i]) }
        var sum: Float = 0
        for i in 0..<v { x[i] = Foundation.exp(x[i] - mx); sum += x[i] }
        for i in 0..<v { x[i] /= sum }
        for i in v..<n { x[i] = 0 }
    }

    /// silu(x) = x * sigmoid(x), in place.
    public static func silu(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        for i in 0..<n { x[i] = x[i] / (1 + Foundation.exp(-x[i])) }
    }

    /// out = 1 / (1 + e^-x).
    public static func sigmoid(_ x: UnsafePointer<Float>, count n: Int, out: UnsafeMutablePointer<Float>) {
        for i in 0..<n { out[i] = 1 / (1 + Foundation.exp(-x[i])) }
    }

    /// out = silu(gate) * up, the SwiGLU activation of every DeepSeek FFN and expert.
    public static func siluMul(_ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>,
                               count n: Int, out: UnsafeMutablePointer<Float>) {
        for i in 0..<n { out[i] = gate[i] / (1 + Foundation.exp(-gate[i])) * up[i] }
    }

    public static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int, out: UnsafeMutablePointer<Float>) {
        for i in 0..<n { out[i] = a[i] + b[i] }
    }

    public static func mul(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int, out: UnsafeMutablePointer<Float>) {
        for i in 0..<n { out[i] = a[i] * b[i] }
    }

    public static func scale(_ x: UnsafeMutablePointer<Float>, by s: Float, count n: Int) {
        for i in 0..<n { x[i] *= s }
    }

    /// y += alpha * x (BLAS axpy): how a routed expert's output is added to its token.
    public static func addScaled(_ x: UnsafePointer<Float>, by alpha: Float, to y: UnsafeMutablePointer<Float>, count n: Int) {
        for i in 0..<n { y[i] += alpha * x[i] }
    }

    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int) -> Float {
        var acc: Float = 0
        for i in 0..<n { acc += a[i] * b[i] }
        return acc
    }

    /// scores[i·S + t] = scale·(q̃_i·c_t + q_pe,i·k_pe,t): absorbed-MLA scores of query rows
    /// against cache rows [c_t (r) | k_pe,t (dr)] (see `LatentAttention.scores`).
    public static func latentScores(rows: Int, rank r: Int, ropeDims dr: Int, positions S: Int,
                                    qLatent: UnsafePointer<Float>, latentStride: Int, qRope: UnsafePointer<Float>, ropeStride: Int,
                                    cache: UnsafePointer<Float>, scale: Float, into scores: UnsafeMutablePointer<Float>) {
        for i in 0..<rows {
            for t in 0..<S {
                let c = cache + t * (r + dr)
                scores[i * S + t] = scale * (dot(qLatent + i * latentStride, c, count: r) + dot(qRope + i * ropeStride, c + r, count: dr))
            }
        }
    }

    /// Rotates `x` (length `2 * cos.count`) by the angles whose cosines and sines are given,
    /// one per frequency i. Interleaved: pairs (x[2i], x[2i+1]); half-split: (x[i], x[i+d/2]).
    ///   x'_a = x_a cos θ_i − x_b sin θ_i,   x'_b = x_b cos θ_i + x_a sin θ_i
    public static func rope(_ x: UnsafeMutablePointer<Float>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
                            half: Int, layout: RopeLayout) {
        for i in 0..<half {
            let (ia, ib) = layout == .interleaved ? (2 * i, 2 * i + 1) : (i, i + half)
            let a = x[ia], b = x[ib]
            x[ia] = a * cos[i] - b * sin[i]
            x[ib] = b * cos[i] + a * sin[i]
        }
    }

    /// Index of the largest value (the first one on ties); nil for an empty input.
    public static func argmax(_ x: UnsafeBufferPointer<Float>) -> Int? {
        guard !x.isEmpty else { return nil }
        var best = 0
        for i in 1..<x.count where x[i] > x[best] { best = i }
        return best
    }

    /// The k largest values with their indices, largest first; ties keep the lower index first.
    public static func topK(_ x: UnsafeBufferPointer<Float>, k: Int) -> [(index: Int, value: Float)] {
        let all = x.enumerated().map { (index: $0.offset, value: $0.element) }
        let sorted = all.sorted { $0.value > $1.value || ($0.value == $1.value && $0.index < $1.index) }
        return Array(sorted.prefix(max(k, 0)))
    }

    /// IEEE half precision to single, bit by bit (subnormals, infinities and NaN included).
    public static func f16ToF32(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exp = Int((h >> 10) & 0x1F)
        let mant = UInt32(h & 0x3FF)
        if exp == 0 {
            // zero or subnormal: mant * 2^-24
            let v = Float(mant) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -v : v
        }
        if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
        return Float(bitPattern: sign | (UInt32(exp - 15 + 127) << 23) | (mant << 13))
    }

    /// bfloat16 is the top half of a float32.
    public static func bf16ToF32(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }
}

/// How RoPE pairs the elements of a rotary vector.
public enum RopeLayout: String, Sendable, Codable {
    /// Adjacent pairs (x0, x1), (x2, x3), ...: DeepSeek's original (complex-number) layout.
    case interleaved
    /// First half with second half: (x0, x_{d/2}), ...: Llama/NeoX "rotate_half".
    case halfSplit
}
