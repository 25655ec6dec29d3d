import Foundation
import Tensor

/// Decoupled rotary position embedding for MLA's shared key and per-head query rope parts.
///
/// Only `qk_rope_head_dim` dimensions rotate; the "nope" part carries no position, which is
/// what lets W_UK be absorbed into the query. Frequencies follow transformers exactly in
/// float32 (the products pos·inv_freq are rounded the same way), optionally with YaRN:
///   inv_freq_i = θ^(-2i/d), blended between extrapolation (i small: fast-rotating dims kept)
///   and interpolation (inv_freq/factor) by a linear ramp between the correction dims of
///   beta_fast and beta_slow rotations; cos/sin are scaled by the attention factor
///   mscale(factor, mscale)/mscale(factor, mscale_all_dim).
public struct RotaryEmbedding: Sendable {
    public let dims: Int                 // qk_rope_head_dim
    public let layout: RopeLayout
    public let inverseFrequencies: [Float]   // (dims / 2)
    public let attentionFactor: Float
    /// Softmax scale: (dn + dr)^-1/2, times mscale(factor, mscale_all_dim)² under YaRN.
    public let softmaxScale: Float

    public init(config c: ModelConfig) {
        let p = c.rope
        let d = c.qkRopeHeadDim
        let base = Float(p.ropeTheta ?? 10000)
        dims = d
        layout = c.ropeLayout
        // θ^(2i/d) in float32, as torch computes `base ** (arange(0, d, 2).float() / d)`.
        let posFreqs = stride(from: 0, to: d, by: 2).map { Foundation.pow(base, Float($0) / Float(d)) }
        var scale = 1 / Double(c.qkHeadDim).squareRoot()
        if p.kind == "yarn", let factor = p.factor, let originalMax = p.originalMaxPositionEmbeddings {
            func mscale(_ s: Double, _ m: Double) -> Double { s <= 1 ? 1 : 0.1 * m * Foundation.log(s) + 1 }
            if let af = p.attentionFactor {
                attentionFactor = Float(af)
            } else if let m = p.mscale, let mAll = p.mscaleAllDim, m != 0, mAll != 0 {
                attentionFactor = Float(mscale(factor, m) / mscale(factor, mAll))
            } else {
                attentionFactor = Float(mscale(factor, 1))
            }
            let betaFast = p.betaFast ?? 32, betaSlow = p.betaSlow ?? 1
            let thetaD = Double(p.ropeTheta ?? 10000)
            func correctionDim(_ rotations: Double) -> Double {
                Double(d) * Foundation.log(Double(originalMax) / (rotations * 2 * Double.pi)) / (2 * Foundation.log(thetaD))
            }
            var low = correctionDim(betaFast), high = correctionDim(betaSlow)
            if p.truncate ?? true { low = low.rounded(.down); high = high.rounded(.up) }
            low = max(low, 0); high = min(high, Double(d - 1))
            if low == high { high += 0.001 }
            inverseFrequencies = posFreqs.enumerated().map { i, pf in
                let ramp = min(max((Float(i) - Float(low)) / Float(high - low), 0), 1)
                let extrapolation = 1 - ramp
                let interp = 1 / (Float(factor) * pf), extra = 1 / pf
                return interp * (1 - extrapolation) + extra * extrapolation
            }
            if let mAll = p.mscaleAllDim, mAll != 0 {
                let m = mscale(factor, mAll)
                scale *= m * m
            }
        } else {
            attentionFactor = 1
            inverseFrequencies = posFreqs.map { 1 / $0 }
        }
        softmaxScale = Float(scale)
    }

    /// Writes cos and sin of every frequency at `position` (dims/2 each), times the attention factor.
    @inline(__always)
    public func angles(position: Int, cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
        let pos = Float(position)
        for i in 0..<inverseFrequencies.count {
            let theta = pos * inverseFrequencies[i]
            cos[i] = Foundation.cos(theta) * attentionFactor
            sin[i] = Foundation.sin(theta) * attentionFactor
        }
    }

    /// Rotates one rope vector (length `dims`) in place with precomputed angles.
    @inline(__always)
    public func rotate(_ x: UnsafeMutablePointer<Float>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        Kernels.rope(x, cos: cos, sin: sin, half: dims / 2, layout: layout)
    }
}
