import TinySeek

/// How a step's work is spread over a pool of `dp × tp` devices.
///
/// - **dp** (data parallel, attention): the B sequences are split over `dp` ranks; each rank holds
///   all attention and dense weights and runs ⌈B/dp⌉ sequences (the busiest rank is modelled).
///   This is the paper's deg_DP: the attention projections see B/dp rows, hence B_attn = RP·dp.
/// - **tp** (tensor parallel, inside a rank): attention heads, the dense and shared FFN widths and
///   the vocabulary are split `tp` ways. MLA's q_a_proj and kv_a_proj are replicated (their output
///   feeds every head) and so is the latent cache of the rank's sequences: every TP rank streams
///   the whole latent. GQA splits its KV heads (a rank keeps one when tp > n_kv).
/// - **ep** (expert parallel): the routed experts of a layer are spread over `ep` devices; the
///   pool's remaining factor `dp·tp/ep` splits each expert's width, so every device takes part in
///   every MoE layer and holds 1/(dp·tp) of the routed weights. All B·T tokens of the step are
///   dispatched to the experts (all-to-all) and combined back.
///
/// Two all-reduces per layer join the TP partial sums (attention out, FFN out) when tp > 1.
public struct Parallelism: Sendable, Equatable, Codable {
    public var dp: Int
    public var tp: Int
    public var ep: Int

    public init(dp: Int = 1, tp: Int = 1, ep: Int = 1) {
        self.dp = dp
        self.tp = tp
        self.ep = ep
    }

    public var devices: Int { dp * tp }
    /// The factor that splits each routed expert's width: devices / ep.
    public var expertShards: Int { max(devices / max(ep, 1), 1) }

    public static let single = Parallelism()
}

/// How many tokens each routed expert receives in the step.
public enum ExpertRouting: Sendable, Equatable {
    /// Uniform routing in expectation. A step of N tokens touches
    ///   E[touched] = n_e · (1 − (1 − n_k/n_e)^N)
    /// distinct experts (each token picks n_k of n_e; an expert is missed by all N with
    /// probability (1 − n_k/n_e)^N) — ≈ min(n_e, N·n_k) — and each touched expert streams its
    /// weights once. Every touched expert is evaluated at Γ·N·n_k/E[touched] tokens, which is
    /// Γ·N·n_k/n_e once all experts are busy: the paper's expert load, Γ = `imbalance` being the
    /// most loaded expert's tokens over the mean (1 = balanced). Γ > 1 therefore models every
    /// expert as loaded like the hottest one, the step time of an expert-parallel pool that
    /// waits for its slowest rank; FLOP totals are exact expectations only at Γ = 1.
    case expected(imbalance: Double)
    /// Observed token counts per expert (n_e entries) for each MoE layer, e.g. read from a run:
    /// the ops are then one row per touched expert, as the executor records them.
    case observed([Int: [Int]])

    public static let balanced = ExpertRouting.expected(imbalance: 1)

    public var imbalance: Double {
        if case let .expected(g) = self { return g }
        return 1
    }
}

/// One step to evaluate: B sequences, each attending to `context` positions.
///
/// - decode: every sequence brings 1 new token and attends to `context` positions (its cache
///   holds context − 1 earlier tokens); the step produces B tokens.
/// - prefill: every sequence brings a `context`-token prompt (causal, from position 0).
public struct Scenario: Sendable, Equatable {
    /// B, sequences in the step (over all data-parallel ranks).
    public var batch: Int
    /// L, positions attended after the step.
    public var context: Int
    public var phase: Phase
    public var dtype: AnalysisDType
    /// MLA order; `.auto` is the executor's rule (naive for prefill, absorbed for decode).
    public var attention: AttentionOrder
    public var parallelism: Parallelism
    public var routing: ExpertRouting
    /// LM head over every row instead of each sequence's last (the executor's `allLogits`).
    public var allLogits: Bool

    public init(batch: Int, context: Int, phase: Phase = .decode, dtype: AnalysisDType = .bf16,
                attention: AttentionOrder = .auto, parallelism: Parallelism = .single,
                routing: ExpertRouting = .balanced, allLogits: Bool = false) {
        self.batch = batch
        self.context = context
        self.phase = phase
        self.dtype = dtype
        self.attention = attention
        self.parallelism = parallelism
        self.routing = routing
        self.allLogits = allLogits
    }

    /// New tokens per sequence in this step.
    public var tokensPerSequence: Int { phase == .decode ? 1 : context }
    /// Tokens the step processes over the whole pool: B for decode, B·L for prefill.
    public var tokens: Int { batch * tokensPerSequence }
    /// Sequences on the busiest data-parallel rank.
    public var sequencesPerRank: Int { (batch + parallelism.dp - 1) / parallelism.dp }
    /// The MLA order this step runs (the executor resolves `.auto` by tokens per sequence).
    public var resolvedAttention: AttentionOrder { attention.resolved(tokens: tokensPerSequence) }

    /// Checks the scenario against the architecture, naming the offending argument.
    public func validate(for spec: ArchitectureSpec) throws(AnalysisError) {
        guard batch >= 1 else { throw .invalidArgument(name: "batch", reason: "must be at least 1, got \(batch)") }
        guard context >= 1 else { throw .invalidArgument(name: "context", reason: "must be at least 1, got \(context)") }
        let p = parallelism
        for (name, v) in [("dp", p.dp), ("tp", p.tp), ("ep", p.ep)] where v < 1 {
            throw .invalidArgument(name: name, reason: "must be at least 1, got \(v)")
        }
        guard spec.heads % p.tp == 0 else {
            throw .invalidArgument(name: "tp", reason: "\(p.tp) does not divide the \(spec.heads) attention heads")
        }
        if case let .grouped(g) = spec.attention, g.kvHeads % p.tp != 0 && p.tp % g.kvHeads != 0 {
            throw .invalidArgument(name: "tp", reason: "\(p.tp) and the \(g.kvHeads) KV heads must divide one another")
        }
        guard p.devices % p.ep == 0 else {
            throw .invalidArgument(name: "ep", reason: "\(p.ep) does not divide the dp x tp = \(p.devices) devices")
        }
        if let e = spec.experts, p.ep > e.routed {
            throw .invalidArgument(name: "ep", reason: "\(p.ep) devices for \(e.routed) routed experts")
        }
        switch routing {
        case let .expected(g):
            guard g.isFinite, g >= 1 else {
                throw .invalidArgument(name: "imbalance", reason: "must be >= 1 (max / mean tokens per expert), got \(g)")
            }
        case let .observed(counts):
            guard p == .single else {
                throw .invalidArgument(name: "routing", reason: "observed per-expert counts need dp = tp = ep = 1")
            }
            let experts = spec.experts?.routed ?? 0
            for (layer, c) in counts where c.count != experts || c.contains(where: { $0 < 0 }) {
                throw .invalidArgument(name: "routing", reason: "layer \(layer): need \(experts) non-negative counts, got \(c)")
            }
        }
    }
}
