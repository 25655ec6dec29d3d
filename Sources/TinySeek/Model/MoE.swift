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

/// A routed expert's gate, up and down as decode's parallel jobs take them: views and bias
/// pointers, which the `FeedForwardWeights` they come from keep alive.
///
/// Building a token's expert jobs from the `FeedForwardWeights` themselves copied three `Linear`s
/// per expert (retaining their owners and bias tensors) and then three `WeightMatrix`es into the
/// job, on the caller between two jobs while the other lane waits. An entry here is two cache lines
/// and retains nothing: the gate/up job's build 2.6-2.9 → 2.3-2.5 µs at ~33 GB/s free and
/// 4.8 → 3.3 at ~60, the down job's 2.5-2.6 → 1.7-2.3 (interleaved runs, F32 bench model).
struct RoutedExpert: @unchecked Sendable {
    let gate: WeightView, up: WeightView, down: WeightView
    let gateBias: UnsafePointer<Float>?, upBias: UnsafePointer<Float>?, downBias: UnsafePointer<Float>?

    init(_ ffn: FeedForwardWeights) {
        gate = ffn.gate.weight.view
        up = ffn.up.weight.view
        down = ffn.down.weight.view
        gateBias = ffn.gate.biasPointer
        upBias = ffn.up.biasPointer
        downBias = ffn.down.biasPointer
    }
}

/// DeepSeekMoE: a router picks k of n_routed_experts per token; the output is the weighted sum
/// of those experts plus the always-on shared experts:  y = Σ_k w_k·FFN_k(x) + FFN_shared(x).
struct MoE {
    let config: ModelConfig
    let weights: MoEWeights
    let layer: Int

    /// out[T, hidden] = MoE(xn) for T tokens.
    /// `next`: the step's job after this layer (one token only; see `forwardOneToken`).
    func forward(_ xn: UnsafePointer<Float>, tokens T: Int, execution: ExpertExecution,
                 routes: inout Routes, workspace ws: Workspace, recorder rec: OpRecorder?,
                 expertLoad: ExpertLoadRecorder?, out: UnsafeMutablePointer<Float>, then next: UpcomingJob? = nil) {
        if execution == .grouped && T == 1 {
            forwardOneToken(xn, routes: &routes, workspace: ws, recorder: rec, expertLoad: expertLoad, out: out, then: next)
            return
        }
        if execution == .grouped && T <= Self.fewTokens {
            forwardFewTokens(xn, tokens: T, routes: &routes, workspace: ws, recorder: rec, expertLoad: expertLoad, out: out)
            return
        }
        let c = config, l = layer, d = c.hiddenSize
        let e = c.routedExperts, k = c.expertsPerToken
        let logits = ws.pointer(.routerLogits, T * e + 2 * e)
        let router = Linear(weight: weights.router)
        rec.op("router", layer: l, kind: .routing, cost: router.cost(tokens: T)) {
            router.apply(xn, rows: T, into: logits)
        }
        selectRoutes(logits: logits, tokens: T, routes: &routes, recorder: rec, expertLoad: expertLoad)

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

    /// Up to this many tokens a step (batched decode, short prompts), the experts run as two
    /// parallel jobs over all of them (`forwardFewTokens`); above, expert by expert through sgemm.
    static let fewTokens = 16

    /// A few tokens' MoE (2 ≤ T ≤ `fewTokens`: batched decode) as three parallel jobs, as
    /// `forwardOneToken` does for one, each expert's weights streaming once for all its tokens
    /// (the small-batch kernel, `MatvecBatch.append(_:rows:...)`):
    ///   1. the router logits of the T tokens;
    ///   2. every active expert's gate and up over its tokens (gathered after routing), with the
    ///      activation, and the shared experts' gate and up over all T;
    ///   3. every active expert's down, and the shared experts'.
    /// Route selection and the gathering run between 1 and 2, the weighted sum after 3, on the
    /// caller. Expert by expert, the same step was two or three jobs an expert (~40 experts a
    /// layer at 16 sequences) with the activation and the sum between them on the caller. The
    /// records are those of the expert-by-expert path (an op per expert, the time of a job shared
    /// out by bytes), and the sums are formed in the same order.
    private func forwardFewTokens(_ xn: UnsafePointer<Float>, tokens T: Int, routes: inout Routes, workspace ws: Workspace,
                                  recorder rec: OpRecorder?, expertLoad: ExpertLoadRecorder?, out: UnsafeMutablePointer<Float>) {
        let c = config, l = layer, d = c.hiddenSize, k = c.expertsPerToken, e = c.routedExperts
        let inter = c.expertIntermediateSize, shared = weights.shared, si = shared?.intermediateSize ?? 0
        let pairs = T * k
        let logits = ws.pointer(.routerLogits, T * e + 2 * e)
        let router = Linear(weight: weights.router)
        rec.op("router", layer: l, kind: .routing, cost: router.cost(tokens: T)) {
            router.apply(xn, rows: T, into: logits)
        }
        selectRoutes(logits: logits, tokens: T, routes: &routes, recorder: rec, expertLoad: expertLoad)
        routes.group(experts: e)

        // Pair p of the grouped order (expert by expert) has its input row at gathered + p·d, its
        // activation at g + p·inter, its output at y + p·d; the shared experts' come after them.
        let gathered = ws.pointer(.gathered, pairs * d)
        let g = ws.pointer(.gate, pairs * inter + T * si), u = ws.pointer(.up, pairs * inter + T * si)
        let y = ws.pointer(.expertOut, (pairs + T) * d)
        let (gs, us, ys) = (g + pairs * inter, u + pairs * inter, y + pairs * d)
        for p in 0..<pairs { (gathered + p * d).update(from: xn + (Int(routes.order[p]) / k) * d, count: d) }
        func tokens(_ x: Int) -> (first: Int, count: Int) { (routes.offsets[x], routes.offsets[x + 1] - routes.offsets[x]) }
        // The experts with tokens, for the records (built only when recording: no allocation).
        var active: [Int] { (0..<e).filter { tokens($0).count > 0 } }
        let act = { (n: Int) in Cost.elementwise(elements: n, inputs: 2, flopsPerElement: 5) }
        let (batch, down) = (ws.matvecs, ws.nextMatvecs)

        rec.fused(layer: l, parts: {
            active.flatMap { x in
                let n = tokens(x).count, w = weights.experts[x]
                return [OpPart("expert_gate_up", kind: w.gate.kind(tokens: n), expert: x, cost: w.gate.cost(tokens: n) + w.up.cost(tokens: n)),
                        OpPart("expert_act", kind: .elementwise, expert: x, cost: act(n * inter))]
            } + (shared.map { s in
                let names = FeedForwardRole.shared.names
                return [OpPart(names.gateUp, kind: s.gate.kind(tokens: T), cost: s.gate.cost(tokens: T) + s.up.cost(tokens: T)),
                        OpPart(names.act, kind: .elementwise, cost: act(T * si))]
            } ?? [])
        }) {
            down.removeAll()
            batch.removeAll()
            for x in 0..<e where tokens(x).count > 0 {
                let (p, n) = tokens(x), w = weights.routed[x]
                batch.appendGated(gate: w.gate, up: w.up, rows: n, x: gathered + p * d, ldx: d,
                                  out: g + p * inter, upOut: u + p * inter, ldo: inter, gateBias: w.gateBias, upBias: w.upBias)
                down.append(w.down, rows: n, x: g + p * inter, ldx: inter, y: y + p * d, ldy: d, bias: w.downBias)
            }
            if let shared {
                batch.appendGated(gate: shared.gate.weight.view, up: shared.up.weight.view, rows: T, x: xn, ldx: d,
                                  out: gs, upOut: us, ldo: si, gateBias: shared.gate.biasPointer, upBias: shared.up.biasPointer)
                down.append(shared.down.weight.view, rows: T, x: gs, ldx: si, y: ys, ldy: d, bias: shared.down.biasPointer)
            }
            batch.run(then: .batch(down))
        }
        rec.fused(layer: l, parts: {
            active.map { x in
                let n = tokens(x).count, w = weights.experts[x]
                return OpPart("expert_down", kind: w.down.kind(tokens: n), expert: x, cost: w.down.cost(tokens: n))
            } + (shared.map { [OpPart(FeedForwardRole.shared.names.down, kind: $0.down.kind(tokens: T), cost: $0.down.cost(tokens: T))] } ?? [])
        }) {
            down.run()
        }
        out.update(repeating: 0, count: T * d)
        for x in 0..<e where tokens(x).count > 0 {
            let (p, n) = tokens(x)
            rec.op("expert_combine", layer: l, expert: x, kind: .elementwise, cost: Cost.expertCombine(slots: n, hidden: d)) {
                for i in p ..< p + n {
                    let pair = Int(routes.order[i])
                    Kernels.addScaled(y + i * d, by: routes.weights[pair], to: out + (pair / k) * d, count: d)
                }
            }
        }
        if shared != nil {
            rec.op("shared_add", layer: l, kind: .elementwise, cost: Cost.elementwise(elements: T * d)) {
                Kernels.add(out, ys, count: T * d, out: out)
            }
        }
    }

    /// The k experts of each of T tokens from their router logits (`logits`: (T, E), followed by
    /// 2·E floats of scratch), recorded as one route_select op and counted in `expertLoad`.
    private func selectRoutes(logits: UnsafeMutablePointer<Float>, tokens T: Int, routes: inout Routes,
                              recorder rec: OpRecorder?, expertLoad: ExpertLoadRecorder?) {
        let c = config, e = c.routedExperts
        rec.op("route_select", layer: layer, kind: .routing, cost: Cost.routeSelect(tokens: T, experts: e)) {
            routes.reset(tokens: T, k: c.expertsPerToken, experts: e, groups: c.groups)
            let scratch = logits + T * e
            for t in 0..<T { select(logits: logits + t * e, scratch: scratch, routes: &routes) }
        }
        expertLoad?.record(layer: layer, experts: routes.experts, expertCount: e)
    }

    /// The first job of one token's MoE (`forwardOneToken`): the router logits, and the shared
    /// experts' gate and up with their activation. The same every token (see `Workspace.prebuilt`),
    /// so once built the job before it can name it (`Workspace.builtJob`, `UpcomingJob`).
    func inputJob(_ xn: UnsafePointer<Float>, workspace ws: Workspace) -> MatvecBatch {
        let c = config, k = c.expertsPerToken, inter = c.expertIntermediateSize, si = weights.shared?.intermediateSize ?? 0
        let logits = ws.pointer(.routerLogits, 3 * c.routedExperts)
        let gs = ws.pointer(.gate, k * inter + si) + k * inter, us = ws.pointer(.up, k * inter + si) + k * inter
        return ws.prebuilt(.moeInput(layer: layer), buffers: .init(xn, logits, gs, us)) { batch in
            batch.append(Linear(weight: weights.router), x: xn, y: logits)
            if let shared = weights.shared { batch.appendGated(gate: shared.gate, up: shared.up, x: xn, out: gs, upOut: us) }
        }
    }

    /// The experts' job of `forwardOneToken`: each slot's routed expert's gate and up with their
    /// activation (into gate/up rows s·inter), and the shared experts' down (their activation at
    /// row k·inter of `gate`, into `out` row k). The shared down sits between the two halves of
    /// the routed experts, so that on two lanes the worker's range starts at its middle row: the
    /// one stretch of the job known before routing, which the router's job can then name (taken
    /// ~0.4% off an F32 token, alternate steps at ~27 GB/s).
    private func appendExperts(to batch: MatvecBatch, slots: Int, x: UnsafePointer<Float>, gate g: UnsafeMutablePointer<Float>,
                               up u: UnsafeMutablePointer<Float>, out y: UnsafeMutablePointer<Float>,
                               _ routed: (Int) -> RoutedExpert) {
        let inter = config.expertIntermediateSize, k = config.expertsPerToken, d = config.hiddenSize
        func appendRouted(_ s: Int) {
            let w = routed(s)
            batch.appendGated(gate: w.gate, up: w.up, x: x, out: g + s * inter, upOut: u + s * inter,
                              gateBias: w.gateBias, upBias: w.upBias)
        }
        for s in 0 ..< slots / 2 { appendRouted(s) }
        if let shared = weights.shared { batch.append(shared.down, x: g + k * inter, y: y + k * d) }
        for s in slots / 2 ..< slots { appendRouted(s) }
    }

    /// Decode: one token's MoE as three parallel jobs, each a `MatvecBatch` of matvecs that do
    /// not depend on each other, so the layer's weights stream with three hand-offs to the worker
    /// lanes instead of one per matrix; a SwiGLU's activation runs inside its gate/up job, block by
    /// block as their rows complete (`MatvecBatch.appendGated`: all lanes busy, none waiting):
    ///   1. the router logits, and the shared experts' gate and up with their activation;
    ///   2. the k routed experts' gate and up with their activations, and the shared experts' down;
    ///   3. the k routed experts' down.
    /// Route selection runs between 1 and 2, the weighted sum after 3, on the caller. Each job's
    /// time is recorded per op and per expert (shared out by bytes), so profiles keep one record
    /// per expert as in `grouped`. The sums are formed in the same order as the T > 1 path: routed
    /// experts by slot, then shared.
    ///
    /// (Summing the down rows inside the pieces as well, each piece taking the same rows of all
    /// k + 1 down matrices, made that job stream a third slower: 7 short interleaved streams a lane.)
    ///
    /// Each job names the one after it (`UpcomingJob`), so lanes waiting for its last pieces, or
    /// for the caller between two jobs, pull their first bytes of it: the down job's for the
    /// experts' job, `next` (the step's job after this layer) for the down job. The router's job
    /// names none: which experts follow depends on its output.
    private func forwardOneToken(_ xn: UnsafePointer<Float>, routes: inout Routes, workspace ws: Workspace,
                                 recorder rec: OpRecorder?, expertLoad: ExpertLoadRecorder?, out: UnsafeMutablePointer<Float>,
                                 then next: UpcomingJob?) {
        let c = config, l = layer, d = c.hiddenSize, k = c.expertsPerToken
        let router = Linear(weight: weights.router), shared = weights.shared, names = FeedForwardRole.shared.names
        let inter = c.expertIntermediateSize, si = shared?.intermediateSize ?? 0
        let (g, u, y) = (ws.pointer(.gate, k * inter + si), ws.pointer(.up, k * inter + si), ws.pointer(.expertOut, (k + 1) * d))
        let ys = y + k * d   // the shared experts' output
        let logits = ws.pointer(.routerLogits, 3 * c.routedExperts)
        let act = { (n: Int) in Cost.elementwise(elements: n, inputs: 2, flopsPerElement: 5) }

        rec.fused(layer: l, parts: {
            [OpPart("router", kind: .routing, cost: router.cost(tokens: 1))]
                + (shared.map { [OpPart(names.gateUp, kind: .gemv, cost: $0.gate.cost(tokens: 1) + $0.up.cost(tokens: 1)),
                                 OpPart(names.act, kind: .elementwise, cost: act(si))] } ?? [])
        }) {
            // Before routing only the experts' job's shared down is known: the job as laid out
            // with every slot's expert a placeholder says which lanes start on it.
            let experts = shared.map { shared in
                UpcomingJob.partly(layout: ws.prebuilt(.expertsLayout(layer: l), buffers: .init(xn, g, u, y)) { batch in
                    appendExperts(to: batch, slots: k, x: xn, gate: g, up: u, out: y) { _ in weights.routed[0] }
                }, known: shared.down.weight.view)
            }
            inputJob(xn, workspace: ws).run(then: experts)
        }
        selectRoutes(logits: logits, tokens: 1, routes: &routes, recorder: rec, expertLoad: expertLoad)

        let slots = routes.experts.count, (batch, down) = (ws.matvecs, ws.nextMatvecs)
        func expert(_ s: Int) -> FeedForwardWeights { weights.experts[Int(routes.experts[s])] }
        func routed(_ s: Int) -> RoutedExpert { weights.routed[Int(routes.experts[s])] }
        rec.fused(layer: l, parts: {
            (0..<slots).flatMap { s in
                [OpPart("expert_gate_up", kind: .gemv, expert: Int(routes.experts[s]),
                        cost: expert(s).gate.cost(tokens: 1) + expert(s).up.cost(tokens: 1)),
                 OpPart("expert_act", kind: .elementwise, expert: Int(routes.experts[s]), cost: act(inter))]
            } + (shared.map { [OpPart(names.down, kind: .gemv, cost: $0.down.cost(tokens: 1))] } ?? [])
        }) {
            // The down job is built first, so that this one can name it.
            down.removeAll()
            for s in 0..<slots {
                let w = routed(s)
                down.append(w.down, x: g + s * inter, y: y + s * d, bias: w.downBias)
            }
            batch.removeAll()
            appendExperts(to: batch, slots: slots, x: xn, gate: g, up: u, out: y, routed)
            batch.run(then: .batch(down))
        }
        rec.split("expert_down", layer: l, kind: .gemv, parts: slots, expert: { Int(routes.experts[$0]) },
                  cost: { expert($0).down.cost(tokens: 1) }) {
            down.run(then: next)
        }
        out.update(repeating: 0, count: d)
        rec.split("expert_combine", layer: l, kind: .elementwise, parts: slots, expert: { Int(routes.experts[$0]) },
                  cost: { _ in Cost.expertCombine(slots: 1, hidden: d) }) {
            for s in 0..<slots { Kernels.addScaled(y + s * d, by: routes.weights[s], to: out, count: d) }
        }
        if shared != nil {
            rec.op("shared_add", layer: l, kind: .elementwise, cost: Cost.elementwise(elements: d)) {
                Kernels.add(out, ys, count: d, out: out)
            }
        }
    }
}
