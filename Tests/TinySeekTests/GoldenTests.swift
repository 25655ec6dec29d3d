import Foundation
import Testing
@testable import TinySeek

/// The decoder against Hugging Face transformers' logits and greedy continuations, for every
/// shipped toy model, in every execution mode. Float32 weights: max abs logit diff <= 1e-4.
@Suite struct GoldenTests {
    static let tolerance: Float = 1e-4

    @Test("prefill logits match transformers at every position", arguments: GoldenFile.models, AttentionOrder.allCases)
    func prefill(model name: String, order: AttentionOrder) throws {
        let model = try Models.load(name)
        let golden = try GoldenFile.load(name)
        for (i, c) in golden.cases.enumerated() {
            let session = model.makeSession(capacity: c.prompt.count)
            session.options.attention = order
            let logits = try session.forward(c.prompt, allLogits: true)
            #expect(logits.shape == [c.prompt.count, model.config.vocabSize])
            for (t, row) in c.logits.enumerated() {
                expectClose(logits.row(t).scalars, row, tolerance: Self.tolerance,
                            "\(name) case \(i) position \(t) (\(order) prefill)")
            }
        }
    }

    @Test("token-by-token decode matches transformers", arguments: GoldenFile.models, [AttentionOrder.naive, .absorbed])
    func decode(model name: String, order: AttentionOrder) throws {
        let model = try Models.load(name)
        let golden = try GoldenFile.load(name)
        for (i, c) in golden.cases.enumerated() {
            let session = model.makeSession(capacity: c.prompt.count)
            session.options.attention = order
            for (t, token) in c.prompt.enumerated() {
                let logits = try session.forward([token])
                expectClose(logits.scalars, c.logits[t], tolerance: Self.tolerance,
                            "\(name) case \(i) position \(t) (\(order) decode)")
            }
            #expect(session.cache.count == c.prompt.count)
        }
    }

    @Test("greedy continuation equals transformers'", arguments: GoldenFile.models)
    func greedy(model name: String) throws {
        let model = try Models.load(name)
        let golden = try GoldenFile.load(name)
        for c in golden.cases {
            let session = model.makeSession(capacity: c.prompt.count + c.greedy.count)
            let result = try session.generate(prompt: c.prompt, maxTokens: c.greedy.count, stopAtEOS: false)
            #expect(result.tokens == c.greedy, "\(name) prompt \(c.prompt)")
        }
    }

    @Test("naive and absorbed orders agree; grouped and per-token experts agree", arguments: GoldenFile.models)
    func executionModesAgree(model name: String) throws {
        let model = try Models.load(name)
        let prompt = try GoldenFile.load(name).cases.map(\.prompt).max { $0.count < $1.count } ?? [1]
        func run(_ order: AttentionOrder, _ experts: ExpertExecution) throws -> [Float] {
            let s = model.makeSession(capacity: prompt.count)
            s.options.attention = order
            s.options.experts = experts
            return try s.forward(prompt, allLogits: true).scalars
        }
        let reference = try run(.naive, .perToken)
        expectClose(try run(.absorbed, .perToken), reference, tolerance: 1e-5, "\(name): absorbed vs naive")
        expectClose(try run(.naive, .grouped), reference, tolerance: 1e-5, "\(name): grouped vs per-token experts")
        expectClose(try run(.absorbed, .grouped), reference, tolerance: 1e-5, "\(name): absorbed+grouped vs naive+per-token")
    }

    @Test("the latent cache holds kv_lora_rank + qk_rope_head_dim floats per token per layer", arguments: GoldenFile.models)
    func latentCacheSize(model name: String) throws {
        let model = try Models.load(name)
        let c = model.config
        let session = model.makeSession(capacity: 10)
        #expect(session.cache.width == c.kvLoraRank + c.qkRopeHeadDim)
        #expect(session.cache.storage.count == c.numHiddenLayers * 10 * (c.kvLoraRank + c.qkRopeHeadDim))
        #expect(session.cache.bytesPerToken == c.numHiddenLayers * (c.kvLoraRank + c.qkRopeHeadDim) * 4)
    }
}
