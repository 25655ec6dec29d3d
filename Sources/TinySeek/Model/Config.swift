import Foundation

/// The blueprint of a DeepSeek-V2/V3 decoder, decoded from a Hugging Face `config.json`.
///
/// Property names are the camelCase of HF's keys; optional HF fields stay optional here and get
/// their defaults (those of transformers' `DeepseekV3Config` / `DeepseekV2Config`) in the derived
/// properties below, so a config written by hand and one written by `save_pretrained` mean the same.
/// Both rope spellings are accepted: the classic `rope_theta` + `rope_scaling` of published
/// checkpoints and the `rope_parameters` object of current transformers.
public struct ModelConfig: Codable, Sendable {
    public var modelType: String
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var moeIntermediateSize: Int?
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int?
    public var maxPositionEmbeddings: Int
    public var rmsNormEps: Double?
    public var hiddenAct: String?

    // Multi-head Latent Attention
    public var qLoraRank: Int?
    public var kvLoraRank: Int
    public var qkNopeHeadDim: Int
    public var qkRopeHeadDim: Int
    public var vHeadDim: Int
    public var attentionBias: Bool?

    // Rotary embedding
    public var ropeTheta: Double?
    public var ropeScaling: RopeParameters?
    public var ropeParameters: RopeParameters?
    public var ropeInterleave: Bool?

    // DeepSeekMoE
    public var nRoutedExperts: Int?
    public var numExpertsPerTok: Int?
    public var nSharedExperts: Int?
    public var nGroup: Int?
    public var topkGroup: Int?
    public var topkMethod: String?
    public var scoringFunc: String?
    public var normTopkProb: Bool?
    public var routedScalingFactor: Double?
    public var firstKDenseReplace: Int?
    public var moeLayerFreq: Int?
    public var mlpBias: Bool?

    public var tieWordEmbeddings: Bool?
    public var bosTokenId: Int?
    public var eosTokenId: TokenIDs?

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type", vocabSize = "vocab_size", hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size", moeIntermediateSize = "moe_intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", maxPositionEmbeddings = "max_position_embeddings"
        case rmsNormEps = "rms_norm_eps", hiddenAct = "hidden_act"
        case qLoraRank = "q_lora_rank", kvLoraRank = "kv_lora_rank", qkNopeHeadDim = "qk_nope_head_dim"
        case qkRopeHeadDim = "qk_rope_head_dim", vHeadDim = "v_head_dim", attentionBias = "attention_bias"
        case ropeTheta = "rope_theta", ropeScaling = "rope_scaling", ropeParameters = "rope_parameters"
        case ropeInterleave = "rope_interleave"
        case nRoutedExperts = "n_routed_experts", numExpertsPerTok = "num_experts_per_tok"
        case nSharedExperts = "n_shared_experts", nGroup = "n_group", topkGroup = "topk_group"
        case topkMethod = "topk_method", scoringFunc = "scoring_func", normTopkProb = "norm_topk_prob"
        case routedScalingFactor = "routed_scaling_factor", firstKDenseReplace = "first_k_dense_replace"
        case moeLayerFreq = "moe_layer_freq", mlpBias = "mlp_bias"
        case tieWordEmbeddings = "tie_word_embeddings", bosTokenId = "bos_token_id", eosTokenId = "eos_token_id"
    }

    /// Reads and validates `config.json` in a model folder.
    public static func load(from directory: URL) throws(ModelError) -> ModelConfig {
        let url = directory.appendingPathComponent("config.json")
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw .configNotFound(path: url.path)
        }
        let config: ModelConfig
        do { config = try JSONDecoder().decode(ModelConfig.self, from: data) } catch {
            throw .invalidConfigFile(path: url.path, reason: describeDecodingError(error))
        }
        try config.validate()
        return config
    }
}

/// `eos_token_id` is an int, a list of ints, or null in HF configs.
public struct TokenIDs: Codable, Sendable, Equatable {
    public var ids: [Int]
    public init(_ ids: [Int]) { self.ids = ids }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { ids = [] }
        else if let one = try? c.decode(Int.self) { ids = [one] }
        else { ids = try c.decode([Int].self) }
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        if ids.count == 1 { try c.encode(ids[0]) } else { try c.encode(ids) }
    }
}

/// Rotary-embedding parameters: `rope_parameters` (current transformers) or `rope_scaling`
/// (published checkpoints; `type` instead of `rope_type`, theta outside).
public struct RopeParameters: Codable, Sendable, Equatable {
    public var ropeType: String?
    public var type: String?
    public var ropeTheta: Double?
    public var factor: Double?
    public var originalMaxPositionEmbeddings: Int?
    public var betaFast: Double?
    public var betaSlow: Double?
    public var mscale: Double?
    public var mscaleAllDim: Double?
    public var attentionFactor: Double?
    public var truncate: Bool?

    enum CodingKeys: String, CodingKey {
        case ropeType = "rope_type", type, ropeTheta = "rope_theta", factor
        case originalMaxPositionEmbeddings = "original_max_position_embeddings"
        case betaFast = "beta_fast", betaSlow = "beta_slow", mscale, mscaleAllDim = "mscale_all_dim"
        case attentionFactor = "attention_factor", truncate
    }

    /// "default" or "yarn" (the only scaling DeepSeek checkpoints use).
    public var kind: String { ropeType ?? type ?? "default" }
}

// MARK: - Derived architecture (defaults follow transformers' config classes)

/// Which transformers implementation a checkpoint follows; it decides the router family.
public enum ModelFamily: String, Sendable {
    case deepseekV2 = "deepseek_v2"
    case deepseekV3 = "deepseek_v3"
}

extension ModelConfig {
    public var family: ModelFamily { ModelFamily(rawValue: modelType) ?? .deepseekV3 }
    var isV3: Bool { family == .deepseekV3 }
    public var isV3Family: Bool { isV3 }

    /// Query/key head size: the "nope" part decompressed from the latent plus the shared rope part.
    public var qkHeadDim: Int { qkNopeHeadDim + qkRopeHeadDim }
    public var eps: Float { Float(rmsNormEps ?? 1e-6) }
    public var routedExperts: Int { nRoutedExperts ?? 0 }
    public var expertsPerToken: Int { numExpertsPerTok ?? 0 }
    public var sharedExperts: Int { nSharedExperts ?? (isV3 ? 1 : 2) }
    public var expertIntermediateSize: Int { moeIntermediateSize ?? (isV3 ? 2048 : 1407) }
    public var groups: Int { nGroup ?? 1 }
    public var groupsKept: Int { topkGroup ?? groups }
    public var scalingFactor: Float { Float(routedScalingFactor ?? (isV3 ? 2.5 : 1.0)) }
    public var normalizesTopK: Bool { normTopkProb ?? isV3 }
    public var denseLayersFirst: Int { firstKDenseReplace ?? (isV3 ? 3 : 0) }
    public var hasAttentionBias: Bool { attentionBias ?? false }
    public var hasMLPBias: Bool { mlpBias ?? false }
    public var tiesEmbeddings: Bool { tieWordEmbeddings ?? false }
    public var eosTokens: [Int] { eosTokenId?.ids ?? [] }

    /// transformers' DeepseekV2 always rotates adjacent pairs (complex multiplication); V3 reads
    /// `rope_interleave` (default true).
    public var ropeLayout: RopeLayout {
        if family == .deepseekV2 { return .interleaved }
        return (ropeInterleave ?? true) ? .interleaved : .halfSplit
    }

    /// The effective rope parameters with theta folded in, whichever spelling the file used.
    public var rope: RopeParameters {
        var p = ropeParameters ?? ropeScaling ?? RopeParameters()
        if p.ropeTheta == nil { p.ropeTheta = ropeTheta ?? 10000 }
        return p
    }

    /// Whether decoder layer `layer` uses DeepSeekMoE (else the dense FFN). Follows transformers:
    /// V3 replaces every layer from `first_k_dense_replace` on (like DeepSeek's own reference,
    /// which has no `moe_layer_freq`); V2 also honours `moe_layer_freq`.
    public func isMoELayer(_ layer: Int) -> Bool {
        guard routedExperts > 0, layer >= denseLayersFirst else { return false }
        if family == .deepseekV2 { return layer % max(moeLayerFreq ?? 1, 1) == 0 }
        return true
    }

    /// Floats cached per token per layer by MLA: the normed latent and the rotated shared key.
    public var latentCacheWidth: Int { kvLoraRank + qkRopeHeadDim }

    /// Checks sizes and routing settings, naming the field and what was expected.
    public func validate() throws(ModelError) {
        guard ModelFamily(rawValue: modelType) != nil else {
            throw .invalidConfig(field: "model_type", reason: "'\(modelType)' is not supported (expected deepseek_v3 or deepseek_v2)")
        }
        let positive: [(String, Int?)] = [
            ("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
            ("num_hidden_layers", numHiddenLayers), ("num_attention_heads", numAttentionHeads),
            ("max_position_embeddings", maxPositionEmbeddings), ("kv_lora_rank", kvLoraRank),
            ("qk_rope_head_dim", qkRopeHeadDim), ("v_head_dim", vHeadDim), ("q_lora_rank", qLoraRank),
            ("moe_intermediate_size", moeIntermediateSize),
        ]
        for (field, value) in positive {
            if let v = value, v <= 0 { throw .invalidConfig(field: field, reason: "must be positive, got \(v)") }
        }
        guard qkNopeHeadDim >= 0 else { throw .invalidConfig(field: "qk_nope_head_dim", reason: "must be >= 0, got \(qkNopeHeadDim)") }
        guard qkRopeHeadDim % 2 == 0 else {
            throw .invalidConfig(field: "qk_rope_head_dim", reason: "must be even (rotary pairs), got \(qkRopeHeadDim)")
        }
        if let eps = rmsNormEps, !(eps > 0) { throw .invalidConfig(field: "rms_norm_eps", reason: "must be positive, got \(eps)") }
        if let act = hiddenAct, act != "silu" {
            throw .invalidConfig(field: "hidden_act", reason: "'\(act)' is not supported (expected silu)")
        }
        if let k = firstKDenseReplace, k < 0 { throw .invalidConfig(field: "first_k_dense_replace", reason: "must be >= 0, got \(k)") }
        if let f = moeLayerFreq, f <= 0 { throw .invalidConfig(field: "moe_layer_freq", reason: "must be positive, got \(f)") }
        for id in eosTokens where id < 0 || id >= vocabSize {
            throw .invalidConfig(field: "eos_token_id", reason: "\(id) is outside the vocabulary 0..<\(vocabSize)")
        }
        try validateRouting()
        try validateRope()
    }

    private func validateRouting() throws(ModelError) {
        guard let experts = nRoutedExperts, experts > 0 else { return }
        guard let k = numExpertsPerTok, k > 0 else {
            throw .invalidConfig(field: "num_experts_per_tok", reason: "must be positive when n_routed_experts is set")
        }
        guard k <= experts else {
            throw .invalidConfig(field: "num_experts_per_tok", reason: "\(k) is larger than n_routed_experts (\(experts))")
        }
        guard groups > 0, experts % groups == 0 else {
            throw .invalidConfig(field: "n_group", reason: "\(groups) groups do not divide \(experts) experts")
        }
        guard groupsKept > 0, groupsKept <= groups else {
            throw .invalidConfig(field: "topk_group", reason: "\(groupsKept) must be between 1 and n_group (\(groups))")
        }
        if let s = nSharedExperts, s < 0 { throw .invalidConfig(field: "n_shared_experts", reason: "must be >= 0, got \(s)") }
        if isV3 {
            // Each kept group contributes its top-2 score, so a group needs two experts.
            guard experts / groups >= 2 || groups == 1 else {
                throw .invalidConfig(field: "n_group", reason: "each group needs at least 2 experts for top-2 group scores")
            }
            guard k <= groupsKept * (experts / groups) else {
                throw .invalidConfig(field: "num_experts_per_tok", reason: "\(k) exceeds the experts in the \(groupsKept) kept groups")
            }
            if let f = scoringFunc, f != "sigmoid" {
                throw .invalidConfig(field: "scoring_func", reason: "deepseek_v3 routes with sigmoid scores, got '\(f)'")
            }
        } else {
            let method = topkMethod ?? "greedy"
            guard method == "greedy" || method == "group_limited_greedy" else {
                throw .invalidConfig(field: "topk_method", reason: "'\(method)' is not supported for deepseek_v2 (expected greedy or group_limited_greedy)")
            }
            if method == "group_limited_greedy", k > groupsKept * (experts / groups) {
                throw .invalidConfig(field: "num_experts_per_tok", reason: "\(k) exceeds the experts in the \(groupsKept) kept groups")
            }
            if let f = scoringFunc, f != "softmax" {
                throw .invalidConfig(field: "scoring_func", reason: "deepseek_v2 routes with softmax scores, got '\(f)'")
            }
        }
    }

    private func validateRope() throws(ModelError) {
        let p = rope
        guard let theta = p.ropeTheta, theta > 0 else {
            throw .invalidConfig(field: "rope_theta", reason: "must be positive")
        }
        switch p.kind {
        case "default":
            break
        case "yarn":
            guard let f = p.factor, f > 0 else { throw .invalidConfig(field: "rope_scaling.factor", reason: "yarn needs a positive factor") }
            guard let o = p.originalMaxPositionEmbeddings, o > 0 else {
                throw .invalidConfig(field: "rope_scaling.original_max_position_embeddings", reason: "yarn needs a positive value")
            }
        default:
            throw .invalidConfig(field: "rope_scaling.type", reason: "'\(p.kind)' is not supported (expected default or yarn)")
        }
    }
}

/// Turns a DecodingError into "field 'x': expected Int" rather than Foundation's debug dump.
public func describeDecodingError(_ error: any Error) -> String {
    guard let e = error as? DecodingError else { return "\(error)" }
    func path(_ ctx: DecodingError.Context) -> String {
        let p = ctx.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        return p.isEmpty ? "top level" : "field '\(p)'"
    }
    switch e {
    case let .keyNotFound(key, ctx):
        let parent = ctx.codingPath.isEmpty ? "" : " in \(path(ctx))"
        return "missing field '\(key.stringValue)'\(parent)"
    case let .typeMismatch(type, ctx): return "\(path(ctx)): expected \(type)"
    case let .valueNotFound(type, ctx): return "\(path(ctx)): expected \(type), found null"
    case let .dataCorrupted(ctx): return "\(path(ctx)): \(ctx.debugDescription)"
    @unknown default: return "\(error)"
    }
}
