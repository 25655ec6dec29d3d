/// Sizes a user wants before running a model: parameters (total and active per token) and the
/// KV cache per token, latent versus what caching decompressed per-head K and V would need.
public struct ModelReport: Sendable {
    public let moeLayers: Int
    public let totalParameters: Int
    /// Parameters touched by one token: everything except the routed experts it does not pick.
    public let activeParameters: Int
    /// Bytes of weights the engine holds: matrices in their stored format (read in place from
    /// the mapped checkpoint), norms, router and biases as float32.
    public let weightBytes: Int
    /// MLA's cache: layers · (kv_lora_rank + qk_rope_head_dim) · 4 bytes.
    public let latentBytesPerToken: Int
    /// Full per-head cache: layers · heads · (dn + dr + dv) · 4 bytes.
    public let fullKVBytesPerToken: Int

    public init(model: Model) {
        let c = model.config
        let w = model.weights
        var moe = 0, idle = 0
        for layer in w.layers {
            if case let .moe(m) = layer.mlp {
                moe += 1
                let perExpert = m.experts.first?.parameterCount ?? 0
                idle += (m.experts.count - min(c.expertsPerToken, m.experts.count)) * perExpert
            }
        }
        moeLayers = moe
        totalParameters = w.parameterCount
        activeParameters = w.parameterCount - idle
        weightBytes = Int(w.byteCount.rounded())
        latentBytesPerToken = c.numHiddenLayers * c.latentCacheWidth * 4
        fullKVBytesPerToken = c.numHiddenLayers * c.numAttentionHeads * (c.qkHeadDim + c.vHeadDim) * 4
    }
}
