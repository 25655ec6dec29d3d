import Tensor

/// MLA's KV cache: per layer and position, only the normed latent c (kv_lora_rank floats) and the
/// rotated shared rope key k_pe (qk_rope_head_dim floats) — nothing per head.
///
/// Rows are laid out [c | k_pe] so the absorbed score q̃·c + q_pe·k_pe is one dot product of
/// length r + dr against a contiguous row.
public final class LatentCache: @unchecked Sendable {
    public let layers: Int
    public let capacity: Int
    public let kvLoraRank: Int
    public let ropeDims: Int
    /// Positions filled so far (the same for every layer after a forward pass completes).
    public internal(set) var count: Int = 0
    let storage: Tensor   // (layers, capacity, kvLoraRank + ropeDims)

    public init(config: ModelConfig, capacity: Int) {
        layers = config.numHiddenLayers
        self.capacity = capacity
        kvLoraRank = config.kvLoraRank
        ropeDims = config.qkRopeHeadDim
        storage = Tensor(zeros: [layers, capacity, config.latentCacheWidth])
    }

    /// Floats per token per layer: kv_lora_rank + qk_rope_head_dim.
    public var width: Int { kvLoraRank + ropeDims }
    public var bytesPerToken: Int { layers * width * 4 }

    /// Row `position` of `layer`: [c (r) | k_pe (dr)].
    @inline(__always)
    public func row(layer: Int, position: Int) -> UnsafeMutablePointer<Float> {
        storage.pointer + (layer * capacity + position) * width
    }

    /// The cached rows of `layer` from position 0, as a view (positions, r + dr).
    public func rows(layer: Int, count n: Int) -> Tensor {
        storage.row(layer).rows(0..<n)
    }

    /// Forgets everything (positions are overwritten on the next prefill).
    public func reset() { count = 0 }

    /// Drops positions from `n` on, e.g. to re-run a prompt suffix.
    public func truncate(to n: Int) { count = min(count, max(n, 0)) }
}
