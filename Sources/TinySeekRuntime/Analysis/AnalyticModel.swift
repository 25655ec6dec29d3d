import Foundation
import TinySeek

/// The executor's cost model evaluated without running anything: for a `Scenario` it lists the
/// ops one device runs in one step — the same names, kinds and order the executor records, each
/// costed by the same `Cost` function the executor calls at that site, with the scenario's
/// `weightBytes` / `act` / `cache`. At fp32 with one sequence and observed expert counts, the
/// list equals the executor's records op by op (AnalyticModelExactnessTests).
///
/// Batch semantics (B sequences, T new tokens each, N = B·T rows):
/// - projections, norms, rope, the router, the experts and the LM head run once over all N
///   rows: their weights are read once per step, their FLOPs and activations scale with N;
/// - attention runs per sequence over its own cache: score, softmax and context cost B times
///   one sequence's (`OpCost.scaled(by:)`), so B decode sequences read B caches;
/// - MLA's weight-bearing up-projections batch over sequences: kv_decompress expands all B·S
///   cached latents in one GEMM (`positions: B·S`), q_absorb and v_absorb take all N rows.
///   (A single-sequence executor run is the B = 1 case of all three rules.)
/// - the executor splits long score matrices into row blocks to cap its buffer (`MLA.scoreBudget`,
///   4M floats); the model does not — a fused kernel has no such buffer — so the two agree
///   exactly while heads × positions × tokens stays under 4M.
///
/// Ops are per device under `Scenario.parallelism` (see `Parallelism`); with dp = tp = ep = 1 they
/// are the whole step. Rows summed over many copies (B sequences, several experts) appear once.
public struct AnalyticModel: Sendable {
    public let spec: ArchitectureSpec
    public let scenario: Scenario

    public init(spec: ArchitectureSpec, scenario: Scenario) throws(AnalysisError) {
        try scenario.validate(for: spec)
        self.spec = spec
        self.scenario = scenario
    }

    // Bytes per element at the scenario's dtype.
    var wb: Double { scenario.dtype.weightBytes }
    var act: Double { scenario.dtype.activationBytes }
    var cache: Double { scenario.dtype.cacheBytes }
    var normWB: Double { scenario.dtype.normWeightBytes }
    var phase: Phase { scenario.phase }
    var tp: Int { scenario.parallelism.tp }
    /// Sequences on this device's data-parallel rank.
    var sequences: Int { scenario.sequencesPerRank }
    /// T: new tokens per sequence.
    var tokensPerSequence: Int { scenario.tokensPerSequence }
    /// N: rows this device's rank runs through the projections.
    var rows: Int { sequences * tokensPerSequence }
    /// Attention heads on this device.
    var localHeads: Int { spec.heads / tp }

    /// ⌈n / parts⌉: the widest shard of a dimension split `parts` ways.
    static func shard(_ n: Int, _ parts: Int) -> Int { (n + parts - 1) / max(parts, 1) }

    /// Every op of the step on one device, in the executor's order.
    public func ops() -> [ModelledOp] {
        var out = embeddingOps()
        for l in 0..<spec.layers { out += layerOps(l) }
        out += headOps()
        return out
    }

    /// A weight matrix applied to `tokens` rows: `Linear.cost` and `Linear.kind` at this dtype.
    func linear(_ name: String, layer: Int?, tokens: Int, in k: Int, out n: Int, kind: OpKind? = nil) -> ModelledOp {
        ModelledOp(name: name, layer: layer, kind: kind ?? (tokens == 1 ? .gemv : .gemm), phase: phase,
                   cost: Cost.linear(tokens: tokens, inFeatures: k, outFeatures: n, weightBytes: wb, act: act))
    }

    func op(_ name: String, layer: Int?, expert: Int? = nil, _ kind: OpKind, _ cost: OpCost) -> ModelledOp {
        ModelledOp(name: name, layer: layer, expert: expert, kind: kind, phase: phase, cost: cost)
    }

    /// Token embedding gather (and GPT's position table).
    func embeddingOps() -> [ModelledOp] {
        let embed = Cost.embedding(tokens: rows, hidden: spec.hidden, weightBytes: wb, act: act)
        var out = [op("embedding", layer: nil, .elementwise, embed)]
        if spec.learnedPositions { out.append(op("position_embedding", layer: nil, .elementwise, embed)) }
        return out
    }

    /// Final norm and the (vocabulary-parallel) LM head over each sequence's last row, or all rows.
    func headOps() -> [ModelledOp] {
        let n = scenario.allLogits ? rows : sequences
        return [op("final_norm", layer: nil, .elementwise, Cost.rmsNorm(rows: n, width: spec.hidden, act: act, weightBytes: normWB)),
                linear("lm_head", layer: nil, tokens: n, in: spec.hidden, out: Self.shard(spec.vocab, tp))]
    }

    /// One decoder layer: h += attn(norm(h)); h += mlp(norm(h)).
    public func layerOps(_ l: Int) -> [ModelledOp] {
        let d = spec.hidden
        var out = [op("attn_norm", layer: l, .elementwise, Cost.rmsNorm(rows: rows, width: d, act: act, weightBytes: normWB))]
        out += attentionOps(l)
        out.append(op("attn_residual", layer: l, .elementwise, Cost.elementwise(elements: rows * d, act: act)))
        out.append(op("mlp_norm", layer: l, .elementwise, Cost.rmsNorm(rows: rows, width: d, act: act, weightBytes: normWB)))
        out += spec.isMoE(layer: l) ? moeOps(l) : denseOps(l)
        out.append(op("mlp_residual", layer: l, .elementwise, Cost.elementwise(elements: rows * d, act: act)))
        return out
    }

    public func attentionOps(_ l: Int) -> [ModelledOp] {
        switch spec.attention {
        case let .latent(m): return latentAttentionOps(l, m)
        case let .grouped(g): return groupedAttentionOps(l, g)
        }
    }

    // MARK: MLA (MLA.forward)

    func latentAttentionOps(_ l: Int, _ m: ArchitectureSpec.LatentAttention) -> [ModelledOp] {
        let d = spec.hidden, H = localHeads, N = rows, B = Double(sequences)
        let (r, dn, dr, dv) = (m.kvLoraRank, m.nopeHeadDim, m.ropeHeadDim, m.vHeadDim)
        let T = tokensPerSequence, S = spec.attendedPositions(layer: l, context: scenario.context)
        var out: [ModelledOp] = []
        if let q = m.qLoraRank {
            out.append(linear("q_a_proj", layer: l, tokens: N, in: d, out: q))
            out.append(op("q_a_norm", layer: l, .elementwise, Cost.rmsNorm(rows: N, width: q, act: act, weightBytes: normWB)))
            out.append(linear("q_b_proj", layer: l, tokens: N, in: q, out: H * (dn + dr)))
        } else {
            out.append(linear("q_proj", layer: l, tokens: N, in: d, out: H * (dn + dr)))
        }
        out.append(linear("kv_a_proj", layer: l, tokens: N, in: d, out: r + dr))
        out.append(op("kv_norm", layer: l, .elementwise, Cost.rmsNorm(rows: N, width: r, act: act, weightBytes: normWB)))
        out.append(op("rope", layer: l, .elementwise, Cost.rope(vectors: N * (H + 1), dims: dr, act: act)))

        switch scenario.resolvedAttention {
        case .naive, .auto:
            out.append(op("kv_decompress", layer: l, .gemm,
                          Cost.kvDecompress(positions: sequences * S, heads: H, kvLoraRank: r, nope: dn, v: dv,
                                            weightBytes: wb, act: act, cache: cache)))
            out.append(op("attn_score", layer: l, .attention,
                          Cost.naiveScore(heads: H, tokens: T, positions: S, nope: dn, rope: dr, act: act, cache: cache).scaled(by: B)))
            out.append(op("softmax", layer: l, .elementwise, Cost.softmax(heads: H, tokens: T, positions: S, act: act).scaled(by: B)))
            out.append(op("attn_context", layer: l, .attention,
                          Cost.naiveContext(heads: H, tokens: T, positions: S, v: dv, act: act).scaled(by: B)))
        case .absorbed:
            out.append(op("q_absorb", layer: l, N == 1 ? .gemv : .gemm,
                          Cost.qAbsorb(heads: H, tokens: N, kvLoraRank: r, nope: dn, weightBytes: wb, act: act)))
            out.append(op("attn_score", layer: l, .attention,
                          Cost.absorbedScore(heads: H, tokens: T, positions: S, kvLoraRank: r, rope: dr, act: act, cache: cache)
                              .scaled(by: B)))
            out.append(op("softmax", layer: l, .elementwise, Cost.softmax(heads: H, tokens: T, positions: S, act: act).scaled(by: B)))
            out.append(op("attn_context", layer: l, .attention,
                          Cost.absorbedContext(heads: H, tokens: T, positions: S, kvLoraRank: r, act: act, cache: cache).scaled(by: B)))
            out.append(op("v_absorb", layer: l, N == 1 ? .gemv : .gemm,
                          Cost.vAbsorb(heads: H, tokens: N, kvLoraRank: r, v: dv, weightBytes: wb, act: act)))
        }
        out.append(linear("o_proj", layer: l, tokens: N, in: H * dv, out: d))
        return out
    }

    // MARK: MHA / GQA (Cost+Attention)

    func groupedAttentionOps(_ l: Int, _ g: ArchitectureSpec.GroupedAttention) -> [ModelledOp] {
        let d = spec.hidden, H = localHeads, N = rows, hd = g.headDim
        let G = g.kvHeads >= tp ? g.kvHeads / tp : 1   // a rank keeps one KV head when tp > n_kv
        let T = tokensPerSequence, L = scenario.context
        // Chunked layers in prefill: L/chunk independent chunks of chunk queries over chunk keys.
        var (t, s, copies) = (T, spec.attendedPositions(layer: l, context: L), Double(sequences))
        if phase == .prefill, s < L {
            copies *= Double(L) / Double(s)
            t = s
        }
        var out = [
            ModelledOp(name: "q_proj", layer: l, kind: N == 1 ? .gemv : .gemm, phase: phase,
                       cost: Cost.queryProjection(tokens: N, hidden: d, heads: H, headDim: hd, weightBytes: wb, act: act)),
        ]
        for name in ["k_proj", "v_proj"] {
            out.append(ModelledOp(name: name, layer: l, kind: N == 1 ? .gemv : .gemm, phase: phase,
                                  cost: Cost.keyValueProjection(tokens: N, hidden: d, kvHeads: G, headDim: hd,
                                                                weightBytes: wb, act: act, cache: cache)))
        }
        if g.ropeLayers.indices.contains(l), g.ropeLayers[l] {
            out.append(op("rope", layer: l, .elementwise, Cost.rope(vectors: N * (H + G), dims: hd, act: act)))
        }
        out.append(op("attn_score", layer: l, .attention,
                      Cost.gqaScore(heads: H, kvHeads: G, tokens: t, positions: s, headDim: hd, act: act, cache: cache).scaled(by: copies)))
        out.append(op("softmax", layer: l, .elementwise, Cost.softmax(heads: H, tokens: t, positions: s, act: act).scaled(by: copies)))
        out.append(op("attn_context", layer: l, .attention,
                      Cost.gqaContext(heads: H, kvHeads: G, tokens: t, positions: s, headDim: hd, act: act, cache: cache).scaled(by: copies)))
        out.append(linear("o_proj", layer: l, tokens: N, in: H * hd, out: d))
        return out
    }
}
