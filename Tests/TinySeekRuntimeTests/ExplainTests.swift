import Foundation
import Testing
import TinySeek
@testable import TinySeekRuntime

/// Every formula the teaching view prints, evaluated, equals what the executor recorded.
@Suite struct ExplainTests {
    @Test("explain formulas equal recorded costs", arguments: ["deepseek-v3-tiny", "deepseek-v2-lite-tiny", "deepseek-v3-tiny-halfsplit"],
          [AttentionOrder.naive, .absorbed])
    func formulasMatchRecords(model name: String, order: AttentionOrder) throws {
        let model = try Model.load(from: RepoPaths.model(name))
        let c = model.config
        let session = model.makeSession(capacity: 8)
        session.options.attention = order
        let recorder = OpRecorder()
        session.recorder = recorder
        try session.forward([5, 66, 129, 200, 1, 9, 3])
        try session.forward([7])
        // Tokens of each (phase, layer, expert), from its gate_up record: a step records every
        // expert's gate_up before any down (one parallel job each), so look them up by expert.
        var expertTokens: [String: Int] = [:]
        var checked = 0
        for r in recorder.records where r.layer != nil {
            let (t, s) = r.phase == .prefill ? (7, 7) : (1, 8)
            let expert = "\(r.phase) \(r.layer ?? -1) \(r.expert ?? -1)"
            if r.name == "expert_gate_up" {
                expertTokens[expert] = Int(r.cost.flops) / (4 * c.hiddenSize * c.expertIntermediateSize)
            }
            let entry = try #require(Explain.entry(for: r.name, order: order), "no explanation for \(r.name)")
            let sym = Explain.symbols(c, tokens: t, positions: s, expertTokens: expertTokens[expert] ?? 0)
            let flops = try #require(Explain.evaluate(entry.flops, sym), "cannot evaluate \(entry.flops)")
            let bytes = try #require(Explain.evaluate(entry.bytes, sym), "cannot evaluate \(entry.bytes)")
            #expect(flops == r.cost.flops, "\(r.name) \(r.phase) flops: formula \(flops), recorded \(r.cost.flops)")
            #expect(bytes == r.cost.bytes, "\(r.name) \(r.phase) bytes: formula \(bytes), recorded \(r.cost.bytes)")
            checked += 1
        }
        #expect(checked > 50)
    }

    @Test func evaluator() {
        #expect(Explain.evaluate("2*(3+4) - 6/3", [:]) == 12)
        #expect(Explain.evaluate("2*T*d", ["T": 3, "d": 5]) == 30)
        #expect(Explain.evaluate("2*X", [:]) == nil)
        #expect(Explain.evaluate("2*(3", [:]) == nil)
    }
}
