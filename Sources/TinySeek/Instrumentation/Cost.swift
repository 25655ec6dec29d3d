/// The cost model: FLOP and byte formulas for every operator TinySeek runs.
///
/// The executor records these at each call site with the shapes it actually ran, and the
/// analytic model evaluates the same functions for real-scale configs without running anything:
/// one cost model, not two. Conventions: 2 FLOPs per multiply-add; activations and the KV cache
/// are float32 (4 bytes) on this engine unless `act` says otherwise; weights are read at
/// `weightBytes` per element (4 for F32, 2 for BF16/F16, ~1.06 for Q8_0).
///
/// Symbols: T new tokens, S attended positions (cache length after this step), H heads,
/// r = kv_lora_rank, dn/dr/dv = qk_nope/qk_rope/v head dims, d = hidden size.
public enum Cost {
    /// y[T, n] = x[T, k] · W[n, k]ᵀ (+ b): 2·T·k·n FLOPs, reads W once and x, writes y.
    public static func linear(tokens t: Int, inFeatures k: Int, outFeatures n: Int,
                              weightBytes wb: Double, act: Double = 4) -> OpCost {
        OpCost(flops: 2 * Double(t) * Double(k) * Double(n),
               weightBytes: Double(k) * Double(n) * wb,
               activationBytes: Double(t) * Double(k) * act,
               bytesWritten: Double(t) * Double(n) * act)
    }

    /// RMSNorm over `rows` rows of `width`: square, sum, scale, weight: ~4 FLOPs per element.
    /// The norm weight is read at `weightBytes` per element (float32 on this engine).
    public static func rmsNorm(rows: Int, width: Int, act: Double = 4, weightBytes wb: Double = 4) -> OpCost {
        let e = Double(rows) * Double(width)
        return OpCost(flops: 4 * e, weightBytes: Double(width) * wb, activationBytes: e * act, bytesWritten: e * act)
    }

    /// Elementwise op over `elements` reading `inputs` operands: 1 FLOP per element per op.
    public static func elementwise(elements: Int, inputs: Int = 2, flopsPerElement: Double = 1, act: Double = 4) -> OpCost {
        let e = Double(elements)
        return OpCost(flops: flopsPerElement * e, activationBytes: Double(inputs) * e * act, bytesWritten: e * act)
    }

    /// Rotary embedding of `vectors` vectors of `dims` (pairs rotated: 4 mul + 2 add per pair).
    public static func rope(vectors: Int, dims: Int, act: Double = 4) -> OpCost {
        let e = Double(vectors) * Double(dims)
        return OpCost(flops: 3 * e, activationBytes: e * act + e * act, bytesWritten: e * act)
    }

    /// Gathering T rows of the embedding table: pure data movement.
    public static func embedding(tokens t: Int, hidden d: Int, weightBytes wb: Double, act: Double = 4) -> OpCost {
        OpCost(weightBytes: Double(t) * Double(d) * wb, bytesWritten: Double(t) * Double(d) * act)
    }

    /// Numerically stable softmax over H·T rows of S scores: max, exp, sum, divide ≈ 5 FLOPs each.
    public static func softmax(heads h: Int, tokens t: Int, positions s: Int, act: Double = 4) -> OpCost {
        let e = Double(h) * Double(t) * Double(s)
        return OpCost(flops: 5 * e, activationBytes: e * act, bytesWritten: e * act)
    }

    // MARK: MLA, naive order (decompress K and V per head from the latent, then attend)

    /// K,V[S, H·(dn+dv)] = C[S, r] · W_UKVᵀ: the whole latent cache is read and expanded.
    public static func kvDecompress(positions s: Int, heads h: Int, kvLoraRank r: Int, nope dn: Int, v dv: Int,
                                    weightBytes wb: Double, act: Double = 4, cache: Double = 4) -> OpCost {
        let n = Double(h * (dn + dv))
        return OpCost(flops: 2 * Double(s) * Double(r) * n, weightBytes: Double(r) * n * wb,
                      cacheBytes: Double(s) * Double(r) * cache, bytesWritten: Double(s) * n * act)
    }

    /// scores[H, T, S] = Q·Kᵀ per head over full keys (dn + dr): K is an activation, read per head.
    public static func naiveScore(heads h: Int, tokens t: Int, positions s: Int, nope dn: Int, rope dr: Int,
                                  act: Double = 4, cache: Double = 4) -> OpCost {
        let (H, T, S, dk) = (Double(h), Double(t), Double(s), Double(dn + dr))
        return OpCost(flops: 2 * H * T * S * dk,
                      activationBytes: H * T * dk * act + H * S * Double(dn) * act,
                      cacheBytes: S * Double(dr) * cache,
                      bytesWritten: H * T * S * act)
    }

    /// out[T, H, dv] = P · V per head.
    public static func naiveContext(heads h: Int, tokens t: Int, positions s: Int, v dv: Int, act: Double = 4) -> OpCost {
        let (H, T, S, V) = (Double(h), Double(t), Double(s), Double(dv))
        return OpCost(flops: 2 * H * T * S * V, activationBytes: H * T * S * act + H * S * V * act,
                      bytesWritten: H * T * V * act)
    }

    // MARK: MLA, absorbed order (MQA over the latent)

    /// q̃[T, H, r] = q_nope · W_UK per head: W_UK folded into the query.
    public static func qAbsorb(heads h: Int, tokens t: Int, kvLoraRank r: Int, nope dn: Int,
                               weightBytes wb: Double, act: Double = 4) -> OpCost {
        let (H, T, R, N) = (Double(h), Double(t), Double(r), Double(dn))
        return OpCost(flops: 2 * H * T * N * R, weightBytes: H * N * R * wb, activationBytes: H * T * N * act,
                      bytesWritten: H * T * R * act)
    }

    /// scores[H, T, S] = q̃·c_s + q_pe·k_pe_s: every head reads the same latent row, so the cache
    /// is streamed once for all H heads — the reason absorbed decode is ~H times more intense.
    public static func absorbedScore(heads h: Int, tokens t: Int, positions s: Int, kvLoraRank r: Int, rope dr: Int,
                                     act: Double = 4, cache: Double = 4) -> OpCost {
        let (H, T, S, W) = (Double(h), Double(t), Double(s), Double(r + dr))
        return OpCost(flops: 2 * H * T * S * W, activationBytes: H * T * W * act, cacheBytes: S * W * cache,
                      bytesWritten: H * T * S * act)
    }

    /// ctx[T, H, r] = P · C: the latent again serves as the value for every head.
    public static func absorbedContext(heads h: Int, tokens t: Int, positions s: Int, kvLoraRank r: Int,
                                       act: Double = 4, cache: Double = 4) -> OpCost {
        let (H, T, S, R) = (Double(h), Double(t), Double(s), Double(r))
        return OpCost(flops: 2 * H * T * S * R, activationBytes: H * T * S * act, cacheBytes: S * R * cache,
                      bytesWritten: H * T * R * act)
    }

    /// out[T, H, dv] = ctx · W_UVᵀ per head: W_UV applied after attention.
    public static func vAbsorb(heads h: Int, tokens t: Int, kvLoraRank r: Int, v dv: Int,
                               weightBytes wb: Double, act: Double = 4) -> OpCost {
        let (H, T, R, V) = (Double(h), Double(t), Double(r), Double(dv))
        return OpCost(flops: 2 * H * T * R * V, weightBytes: H * V * R * wb, activationBytes: H * T * R * act,
                      bytesWritten: H * T * V * act)
    }

    // MARK: MoE

    /// Sigmoid/softmax scoring, group scores and top-k over T×E router logits (~8 FLOPs per logit).
    public static func routeSelect(tokens t: Int, experts e: Int, act: Double = 4) -> OpCost {
        let x = Double(t) * Double(e)
        return OpCost(flops: 8 * x, activationBytes: x * act, bytesWritten: x * act)
    }

    /// Adding k weighted expert outputs into each token's hidden state (an axpy per slot).
    public static func expertCombine(slots: Int, hidden d: Int, act: Double = 4) -> OpCost {
        let e = Double(slots) * Double(d)
        return OpCost(flops: 2 * e, activationBytes: 2 * e * act, bytesWritten: e * act)
    }
}
