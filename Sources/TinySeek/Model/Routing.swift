import Foundation
import Tensor

/// The routing decision for a batch of tokens: k (expert, weight) slots per token, plus the
/// scratch the selection works in. Every array keeps its capacity between calls, so routing a
/// decode step allocates nothing once the first step has sized them.
struct Routes {
    var experts: [Int32] = []   // (T, k)
    var weights: [Float] = []   // (T, k)
    // Grouping by expert: pairs of expert e are order[offsets[e] ..< offsets[e+1]], as t·k + slot.
    var offsets: [Int] = []     // (n_routed_experts + 1)
    var order: [Int32] = []     // (T·k)
    /// Counting-sort write positions.
    private var cursor: [Int] = []      // (n_routed_experts)
    /// Output of `topK`: the last selection's indices and values, largest first.
    private(set) var topIndex: [Int] = []   // (max(k, n_group))
    private(set) var topValue: [Float] = [] // (max(k, n_group))
    /// Group scores and which groups survive the group cut.
    var groupScore: [Float] = []        // (n_group)
    var groupKeep: [Bool] = []          // (n_group)

    mutating func reset(tokens: Int, k: Int, experts e: Int, groups: Int) {
        experts.removeAll(keepingCapacity: true)
        weights.removeAll(keepingCapacity: true)
        experts.reserveCapacity(tokens * k)
        weights.reserveCapacity(tokens * k)
        refill(&offsets, e + 1, 0)
        let window = max(k, groups, 1)
        if topIndex.count < window {
            topIndex = Array(repeating: 0, count: window)
            topValue = Array(repeating: 0, count: window)
        }
        if groupScore.count < groups {
            groupScore = Array(repeating: 0, count: groups)
            groupKeep = Array(repeating: false, count: groups)
        }
    }

    /// `Kernels.topK` into `topIndex`/`topValue`; returns the number selected.
    mutating func topK(_ x: UnsafeBufferPointer<Float>, k: Int) -> Int {
        topIndex.withUnsafeMutableBufferPointer { i in
            topValue.withUnsafeMutableBufferPointer { v in
                Kernels.topK(x, k: min(k, i.count), indices: i.baseAddress.unsafelyUnwrapped, values: v.baseAddress.unsafelyUnwrapped)
            }
        }
    }

    /// `topK` over the first `groups` group scores.
    mutating func topGroups(_ groups: Int, k: Int) -> Int {
        groupScore.withUnsafeBufferPointer { scores in
            topIndex.withUnsafeMutableBufferPointer { i in
                topValue.withUnsafeMutableBufferPointer { v in
                    Kernels.topK(UnsafeBufferPointer(rebasing: scores[0..<groups]), k: min(k, i.count),
                                 indices: i.baseAddress.unsafelyUnwrapped, values: v.baseAddress.unsafelyUnwrapped)
                }
            }
        }
    }

    /// Counting sort of the (token, slot) pairs by expert.
    mutating func group(experts e: Int) {
        for x in experts { offsets[Int(x) + 1] += 1 }
        for i in 0..<e { offsets[i + 1] += offsets[i] }
        refill(&order, experts.count, 0)
        refill(&cursor, e, 0)
        for i in 0..<e { cursor[i] = offsets[i] }
        for (pair, x) in experts.enumerated() {
            order[cursor[Int(x)]] = Int32(pair)
            cursor[Int(x)] += 1
        }
    }
}

/// Sets `a` to `n` copies of `value`, keeping its capacity (no allocation once it is large enough).
@inline(__always)
func refill<T>(_ a: inout [T], _ n: Int, _ value: T) {
    a.removeAll(keepingCapacity: true)
    a.append(contentsOf: repeatElement(value, count: n))
}

extension MoE {
    /// Selects experts for one token from its router logits (`scratch`: 2·n_routed_experts floats).
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
            Kernels.sigmoid(logits, count: e, out: scores)
            // Work on the biased choice values in a second half of scratch.
            let biased = scratch + e
            let bias = weights.correctionBias?.pointer
            for i in 0..<e { biased[i] = scores[i] + (bias?[i] ?? 0) }
            if groups > 1 {
                maskGroups(biased, groups: groups, perGroup: perGroup, fill: -.infinity, routes: &routes) { g in
                    // Sum of the two largest (what top-2 then sum gives, ties included).
                    var first = -Float.infinity, second = -Float.infinity
                    for j in 0..<perGroup {
                        let v = g[j]
                        if v > first { second = first; first = v } else if v > second { second = v }
                    }
                    return first + second
                }
            }
            let n = routes.topK(UnsafeBufferPointer(start: biased, count: e), k: k)
            var sum: Float = 0
            for i in 0..<n { sum += scores[routes.topIndex[i]] }
            let norm: Float = config.normalizesTopK ? 1 / (sum + 1e-20) : 1
            for i in 0..<n {
                let idx = routes.topIndex[i]
                routes.experts.append(Int32(idx))
                routes.weights.append(scores[idx] * norm * config.scalingFactor)
            }
        } else {
            scores.update(from: logits, count: e)
            Kernels.softmax(scores, count: e, valid: e)
            var candidates = scores
            if config.topkMethod == "group_limited_greedy", groups > 1 {
                candidates = scratch + e
                candidates.update(from: scores, count: e)
                maskGroups(candidates, groups: groups, perGroup: perGroup, fill: 0, routes: &routes) { g in
                    var m = -Float.infinity
                    for j in 0..<perGroup { m = max(m, g[j]) }
                    return m
                }
            }
            let n = routes.topK(UnsafeBufferPointer(start: candidates, count: e), k: k)
            for i in 0..<n {
                routes.experts.append(Int32(routes.topIndex[i]))
                routes.weights.append(routes.topValue[i] * config.scalingFactor)
            }
        }
    }

    /// Keeps the `topk_group` groups with the highest `groupScore` and fills the others.
    private func maskGroups(_ x: UnsafeMutablePointer<Float>, groups: Int, perGroup: Int, fill: Float,
                            routes: inout Routes, groupScore: (UnsafeMutablePointer<Float>) -> Float) {
        for g in 0..<groups { routes.groupScore[g] = groupScore(x + g * perGroup) }
        let n = routes.topGroups(groups, k: config.groupsKept)
        for g in 0..<groups { routes.groupKeep[g] = false }
        for i in 0..<n { routes.groupKeep[routes.topIndex[i]] = true }
        for g in 0..<groups where !routes.groupKeep[g] {
            (x + g * perGroup).update(repeating: fill, count: perGroup)
        }
    }
}
