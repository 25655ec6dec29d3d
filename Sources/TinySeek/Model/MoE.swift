import Foundation
import Tensor

/// How routed experts are executed; both give the same numbers up to float rounding.
public enum ExpertExecution: String, Sendable, CaseIterable {
    /// The reference: every token runs its k experts one row at a time.
    case perToken
    /// Tokens are permuted so each expert gets all of its (token, slot) pairs contiguously and
    /// runs one GEMM over them: its weights stream once per step, whatever the batch.
    case grouped
}

/// DeepSeekMoE: a router picks k of n_routed_experts per token; the output is the weighted sum
/// of those experts plus the always-on shared experts:  y = Σ_k w_k·FFN_k(x) + FFN_shared(x).
struct MoE {
    let config: ModelConfig
    let weights: MoEWeights
    let layer: Int

    /// out[T, hidden] = MoE(xn) for T tokens.
    func forward(_ xn: UnsafePointer<Float>, tokens T: Int, execution: ExpertExecution,
                 routes: inout Routes, workspace ws: Workspace, recorder rec: OpRecorder?,
                 expertLoad: ExpertLoadRecorder?, out: UnsafeMutablePointer<Float>) {
        let c = config, l = layer, d = c.hiddenSize
        let e = c.routedExperts, k = c.expertsPerToken
        let logits = ws.pointer(.routerLogits, T * e + 2 * e)
        let router = Linear(weight: weights.router)
        rec.op("router", layer: l, kind: .routing, cost: router.cost(tokens: T)) {
            router.apply(xn, rows: T, into: logits)
        }
        rec.op("route_select", layer: l, kind: .routing, cost: Cost.routeSelect(tokens: T, experts: e)) {
            routes.reset(tokens: T, k: k, experts: e, groups: c.groups)
            let scratch = logits + T * e
            for t in 0..<T { select(logits: logits + t * e, scratch: scratch, routes: &routes) }
        }
        expertLoad?.record(layer: l, experts: routes.experts, expertCount: e)

        out.update(repeating: 0, count: T * d)
        switch execution {
        case .grouped where T == 1:
            forwardOneToken(xn, routes: routes, workspace: ws, recorder: rec, out: out)
        case .grouped:
            routes.group(experts: e)
            for x in 0..<e {
                let lo = routes.offsets[x], n = routes.offsets[x + 1] - lo
                guard n > 0 else { continue }
                let gathered = ws.pointer(.gathered, n * d), y = ws.pointer(.expertOut, n * d)
                for i in 0..<n {
                    let token = Int(routes.order[lo + i]) / k
                    (gathered + i * d).update(from: xn + token * d, count: d)
                }
                weights.experts[x].forward(gathered, rows: n, ldx: d, into: y, role: .expert, layer: l, expert: x,
                                           workspace: ws, recorder: rec)
                rec.op("expert_combine", layer: l, expert: x, kind: .elementwise, cost: Cost.expertCombine(slots: n, hidden: d)) {
                    for i in 0..<n {
                        let pair = Int(routes.order[lo + i])
                        Kernels.addScaled(y + i * d, by: routes.weights[pair], to: out + (pair / k) * d, count: d)
                    }
                }
            }
        case .perToken:
            let y = ws.pointer(.expertOut, d)
            for t in 0..<T {
                for slot in 0..<k {
                    let x = Int(routes.experts[t * k + slot])
                    weights.experts[x].forward(xn + t * d, rows: 1, ldx: d, into: y, role: .expert, layer: l, expert: x,
                                               workspace: ws, recorder: rec)
                    rec.op("expert_combine", layer: l, expert: x, kind: .elementwise, cost: Cost.expertCombine(slots: 1, hidden: d)) {
                        Kernels.addScaled(y, by: routes.weights[t * k + slot], to: out + t * d, count: d)
                    }
                }
            }
        }

        if let shared = weights.shared {
            let y = ws.pointer(.expertOut, T * d)
            shared.forward(xn, rows: T, ldx: d, into: y, role: .shared, layer: l, workspace: ws, recorder: rec)
            rec.op("shared_add", layer: l, kind: .elementwise, cost: Cost.elementwise(elements: T * d)) {
                Kernels.add(out, y, count: T * d, out: out)
            }
        }
    }

    /// Decode: the k selected experts of one token as two parallel jobs, all their gate and up
    /// matvecs in one `MatvecBatch`, then all their down matvecs in another, so a layer's routed
    /// experts stream k·3 matrices with two hand-offs instead of 3k. Each job's time is recorded
    /// per expert (shared out by bytes), so profiles keep one record per expert as in `grouped`.
    private func forwardOneToken(_ xn: UnsafePointer<Float>, routes: Routes, workspace ws: Workspace,
                                 recorder rec: OpRecorder?, out: UnsafeMutablePointer<Float>) {
        let c = config, l = layer, d = c.hiddenSize, k = routes.experts.count
        guard k > 0 else { return }
        let inter = weights.experts[Int(routes.experts[0])].intermediateSize
        let g = ws.pointer(.gate, k * inter), u = ws.pointer(.up, k * inter), y = ws.pointer(.expertOut, k * d)
        let batch = ws.matvecs
        func expert(_ s: Int) -> FeedForwardWeights { weights.experts[Int(routes.experts[s])] }
        func index(_ s: Int) -> Int? { Int(routes.experts[s]) }
        rec.split("expert_gate_up", layer: l, kind: .gemv, parts: k, expert: index,
                  cost: { expert($0).gate.cost(tokens: 1) + expert($0).up.cost(tokens: 1) }) {
            batch.removeAll()
            for s in 0..<k {
                batch.append(expert(s).gate.weight, x: xn, y: g + s * inter)
                batch.append(expert(s).up.weight, x: xn, y: u + s * inter)
            }
            batch.run()
            for s in 0..<k {
                expert(s).gate.addBias(to: g + s * inter, rows: 1)
                expert(s).up.addBias(to: u + s * inter, rows: 1)
            }
        }
        rec.split("expert_act", layer: l, kind: .elementwise, parts: k, expert: index,
                  cost: { _ in Cost.elementwise(elements: inter, inputs: 2, flopsPerElement: 5) }) {
            Kernels.siluMul(g, u, count: k * inter, out: g)
        }
        rec.split("expert_down", layer: l, kind: .gemv, parts: k, expert: index, cost: { expert($0).down.cost(tokens: 1) }) {
            batch.removeAll()
            for s in 0..<k { batch.append(expert(s).down.weight, x: g + s * inter, y: y + s * d) }
            batch.run()
            for s in 0..<k { expert(s).down.addBias(to: y + s * d, rows: 1) }
        }
        rec.split("expert_combine", layer: l, kind: .elementwise, parts: k, expert: index,
                  cost: { _ in Cost.expertCombine(slots: 1, hidden: d) }) {
            for s in 0..<k { Kernels.addScaled(y + s * d, by: routes.weights[s], to: out, count: d) }
        }
    }
}
