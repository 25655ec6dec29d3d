import Foundation
import Testing
import TinySeek
import TinySeekRuntime

@Suite("ArchitectureSpec: real-scale configs and typed errors")
struct ArchitectureSpecTests {
    /// Published totals (model cards) within 2% (Kimi-K2's "1T" within 5%), and the layer layout.
    @Test(arguments: [
        ("deepseek-v3", 671e9, 37e9, 61, 58),
        ("deepseek-v2", 236e9, 21e9, 60, 59),
        ("deepseek-v2-lite", 15.7e9, 2.4e9, 27, 26),
        ("kimi-k2", 1.0e12, 32e9, 61, 60),
        ("llama-4-maverick", 400e9, 17e9, 48, 24),
        ("qwen3-235b-a22b", 235e9, 22e9, 94, 94),
        ("llama-3-70b", 70.6e9, 70.6e9, 80, 0),
        ("gpt-3", 175e9, 175e9, 96, 0),
    ])
    func realConfigs(name: String, total: Double, active: Double, layers: Int, moeLayers: Int) throws {
        let spec = try AnalysisRepo.spec(name)
        let p = ParameterCount(spec)
        expectRelative(p.total, total, within: name == "kimi-k2" ? 0.05 : 0.02, "\(name) parameters")
        // Active counts differ by what model cards include (embeddings): 12%.
        expectRelative(p.activePerToken, active, within: 0.12, "\(name) active parameters")
        #expect(spec.layers == layers && spec.moeLayerCount == moeLayers)
    }

    @Test func layerLayouts() throws {
        let v3 = try AnalysisRepo.spec("deepseek-v3")
        #expect((0..<3).allSatisfy { !v3.isMoE(layer: $0) } && (3..<61).allSatisfy { v3.isMoE(layer: $0) })
        #expect(v3.experts == .init(routed: 256, perToken: 8, intermediate: 2048, sharedIntermediate: 2048))
        #expect(v3.attention == .latent(.init(qLoraRank: 1536, kvLoraRank: 512, nopeHeadDim: 128, ropeHeadDim: 64, vHeadDim: 128)))
        // Kimi-K2 is DeepSeek-V3's architecture with 384 experts and 64 heads.
        let kimi = try AnalysisRepo.spec("kimi-k2")
        #expect(kimi.modelType == "kimi_k2" && kimi.heads == 64 && kimi.experts?.routed == 384 && !kimi.isMoE(layer: 0))
        // V2-Lite: direct q_proj, two shared experts fused.
        let lite = try AnalysisRepo.spec("deepseek-v2-lite")
        #expect(lite.experts?.sharedIntermediate == 2 * 1408)
        if case let .latent(m) = lite.attention { #expect(m.qLoraRank == nil) } else { Issue.record("V2-Lite is MLA") }
        // Llama-4-Maverick: MoE on odd layers (interleave step 2), 1 routed of 128 + a shared expert;
        // every 4th layer NoPE and global, the others rotary and chunked at 8192.
        let maverick = try AnalysisRepo.spec("llama-4-maverick")
        #expect((0..<48).map { maverick.isMoE(layer: $0) } == (0..<48).map { $0 % 2 == 1 })
        #expect(maverick.experts == .init(routed: 128, perToken: 1, intermediate: 8192, sharedIntermediate: 8192))
        #expect(maverick.denseIntermediate == 16384)
        guard case let .grouped(g) = maverick.attention else { Issue.record("Maverick is GQA"); return }
        #expect(g.kvHeads == 8 && g.headDim == 128 && g.chunkSize == 8192)
        #expect(g.ropeLayers[3] == false && g.chunkedLayers[3] == false && g.chunkedLayers[0] && g.ropeLayers[0])
        #expect(maverick.attendedPositions(layer: 0, context: 100_000) == 8192)
        #expect(maverick.attendedPositions(layer: 3, context: 100_000) == 100_000)
        // Qwen3: every layer sparse, 4 KV heads, no shared expert.
        let qwen = try AnalysisRepo.spec("qwen3-235b-a22b")
        #expect(qwen.experts?.sharedIntermediate == 0)
        if case let .grouped(q) = qwen.attention { #expect(q.kvHeads == 4 && q.headDim == 128) }
        // GPT-3: MHA with 96 heads of 128, a plain 4·d MLP, learned positions, tied embeddings.
        let gpt3 = try AnalysisRepo.spec("gpt-3")
        #expect(gpt3.feedForward == .plain && gpt3.denseIntermediate == 49152 && gpt3.tiedEmbeddings && gpt3.learnedPositions)
        if case let .grouped(m) = gpt3.attention { #expect(m.kvHeads == 96 && m.headDim == 128 && !m.ropeLayers.contains(true)) }
    }

    /// A DeepSeek config goes through TinySeek's ModelConfig: the analyser's layer rule is the executor's.
    @Test(arguments: ["deepseek-v3-tiny", "deepseek-v2-lite-tiny", "deepseek-v2-tiny-group"])
    func toyConfigsMatchModelConfig(name: String) throws {
        let url = AnalysisRepo.model(name)
        let spec = try ArchitectureSpec.load(from: url)
        let config = try ModelConfig.load(from: url)
        #expect(spec == ArchitectureSpec(modelConfig: config))
        #expect(spec.moeLayers == (0..<config.numHiddenLayers).map { config.isMoELayer($0) })
    }

    static let llama = """
    {"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
     "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 100}
    """

    func decode(_ json: String) throws -> ArchitectureSpec { try ArchitectureSpec.decode(Data(json.utf8)) }

    func edited(_ change: (inout [String: Any]) -> Void) throws -> String {
        var object = try #require(try JSONSerialization.jsonObject(with: Data(Self.llama.utf8)) as? [String: Any])
        change(&object)
        return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    @Test func errorsNameTheField() throws {
        #expect(try decode(Self.llama).heads == 4)
        #expect(throws: AnalysisError.unsupportedModelType("bert")) { try decode(edited { $0["model_type"] = "bert" }) }
        #expect(throws: AnalysisError.invalidConfig(field: "hidden_size", reason: "missing")) {
            try decode(edited { $0["hidden_size"] = nil })
        }
        #expect(throws: AnalysisError.invalidConfig(field: "num_key_value_heads", reason: "3 does not divide num_attention_heads 4")) {
            try decode(edited { $0["num_key_value_heads"] = 3 })
        }
        #expect(throws: AnalysisError.invalidConfig(field: "num_hidden_layers", reason: "must be positive, got 0")) {
            try decode(edited { $0["num_hidden_layers"] = 0 })
        }
        #expect(throws: AnalysisError.invalidConfig(field: "vocab_size", reason: "expected an integer, got 1.5")) {
            try decode(edited { $0["vocab_size"] = 1.5 })
        }
        #expect(throws: AnalysisError.invalidConfigFile(path: "config.json", reason: "not valid JSON")) { try decode("{") }
        #expect(throws: AnalysisError.invalidConfigFile(path: "config.json", reason: "expected a JSON object")) { try decode("[1]") }
        // DeepSeek configs are validated by ModelConfig, which names the field too.
        var v3 = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: AnalysisRepo.config("deepseek-v3"))) as? [String: Any])
        v3["num_experts_per_tok"] = 300
        let bad = try JSONSerialization.data(withJSONObject: v3)
        #expect(throws: AnalysisError.invalidConfig(field: "num_experts_per_tok", reason: "300 is larger than n_routed_experts (256)")) {
            try ArchitectureSpec.decode(bad)
        }
        let missing = AnalysisRepo.root.appendingPathComponent("Models/configs/no-such-model.json")
        #expect(throws: AnalysisError.configNotFound(path: missing.path)) { try ArchitectureSpec.load(from: missing) }
        #expect(AnalysisError.unsupportedModelType("bert").description.contains("deepseek_v3"))
    }
}
