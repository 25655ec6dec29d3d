import Tensor

/// The order in which MLA multiplies its low-rank factors.
public enum AttentionOrder: String, Sendable, CaseIterable, Codable {
    /// Decompress K and V for every head from the latent, then attend (compute-efficient for prefill).
    case naive
    /// Fold W_UK into the query and W_UV into the output: attention runs over the latent itself,
    /// like MQA with one shared (r + dr)-wide key, so the cache is read once for all heads.
    case absorbed
    /// The paper's advice: naive for prefill (T > 1), absorbed for decode (T = 1).
    case auto

    public func resolved(tokens: Int) -> AttentionOrder {
        self == .auto ? (tokens > 1 ? .naive : .absorbed) : self
    }
}

/// Multi-head Latent Attention for one decoder layer.
///
///   c_t   = RMSNorm(W_DKV x_t)                  latent, r = kv_lora_rank floats (cached)
///   k_pe  = RoPE(W_KR x_t)                      shared rope key, dr floats (cached)
///   q     = W_UQ RMSNorm(W_DQ x_t)  (or W_Q x_t) per head: [q_nope (dn) | q_pe (dr), rotated]
///   naive:    k_h = [W_UK,h c_t | k_pe],  v_h = W_UV,h c_t,  o_h = softmax(q_h·k_h ·s) v_h
///   absorbed: q̃_h = W_UK,hᵀ q_nope,h;  score = q̃_h·c_t + q_pe,h·k_pe;  o_h = W_UV,h (Σ p_t c_t)
/// Both orders compute the same function; they differ in FLOPs and in bytes moved.
struct MLA {
    let config: ModelConfig
    let weights: AttentionWeights
    let layer: Int

    /// q_a_layernorm and kv_a_layernorm use RMSNorm's default eps, not rms_norm_eps: transformers
    /// and DeepSeek's reference both construct them without the config value.
    static let latentNormEps: Float = 1e-6

    /// Caps the score buffer at ~4M floats by processing query rows in blocks.
    static let scoreBudget = 1 << 22

    /// out[T, hidden] = o_proj(attention(xn)) for T new tokens at positions start..<start+T,
    /// appending their latents to `cache` first (each token attends to itself).
    func forward(_ xn: UnsafePointer<Float>, tokens T: Int, start p0: Int, cache: LatentCache,
                 order: AttentionOrder, rope: RotaryEmbedding, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
                 workspace ws: Workspace, recorder rec: OpRecorder?, out: UnsafeMutablePointer<Float>) {
        let c = config, l = layer
        let H = c.numAttentionHeads, dn = c.qkNopeHeadDim, dr = c.qkRopeHeadDim, dv = c.vHeadDim
        let r = c.kvLoraRank, dqk = dn + dr, half = dr / 2
        let S = p0 + T
        let d = c.hiddenSize

        // Query: low-rank (q_a -> norm -> q_b) or direct q_proj.          q: (T, H·(dn+dr))
        let q = ws.pointer(.q, T * H * dqk)
        if let qA = weights.qA, let qANorm = weights.qANorm, let qB = weights.qB {
            let qa = ws.pointer(.qA, T * qA.outFeatures)
            rec.op("q_a_proj", layer: l, kind: qA.kind(tokens: T), cost: qA.cost(tokens: T)) {
                qA.apply(xn, rows: T, into: qa)
            }
            rec.op("q_a_norm", layer: l, kind: .elementwise, cost: Cost.rmsNorm(rows: T, width: qA.outFeatures)) {
                for t in 0..<T {
                    let row = qa + t * qA.outFeatures
                    Kernels.rmsNorm(row, weight: qANorm.pointer, eps: Self.latentNormEps, count: qA.outFeatures, out: row)
                }
            }
            rec.op("q_b_proj", layer: l, kind: qB.kind(tokens: T), cost: qB.cost(tokens: T)) {
                qB.apply(qa, rows: T, into: q)
            }
        } else if let qProj = weights.q {
            rec.op("q_proj", layer: l, kind: qProj.kind(tokens: T), cost: qProj.cost(tokens: T)) {
                qProj.apply(xn, rows: T, into: q)
            }
        }

        // Compressed KV: [c (r) | k_pe (dr)] per token.                    kvA: (T, r + dr)
        let kvA = ws.pointer(.kvA, T * (r + dr))
        rec.op("kv_a_proj", layer: l, kind: weights.kvA.kind(tokens: T), cost: weights.kvA.cost(tokens: T)) {
            weights.kvA.apply(xn, rows: T, into: kvA)
        }
        // The latent cache stores the normed latent and the rotated shared key, nothing else.
        rec.op("kv_norm", layer: l, kind: .elementwise, cost: Cost.rmsNorm(rows: T, width: r)) {
            for t in 0..<T {
                let row = cache.row(layer: l, position: p0 + t)
                Kernels.rmsNorm(kvA + t * (r + dr), weight: weights.kvANorm.pointer, eps: Self.latentNormEps, count: r, out: row)
                (row + r).update(from: kvA + t * (r + dr) + r, count: dr)
            }
        }
        rec.op("rope", layer: l, kind: .elementwise, cost: Cost.rope(vectors: T * (H + 1), dims: dr)) {
            for t in 0..<T {
                let cs = cos + t * half, sn = sin + t * half
                rope.rotate(cache.row(layer: l, position: p0 + t) + r, cos: cs, sin: sn)
                for h in 0..<H { rope.rotate(q + (t * H + h) * dqk + dn, cos: cs, sin: sn) }
            }
        }
        let latent = cache.row(layer: l, position: 0)   // (S, r + dr) rows of this layer
        let attnOut = ws.pointer(.attnOut, T * H * dv)
        let scale = rope.softmaxScale

        switch order.resolved(tokens: T) {
        case .naive, .auto:
            // K_nope and V for every head and every cached position.   kv: (S, H·(dn+dv))
            let kvW = H * (dn + dv)
            let kv = ws.pointer(.keysValues, S * kvW)
            rec.op("kv_decompress", layer: l, kind: .gemm,
                   cost: Cost.kvDecompress(positions: S, heads: H, kvLoraRank: r, nope: dn, v: dv, weightBytes: weights.kvB.weightBytes)) {
                weights.kvB.apply(latent, rows: S, ldx: r + dr, into: kv)
            }
            let block = max(1, min(T, Self.scoreBudget / max(H * S, 1)))
            for t0 in stride(from: 0, to: T, by: block) {
                let tb = min(block, T - t0)
                let scores = ws.pointer(.scores, H * tb * S)   // (H, tb, S)
                rec.op("attn_score", layer: l, kind: .attention,
                       cost: Cost.naiveScore(heads: H, tokens: tb, positions: S, nope: dn, rope: dr)) {
                    for h in 0..<H {
                        let qh = q + t0 * H * dqk + h * dqk, sh = scores + h * tb * S
                        Kernels.gemm(m: tb, n: S, k: dn, a: qh, lda: H * dqk, b: kv + h * (dn + dv), ldb: kvW,
                                     transposeB: true, c: sh, ldc: S, alpha: scale)
                        Kernels.gemm(m: tb, n: S, k: dr, a: qh + dn, lda: H * dqk, b: latent + r, ldb: r + dr,
                                     transposeB: true, c: sh, ldc: S, alpha: scale, beta: 1)
                    }
                }
                rec.op("softmax", layer: l, kind: .elementwise, cost: Cost.softmax(heads: H, tokens: tb, positions: S)) {
                    for h in 0..<H {
                        for t in 0..<tb { Kernels.softmax(scores + (h * tb + t) * S, count: S, valid: p0 + t0 + t + 1) }
                    }
                }
                rec.op("attn_context", layer: l, kind: .attention, cost: Cost.naiveContext(heads: H, tokens: tb, positions: S, v: dv)) {
                    for h in 0..<H {
                        Kernels.gemm(m: tb, n: dv, k: S, a: scores + h * tb * S, lda: S, b: kv + h * (dn + dv) + dn, ldb: kvW,
                                     transposeB: false, c: attnOut + t0 * H * dv + h * dv, ldc: H * dv)
                    }
                }
            }

        case .absorbed:
            // q̃ = [W_UK,hᵀ q_nope,h | q_pe,h] per head, rows ordered (t, h).  qLat: (T·H, r + dr)
            let w = r + dr
            let qLat = ws.pointer(.qLatent, T * H * w)
            // W_UK,h and W_UV,h are row views of kv_b_proj in its stored format (no float32 copy).
            let kvB = weights.kvB.weight
            rec.op("q_absorb", layer: l, kind: .gemm,
                   cost: Cost.qAbsorb(heads: H, tokens: T, kvLoraRank: r, nope: dn, weightBytes: weights.kvB.weightBytes)) {
                // Decode: the H per-head products are independent, so they run as one parallel job.
                let batch = ws.matvecs
                batch.removeAll()
                for h in 0..<H {
                    // W_UK,h = rows [h(dn+dv), h(dn+dv)+dn) of kv_b_proj: (dn, r); q̃ = q_nope · W_UK,h
                    let wUK = kvB.rows(h * (dn + dv) ..< h * (dn + dv) + dn)
                    if T == 1 {
                        batch.appendTransposed(wUK, x: q + h * dqk, y: qLat + h * w)
                    } else {
                        wUK.applyTransposed(q + h * dqk, rows: T, ldx: H * dqk, into: qLat + h * w, ldy: H * w)
                    }
                    for t in 0..<T {
                        (qLat + (t * H + h) * w + r).update(from: q + (t * H + h) * dqk + dn, count: dr)
                    }
                }
                batch.run()
            }
            let block = max(1, min(T, Self.scoreBudget / max(H * S, 1)))
            for t0 in stride(from: 0, to: T, by: block) {
                let tb = min(block, T - t0)
                let scores = ws.pointer(.scores, tb * H * S)   // (tb, H, S)
                let ctx = ws.pointer(.context, T * H * r)      // (T, H, r)
                // One GEMM for all heads: the latent rows are the shared key (MQA over the latent).
                rec.op("attn_score", layer: l, kind: .attention,
                       cost: Cost.absorbedScore(heads: H, tokens: tb, positions: S, kvLoraRank: r, rope: dr)) {
                    Kernels.gemm(m: tb * H, n: S, k: w, a: qLat + t0 * H * w, lda: w, b: latent, ldb: w,
                                 transposeB: true, c: scores, ldc: S, alpha: scale)
                }
                rec.op("softmax", layer: l, kind: .elementwise, cost: Cost.softmax(heads: H, tokens: tb, positions: S)) {
                    for t in 0..<tb {
                        for h in 0..<H { Kernels.softmax(scores + (t * H + h) * S, count: S, valid: p0 + t0 + t + 1) }
                    }
                }
                // ...and the latent is the shared value: ctx = P · C.
                rec.op("attn_context", layer: l, kind: .attention,
                       cost: Cost.absorbedContext(heads: H, tokens: tb, positions: S, kvLoraRank: r)) {
                    Kernels.gemm(m: tb * H, n: r, k: S, a: scores, lda: S, b: latent, ldb: w,
                                 transposeB: false, c: ctx + t0 * H * r, ldc: r)
                }
            }
            let ctx = ws.pointer(.context, T * H * r)
            rec.op("v_absorb", layer: l, kind: .gemm,
                   cost: Cost.vAbsorb(heads: H, tokens: T, kvLoraRank: r, v: dv, weightBytes: weights.kvB.weightBytes)) {
                let batch = ws.matvecs
                batch.removeAll()
                for h in 0..<H {
                    // W_UV,h = rows [h(dn+dv)+dn, (h+1)(dn+dv)) of kv_b_proj: (dv, r); o_h = ctx_h · W_UV,hᵀ
                    let wUV = kvB.rows(h * (dn + dv) + dn ..< (h + 1) * (dn + dv))
                    if T == 1 {
                        batch.append(wUV, x: ctx + h * r, y: attnOut + h * dv)
                    } else {
                        wUV.apply(ctx + h * r, rows: T, ldx: H * r, into: attnOut + h * dv, ldy: H * dv)
                    }
                }
                batch.run()
            }
        }

        rec.op("o_proj", layer: l, kind: weights.o.kind(tokens: T), cost: weights.o.cost(tokens: T)) {
            weights.o.apply(attnOut, rows: T, into: out, ldo: d)
        }
    }
}
