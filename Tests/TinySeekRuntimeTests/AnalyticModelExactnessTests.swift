import Foundation
import Testing
import TinySeek
import TinySeekRuntime

/// One cost model, not two: for a toy checkpoint run by the executor at fp32, the analytic
/// model — given only the config, the step's shape and the per-expert token counts the run
/// observed — lists the same ops (name, layer, expert, kind, phase) with the same FLOPs and
/// bytes, exactly, for both attention orders, in prefill and in decode.
@Suite("Analytic model equals the executor's records, op by op")
struct AnalyticModelExactnessTests {
    /// A prompt, then two decode steps; the records of each step in order.
    func executorSteps(_ name: String, order: AttentionOrder) throws -> (Model, [[OpRecord]]) {
        let model = try Model.load(from: AnalysisRepo.model(name))
        let session = model.makeSession(capacity: 16)
        session.options.attention = order
        let recorder = OpRecorder()
        session.recorder = recorder
        try session.forward([5, 66, 129, 200, 1, 17, 42])   // prefill: T = S = 7
        try session.forward([7])                            // decode: S = 8
        try session.forward([9])                            // decode: S = 9
        var steps: [[OpRecord]] = []
        for r in recorder.records {
            if r.name == "embedding" { steps.append([]) }
            steps[steps.count - 1].append(r)
        }
        return (model, steps)
    }

    /// Tokens each expert received in each MoE layer, read back from the expert_combine records
    /// (Cost.expertCombine: 2·slots·hidden FLOPs).
    func observedCounts(_ records: [OpRecord], config c: ModelConfig) -> [Int: [Int]] {
        var counts: [Int: [Int]] = [:]
        for l in 0..<c.numHiddenLayers where c.isMoELayer(l) { counts[l] = Array(repeating: 0, count: c.routedExperts) }
        for r in records where r.name == "expert_combine" {
            if let l = r.layer, let x = r.expert { counts[l]?[x] += Int(r.cost.flops) / (2 * c.hiddenSize) }
        }
        return counts
    }

    @Test(arguments: ["deepseek-v3-tiny", "deepseek-v2-lite-tiny"], [AttentionOrder.naive, .absorbed])
    func opByOp(model name: String, order: AttentionOrder) throws {
        let (model, steps) = try executorSteps(name, order: order)
        let spec = ArchitectureSpec(modelConfig: model.config)
        #expect(steps.count == 3)
        let contexts = [7, 8, 9]
        for (step, records) in steps.enumerated() {
            let phase: Phase = step == 0 ? .prefill : .decode
            // The executor splits score matrices above 4M floats into row blocks; the toy never does.
            #expect(model.config.numAttentionHeads * contexts[step] * contexts[step] < 1 << 22)
            let scenario = Scenario(batch: 1, context: contexts[step], phase: phase, dtype: .fp32, attention: order,
                                    routing: .observed(observedCounts(records, config: model.config)))
            // Ops are compared as a set per layer, sorted by (layer, name, expert): a decode token
            // runs independent matvecs as one parallel job (q_a with kv_a; the router with the shared
            // gate/up; the k experts' gate/up with the shared down; then the k downs), in the router's
            // slot order, while the model lists them one by one, expert by expert.
            func key(_ name: String, _ layer: Int?, _ expert: Int?) -> String {
                String(format: "%03d ", layer ?? -1) + name + String(format: " %03d", expert ?? -1)
            }
            func inOrder<T>(_ xs: [T], name: (T) -> String, layer: (T) -> Int?, expert: (T) -> Int?) -> [T] {
                xs.sorted { key(name($0), layer($0), expert($0)) < key(name($1), layer($1), expert($1)) }
            }
            let ops = inOrder(try AnalyticModel(spec: spec, scenario: scenario).ops(), name: \.name, layer: \.layer, expert: \.expert)
            let recorded = inOrder(records, name: \.name, layer: \.layer, expert: \.expert)
            #expect(ops.count == records.count, "\(name) \(order) step \(step): \(ops.count) modelled ops, \(records.count) recorded")
            for (op, r) in zip(ops, recorded) {
                let same = op.name == r.name && op.layer == r.layer && op.expert == r.expert && op.kind == r.kind
                    && op.phase == r.phase && op.cost == r.cost
                #expect(same, "\(name) \(order) step \(step): modelled \(op.name) L\(op.layer ?? -1) E\(op.expert ?? -1) \(op.kind) \(op.cost) vs recorded \(r.name) L\(r.layer ?? -1) E\(r.expert ?? -1) \(r.kind) \(r.cost)")
            }
        }
    }

    /// With expected (not observed) routing the step differs only in the expert rows: one summed
    /// row per expert op, whose totals over the step's tokens are the same FLOPs.
    @Test func expectedRoutingKeepsEveryOtherOp() throws {
        let (model, steps) = try executorSteps("deepseek-v3-tiny", order: .absorbed)
        let spec = ArchitectureSpec(modelConfig: model.config)
        let ops = try AnalyticModel(spec: spec, scenario: Scenario(batch: 1, context: 7, phase: .prefill, dtype: .fp32,
                                                                                    attention: .absorbed)).ops()
        let nonExpert = ops.filter { !$0.name.hasPrefix("expert_") }
        let recorded = steps[0].filter { !$0.name.hasPrefix("expert_") }
        #expect(nonExpert.map(\.name) == recorded.map(\.name))
        #expect(zip(nonExpert, recorded).allSatisfy { $0.cost == $1.cost })
        // Expert matmul FLOPs depend only on the 7·k (token, slot) pairs, however they are spread.
        for name in ["expert_gate_up", "expert_down"] {
            let modelled = ops.filter { $0.name == name }.reduce(0) { $0 + $1.cost.flops }
            let run = steps[0].filter { $0.name == name }.reduce(0) { $0 + $1.cost.flops }
            expectRelative(modelled, run, within: 1e-12, "\(name) FLOPs")
        }
    }
}
