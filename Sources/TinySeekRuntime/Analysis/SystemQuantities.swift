import Foundation
import TinySeek

/// Where a device's memory goes at one batch: weights, KV cache and the largest live activation.
public struct MemoryPlan: Sendable, Equatable {
    /// This device's share of the weights (see `Parallelism` for what is split and what replicated).
    public var weights: Double
    /// KV cache of the sequences on this device's rank (MLA's latent is replicated over TP ranks).
    public var kvCache: Double
    /// The largest single op's activation input + output in one decode step: layers run one
    /// after another and buffers are reused, so this is the live activation peak.
    public var activations: Double
    /// Device memory, 0 when unknown.
    public var capacity: Double

    public var total: Double { weights + kvCache + activations }
    public var fits: Bool { capacity > 0 && total <= capacity }
}

/// The paper's system-level quantities for a scenario: the batch at which attention and the
/// experts reach the ridge point, the largest batch that fits in memory, and the interconnect
/// time of expert parallelism.
///
/// Closed forms (BF16, where weight GEMMs have ArI ≈ rows): a weight GEMM over n rows reaches
/// the ridge RP = peak / bandwidth at n ≈ RP. Attention projections see B/deg_DP rows per
/// data-parallel rank, hence B_attn = RP · deg_DP; an expert sees Γ · B · n_k / n_e rows, hence
/// B_MoE = RP · n_e / (n_k · Γ). The "model" values solve the same condition on this cost model
/// (activation bytes and fp8 weights included) by bisection over the decode batch.
public struct SystemQuantities: Sendable {
    /// RP, FLOP per byte.
    public var ridge: Double
    public var attentionBatchPaper: Double
    /// Smallest decode batch (sequences) at which the attention's weight-bearing ops (projections,
    /// and q_absorb/v_absorb or kv_decompress) of a layer reach the ridge; nil if not by 2^24.
    public var attentionBatchModel: Int?
    public var moeBatchPaper: Double?
    /// Smallest decode batch (tokens) at which a MoE layer's expert matmuls (expert_gate_up +
    /// expert_down) reach the ridge; nil for dense models or if not by 2^24.
    public var moeBatchModel: Int?
    /// Memory at the scenario's batch.
    public var memory: MemoryPlan
    /// Largest decode batch (sequences, over all ranks) whose weights, KV cache at the scenario's
    /// context and activations fit every device; 0 if the weights alone do not fit, nil if the
    /// capacity is unknown.
    public var maxBatch: Int?
    public var allToAllSecondsPerMoELayer: Double
    public var allReduceSecondsPerLayer: Double

    public init(analysis a: Analysis) throws(AnalysisError) {
        let spec = a.spec, s = a.scenario, ridge = a.roofline.ridge
        self.ridge = ridge
        attentionBatchPaper = ridge * Double(s.parallelism.dp)
        if let e = spec.experts {
            moeBatchPaper = ridge * Double(e.routed) / (Double(e.perToken) * s.routing.imbalance)
        }
        allToAllSecondsPerMoELayer = a.allToAllSecondsPerMoELayer
        allReduceSecondsPerLayer = a.allReduceSecondsPerLayer

        let probe = DecodeProbe(spec: spec, scenario: s)
        func intensity(_ ops: [ModelledOp]) -> Double {
            ops.reduce(OpCost()) { $0 + $1.cost }.intensity
        }
        if let layer = spec.representativeLayers.moe ?? spec.representativeLayers.dense {
            attentionBatchModel = try Self.smallestBatch(reaching: ridge) { b throws(AnalysisError) in
                intensity(try probe.model(batch: b).attentionOps(layer).filter { $0.cost.weightBytes > 0 })
            }
        }
        if let layer = spec.representativeLayers.moe {
            moeBatchModel = try Self.smallestBatch(reaching: ridge) { b throws(AnalysisError) in
                intensity(try probe.model(batch: b).layerOps(layer).filter { $0.name == "expert_gate_up" || $0.name == "expert_down" })
            }
        }
        memory = try probe.memory(batch: s.batch, capacity: a.accelerator.memoryBytes)
        if a.accelerator.memoryBytes > 0 {
            maxBatch = try probe.maxBatch(capacity: a.accelerator.memoryBytes)
        }
    }

    /// The smallest b in 1...2^24 with f(b) ≥ target, assuming f grows with b; nil if none.
    static func smallestBatch(reaching target: Double, _ f: (Int) throws(AnalysisError) -> Double) throws(AnalysisError) -> Int? {
        let cap = 1 << 24
        guard try f(cap) >= target else { return nil }
        if try f(1) >= target { return 1 }
        var hi = 2
        while try f(hi) < target { hi *= 2 }
        var lo = hi / 2
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if try f(mid) >= target { hi = mid } else { lo = mid }
        }
        return hi
    }
}

/// Decode steps of a scenario at other batch sizes, for the solves above.
struct DecodeProbe {
    let spec: ArchitectureSpec
    let scenario: Scenario

    func model(batch: Int) throws(AnalysisError) -> AnalyticModel {
        var s = scenario
        s.batch = batch
        s.phase = .decode
        if case .observed = s.routing { s.routing = .balanced }
        return try AnalyticModel(spec: spec, scenario: s)
    }

    /// Weight bytes on one device (see `Parallelism`).
    var weightsPerDevice: Double {
        let p = ParameterCount(spec), par = scenario.parallelism
        let tp = Double(par.tp), devices = Double(par.devices)
        let params = p.attentionSharded / tp + p.replicated + p.denseFFN / tp + p.sharedExperts / tp
            + p.routedExperts / devices + p.embeddings / tp
        return params * scenario.dtype.weightBytes
    }

    /// KV cache of one sequence on one device: MLA's latent whole on every TP rank; GQA's KV heads split.
    var kvCachePerSequence: Double {
        let full = spec.kvCacheBytesPerRequest(context: scenario.context, bytesPerElement: scenario.dtype.cacheBytes)
        if case let .grouped(g) = spec.attention {
            let tp = scenario.parallelism.tp
            let local = g.kvHeads >= tp ? g.kvHeads / tp : 1
            return full * Double(local) / Double(g.kvHeads)
        }
        return full
    }

    func memory(batch: Int, capacity: Double) throws(AnalysisError) -> MemoryPlan {
        let m = try model(batch: batch)
        let (dense, moe) = spec.representativeLayers
        var ops = m.embeddingOps() + m.headOps()
        for l in [dense, moe].compactMap({ $0 }) { ops += m.layerOps(l) }
        let peak = ops.map { $0.cost.activationBytes + $0.cost.bytesWritten }.max() ?? 0
        return MemoryPlan(weights: weightsPerDevice, kvCache: Double(m.sequences) * kvCachePerSequence,
                          activations: peak, capacity: capacity)
    }

    /// The largest batch (a multiple of dp) that fits, by doubling and bisection on sequences per rank.
    func maxBatch(capacity: Double) throws(AnalysisError) -> Int {
        let dp = scenario.parallelism.dp
        func fits(_ perRank: Int) throws(AnalysisError) -> Bool { try memory(batch: perRank * dp, capacity: capacity).fits }
        guard try fits(1) else { return 0 }
        let cap = 1 << 24
        var lo = 1, hi = 2
        while hi <= cap, try fits(hi) { lo = hi; hi *= 2 }
        if hi > cap { return lo * dp }
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if try fits(mid) { lo = mid } else { hi = mid }
        }
        return lo * dp
    }
}
