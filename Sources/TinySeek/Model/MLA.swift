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

/// Rows of a batch that belong to one sequence: `count` new tokens at positions
/// `start..<start+count` of `cache`, stored at rows `row..<row+count` of the batch.
public struct SequenceSlice: Sendable {
    public var row: Int
    public var count: Int
    public var start: Int
    public var cache: LatentCache

    public init(row: Int, count: Int, start: Int, cache: LatentCache) {
        self.row = row
        self.count = count
        self.start = start
        self.cache = cache
    }

    /// Positions attended after this step (the cache length).
    public var end: Int { start + count }
}

/// Multi-head Latent Attention for one decoder layer.
///
///   c_t   = RMSNorm(W_DKV x_t)                  latent, r = kv_lora_rank floats (cached)
///   k_pe  = RoPE(W_KR x_t)                      shared rope key, dr floats (cached)
///   q     = W_UQ RMSNorm(W_DQ x_t)  (or W_Q x_t) per head: [q_nope (dn) | q_pe (dr), rotated]
///   naive:    k_h = [W_UK,h c_t | k_pe],  v_h = W_UV,h c_t,  o_h = softmax(q_h·k_h ·s) v_h
///   absorbed: q̃_h = W_UK,hᵀ q_nope,h;  score = q̃_h·c_t + q_pe,h·k_pe;  o_h = W_UV,h (Σ p_t c_t)
/// Both orders compute the same function; they differ in FLOPs and in bytes moved.
///
/// A batch may hold several sequences at different positions: the projections run once over all
/// N rows (one GEMM each), attention runs per sequence over its own latent cache.
struct MLA {
    let config: ModelConfig
    let weights: AttentionWeights
    let layer: Int

    /// q_a_layernorm and kv_a_layernorm use RMSNorm's default eps, not rms_norm_eps: transformers
    /// and DeepSeek's reference both construct them without the config value.
    static let latentNormEps: Float = 1e-6

    /// Caps the score buffer at ~4M floats by processing query rows in blocks.
    static let scoreBudget = 1 << 22

    /// out[N, hidden] = o_proj(attention(xn)) for the N rows of `sequences`, appending each row's
    /// latent to its sequence's cache first (each token attends to itself). `cos`/`sin` hold the
    /// rotary angles of every row's position, (N, dr/2).
    func forward(_ xn: UnsafePointer<Float>, rows N: Int, sequences: [SequenceSlice], absorbedRuns: [Range<Int>], order: AttentionOrder,
                 rope: RotaryEmbedding, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
                 workspace ws: Workspace, recorder rec: OpRecorder?, out: UnsafeMutablePointer<Float>,
                 then next: UpcomingJob? = nil) {
        let c = config, l = layer
        let H = c.numAttentionHeads, dn = c.qkNopeHeadDim, dr = c.qkRopeHeadDim, dv = c.vHeadDim
        let r = c.kvLoraRank, dqk = dn + dr, half = dr / 2
        let d = c.hiddenSize

        // Query: low-rank (q_a -> norm -> q_b) or direct q_proj.          q: (N, H·(dn+dr))
        let q = ws.pointer(.q, N * H * dqk)
        // Compressed KV: [c (r) | k_pe (dr)] per token.                    kvA: (N, r + dr)
        let kvA = ws.pointer(.kvA, N * (r + dr))
        // One row with a low-rank query: q_a_proj and kv_a_proj run as one job (below).
        let fusedQKV = N == 1 && weights.qA != nil
        // ...and if its attention is `LatentAttention.attend` (absorbed, a short cache), the new
        // latent-cache row is written inside q_b's job (a task for one lane while the others stream
        // q_b) and the query's RoPE inside attention's job: between q_a's job and W_UK's only q_a's
        // norm runs on the caller.
        let rowInJob = fusedQKV && sequences.count == 1 && order.resolved(tokens: 1) == .absorbed
            && sequences[0].end <= LatentAttention.headSplitPositions
        // With one row, each job names the one after it (`UpcomingJob`): lanes waiting for its
        // last pieces, or for the caller's work between the two, pull their first bytes of it.
        if let qA = weights.qA, let qANorm = weights.qANorm, let qB = weights.qB {
            let qa = ws.pointer(.qA, N * qA.outFeatures)
            // q_b's job with the new latent row as its task (see below), built before q_a's job names it.
            let queryUp = rowInJob ? ws.prebuilt(.queryUp(layer: l), buffers: .init(qa, q)) { batch in
                batch.append(qB, x: qa, y: q)
                batch.appendTask(LatentRowWrite.task, context: ws.taskContext(LatentRowWrite.self))
            } : nil
            if fusedQKV {
                // One row: q_a_proj and kv_a_proj read the same xn, so one parallel job streams both.
                let kv = weights.kvA
                rec.fused(layer: l, parts: { [OpPart("q_a_proj", kind: .gemv, cost: qA.cost(tokens: 1)),
                                              OpPart("kv_a_proj", kind: .gemv, cost: kv.cost(tokens: 1))] }) {
                    inputJob(xn, workspace: ws)?.run(then: queryUp.map { .batch($0) } ?? .matvec(qB.weight.view))
                }
            } else {
                rec.op("q_a_proj", layer: l, kind: qA.kind(tokens: N), cost: qA.cost(tokens: N)) {
                    qA.apply(xn, rows: N, into: qa)
                }
            }
            rec.op("q_a_norm", layer: l, kind: .elementwise, cost: Cost.rmsNorm(rows: N, width: qA.outFeatures)) {
                for t in 0..<N {
                    let row = qa + t * qA.outFeatures
                    Kernels.rmsNorm(row, weight: qANorm.pointer, eps: Self.latentNormEps, count: qA.outFeatures, out: row)
                }
            }
            if let job = queryUp {   // rowInJob
                let seq = sequences[0]
                rec.fused(layer: l, parts: { [OpPart("q_b_proj", kind: .gemv, cost: qB.cost(tokens: 1)),
                                              OpPart("kv_norm", kind: .elementwise, cost: Cost.rmsNorm(rows: 1, width: r))] }) {
                    ws.taskContext(LatentRowWrite.self)
                        .initialize(to: LatentRowWrite(source: kvA, row: seq.cache.row(layer: l, position: seq.start),
                                                       norm: weights.kvANorm.pointer, rank: r, ropeDims: dr, cos: cos, sin: sin,
                                                       layout: rope.layout))
                    // Every lane asks for the rows attention reads next, which the step's weight
                    // stream has pushed out of the caches.
                    job.warmUp = (UnsafeRawPointer(seq.cache.row(layer: l, position: 0)),
                                  min(seq.end * (r + dr) * 4, LatentAttention.cachePrefetchBytes))
                    // Attention's job (rowInJob: `LatentAttention.attend` with W_UK) starts with its
                    // heads' rows of W_UK.
                    let wUK = weights.wUK.matrix.view
                    job.run(then: .attention(heads: H, positions: seq.end, rank: r, ropeDims: dr, weights: wUK,
                                             weightRowsPerHead: wUK.rows / H))
                }
            } else {
                rec.op("q_b_proj", layer: l, kind: qB.kind(tokens: N), cost: qB.cost(tokens: N)) {
                    qB.apply(qa, rows: N, into: q)
                }
            }
        } else if let qProj = weights.q {
            rec.op("q_proj", layer: l, kind: qProj.kind(tokens: N), cost: qProj.cost(tokens: N)) {
                qProj.apply(xn, rows: N, into: q)
            }
        }

        if !fusedQKV {
            rec.op("kv_a_proj", layer: l, kind: weights.kvA.kind(tokens: N), cost: weights.kvA.cost(tokens: N)) {
                weights.kvA.apply(xn, rows: N, into: kvA)
            }
        }
        // The latent cache stores the normed latent and the rotated shared key, nothing else.
        if !rowInJob {
            rec.op("kv_norm", layer: l, kind: .elementwise, cost: Cost.rmsNorm(rows: N, width: r)) {
                for s in sequences {
                    for t in 0..<s.count {
                        let row = s.cache.row(layer: l, position: s.start + t), src = kvA + (s.row + t) * (r + dr)
                        Kernels.rmsNorm(src, weight: weights.kvANorm.pointer, eps: Self.latentNormEps, count: r, out: row)
                        (row + r).update(from: src + r, count: dr)
                    }
                }
            }
            rec.op("rope", layer: l, kind: .elementwise, cost: Cost.rope(vectors: N * (H + 1), dims: dr)) {
                for s in sequences {
                    for t in 0..<s.count {
                        let i = s.row + t
                        let cs = cos + i * half, sn = sin + i * half
                        rope.rotate(s.cache.row(layer: l, position: s.start + t) + r, cos: cs, sin: sn)
                        for h in 0..<H { rope.rotate(q + (i * H + h) * dqk + dn, cos: cs, sin: sn) }
                    }
                }
            }
        }

        let attnOut = ws.pointer(.attnOut, N * H * dv)
        // Absorbed sequences share q_absorb and v_absorb: they are per-row weight products, so each
        // contiguous run of absorbed rows (all N rows in a decode batch) reads W_UK and W_UV once.
        let qLat = ws.pointer(.qLatent, N * H * r)      // (N·H, r), rows (t, h)
        let ctx = ws.pointer(.context, N * H * r)        // (N, H, r)
        // The latent rows each absorbed sequence attends over were pushed out of the caches by the
        // weights streamed since this layer last ran; ask for them now, so that attention reads
        // them from L2 instead of waiting on memory, while q_absorb streams W_UK.
        var prefetchBudget = rowInJob ? 0 : LatentAttention.cachePrefetchBytes   // (q_b's job warmed them)
        for s in sequences where prefetchBudget > 0 && order.resolved(tokens: s.count) == .absorbed {
            let bytes = min(s.end * (r + dr) * 4, prefetchBudget)
            Kernels.prefetch(s.cache.row(layer: l, position: 0), bytes: bytes)
            prefetchBudget -= bytes
        }
        // With the row in q_b's job, attention's job forms q̃ too: from W_UK,hᵀ (copied at load),
        // or for Q8_0 from W_UK,h read as a transposed product.
        let absorb = rowInJob ? weights.wUK : nil
        if absorb == nil {
            for run in absorbedRuns { absorbQuery(rows: run, q: q, into: qLat, workspace: ws, recorder: rec) }
        }
        for s in sequences {
            switch order.resolved(tokens: s.count) {
            case .naive, .auto:
                naive(s, q: q, attnOut: attnOut, scale: rope.softmaxScale, workspace: ws, recorder: rec)
            case .absorbed:
                absorbedAttention(s, q: q, qLatent: qLat, context: ctx, scale: rope.softmaxScale,
                                  rotate: rowInJob ? LatentAttention.QueryRotation(cos: cos, sin: sin, layout: rope.layout) : nil,
                                  absorb: absorb, project: rowInJob ? attnOut : nil, workspace: ws, recorder: rec)
            }
        }
        // (With the row in q_b's job, attention's job applies W_UV too: see absorbedAttention.)
        if !rowInJob {
            for run in absorbedRuns { absorbValue(rows: run, context: ctx, into: attnOut, workspace: ws, recorder: rec) }
        }

        rec.op("o_proj", layer: l, kind: weights.o.kind(tokens: N), cost: weights.o.cost(tokens: N)) {
            weights.o.apply(attnOut, rows: N, into: out, ldo: d, then: next)
        }
    }

    /// One row's first job: q_a_proj and kv_a_proj, which read the same normed row, as one job
    /// (nil without q_a_proj). The same every token (see `Workspace.prebuilt`), so once built the
    /// job before this layer can name it (`Workspace.builtJob`, `UpcomingJob`).
    func inputJob(_ xn: UnsafePointer<Float>, workspace ws: Workspace) -> MatvecBatch? {
        guard let qA = weights.qA else { return nil }
        let qa = ws.pointer(.qA, qA.outFeatures), kvA = ws.pointer(.kvA, config.kvLoraRank + config.qkRopeHeadDim)
        return ws.prebuilt(.attentionInput(layer: layer), buffers: .init(xn, qa, kvA)) { batch in
            batch.append(qA, x: xn, y: qa)
            batch.append(weights.kvA, x: xn, y: kvA)
        }
    }

    /// Naive order for one sequence: decompress K_nope and V of every cached position for every
    /// head, then attend like MHA.
    private func naive(_ s: SequenceSlice, q qAll: UnsafeMutablePointer<Float>, attnOut outAll: UnsafeMutablePointer<Float>,
                       scale: Float, workspace ws: Workspace, recorder rec: OpRecorder?) {
        let c = config, l = layer
        let H = c.numAttentionHeads, dn = c.qkNopeHeadDim, dr = c.qkRopeHeadDim, dv = c.vHeadDim
        let r = c.kvLoraRank, dqk = dn + dr
        let T = s.count, S = s.end, p0 = s.start
        let latent = s.cache.row(layer: l, position: 0)   // (S, r + dr) rows of this layer
        let q = qAll + s.row * H * dqk, attnOut = outAll + s.row * H * dv

        let kvW = H * (dn + dv)
        let kv = ws.pointer(.keysValues, S * kvW)              // (S, H·(dn+dv))
        rec.op("kv_decompress", layer: l, kind: .gemm,
               cost: Cost.kvDecompress(positions: S, heads: H, kvLoraRank: r, nope: dn, v: dv, weightBytes: weights.kvB.weightBytes)) {
            weights.kvB.apply(latent, rows: S, ldx: r + dr, into: kv)
        }
        let block = max(1, min(T, Self.scoreBudget / max(H * S, 1)))
        for t0 in stride(from: 0, to: T, by: block) {
            let tb = min(block, T - t0)
            let scores = ws.pointer(.scores, H * tb * S)       // (H, tb, S)
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
    }

    /// Maximal runs of consecutive batch rows of the `sequences` (in row order) that take the
    /// absorbed order, written into `out` (cleared first, capacity kept).
    static func absorbedRuns(of sequences: [SequenceSlice], order: AttentionOrder, into out: inout [Range<Int>]) {
        out.removeAll(keepingCapacity: true)
        for s in sequences where order.resolved(tokens: s.count) == .absorbed {
            if let last = out.last, last.upperBound == s.row {
                out[out.count - 1] = last.lowerBound..<(s.row + s.count)
            } else {
                out.append(s.row..<(s.row + s.count))
            }
        }
    }

    /// q̃_h = W_UK,hᵀ q_nope,h for every head of `rows`: W_UK folded into the query.
    private func absorbQuery(rows: Range<Int>, q: UnsafeMutablePointer<Float>, into qLat: UnsafeMutablePointer<Float>,
                             workspace ws: Workspace, recorder rec: OpRecorder?) {
        let c = config, l = layer
        let H = c.numAttentionHeads, dn = c.qkNopeHeadDim, dr = c.qkRopeHeadDim
        let r = c.kvLoraRank, dqk = dn + dr, T = rows.count
        let qRows = q + rows.lowerBound * H * dqk, out = qLat + rows.lowerBound * H * r
        rec.op("q_absorb", layer: l, kind: T == 1 ? .gemv : .gemm,
               cost: Cost.qAbsorb(heads: H, tokens: T, kvLoraRank: r, nope: dn, weightBytes: weights.kvB.weightBytes)) {
            // One row: the H per-head products are independent, so they run as one parallel job,
            // the same every token (see `Workspace.prebuilt`).
            func product(_ h: Int, _ batch: MatvecBatch?) {
                let x = qRows + h * dqk, y = out + h * r
                switch weights.wUK {
                case let .transposed(wUKT):
                    // q̃_h = W_UK,hᵀ · q_nope,h, with W_UK,hᵀ rows [h·r, (h+1)·r) of the copy: (r, dn)
                    let w = wUKT.rows(h * r ..< (h + 1) * r)
                    if let batch { batch.append(w, x: x, y: y) } else { w.apply(x, rows: T, ldx: H * dqk, into: y, ldy: H * r) }
                case let .gathered(wUK):
                    // W_UK,h = rows [h·dn, (h+1)·dn) of the gathered copy: (dn, r); q̃ = q_nope · W_UK,h
                    let w = wUK.rows(h * dn ..< (h + 1) * dn)
                    if let batch {
                        batch.appendTransposed(w, x: x, y: y)
                    } else {
                        w.applyTransposed(x, rows: T, ldx: H * dqk, into: y, ldy: H * r)
                    }
                }
            }
            if T == 1 {
                ws.prebuilt(.queryAbsorb(layer: l), buffers: .init(qRows, out)) { batch in for h in 0..<H { product(h, batch) } }.run()
            } else if case let .transposed(wUKT) = weights.wUK, T <= MoE.fewTokens {
                // A few rows (batched decode): the H heads' products over all T rows as one job;
                // alone, each head's 64 KB matrix ran on the caller (below one job's worth).
                let batch = ws.matvecs
                batch.removeAll()
                for h in 0..<H {
                    batch.append(wUKT.rows(h * r ..< (h + 1) * r).view, rows: T, x: qRows + h * dqk, ldx: H * dqk,
                                 y: out + h * r, ldy: H * r)
                }
                batch.run()
            } else {
                for h in 0..<H { product(h, nil) }
            }
        }
    }

    /// out_h = ctx_h · W_UV,hᵀ for every head of `rows`: W_UV applied after attention.
    private func absorbValue(rows: Range<Int>, context ctx: UnsafeMutablePointer<Float>, into attnOut: UnsafeMutablePointer<Float>,
                             workspace ws: Workspace, recorder rec: OpRecorder?) {
        let c = config, l = layer
        let H = c.numAttentionHeads, dv = c.vHeadDim, r = c.kvLoraRank, T = rows.count
        let ctxRows = ctx + rows.lowerBound * H * r, out = attnOut + rows.lowerBound * H * dv
        rec.op("v_absorb", layer: l, kind: T == 1 ? .gemv : .gemm,
               cost: Cost.vAbsorb(heads: H, tokens: T, kvLoraRank: r, v: dv, weightBytes: weights.kvB.weightBytes)) {
            // W_UV,h = rows [h(dn+dv)+dn, (h+1)(dn+dv)) of kv_b_proj, gathered: (dv, r); o_h = ctx_h · W_UV,hᵀ
            func wUV(_ h: Int) -> WeightMatrix { weights.wUV.rows(h * dv ..< (h + 1) * dv) }
            if T == 1 {
                // One row: one parallel job over the heads, the same every token.
                ws.prebuilt(.valueAbsorb(layer: l), buffers: .init(ctxRows, out)) { batch in
                    for h in 0..<H { batch.append(wUV(h), x: ctxRows + h * r, y: out + h * dv) }
                }.run()
            } else if T <= MoE.fewTokens {
                // A few rows: every head's product over all T rows as one job (as q_absorb).
                let batch = ws.matvecs
                batch.removeAll()
                for h in 0..<H { batch.append(wUV(h).view, rows: T, x: ctxRows + h * r, ldx: H * r, y: out + h * dv, ldy: H * dv) }
                batch.run()
            } else {
                for h in 0..<H { wUV(h).apply(ctxRows + h * r, rows: T, ldx: H * r, into: out + h * dv, ldy: H * dv) }
            }
        }
    }

    /// Absorbed attention for one sequence: MQA over the latent. q̃ and q_pe rows are ordered
    /// (t, h), so the score and context of all heads are GEMMs against the shared latent rows.
    /// With `rotate` (one query token, `attend`'s case), its q_pe rows are still unrotated and
    /// `attend` applies RoPE to them, recorded as this layer's rope op; with `project`, `attend`
    /// also applies W_UV per head into it (this token's attention output), recorded as v_absorb;
    /// with `absorb` (W_UK,hᵀ of every head, or W_UK,h of every head to apply transposed),
    /// `attend` forms q̃ first, recorded as q_absorb.
    private func absorbedAttention(_ s: SequenceSlice, q: UnsafeMutablePointer<Float>, qLatent: UnsafeMutablePointer<Float>,
                                   context: UnsafeMutablePointer<Float>, scale: Float, rotate: LatentAttention.QueryRotation?,
                                   absorb: AbsorbedKey?, project: UnsafeMutablePointer<Float>?,
                                   workspace ws: Workspace, recorder rec: OpRecorder?) {
        let c = config, l = layer
        let H = c.numAttentionHeads, dn = c.qkNopeHeadDim, dr = c.qkRopeHeadDim, r = c.kvLoraRank, w = r + dr, dqk = dn + dr
        let T = s.count, S = s.end, p0 = s.start
        let latent = s.cache.row(layer: l, position: 0)   // (S, r + dr) rows of this layer
        let qLat = qLatent + s.row * H * r, qPe = q + s.row * H * dqk + dn, ctx = context + s.row * H * r
        let block = max(1, min(T, Self.scoreBudget / max(H * S, 1)))
        for t0 in stride(from: 0, to: T, by: block) {
            let tb = min(block, T - t0)
            let scores = ws.pointer(.scores, tb * H * S)       // (tb, H, S)
            if tb == 1 && S <= LatentAttention.headSplitPositions {
                // One query token over a short cache: scores, softmax and context in one job over
                // heads (see `LatentAttention.attend`), recorded as the three ops it fuses.
                rec.fused(layer: l, parts: {
                    (absorb == nil ? [] : [OpPart("q_absorb", kind: .gemv, cost: Cost.qAbsorb(heads: H, tokens: 1, kvLoraRank: r, nope: dn,
                                                                                             weightBytes: weights.kvB.weightBytes))]) +
                    (rotate == nil ? [] : [OpPart("rope", kind: .elementwise, cost: Cost.rope(vectors: H + 1, dims: dr))]) +
                    [OpPart("attn_score", kind: .attention, cost: Cost.absorbedScore(heads: H, tokens: 1, positions: S, kvLoraRank: r, rope: dr)),
                     OpPart("softmax", kind: .elementwise, cost: Cost.softmax(heads: H, tokens: 1, positions: S)),
                     OpPart("attn_context", kind: .attention, cost: Cost.absorbedContext(heads: H, tokens: 1, positions: S, kvLoraRank: r))]
                    + (project == nil ? [] : [OpPart("v_absorb", kind: .gemv, cost: Cost.vAbsorb(heads: H, tokens: 1, kvLoraRank: r,
                                                                                              v: c.vHeadDim, weightBytes: weights.kvB.weightBytes))])
                }) {
                    LatentAttention.attend(rows: H, rank: r, ropeDims: dr, positions: S, valid: p0 + t0 + 1, qLatent: qLat + t0 * H * r, latentStride: r,
                                           qRope: qPe + t0 * H * dqk, ropeStride: dqk, rotate: rotate, cache: latent, scale: scale,
                                           scores: scores, context: ctx + t0 * H * r,
                                           absorb: absorb.map { .init(weights: $0.matrix, transposed: $0.appliedTransposed,
                                                                      input: q + (s.row + t0) * H * dqk, inputStride: dqk,
                                                                      out: qLat + t0 * H * r) },
                                           project: project.map { .init(weights: weights.wUV, outputsPerRow: c.vHeadDim, out: $0 + s.row * H * c.vHeadDim) },
                                           // With `project` (one row: rowInJob), o_proj's matvec is next.
                                           then: project == nil ? nil : .matvec(weights.o.weight.view))
                }
                continue
            }
            precondition(rotate == nil && absorb == nil && project == nil, "W_UK, q_pe's rotation and W_UV fold only into attend's job")
            // All heads at once: the latent rows are the shared key (MQA over the latent).
            // score = s·(q̃·c + q_pe·k_pe): the latent part, then the rope part accumulated.
            // One query token (decode): H rows only, where sgemm's packing costs about what its
            // arithmetic does; `LatentAttention` reads the cache rows in place (see there).
            rec.op("attn_score", layer: l, kind: .attention,
                   cost: Cost.absorbedScore(heads: H, tokens: tb, positions: S, kvLoraRank: r, rope: dr)) {
                if tb == 1 {
                    LatentAttention.scores(rows: H, rank: r, ropeDims: dr, positions: S, qLatent: qLat + t0 * H * r, latentStride: r,
                                           qRope: qPe + t0 * H * dqk, ropeStride: dqk, cache: latent, scale: scale, into: scores)
                    return
                }
                Kernels.gemm(m: tb * H, n: S, k: r, a: qLat + t0 * H * r, lda: r, b: latent, ldb: w,
                             transposeB: true, c: scores, ldc: S, alpha: scale)
                Kernels.gemm(m: tb * H, n: S, k: dr, a: qPe + t0 * H * dqk, lda: dqk, b: latent + r, ldb: w,
                             transposeB: true, c: scores, ldc: S, alpha: scale, beta: 1)
            }
            rec.op("softmax", layer: l, kind: .elementwise, cost: Cost.softmax(heads: H, tokens: tb, positions: S)) {
                // Rows (t, h): row t·H + h keeps its first p0 + t0 + t + 1 positions.
                Kernels.softmaxRows(scores, rows: tb * H, count: S, firstValid: p0 + t0 + 1, rowsPerStep: H)
            }
            // ...and the latent is the shared value: ctx = P · C.
            rec.op("attn_context", layer: l, kind: .attention,
                   cost: Cost.absorbedContext(heads: H, tokens: tb, positions: S, kvLoraRank: r)) {
                Kernels.gemm(m: tb * H, n: r, k: S, a: scores, lda: S, b: latent, ldb: w,
                             transposeB: false, c: ctx + t0 * H * r, ldc: r)
            }
        }
    }
}

/// A decode token's latent-cache row, [RMSNorm(c) | RoPE(k_pe)] from kv_a_proj's output, as a
/// task of q_b's job (`MLA.forward`).
private struct LatentRowWrite {
    var source: UnsafePointer<Float>            // [c (r) | k_pe (dr)]
    var row: UnsafeMutablePointer<Float>        // the cache row at the token's position
    var norm: UnsafePointer<Float>              // kv_a_layernorm
    var rank: Int
    var ropeDims: Int
    var cos: UnsafePointer<Float>               // the position's angles, dr/2 each
    var sin: UnsafePointer<Float>
    var layout: RopeLayout

    static let task: MatvecBatch.SideTask = { raw in
        let w = raw.assumingMemoryBound(to: LatentRowWrite.self).pointee
        Kernels.rmsNorm(w.source, weight: w.norm, eps: MLA.latentNormEps, count: w.rank, out: w.row)
        (w.row + w.rank).update(from: w.source + w.rank, count: w.ropeDims)
        Kernels.rope(w.row + w.rank, cos: w.cos, sin: w.sin, half: w.ropeDims / 2, layout: w.layout)
    }
}
