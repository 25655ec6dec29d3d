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

/// The routing decision for a batch of tokens: k (expert, weight) slots per token.
struct Routes {
    var experts: [Int32] = []   // (T, k)
    var weights: [Float] = []   // (T, k)
    // Grouping by expert: pairs of expert e are order[offsets[e] ..< offsets[e+1]], as t·k + slot.
    var offsets: [Int] = []     // (n_routed_experts + 1)
    var order: [Int32] = []     // (T·k)

    mutating func reset(tokens: Int, k: Int, experts e: Int) {
        experts.removeAll(keepingCapacity: true)
        weights.removeAll(keepingCapacity: true)
        experts.reserveCapacity(tokens * k)
        weights.reserveCapacity(tokens * k)
        offsets = Array(repeating: 0, count: e + 1)
    }

    /// Counting sort of the (token, slot) pairs by expert.
    mutating func group(experts e: Int) {
        for x in experts { offsets[Int(x) + 1] += 1 }
        for i in 0..<e { offsets[i + 1] += offsets[i] }
        order = Array(repeating: 0, count: experts.count)
        var next = offsets
        for (pair, x) in experts.enumerated() {
            order[next[Int(x)]] = Int32(pair)
            next[Int(x)] += 1
        }
    }
}

/// DeepSeekMoE: a router picks k of n_routed_experts per token; the output is the weighted sum
/// of those experts plus the always-on shared experts:  y = Σ_k w_k·FFN_k(x) + FFN_shared(x).
struct MoE {
    let config: ModelConfig
    let weights: MoEWeights
    let layer: Int

    /// Selects experts for one token from its router logits (`scratch`: n_routed_experts floats).
    ///
    /// V3 (transformers DeepseekV3TopkRouter, DeepSeek's noaux_tc): s = sigmoid(logits);
    /// choice = s + e_score_correction_bias; each group scores the sum of its top-2 choices; the
    /// top `topk_group` groups stay, the rest are masked to -inf; the top-k of the masked choice
    /// are the experts; their weights are the UNBIASED s, normalised if norm_topk_prob, times
    /// routed_scaling_factor. The bias steers load balance without changing the mixing weights.
    ///
    /// V2 (DeepseekV2TopkRouter): s = softmax(logits); greedy top-k, or group_limited_greedy
    /// keeping the groups with the largest max score (others masked to 0); weights s·scale.
    func select(logits: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>, routes: inout Routes) {
        let e = config.routedExperts, k = config.expertsPerToken
        let groups = config.groups, perGroup = e / max(groups, 1)
        let scores = scratch   // s, then the choice values
        if config.isV3 {
            for i in 0..<e { scores[i] = 1 / (1 + Foundation.exp(-logits[i])) }
            // Work on the biased choice values in a second half of scratch.
            let biased = scratch + e
            let bias = weights.correctionBias?.pointer
            for i in 0..<e { biased[i] = scores[i] + (bias?[i] ?? 0) }
            if groups > 1 {
                maskGroups(biased, groups: groups, perGroup: perGroup, fill: -.infinity) { g in
                    let top = Kernels.topK(UnsafeBufferPointer(start: g, count: perGroup), k: 2)
                    return top.reduce(0) { $0 + $1.value }
                }
            }
            let top = Kernels.topK(UnsafeBufferPointer(start: biased, count: e), k: k)
            var sum: Float = 0
            for (idx, _) in top { sum += scores[idx] }
            let norm: Float = config.normalizesTopK ? 1 / (sum + 1e-20) : 1
            for (idx, _) in top {
                routes.experts.append(Int32(idx))
                routes.weights.append(scores[idx] * norm * config.scalingFactor)
            }
        } else {
            scores.update(from: logits, count: e)
            Kernels.softmax(scores, count: e, valid: e)
            if config.topkMethod == "group_limited_greedy", groups > 1 {
                let kept = scratch + e
                kept.update(from: scores, count: e)
                maskGroups(kept, groups: groups, perGroup: perGroup, fill: 0) { g in
                    var m = -Float.infinity
                    for j in 0..<perGroup { m = max(m, g[j]) }
                    return m
                }
                for (idx, v) in Kernels.topK(UnsafeBufferPointer(start: kept, count: e), k: k) {
                    routes.experts.append(Int32(idx))
                    routes.weights.append(v * config.scalingFactor)
                }
            } else {
                for (idx, v) in Kernels.topK(UnsafeBufferPointer(start: scores, count: e), k: k) {
                    routes.experts.append(Int32(idx))
                    routes.weights.append(v * config.scalingFactor)
                }
            }
        }
    }

    /// Keeps the `topk_group` groups with the highest `groupScore` and fills the others.
    private func maskGroups(_ x: UnsafeMutablePointer<Float>, groups: Int, perGroup: Int, fill: Float,
                            groupScore: (UnsafeMutablePointer<Float>) -> Float) {
        var groupScores = [Float](repeating: 0, count: groups)
        for g in 0..<groups { groupScores[g] = groupScore(x + g * perGroup) }
        let kept = groupScores.withUnsafeBufferPointer { Kernels.topK($0, k: config.groupsKept) }
        var keep = [Bool](repeating: false, count: groups)
        for (g, _) in kept { keep[g] = true }
        for g in 0..<groups where !keep[g] {
            (x + g * perGroup).update(repeating: fill, count: perGroup)
        }
    }

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
            routes.reset(tokens: T, k: k, experts: e)
            let scratch = logits + T * e
            for t in 0..<T { select(logits: logits + t * e, scratch: scratch, routes: &routes) }
        }
        expertLoad?.record(layer: l, experts: routes.experts, expertCount: e)

        out.update(repeating: 0, count: T * d)
        switch execution {
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
}
