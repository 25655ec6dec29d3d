import Foundation
import TinySeek

/// The MLP half of a layer: the dense FFN (FeedForwardWeights.forward) or DeepSeekMoE
/// (MoE.forward, grouped expert execution): router, route_select, each touched expert's
/// gate_up / act / down / combine, then the shared experts and their add.
extension AnalyticModel {
    /// SwiGLU (ffn_gate_up, ffn_act, ffn_down) or GPT's GELU MLP (ffn_up, ffn_act, ffn_down),
    /// its width split over tensor-parallel ranks.
    func denseOps(_ l: Int) -> [ModelledOp] {
        let d = spec.hidden, N = rows, width = Self.shard(spec.denseIntermediate, tp)
        switch spec.feedForward {
        case .gated:
            return swiGLU(prefix: "ffn", layer: l, tokens: N, width: width)
        case .plain:
            // GELU (tanh form) ≈ 8 FLOPs per element, one input.
            return [linear("ffn_up", layer: l, tokens: N, in: d, out: width),
                    op("ffn_act", layer: l, .elementwise,
                       Cost.elementwise(elements: N * width, inputs: 1, flopsPerElement: 8, act: act)),
                    linear("ffn_down", layer: l, tokens: N, in: width, out: d)]
        }
    }

    /// gate and up in one op (both read x), silu(gate)·up, down: as FeedForwardWeights.forward records it.
    func swiGLU(prefix: String, layer l: Int, expert: Int? = nil, tokens n: Int, width: Int) -> [ModelledOp] {
        let d = spec.hidden, kind: OpKind = n == 1 ? .gemv : .gemm
        let up = Cost.linear(tokens: n, inFeatures: d, outFeatures: width, weightBytes: wb, act: act)
        return [op("\(prefix)_gate_up", layer: l, expert: expert, kind, up + up),
                op("\(prefix)_act", layer: l, expert: expert, .elementwise,
                   Cost.elementwise(elements: n * width, inputs: 2, flopsPerElement: 5, act: act)),
                op("\(prefix)_down", layer: l, expert: expert, kind,
                   Cost.linear(tokens: n, inFeatures: width, outFeatures: d, weightBytes: wb, act: act))]
    }

    func moeOps(_ l: Int) -> [ModelledOp] {
        guard let e = spec.experts else { return denseOps(l) }
        let d = spec.hidden, N = rows
        var out = [linear("router", layer: l, tokens: N, in: d, out: e.routed, kind: .routing),
                   op("route_select", layer: l, .routing, Cost.routeSelect(tokens: N, experts: e.routed, act: act))]
        if case let .observed(counts) = scenario.routing, let layerCounts = counts[l] {
            // One row set per touched expert, in expert order: exactly the executor's records.
            for (x, n) in layerCounts.enumerated() where n > 0 {
                out += swiGLU(prefix: "expert", layer: l, expert: x, tokens: n, width: e.intermediate)
                out.append(op("expert_combine", layer: l, expert: x, .elementwise, Cost.expertCombine(slots: n, hidden: d, act: act)))
            }
        } else {
            out += expectedExpertOps(l, e)
        }
        if e.sharedIntermediate > 0 {
            out += swiGLU(prefix: "shared", layer: l, tokens: N, width: Self.shard(e.sharedIntermediate, tp))
            out.append(op("shared_add", layer: l, .elementwise, Cost.elementwise(elements: N * d, act: act)))
        }
        return out
    }

    /// Expected load of the routed experts (see `ExpertRouting.expected`).
    public struct ExpertLoad: Sendable, Equatable {
        /// Tokens dispatched to the expert pool in the step (over all data-parallel ranks).
        public var tokens: Double
        /// E[touched] = n_e·(1 − (1 − n_k/n_e)^tokens): experts whose weights are read.
        public var touchedExperts: Double
        /// Tokens per touched expert, times Γ.
        public var tokensPerExpert: Double
        /// Touched experts one device runs: E[touched] / ep.
        public var expertsPerDevice: Double
    }

    public func expertLoad() -> ExpertLoad? {
        guard let e = spec.experts else { return nil }
        let n = Double(scenario.tokens), ne = Double(e.routed), k = Double(e.perToken)
        let touched = ne * (1 - pow(1 - k / ne, n))
        let perExpert = touched > 0 ? scenario.routing.imbalance * n * k / touched : 0
        return ExpertLoad(tokens: n, touchedExperts: touched, tokensPerExpert: perExpert,
                          expertsPerDevice: touched / Double(scenario.parallelism.ep))
    }

    /// The routed experts of one layer on one device: E[touched]/ep experts, each at the
    /// expected (Γ-scaled) tokens per expert and 1/(devices/ep) of its width, summed into one row
    /// per op name (`expert` nil). Fractional token counts go through `OpCost.atTokens`.
    func expectedExpertOps(_ l: Int, _ e: ArchitectureSpec.Experts) -> [ModelledOp] {
        guard let load = expertLoad(), load.touchedExperts > 0 else { return [] }
        let d = spec.hidden, width = Self.shard(e.intermediate, scenario.parallelism.expertShards)
        let (wb, act, t) = (wb, act, load.tokensPerExpert)
        let kind: OpKind = t <= 1 ? .gemv : .gemm
        func rows(_ name: String, _ kind: OpKind, _ formula: (Int) -> OpCost) -> ModelledOp {
            op(name, layer: l, kind, OpCost.atTokens(t, formula).scaled(by: load.expertsPerDevice))
        }
        return [
            rows("expert_gate_up", kind) { n in
                let up = Cost.linear(tokens: n, inFeatures: d, outFeatures: width, weightBytes: wb, act: act)
                return up + up
            },
            rows("expert_act", .elementwise) { Cost.elementwise(elements: $0 * width, inputs: 2, flopsPerElement: 5, act: act) },
            rows("expert_down", kind) { Cost.linear(tokens: $0, inFeatures: width, outFeatures: d, weightBytes: wb, act: act) },
            rows("expert_combine", .elementwise) { Cost.expertCombine(slots: $0, hidden: d, act: act) },
        ]
    }
}
