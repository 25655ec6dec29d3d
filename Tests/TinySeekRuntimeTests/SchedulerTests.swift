import Foundation
import Testing
import TinySeek
@testable import TinySeekRuntime

enum RepoPaths {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static func model(_ name: String) -> URL { root.appendingPathComponent("Models/\(name)", isDirectory: true) }
}

@Suite struct SchedulerTests {
    static let modelName = "deepseek-v3-tiny"
    static let prompts: [[Int]] = [[7], [5, 66, 129, 200, 3], [11, 42, 250, 9, 9, 31, 17, 88, 143, 200, 60, 2]]

    func model() throws -> Model { try Model.load(from: RepoPaths.model(Self.modelName)) }

    /// Tokens and per-step logits of a request decoded alone in a `Session`.
    func alone(_ model: Model, _ r: GenerationRequest) throws -> (tokens: [Int], logits: [[Float]]) {
        let s = model.makeSession(capacity: r.promptTokens.count + r.maxTokens)
        var sampler = Sampler(r.sampling)
        var logits = try s.forward(r.promptTokens)
        var out: [Int] = [], rows: [[Float]] = []
        while out.count < r.maxTokens {
            rows.append(logits.scalars)
            let t = sampler.sample(UnsafeBufferPointer(logits.buffer))
            out.append(t)
            if !(r.ignoreEOS ?? false) && model.config.eosTokens.contains(t) { break }
            if out.count == r.maxTokens { break }
            logits = try s.forward([t])
        }
        return (out, rows)
    }

    func requests(maxTokens: Int = 8) -> [GenerationRequest] {
        Self.prompts.enumerated().map { i, p in
            GenerationRequest(id: "r\(i)", promptTokens: p, maxTokens: maxTokens + i, ignoreEOS: true)
        }
    }

    @Test("a batch of mixed lengths gives every request exactly its own tokens and logits")
    func batchEqualsAlone() throws {
        let m = try model()
        let scheduler = try Scheduler(model: m, limits: SchedulerLimits(maxBatch: 8))
        var batched: [String: [[Float]]] = [:]
        scheduler.onLogits = { id, row in batched[id, default: []].append(Array(row)) }
        let reqs = requests() + [GenerationRequest(id: "sampled", promptTokens: [3, 4, 5], maxTokens: 10,
                                                   sampling: SamplingParameters(temperature: 0.9, topP: 0.95, seed: 11), ignoreEOS: true)]
        for r in reqs { try scheduler.submit(r) }
        let done = try scheduler.runToCompletion()
        #expect(done.count == reqs.count)
        for r in reqs {
            let ref = try alone(m, r)
            let got = try #require(done.first { $0.id == r.id })
            #expect(got.tokens == ref.tokens, "\(r.id)")
            let rows = batched[r.id] ?? []
            #expect(rows.count == ref.logits.count)
            for (a, b) in zip(rows, ref.logits) {
                let diff = zip(a, b).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
                #expect(diff <= 1e-5, "\(r.id): logits differ by \(diff)")
            }
        }
    }

    @Test("a request joining mid-flight does not change the others")
    func joiningMidFlight() throws {
        let m = try model()
        let scheduler = try Scheduler(model: m, limits: SchedulerLimits(maxBatch: 4))
        let first = GenerationRequest(id: "first", promptTokens: Self.prompts[2], maxTokens: 12, ignoreEOS: true)
        try scheduler.submit(first)
        for _ in 0..<4 { try scheduler.step() }
        let late = GenerationRequest(id: "late", promptTokens: Self.prompts[1], maxTokens: 6, ignoreEOS: true)
        try scheduler.submit(late)
        let done = try scheduler.runToCompletion()
        let (refFirst, refLate) = (try alone(m, first).tokens, try alone(m, late).tokens)
        #expect(done.first { $0.id == "first" }?.tokens == refFirst)
        #expect(done.first { $0.id == "late" }?.tokens == refLate)
        #expect(done.first { $0.id == "late" }?.admittedAtStep == 4)
    }

    @Test("every (token, expert slot) pair is computed exactly once per step")
    func everyPairOnce() throws {
        let m = try model()
        let scheduler = try Scheduler(model: m, limits: SchedulerLimits(maxBatch: 8))
        let recorder = OpRecorder(), load = ExpertLoadRecorder()
        scheduler.executor.recorder = recorder
        scheduler.executor.expertLoad = load
        for r in requests(maxTokens: 3) { try scheduler.submit(r) }
        var rowsPerStep: [Int] = []
        while !scheduler.isIdle {
            let batchRows = scheduler.stepCount == 0 ? Self.prompts.map(\.count).reduce(0, +) : nil
            let before = recorder.records.count, loadBefore = load.steps.count
            let produced = try scheduler.step()
            let rows = batchRows ?? produced.count
            rowsPerStep.append(rows)
            let k = m.config.expertsPerToken
            let d = m.config.hiddenSize, inter = m.config.expertIntermediateSize
            for layer in 1..<m.config.numHiddenLayers {
                let ops = recorder.records[before...].filter { $0.name == "expert_gate_up" && $0.layer == layer }
                let computed = ops.reduce(0) { $0 + Int($1.cost.flops) / (2 * 2 * d * inter) }
                #expect(computed == rows * k, "layer \(layer): \(computed) expert rows for \(rows) tokens x \(k)")
                #expect(Set(ops.compactMap(\.expert)).count == ops.count, "an expert ran twice in one step")
            }
            for s in load.steps[loadBefore...] { #expect(s.pairs == rows * k) }
        }
        #expect(rowsPerStep.first == 18)
    }

    @Test("a request that does not fit the KV budget waits; one larger than the budget is rejected")
    func kvBudget() throws {
        let m = try model()
        let perToken = m.config.numHiddenLayers * m.config.latentCacheWidth * 4
        let a = GenerationRequest(id: "a", promptTokens: Self.prompts[1], maxTokens: 6, ignoreEOS: true)
        let b = GenerationRequest(id: "b", promptTokens: Self.prompts[2], maxTokens: 4, ignoreEOS: true)
        // Room for the larger of the two but not both.
        let budget = 16 * perToken
        let scheduler = try Scheduler(model: m, limits: SchedulerLimits(maxBatch: 8, kvBudgetBytes: budget))
        try scheduler.submit(a)
        try scheduler.submit(b)
        try scheduler.step()
        #expect(scheduler.runningCount == 1 && scheduler.pendingCount == 1)
        #expect(scheduler.reservedCacheBytes <= budget)
        let done = try scheduler.runToCompletion()
        let da = try #require(done.first { $0.id == "a" }), db = try #require(done.first { $0.id == "b" })
        #expect(db.admittedAtStep == da.finishedAtStep + 1)
        let (refA, refB) = (try alone(m, a).tokens, try alone(m, b).tokens)
        #expect(da.tokens == refA && db.tokens == refB)
        let huge = GenerationRequest(id: "huge", promptTokens: [1, 2], maxTokens: 40)
        #expect(throws: SchedulerError.rejected(id: "huge", reason: "needs \(42 * perToken) bytes of KV cache, more than the whole budget of \(budget)")) {
            try scheduler.submit(huge)
        }
    }

    @Test func badRequestsAreRejectedWithReasons() throws {
        let m = try model()
        let s = try Scheduler(model: m)
        #expect(throws: SchedulerError.self) { try s.submit(GenerationRequest(id: "e", promptTokens: [], maxTokens: 1)) }
        #expect(throws: SchedulerError.self) { try s.submit(GenerationRequest(id: "v", promptTokens: [999], maxTokens: 1)) }
        #expect(throws: SchedulerError.self) { try s.submit(GenerationRequest(id: "n", promptTokens: [1], maxTokens: -1)) }
        #expect(throws: SchedulerError.self) { try s.submit(GenerationRequest(id: "c", promptTokens: [1], maxTokens: 1000)) }
        #expect(throws: SchedulerError.self) { try Scheduler(model: m, limits: SchedulerLimits(maxBatch: 0)) }
        let text = "{\"id\": \"a\", \"prompt_tokens\": [1, 2], \"max_tokens\": 3}\n\n{\"id\": \"b\", \"prompt_tokens\": \"x\"}\n"
        #expect(throws: SchedulerError.invalidRequestLine(source: "f.jsonl", line: 3, reason: "field 'prompt_tokens': expected Array<Any>")) {
            try GenerationRequest.parseLines(text, source: "f.jsonl")
        }
        let ok = try GenerationRequest.parseLines("{\"id\": \"a\", \"prompt_tokens\": [1, 2], \"max_tokens\": 3, \"temperature\": 0, \"seed\": 7}\n", source: "f")
        #expect(ok == [GenerationRequest(id: "a", promptTokens: [1, 2], maxTokens: 3, sampling: SamplingParameters(seed: 7))].map {
            var r = $0; r.topK = nil; r.topP = nil; r.ignoreEOS = nil; return r
        })
    }
}
