import Foundation
import Tensor

/// How the next token is chosen from the logits.
public struct SamplingParameters: Sendable, Equatable, Codable {
    /// 0 means greedy (argmax); otherwise logits are divided by it before the softmax.
    public var temperature: Float
    /// Keep only the k most likely tokens (nil or 0: all).
    public var topK: Int?
    /// Keep the smallest set of tokens whose probability reaches p (nil or 1: all).
    public var topP: Float?
    /// Seeds the random generator: the same seed gives the same tokens.
    public var seed: UInt64

    public init(temperature: Float = 0, topK: Int? = nil, topP: Float? = nil, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
    }

    public static let greedy = SamplingParameters()

    public func validate() throws(ModelError) {
        guard temperature >= 0, temperature.isFinite else {
            throw .invalidArgument(name: "temperature", reason: "must be a finite number >= 0, got \(temperature)")
        }
        if let k = topK, k < 0 { throw .invalidArgument(name: "top-k", reason: "must be >= 0, got \(k)") }
        if let p = topP, !(p > 0 && p <= 1) { throw .invalidArgument(name: "top-p", reason: "must be in (0, 1], got \(p)") }
    }
}

/// xoshiro256** seeded through SplitMix64: small, fast, and the same sequence on every platform.
public struct Xoshiro256: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 24 bits, exactly representable as Float.
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * (1 / 16_777_216) }
}

/// Picks tokens from logits: greedy, or temperature → top-k → top-p → draw (HF's warper order).
/// Reuses its candidate buffer, so sampling does not allocate per token.
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var rng: Xoshiro256
    private var candidates: [(index: Int, p: Float)] = []

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        self.rng = Xoshiro256(seed: parameters.seed)
    }

    public mutating func sample(_ logits: UnsafeBufferPointer<Float>) -> Int {
        let p = parameters
        guard p.temperature > 0 else { return Kernels.argmax(logits) ?? 0 }
        let invT = 1 / p.temperature
        candidates.removeAll(keepingCapacity: true)
        for (i, v) in logits.enumerated() { candidates.append((i, v * invT)) }
        // Sort descending (stable on ties by index) so top-k and top-p are prefixes.
        candidates.sort { $0.p > $1.p || ($0.p == $1.p && $0.index < $1.index) }
        if let k = p.topK, k > 0, k < candidates.count { candidates.removeLast(candidates.count - k) }
        let mx = candidates[0].p
        var sum: Float = 0
        for i in candidates.indices { candidates[i].p = Foundation.exp(candidates[i].p - mx); sum += candidates[i].p }
        for i in candidates.indices { candidates[i].p /= sum }
        if let topP = p.topP, topP < 1 {
            var cumulative: Float = 0
            var keep = candidates.count
            for i in candidates.indices {
                cumulative += candidates[i].p
                if cumulative >= topP { keep = i + 1; break }
            }
            candidates.removeLast(candidates.count - keep)
            let kept = candidates.reduce(Float(0)) { $0 + $1.p }
            for i in candidates.indices { candidates[i].p /= kept }
        }
        let u = rng.nextUnitFloat()
        var acc: Float = 0
        for c in candidates {
            acc += c.p
            if u < acc { return c.index }
        }
        return candidates[candidates.count - 1].index
    }
}
