import Foundation
import Testing
@testable import TinySeek

@Suite struct ConfigTests {
    /// A minimal valid V3 config as a JSON dictionary, edited per test.
    nonisolated(unsafe) static let base: [String: Any] = [
        "model_type": "deepseek_v3", "vocab_size": 32, "hidden_size": 16, "intermediate_size": 32,
        "moe_intermediate_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
        "max_position_embeddings": 64, "q_lora_rank": 8, "kv_lora_rank": 8, "qk_nope_head_dim": 4,
        "qk_rope_head_dim": 4, "v_head_dim": 4, "n_routed_experts": 8, "num_experts_per_tok": 2,
        "n_group": 4, "topk_group": 2, "first_k_dense_replace": 1, "rope_theta": 10000.0,
    ]

    static func decode(_ edits: [String: Any?]) throws -> ModelConfig {
        var dict = base
        for (k, v) in edits { dict[k] = v ?? NSNull() }
        let data = try JSONSerialization.data(withJSONObject: dict)
        let config = try JSONDecoder().decode(ModelConfig.self, from: data)
        try config.validate()
        return config
    }

    @Test func optionalFieldsStayOptional() throws {
        let c = try Self.decode(["q_lora_rank": nil, "rope_scaling": nil])
        #expect(c.qLoraRank == nil)
        #expect(c.rope.kind == "default")
        #expect(c.ropeLayout == .interleaved)          // V3 default rope_interleave = true
        #expect(c.normalizesTopK)                      // V3 default norm_topk_prob = true
        #expect(c.latentCacheWidth == 12)
        #expect(!c.isMoELayer(0) && c.isMoELayer(1))
    }

    @Test func classicRopeScalingAndRopeParametersMeanTheSame() throws {
        let classic = try Self.decode(["rope_theta": 5000.0, "rope_scaling": [
            "type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16, "mscale": 0.707, "mscale_all_dim": 0.707,
        ]])
        let modern = try Self.decode(["rope_theta": nil, "rope_parameters": [
            "rope_type": "yarn", "rope_theta": 5000.0, "factor": 4.0, "original_max_position_embeddings": 16,
            "mscale": 0.707, "mscale_all_dim": 0.707,
        ]])
        let a = RotaryEmbedding(config: classic), b = RotaryEmbedding(config: modern)
        #expect(a.inverseFrequencies == b.inverseFrequencies)
        #expect(a.softmaxScale == b.softmaxScale && a.attentionFactor == b.attentionFactor)
        // YaRN with mscale == mscale_all_dim: attention factor 1, softmax scale corrected by mscale².
        #expect(a.attentionFactor == 1)
        let m = 0.1 * 0.707 * log(4.0) + 1
        #expect(abs(Double(a.softmaxScale) - m * m / sqrt(8.0)) < 1e-6)
    }

    @Test func eosTokenIdMayBeAList() throws {
        #expect(try Self.decode(["eos_token_id": [1, 2]]).eosTokens == [1, 2])
        #expect(try Self.decode(["eos_token_id": 3]).eosTokens == [3])
        #expect(try Self.decode(["eos_token_id": nil]).eosTokens == [])
    }

    /// (edit, the config field the error must name)
    nonisolated(unsafe) static let invalid: [([String: Any?], String)] = [
        (["model_type": "llama"], "model_type"),
        (["hidden_size": 0], "hidden_size"),
        (["num_hidden_layers": -1], "num_hidden_layers"),
        (["kv_lora_rank": 0], "kv_lora_rank"),
        (["qk_rope_head_dim": 3], "qk_rope_head_dim"),
        (["num_experts_per_tok": 9], "num_experts_per_tok"),
        (["n_group": 3], "n_group"),
        (["topk_group": 5], "topk_group"),
        (["num_experts_per_tok": 5, "topk_group": 1], "num_experts_per_tok"),
        (["rope_scaling": ["type": "dynamic", "factor": 2.0]], "rope_scaling.type"),
        (["rope_scaling": ["type": "yarn", "factor": 2.0]], "rope_scaling.original_max_position_embeddings"),
        (["eos_token_id": 99], "eos_token_id"),
        (["hidden_act": "gelu"], "hidden_act"),
        (["model_type": "deepseek_v2", "topk_method": "noaux_tc"], "topk_method"),
    ]

    @Test("invalid values are errors naming the field", arguments: 0..<invalid.count)
    func invalidConfig(index: Int) throws {
        let (edit, field) = Self.invalid[index]
        do {
            _ = try Self.decode(edit)
            Issue.record("expected an error for \(edit)")
        } catch let error as ModelError {
            guard case let .invalidConfig(f, _) = error else { Issue.record("wrong error \(error)"); return }
            #expect(f == field, "\(error)")
        }
    }

    @Test func missingOrMistypedFieldsAreNamed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tinyseek-config-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: ModelError.configNotFound(path: dir.appendingPathComponent("config.json").path)) {
            try ModelConfig.load(from: dir)
        }
        var dict = Self.base
        dict["hidden_size"] = "big"
        try JSONSerialization.data(withJSONObject: dict).write(to: dir.appendingPathComponent("config.json"))
        do { _ = try ModelConfig.load(from: dir); Issue.record("expected an error") } catch {
            #expect(error.description.contains("hidden_size"), "\(error)")
        }
        dict = Self.base
        dict.removeValue(forKey: "kv_lora_rank")
        try JSONSerialization.data(withJSONObject: dict).write(to: dir.appendingPathComponent("config.json"))
        do { _ = try ModelConfig.load(from: dir); Issue.record("expected an error") } catch {
            #expect(error.description.contains("kv_lora_rank"), "\(error)")
        }
    }
}
