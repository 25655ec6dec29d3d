/// Cost formulas for the attention TinySeek compares MLA against: multi-head (MHA), grouped-query
/// (GQA) and multi-query (MQA) attention over a per-head KV cache.
///
/// The executor does not run these (its models are MLA); the analytic model evaluates them for
/// Llama, Qwen, Llama-4 and GPT-3 configs and for `tinyseek analyze --compare`, with the same
/// conventions as `Cost`: 2 FLOPs per multiply-add, bytes at the dtype read or written, the score
/// matrix written once and read back by the context product.
///
/// Symbols: T new tokens, S attended positions, H query heads, G = n_kv key/value heads
/// (MHA: G = H, MQA: G = 1), hd head dim, d hidden size. A group of H/G query heads shares one
/// K and one V row per position.
///
/// Why GQA decode is memory-bound (Yun et al., arXiv 2507.15465, attention analysis): one decode
/// query (T = 1) does 2·H·S·hd FLOPs in the score and reads G·S·hd cached keys, so
///   ArI(score) = 2·H·S·hd / (2·G·S·hd + 2·H·S) = g / (1 + g/hd),   g = H/G (BF16),
/// ~1 for MHA (g = 1) and ~ the group size for GQA; the context product is the same with V.
/// MLA's absorbed order is the limit g = H over an (r + dr)-wide shared "head" (see `absorbedScore`).
extension Cost {
    // MARK: Projections

    /// q[T, H·hd] = x[T, d] · W_Qᵀ: one query row per head.
    public static func queryProjection(tokens t: Int, hidden d: Int, heads h: Int, headDim hd: Int,
                                       weightBytes wb: Double, act: Double = 4) -> OpCost {
        linear(tokens: t, inFeatures: d, outFeatures: h * hd, weightBytes: wb, act: act)
    }

    /// k (or v)[T, G·hd] = x[T, d] · W_Kᵀ: the rows this step appends to the KV cache, so the
    /// output is written at the cache's bytes per element.
    public static func keyValueProjection(tokens t: Int, hidden d: Int, kvHeads g: Int, headDim hd: Int,
                                          weightBytes wb: Double, act: Double = 4, cache: Double = 4) -> OpCost {
        var c = linear(tokens: t, inFeatures: d, outFeatures: g * hd, weightBytes: wb, act: act)
        c.bytesWritten = Double(t) * Double(g * hd) * cache
        return c
    }

    // MARK: Attention over a per-head KV cache

    /// scores[H, T, S] = Q·Kᵀ per head. The G cached key heads are each streamed once for the
    /// H/G query heads of their group — the whole of GQA's advantage over MHA at decode.
    public static func gqaScore(heads h: Int, kvHeads g: Int, tokens t: Int, positions s: Int, headDim hd: Int,
                                    act: Double = 4, cache: Double = 4) -> OpCost {
        let (H, G, T, S, D) = (Double(h), Double(g), Double(t), Double(s), Double(hd))
        return OpCost(flops: 2 * H * T * S * D,
                      activationBytes: H * T * D * act,
                      cacheBytes: G * S * D * cache,
                      bytesWritten: H * T * S * act)
    }

    /// out[T, H, hd] = P · V per head; each cached value head is streamed once for its group.
    public static func gqaContext(heads h: Int, kvHeads g: Int, tokens t: Int, positions s: Int, headDim hd: Int,
                                      act: Double = 4, cache: Double = 4) -> OpCost {
        let (H, G, T, S, D) = (Double(h), Double(g), Double(t), Double(s), Double(hd))
        return OpCost(flops: 2 * H * T * S * D,
                      activationBytes: H * T * S * act,
                      cacheBytes: G * S * D * cache,
                      bytesWritten: H * T * D * act)
    }
}
