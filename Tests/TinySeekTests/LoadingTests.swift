import Foundation
import Testing
@testable import TinySeek

/// A checkpoint with tensors removed, replaced or added, to test what loading rejects.
struct EditedSource: WeightSource {
    let base: SafetensorsCheckpoint
    var removed: Set<String> = []
    var extra: [String: Tensor] = [:]

    var tensorNames: [String] { base.tensorNames.filter { !removed.contains($0) } + extra.keys.sorted() }
    func shape(of name: String) throws -> [Int] { try extra[name]?.shape ?? base.info(name).shape }
    func float32(_ name: String) throws -> Tensor { try extra[name] ?? base.tensor(name) }
}

@Suite struct LoadingTests {
    static let name = "deepseek-v3-tiny"

    func source() throws -> (EditedSource, ModelConfig) {
        let dir = Repo.model(Self.name)
        return (EditedSource(base: try SafetensorsCheckpoint(directory: dir)), try ModelConfig.load(from: dir))
    }

    @Test func f32WeightsAreZeroCopy() throws {
        let model = try Models.load(Self.name)
        #expect(model.weights.embedding.isBorrowed && model.weights.embedding.format == .f32)
        #expect(model.weights.layers[0].attention.kvB.weight.isBorrowed)
    }

    /// BF16 linear weights and the embedding stay BF16 in the mapping (the kernels widen them);
    /// only small tensors (norms, router) become float32 at load.
    @Test func bf16WeightsStayBF16InPlace() throws {
        let model = try Models.load("deepseek-v3-tiny-bf16")
        let w = model.weights
        #expect(w.embedding.format == .bf16 && w.embedding.isBorrowed)
        #expect(w.lmHead.weight.format == .bf16 && w.lmHead.weight.isBorrowed)
        #expect(w.layers[0].attention.kvB.weight.format == .bf16 && w.layers[0].attention.kvB.weight.isBorrowed)
        guard case let .moe(moe) = w.layers[1].mlp else { Issue.record("layer 1 should be MoE"); return }
        #expect(moe.experts[0].down.weight.format == .bf16 && moe.experts[0].down.weight.isBorrowed)
        #expect(moe.experts[0].down.weightBytes == 2)
    }

    /// `--no-mmap`: the same bytes read into memory give the same logits, bit for bit.
    @Test(arguments: ["deepseek-v3-tiny", "deepseek-v3-tiny-bf16"])
    func residentWeightsMatchMapped(name: String) throws {
        let mapped = try Model.load(from: Repo.model(name))
        let resident = try Model.load(from: Repo.model(name), residency: .resident)
        #expect(resident.fileBytes == mapped.fileBytes)
        let prompt = [5, 66, 129, 200]
        let a = try mapped.makeSession(capacity: 8).forward(prompt)
        let b = try resident.makeSession(capacity: 8).forward(prompt)
        #expect(Array(a.buffer) == Array(b.buffer))
    }

    @Test func missingTensorIsNamed() throws {
        var (s, c) = try source()
        s.removed = ["model.layers.1.self_attn.kv_b_proj.weight"]
        #expect(throws: ModelError.missingTensor(name: "model.layers.1.self_attn.kv_b_proj.weight")) {
            try ModelWeights.load(from: s, config: c)
        }
    }

    @Test func misshapenTensorIsNamed() throws {
        var (s, c) = try source()
        s.extra = ["model.norm.weight": Tensor(zeros: [c.hiddenSize + 1])]
        #expect(throws: ModelError.tensorShape(name: "model.norm.weight", expected: [c.hiddenSize], got: [c.hiddenSize + 1])) {
            try ModelWeights.load(from: s, config: c)
        }
    }

    @Test func unusedTensorIsAnError() throws {
        var (s, c) = try source()
        s.extra = ["model.layers.0.self_attn.rotary_emb.inv_freq": Tensor(zeros: [4])]
        #expect(throws: ModelError.unusedTensors(names: ["model.layers.0.self_attn.rotary_emb.inv_freq"])) {
            try ModelWeights.load(from: s, config: c)
        }
    }

    @Test func configThatDisagreesWithWeightsIsAnError() throws {
        let (s, original) = try source()
        var c = original
        c.kvLoraRank += 2
        #expect(throws: ModelError.self) { try ModelWeights.load(from: s, config: c) }
    }

    @Test func badRequestsAreTypedErrors() throws {
        let model = try Models.load(Self.name)
        let v = model.config.vocabSize
        let session = model.makeSession(capacity: 8)
        #expect(throws: ModelError.emptyPrompt) { try session.forward([]) }
        #expect(throws: ModelError.tokenOutOfRange(token: v, vocabSize: v)) { try session.forward([1, v]) }
        #expect(throws: ModelError.tokenOutOfRange(token: -1, vocabSize: v)) { try session.forward([-1]) }
        #expect(throws: ModelError.contextOverflow(needed: 9, limit: 8)) { try session.forward(Array(repeating: 1, count: 9)) }
        #expect(session.position == 0, "a rejected request must not touch the cache")
        let long = model.makeSession()
        let maxPos = model.config.maxPositionEmbeddings
        #expect(throws: ModelError.contextOverflow(needed: maxPos + 1, limit: maxPos)) {
            try long.generate(prompt: [1, 2], maxTokens: maxPos - 1)
        }
        session.options.expertsPerToken = 0
        #expect(throws: ModelError.self) { try session.forward([1]) }
    }

    @Test func expertsPerTokenOverrideChangesRouting() throws {
        let model = try Models.load(Self.name)
        let prompt = [5, 17, 99, 3]
        let a = model.makeSession(capacity: 4)
        let base = try a.forward(prompt, allLogits: true).scalars
        let b = model.makeSession(capacity: 4)
        b.options.expertsPerToken = 1
        let fewer = try b.forward(prompt, allLogits: true).scalars
        #expect(maxAbsDiff(base, fewer) > 1e-3, "top-1 routing should change the logits")
    }
}
