/// The number format an analysis assumes: bytes per weight, activation and cache element, and
/// which peak FLOP/s of the accelerator applies.
public enum AnalysisDType: String, CaseIterable, Sendable, Codable {
    /// Everything float32: what TinySeek's executor runs today (weightBytes 4, act 4, cache 4).
    case fp32
    /// BF16 weights, activations and KV cache (2 bytes each): the paper's convention.
    case bf16
    /// FP8 (E4M3) matrix weights, 1 byte, computed at the FP8 peak; activations, norm weights and
    /// the KV cache stay BF16 (2 bytes), as in DeepSeek-V3's FP8 inference. Per-block scales
    /// (one float per 128x128 block, < 0.01% of the weights) are not counted.
    case fp8

    /// Bytes per matrix weight (also the embedding table and LM head).
    public var weightBytes: Double {
        switch self {
        case .fp32: return 4
        case .bf16: return 2
        case .fp8: return 1
        }
    }

    /// Bytes per activation element read or written between ops.
    public var activationBytes: Double { self == .fp32 ? 4 : 2 }

    /// Bytes per cached latent / key / value element.
    public var cacheBytes: Double { self == .fp32 ? 4 : 2 }

    /// Bytes per norm weight (norms are never quantised).
    public var normWeightBytes: Double { self == .fp32 ? 4 : 2 }

    /// One line for reports: "bf16 (weights, activations, KV cache: 2 bytes)".
    public var summary: String {
        switch self {
        case .fp32: return "fp32 (weights, activations, KV cache: 4 bytes)"
        case .bf16: return "bf16 (weights, activations, KV cache: 2 bytes)"
        case .fp8: return "fp8 (weights 1 byte at the FP8 peak; activations and KV cache bf16, 2 bytes)"
        }
    }
}
