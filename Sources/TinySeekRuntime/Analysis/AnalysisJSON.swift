import Foundation
import TinySeek

/// `tinyseek analyze --json`: one object with the ops (the profiler's `OpRow` keys, `seconds` =
/// roofline time), per-layer sums, totals, KV cache and the system quantities, snake_case keys.
/// Absent values (e.g. B_MoE of a dense model) are JSON null.
public struct AnalysisJSON: Encodable {
    public let analysis: Analysis
    public let system: SystemQuantities
    /// Where the config was read from, for the record.
    public let configPath: String?

    public init(analysis: Analysis, system: SystemQuantities, configPath: String?) {
        self.analysis = analysis
        self.system = system
        self.configPath = configPath
    }

    enum Keys: String, CodingKey {
        case model, hardware, scenario, ops, layers, totals
        case kvCache = "kv_cache", decodeSecondsPerToken = "decode_seconds_per_token"
        case timeToFirstTokenSeconds = "time_to_first_token_seconds"
        case tokensPerSecondPerDevice = "tokens_per_second_per_device", system
    }

    /// A string-keyed object whose values are numbers, strings, bools or null.
    struct Object: Encodable {
        var entries: [(String, Any?)]
        init(_ entries: [(String, Any?)]) { self.entries = entries }

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: Key.self)
            for (k, v) in entries {
                let key = Key(stringValue: k)
                switch v {
                case let x as Double: try c.encode(x.isFinite ? x : 0, forKey: key)
                case let x as Int: try c.encode(x, forKey: key)
                case let x as String: try c.encode(x, forKey: key)
                case let x as Bool: try c.encode(x, forKey: key)
                case let x as Object: try c.encode(x, forKey: key)
                default: try c.encodeNil(forKey: key)
                }
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        let a = analysis, spec = a.spec, s = a.scenario, p = s.parallelism
        let params = ParameterCount(spec)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(Object([
            ("model_type", spec.modelType), ("config", configPath), ("attention", spec.attentionSummary),
            ("mlp", spec.mlpSummary), ("layers", spec.layers), ("moe_layers", spec.moeLayerCount),
            ("hidden_size", spec.hidden), ("heads", spec.heads), ("vocab_size", spec.vocab),
            ("parameters", params.total), ("active_parameters_per_token", params.activePerToken),
        ]), forKey: .model)
        try c.encode(Object([
            ("name", a.accelerator.name), ("peak_flops", a.roofline.peakFlops), ("peak_dtype", a.peakDType),
            ("memory_bandwidth_bytes_per_second", a.roofline.bandwidth), ("memory_bytes", a.accelerator.memoryBytes),
            ("ridge_flops_per_byte", a.roofline.ridge),
            ("interconnect", a.accelerator.interconnect),
            ("interconnect_bytes_per_second", a.accelerator.interconnectGBps.map { $0 * 1e9 }),
            ("interconnect_latency_seconds", a.accelerator.interconnectLatencyMicroseconds.map { $0 * 1e-6 }),
        ]), forKey: .hardware)
        var routing: [(String, Any?)] = [("imbalance", s.routing.imbalance)]
        if case .observed = s.routing { routing = [("imbalance", nil), ("expert_counts", "observed")] }
        try c.encode(Object([
            ("batch", s.batch), ("context", s.context), ("phase", s.phase.rawValue), ("dtype", s.dtype.rawValue),
            ("attention", spec.isLatent ? s.resolvedAttention.rawValue : nil),
            ("dp", p.dp), ("tp", p.tp), ("ep", p.ep), ("devices", p.devices),
            ("tokens_per_step", s.tokens), ("sequences_per_rank", s.sequencesPerRank),
            ("weight_bytes", s.dtype.weightBytes), ("activation_bytes", s.dtype.activationBytes),
            ("cache_bytes", s.dtype.cacheBytes),
        ] + routing), forKey: .scenario)
        try c.encode(a.rows(), forKey: .ops)
        let layers = (0..<spec.layers).map { l -> Object in
            let g = a.layer(l)
            return Object([
                ("layer", l), ("type", spec.isMoE(layer: l) ? "moe" : "dense"), ("flops", g.cost.flops),
                ("bytes", g.cost.bytes), ("intensity", g.intensity), ("seconds", g.seconds),
                ("bound", g.bound(a.roofline).rawValue),
            ])
        }
        try c.encode(layers, forKey: .layers)
        let t = a.total
        try c.encode(Object([
            ("flops", t.cost.flops), ("bytes_read", t.cost.bytesRead), ("bytes_written", t.cost.bytesWritten),
            ("bytes", t.cost.bytes), ("intensity", t.intensity), ("compute_seconds", a.computeSeconds),
            ("communication_seconds", a.communicationSeconds), ("step_seconds", a.stepSeconds),
            ("tokens_per_step", a.tokensPerStep), ("flops_per_token", a.flopsPerToken), ("bytes_per_token", a.bytesPerToken),
        ]), forKey: .totals)
        try c.encode(Object([
            ("bytes_per_token", a.kvCacheBytesPerToken), ("bytes_per_request", a.kvCacheBytesPerRequest),
            ("elements_per_token_per_layer", spec.cacheElementsPerTokenPerLayer),
        ]), forKey: .kvCache)
        try c.encode(s.phase == .decode ? a.stepSeconds : nil, forKey: .decodeSecondsPerToken)
        try c.encode(s.phase == .prefill ? a.stepSeconds : nil, forKey: .timeToFirstTokenSeconds)
        try c.encode(a.tokensPerSecondPerDevice, forKey: .tokensPerSecondPerDevice)
        let load = a.model.expertLoad()
        let m = system.memory
        try c.encode(Object([
            ("ridge_flops_per_byte", system.ridge),
            ("b_attn_paper", system.attentionBatchPaper), ("b_attn_model", system.attentionBatchModel),
            ("b_moe_paper", system.moeBatchPaper), ("b_moe_model", system.moeBatchModel),
            ("max_batch", system.maxBatch),
            ("memory", Object([
                ("weights_bytes", m.weights), ("kv_cache_bytes", m.kvCache), ("activation_bytes", m.activations),
                ("total_bytes", m.total), ("capacity_bytes", m.capacity), ("fits", m.fits),
            ])),
            ("all_to_all_seconds_per_moe_layer", system.allToAllSecondsPerMoELayer),
            ("all_reduce_seconds_per_layer", system.allReduceSecondsPerLayer),
            ("touched_experts_per_layer", load.map { $0.touchedExperts }),
            ("tokens_per_expert", load.map { $0.tokensPerExpert }),
        ]), forKey: .system)
    }

    /// Pretty-printed JSON text.
    public func data() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}

extension ArchitectureSpec {
    public var isLatent: Bool {
        if case .latent = attention { return true }
        return false
    }
}
