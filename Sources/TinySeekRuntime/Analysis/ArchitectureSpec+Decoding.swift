import Foundation
import TinySeek

/// Reading `config.json` files of the architectures the analyser understands.
///
/// | model_type                              | attention | MLP                                                      |
/// | deepseek_v3, deepseek_v2, kimi_k2       | MLA       | DeepSeekMoE via TinySeek's `ModelConfig` (first_k_dense_replace, moe_layer_freq) |
/// | llama, mistral, qwen2, qwen3            | GQA       | dense SwiGLU                                             |
/// | mixtral                                 | GQA       | MoE on every layer (num_local_experts)                   |
/// | qwen2_moe, qwen3_moe                    | GQA       | MoE every decoder_sparse_step, except mlp_only_layers    |
/// | llama4 (text_config), llama4_text       | GQA       | MoE on moe_layers / every interleave_moe_layer_step, + shared expert; NoPE and chunked layers |
/// | gpt3, gpt2                              | MHA       | dense GELU MLP, learned positions, tied embeddings       |
///
/// Not modelled: biases (Cost.linear has no bias term), Qwen3's per-head q/k RMSNorm and
/// Llama-4's attention temperature tuning (each well under 0.1% of a layer's FLOPs and bytes).
extension ArchitectureSpec {
    public static let supportedModelTypes = [
        "deepseek_v3", "deepseek_v2", "kimi_k2", "llama", "mistral", "qwen2", "qwen3", "mixtral",
        "qwen2_moe", "qwen3_moe", "llama4", "llama4_text", "gpt3", "gpt2",
    ]

    /// Reads a config file (a model folder's `config.json`, or a `.json` file itself).
    public static func load(from url: URL) throws(AnalysisError) -> ArchitectureSpec {
        var isDirectory: ObjCBool = false
        let file = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
            ? url.appendingPathComponent("config.json") : url
        let data: Data
        do { data = try Data(contentsOf: file) } catch { throw .configNotFound(path: file.path) }
        return try decode(data, path: file.path)
    }

    /// Decodes config JSON; `path` only labels errors.
    public static func decode(_ data: Data, path: String = "config.json") throws(AnalysisError) -> ArchitectureSpec {
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: data) } catch {
            throw .invalidConfigFile(path: path, reason: "not valid JSON")
        }
        guard let object = json as? [String: Any] else { throw .invalidConfigFile(path: path, reason: "expected a JSON object") }
        let fields = ConfigFields(object)
        guard let type = try fields.string("model_type") else { throw .invalidConfig(field: "model_type", reason: "missing") }
        switch type {
        case "deepseek_v3", "deepseek_v2", "kimi_k2":
            return try deepSeek(data, path: path)
        case "llama", "mistral", "qwen2", "qwen3", "mixtral", "qwen2_moe", "qwen3_moe", "llama4_text":
            return try grouped(fields, type: type)
        case "llama4":
            guard let text = try fields.object("text_config") else {
                throw .invalidConfig(field: "text_config", reason: "llama4 configs keep the decoder in text_config")
            }
            var spec = try grouped(text, type: "llama4_text")
            spec.modelType = "llama4"
            return spec
        case "gpt3", "gpt2":
            return try gpt(fields, type: type)
        default:
            throw .unsupportedModelType(type)
        }
    }

    /// DeepSeek-V2/V3 (and Kimi-K2, a DeepSeek-V3 architecture) through TinySeek's `ModelConfig`,
    /// so every default and the dense/MoE layer rule are the executor's own.
    static func deepSeek(_ data: Data, path: String) throws(AnalysisError) -> ArchitectureSpec {
        var config: ModelConfig
        do { config = try JSONDecoder().decode(ModelConfig.self, from: data) } catch {
            throw .invalidConfigFile(path: path, reason: describeDecoding(error))
        }
        let declared = config.modelType
        if declared == "kimi_k2" { config.modelType = ModelFamily.deepseekV3.rawValue }
        do { try config.validate() } catch {
            if case let .invalidConfig(field, reason) = error { throw .invalidConfig(field: field, reason: reason) }
            throw .invalidConfigFile(path: path, reason: error.description)
        }
        var spec = ArchitectureSpec(modelConfig: config)
        spec.modelType = declared
        return spec
    }

    /// The architecture of a TinySeek `ModelConfig`: what the executor runs, layer for layer.
    public init(modelConfig c: ModelConfig) {
        let experts = c.routedExperts > 0
            ? Experts(routed: c.routedExperts, perToken: c.expertsPerToken, intermediate: c.expertIntermediateSize,
                      sharedIntermediate: c.expertIntermediateSize * c.sharedExperts)
            : nil
        self.init(modelType: c.modelType, layers: c.numHiddenLayers, hidden: c.hiddenSize, heads: c.numAttentionHeads,
                  vocab: c.vocabSize, maxPositions: c.maxPositionEmbeddings,
                  attention: .latent(LatentAttention(qLoraRank: c.qLoraRank, kvLoraRank: c.kvLoraRank,
                                                     nopeHeadDim: c.qkNopeHeadDim, ropeHeadDim: c.qkRopeHeadDim,
                                                     vHeadDim: c.vHeadDim)),
                  denseIntermediate: c.intermediateSize, experts: experts,
                  moeLayers: (0..<c.numHiddenLayers).map { c.isMoELayer($0) }, tiedEmbeddings: c.tiesEmbeddings)
    }

    /// Llama / Mistral / Qwen / Mixtral / Llama-4 text decoders: GQA, SwiGLU, optional MoE.
    static func grouped(_ f: ConfigFields, type: String) throws(AnalysisError) -> ArchitectureSpec {
        let layers = try f.positive("num_hidden_layers")
        let hidden = try f.positive("hidden_size")
        let heads = try f.positive("num_attention_heads")
        let kvHeads = try f.positiveIfPresent("num_key_value_heads") ?? heads
        guard heads % kvHeads == 0 else {
            throw .invalidConfig(field: "num_key_value_heads", reason: "\(kvHeads) does not divide num_attention_heads \(heads)")
        }
        let headDim = try f.positiveIfPresent("head_dim") ?? hidden / heads
        guard headDim > 0 else { throw .invalidConfig(field: "head_dim", reason: "hidden_size / num_attention_heads is 0") }
        if let act = try f.string("hidden_act"), act != "silu" {
            throw .invalidConfig(field: "hidden_act", reason: "'\(act)' is not supported for \(type) (expected silu)")
        }

        // Llama-4: NoPE layers (no_rope_layers[l] == 0) attend globally; the others rotate and
        // attend within attention_chunk_size.
        var ropeLayers = Array(repeating: true, count: layers)
        var chunkedLayers = Array(repeating: false, count: layers)
        var chunk: Int?
        if type == "llama4_text" {
            if let flags = try f.intArray("no_rope_layers") {
                guard flags.count == layers else {
                    throw .invalidConfig(field: "no_rope_layers", reason: "has \(flags.count) entries for \(layers) layers")
                }
                ropeLayers = flags.map { $0 != 0 }
            }
            chunk = try f.positiveIfPresent("attention_chunk_size")
            if chunk != nil { chunkedLayers = ropeLayers }
        }
        let attention = GroupedAttention(kvHeads: kvHeads, headDim: headDim, ropeLayers: ropeLayers,
                                         chunkSize: chunk, chunkedLayers: chunkedLayers)

        var denseIntermediate = try f.positive("intermediate_size")
        var experts: Experts?
        var moeLayers = Array(repeating: false, count: layers)
        switch type {
        case "mixtral":
            let e = try f.positive("num_local_experts"), k = try f.positive("num_experts_per_tok")
            experts = Experts(routed: e, perToken: k, intermediate: denseIntermediate, sharedIntermediate: 0)
            moeLayers = Array(repeating: true, count: layers)
        case "qwen2_moe", "qwen3_moe":
            let e = try f.positive("num_experts"), k = try f.positive("num_experts_per_tok")
            let width = try f.positive("moe_intermediate_size")
            let shared = try f.int("shared_expert_intermediate_size") ?? 0
            experts = Experts(routed: e, perToken: k, intermediate: width, sharedIntermediate: max(shared, 0))
            // transformers: layer l is sparse unless listed in mlp_only_layers, when
            // num_experts > 0 and (l + 1) % decoder_sparse_step == 0.
            let step = try f.positiveIfPresent("decoder_sparse_step") ?? 1
            let mlpOnly = Set(try f.intArray("mlp_only_layers") ?? [])
            moeLayers = (0..<layers).map { !mlpOnly.contains($0) && ($0 + 1) % step == 0 }
        case "llama4_text":
            let e = try f.positive("num_local_experts"), k = try f.positive("num_experts_per_tok")
            // The experts and the shared expert are intermediate_size wide; dense layers use
            // intermediate_size_mlp.
            let width = denseIntermediate
            denseIntermediate = try f.positiveIfPresent("intermediate_size_mlp") ?? width
            experts = Experts(routed: e, perToken: k, intermediate: width, sharedIntermediate: width)
            if let listed = try f.intArray("moe_layers") {
                for l in listed {
                    guard (0..<layers).contains(l) else { throw .invalidConfig(field: "moe_layers", reason: "layer \(l) out of range") }
                    moeLayers[l] = true
                }
            } else {
                let step = try f.positiveIfPresent("interleave_moe_layer_step") ?? 1
                for l in stride(from: step - 1, to: layers, by: step) { moeLayers[l] = true }
            }
        default:
            break
        }
        if let e = experts, e.perToken > e.routed {
            throw .invalidConfig(field: "num_experts_per_tok", reason: "\(e.perToken) is larger than the \(e.routed) experts")
        }
        return ArchitectureSpec(
            modelType: type, layers: layers, hidden: hidden, heads: heads, vocab: try f.positive("vocab_size"),
            maxPositions: try f.positiveIfPresent("max_position_embeddings") ?? 4096,
            attention: .grouped(attention), denseIntermediate: denseIntermediate, experts: experts,
            moeLayers: moeLayers, tiedEmbeddings: try f.bool("tie_word_embeddings") ?? false)
    }

    /// GPT-2/GPT-3: MHA, learned positions, a GELU MLP (4·d unless n_inner), tied embeddings.
    /// Accepts GPT-2's HF keys (n_embd, n_layer, n_head, n_inner, n_positions) or the Llama-style
    /// names. GPT-3's alternating locally banded sparse layers are not modelled: every layer is dense.
    static func gpt(_ f: ConfigFields, type: String) throws(AnalysisError) -> ArchitectureSpec {
        let layers = try f.positive("n_layer", or: "num_hidden_layers")
        let hidden = try f.positive("n_embd", or: "hidden_size")
        let heads = try f.positive("n_head", or: "num_attention_heads")
        guard hidden % heads == 0 else {
            throw .invalidConfig(field: "n_head", reason: "\(heads) heads do not divide n_embd \(hidden)")
        }
        var inner = 4 * hidden, positions = 2048
        if let v = try f.positiveIfPresent("n_inner") { inner = v } else if let v = try f.positiveIfPresent("intermediate_size") { inner = v }
        if let v = try f.positiveIfPresent("n_positions") { positions = v }
        else if let v = try f.positiveIfPresent("max_position_embeddings") { positions = v }
        return ArchitectureSpec(
            modelType: type, layers: layers, hidden: hidden, heads: heads, vocab: try f.positive("vocab_size"),
            maxPositions: positions,
            attention: .grouped(GroupedAttention(kvHeads: heads, headDim: hidden / heads,
                                                 ropeLayers: Array(repeating: false, count: layers),
                                                 chunkedLayers: Array(repeating: false, count: layers))),
            feedForward: .plain, denseIntermediate: inner, tiedEmbeddings: try f.bool("tie_word_embeddings") ?? true,
            learnedPositions: true)
    }
}

/// Typed reads from a JSON object that name the field in every error.
struct ConfigFields {
    let object: [String: Any]

    init(_ object: [String: Any]) { self.object = object }

    private func value(_ key: String) -> Any? {
        guard let v = object[key], !(v is NSNull) else { return nil }
        return v
    }

    func int(_ key: String) throws(AnalysisError) -> Int? {
        guard let v = value(key) else { return nil }
        guard let n = v as? NSNumber, !isJSONBoolean(v), n.doubleValue.rounded() == n.doubleValue, abs(n.doubleValue) < 1e15 else {
            throw .invalidConfig(field: key, reason: "expected an integer, got \(v)")
        }
        return n.intValue
    }

    func positiveIfPresent(_ key: String) throws(AnalysisError) -> Int? {
        guard let v = try int(key) else { return nil }
        guard v > 0 else { throw .invalidConfig(field: key, reason: "must be positive, got \(v)") }
        return v
    }

    func positive(_ key: String) throws(AnalysisError) -> Int {
        guard let v = try positiveIfPresent(key) else { throw .invalidConfig(field: key, reason: "missing") }
        return v
    }

    /// The first of two spellings present (e.g. GPT-2's n_embd or hidden_size).
    func positive(_ key: String, or other: String) throws(AnalysisError) -> Int {
        if let v = try positiveIfPresent(key) { return v }
        guard let v = try positiveIfPresent(other) else { throw .invalidConfig(field: key, reason: "missing (nor \(other))") }
        return v
    }

    func bool(_ key: String) throws(AnalysisError) -> Bool? {
        guard let v = value(key) else { return nil }
        guard isJSONBoolean(v), let b = v as? Bool else {
            throw .invalidConfig(field: key, reason: "expected true or false, got \(v)")
        }
        return b
    }

    func string(_ key: String) throws(AnalysisError) -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v as? String else { throw .invalidConfig(field: key, reason: "expected a string, got \(v)") }
        return s
    }

    func intArray(_ key: String) throws(AnalysisError) -> [Int]? {
        guard let v = value(key) else { return nil }
        guard let items = v as? [Any] else { throw .invalidConfig(field: key, reason: "expected a list of integers") }
        var out: [Int] = []
        for (i, item) in items.enumerated() {
            guard let n = item as? NSNumber, !isJSONBoolean(item), n.doubleValue.rounded() == n.doubleValue else {
                throw .invalidConfig(field: "\(key)[\(i)]", reason: "expected an integer, got \(item)")
            }
            out.append(n.intValue)
        }
        return out
    }

    /// JSONSerialization gives true/false as an NSNumber subclass, and `is Bool` also holds for
    /// the numbers 0 and 1, so booleans are told apart by their class.
    private func isJSONBoolean(_ v: Any) -> Bool {
        v is NSNumber && String(describing: type(of: v)).contains("Boolean")
    }

    func object(_ key: String) throws(AnalysisError) -> ConfigFields? {
        guard let v = value(key) else { return nil }
        guard let o = v as? [String: Any] else { throw .invalidConfig(field: key, reason: "expected a JSON object") }
        return ConfigFields(o)
    }
}
