import Tensor

/// Which SwiGLU block is running, for op names in profiles.
enum FeedForwardRole {
    case dense, shared, expert

    var names: (gateUp: String, act: String, down: String) {
        switch self {
        case .dense: return ("ffn_gate_up", "ffn_act", "ffn_down")
        case .shared: return ("shared_gate_up", "shared_act", "shared_down")
        case .expert: return ("expert_gate_up", "expert_act", "expert_down")
        }
    }
}

extension FeedForwardWeights {
    /// out[rows, hidden] = down(silu(gate(x)) ⊙ up(x)) over a batch of rows in one GEMM each.
    ///
    /// FLOPs: 2·rows·hidden·I for each of gate, up and down; weights read once per call, which
    /// is why grouping the tokens of a step per expert raises an expert's arithmetic intensity.
    /// `next`: the job after this block's last (see `UpcomingJob`).
    func forward(_ x: UnsafePointer<Float>, rows: Int, ldx: Int, into out: UnsafeMutablePointer<Float>,
                 role: FeedForwardRole, layer: Int, expert: Int? = nil,
                 workspace ws: Workspace, recorder rec: OpRecorder?, then next: UpcomingJob? = nil) {
        let inter = intermediateSize
        let g = ws.pointer(.gate, rows * inter), u = ws.pointer(.up, rows * inter)
        let names = role.names
        let act = Cost.elementwise(elements: rows * inter, inputs: 2, flopsPerElement: 5)
        if rows == 1 {
            // One row: gate and up read the same x, so one parallel job streams both and applies
            // the activation block by block as their rows complete (`MatvecBatch.appendGated`).
            rec.fused(layer: layer, parts: {
                [OpPart(names.gateUp, kind: .gemv, expert: expert, cost: gate.cost(tokens: 1) + up.cost(tokens: 1)),
                 OpPart(names.act, kind: .elementwise, expert: expert, cost: act)]
            }) {
                // A dense layer's is the same every token: prebuilt, so the job before can name it.
                let batch: MatvecBatch
                if role == .dense {
                    batch = ws.prebuilt(.denseInput(layer: layer), buffers: .init(x, g, u)) {
                        $0.appendGated(gate: gate, up: up, x: x, out: g, upOut: u)
                    }
                } else {
                    batch = ws.matvecs
                    batch.removeAll()
                    batch.appendGated(gate: gate, up: up, x: x, out: g, upOut: u)
                }
                batch.run(then: .matvec(down.weight.view))
            }
        } else {
            rec.op(names.gateUp, layer: layer, expert: expert, kind: gate.kind(tokens: rows),
                   cost: gate.cost(tokens: rows) + up.cost(tokens: rows)) {
                gate.apply(x, rows: rows, ldx: ldx, into: g)
                up.apply(x, rows: rows, ldx: ldx, into: u)
            }
            rec.op(names.act, layer: layer, expert: expert, kind: .elementwise, cost: act) {
                Kernels.siluMul(g, u, count: rows * inter, out: g)
            }
        }
        rec.op(names.down, layer: layer, expert: expert, kind: down.kind(tokens: rows), cost: down.cost(tokens: rows)) {
            down.apply(g, rows: rows, into: out, then: next)
        }
    }
}
