import Foundation
import TinySeek
import TinySeekRuntime

/// The terminal text of `tinyseek analyze`.
enum AnalyzeOutput {
    /// Columns padded to their widest cell; the first `leftColumns` left-aligned, the rest right.
    static func table(_ rows: [[String]], leftColumns: Int = 1, lastLeft: Bool = false, indent: String = "  ") -> String {
        let columns = rows.map(\.count).max() ?? 0
        let widths = (0..<columns).map { c in rows.map { c < $0.count ? $0[c].count : 0 }.max() ?? 0 }
        return rows.map { row in
            indent + row.enumerated().map { c, cell in
                let pad = String(repeating: " ", count: max(widths[c] - cell.count, 0))
                return c < leftColumns || (lastLeft && c == columns - 1) ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    static func bytes(_ b: Double) -> String { Format.si(b, unit: "B") }
    static func flops(_ f: Double) -> String { Format.si(f, unit: "FLOP") }
    static func rate(_ f: Double, _ unit: String) -> String { Format.si(f, unit: unit) }
    /// Counts and rates without an exponent: 13192, 2.01e5 -> 201010.
    static func whole(_ x: Double) -> String { x >= 100 ? String(format: "%.0f", x) : Format.number(x) }

    static func costCells(_ a: Aggregate, _ roofline: Roofline) -> [String] {
        [flops(a.cost.flops), bytes(a.cost.bytes), Format.number(a.intensity), Format.seconds(a.seconds),
         a.bound(roofline).rawValue]
    }

    static func hardwareTable(_ accelerators: [Accelerator]) -> String {
        var rows = [["name", "bf16 TFLOP/s", "fp8 TFLOP/s", "fp32 TFLOP/s", "GB/s", "GB", "ridge bf16", "interconnect GB/s/dir", "notes"]]
        for a in accelerators {
            func peak(_ k: String) -> String { a.peakTFLOPS[k].map { Format.number($0) } ?? "-" }
            let ridge = a.peakTFLOPS["bf16"].map { Format.number($0 * 1e12 / (a.memoryBandwidthGBps * 1e9)) } ?? "-"
            rows.append([a.name, peak("bf16"), peak("fp8"), peak("fp32"), Format.number(a.memoryBandwidthGBps),
                         Format.number(a.memoryGB), ridge, a.interconnectGBps.map { Format.number($0) } ?? "-",
                         [a.interconnect, a.notes].compactMap { $0 }.joined(separator: "; ")])
        }
        rows.append([Accelerator.thisMachine, "-", "-", "calibrated", "calibrated", "RAM", "-", "-",
                     "FP32 sgemm peak and read bandwidth from `tinyseek calibrate`"])
        return table(rows, leftColumns: 1, lastLeft: true)
    }

    // MARK: One step

    static func report(_ a: Analysis, system: SystemQuantities, allOps: Bool) -> String {
        let spec = a.spec, s = a.scenario, p = s.parallelism, r = a.roofline
        let params = ParameterCount(spec)
        var out: [String] = []
        out.append("\(spec.modelType): \(spec.layers) layers, hidden \(spec.hidden), vocab \(spec.vocab); \(spec.attentionSummary)")
        out.append("  \(spec.mlpSummary)")
        out.append("  \(Format.si(params.total)) parameters, \(Format.si(params.activePerToken)) active per token")
        let link = a.accelerator.interconnectGBps.map { ", \(Format.number($0)) GB/s per direction over \(a.accelerator.interconnect ?? "the interconnect")" } ?? ""
        out.append("\(a.accelerator.name): \(a.peakDType) peak \(rate(r.peakFlops, "FLOP/s")), \(rate(r.bandwidth, "B/s")), "
                   + "\(a.accelerator.memoryGB > 0 ? Format.number(a.accelerator.memoryGB) + " GB" : "capacity unknown"), "
                   + "ridge \(Format.number(r.ridge)) FLOP/B\(link)")
        if a.peakDType != s.dtype.rawValue { out.append("  (no \(s.dtype.rawValue) peak on this device: ops run at its \(a.peakDType) peak)") }
        let order = spec.isLatent ? ", MLA \(s.resolvedAttention.rawValue)" : ""
        out.append("Step: \(s.phase.rawValue), batch \(s.batch) x context \(s.context)\(order), \(s.dtype.summary)")
        out.append("  dp \(p.dp) x tp \(p.tp) = \(p.devices) device(s), ep \(p.ep); ops below are per device"
                   + (p.devices > 1 ? " (rank of \(s.sequencesPerRank) sequences)" : ""))
        if let load = a.model.expertLoad(), let e = spec.experts {
            out.append("  MoE: \(s.tokens) tokens x top-\(e.perToken) of \(e.routed) experts -> E[touched] = "
                       + "\(Format.number(load.touchedExperts)) experts per layer, \(Format.number(load.tokensPerExpert)) tokens each"
                       + " (Γ = \(Format.number(s.routing.imbalance)))")
        }

        // Ops of the representative layers (or all).
        let (dense, moe) = spec.representativeLayers
        let shown: [Int?] = allOps ? [nil] : [dense, moe].compactMap { $0 }.map { Optional($0) }
        for layer in shown {
            var rows = [["op", "layer", "kind", "FLOPs", "bytes", "FLOP/B", "time", "bound"]]
            for (op, sec) in zip(a.ops, a.seconds) where layer == nil || op.layer == layer {
                var agg = Aggregate()
                agg.count = 1
                agg.cost = op.cost
                agg.seconds = sec
                rows.append([op.name + (op.expert.map { " #\($0)" } ?? ""), op.layer.map(String.init) ?? "-", op.kind.rawValue]
                            + costCells(agg, r))
            }
            let title = layer.map { "\nLayer \($0) (\(spec.isMoE(layer: $0) ? "MoE" : "dense")), one step on one device:" } ?? "\nEvery op of the step:"
            out.append(title)
            out.append(table(rows, leftColumns: 3))
        }

        // Per layer type.
        var rows = [["", "layers", "FLOPs/layer", "bytes/layer", "FLOP/B", "time/layer", "bound", "time, all"]]
        func typeRow(_ name: String, _ layers: [Int]) {
            guard let first = layers.first else { return }
            let g = a.layer(first)
            rows.append([name, "\(layers.count)"] + costCells(g, r) + [Format.seconds(g.seconds * Double(layers.count))])
        }
        typeRow("dense layer\(dense.map { " (\($0))" } ?? "")", (0..<spec.layers).filter { !spec.isMoE(layer: $0) })
        typeRow("MoE layer\(moe.map { " (\($0))" } ?? "")", (0..<spec.layers).filter { spec.isMoE(layer: $0) })
        let outside = a.aggregate { $0.layer == nil }
        rows.append(["embedding + LM head", "-"] + costCells(outside, r) + [Format.seconds(outside.seconds)])
        let total = a.total
        rows.append(["step (compute)", "\(spec.layers)"] + costCells(total, r).prefix(3) + ["", total.bound(r).rawValue, Format.seconds(a.computeSeconds)])
        out.append("\nPer layer type (per device):")
        out.append(table(rows))

        out.append("\nPer token: \(flops(a.flopsPerToken)), \(bytes(a.bytesPerToken)) moved (whole pool, \(a.tokensPerStep) tokens per step)")
        let cacheNote: String
        switch spec.attention {
        case let .latent(m): cacheNote = "(\(m.kvLoraRank) + \(m.ropeHeadDim)) x \(spec.layers) layers x \(Int(s.dtype.cacheBytes)) B"
        case let .grouped(g): cacheNote = "2 x \(g.kvHeads) KV heads x \(g.headDim) x \(spec.layers) layers x \(Int(s.dtype.cacheBytes)) B"
        }
        out.append("KV cache: \(bytes(a.kvCacheBytesPerToken)) per token = \(cacheNote); \(bytes(a.kvCacheBytesPerRequest)) per request of \(s.context) tokens")
        let comm = a.communicationSeconds > 0 ? " (compute \(Format.seconds(a.computeSeconds)) + interconnect \(Format.seconds(a.communicationSeconds)))" : ""
        if s.phase == .decode {
            out.append("Decode: \(Format.seconds(a.stepSeconds)) per output token\(comm); "
                       + "\(whole(a.tokensPerSecondPerDevice)) tokens/s per device, \(whole(a.tokensPerSecondPerDevice * Double(p.devices))) over \(p.devices)")
        } else {
            out.append("Prefill: \(Format.seconds(a.stepSeconds)) for \(s.batch) x \(s.context) tokens (time to first token)\(comm); "
                       + "\(whole(a.tokensPerSecondPerDevice)) tokens/s per device")
        }
        out.append(contentsOf: systemLines(a, system))
        return out.joined(separator: "\n")
    }

    static func systemLines(_ a: Analysis, _ q: SystemQuantities) -> [String] {
        let spec = a.spec, s = a.scenario, p = s.parallelism
        var out = ["\nSystem (paper's closed forms vs this cost model, decode):"]
        out.append("  ridge RP = peak / bandwidth = \(Format.number(q.ridge)) FLOP/B")
        let attnModel = q.attentionBatchModel.map { "\($0)" } ?? "never (by 2^24)"
        out.append("  B_attn = RP x deg_DP = \(whole(q.attentionBatchPaper)) sequences; model: attention weight GEMMs reach the ridge at B = \(attnModel)")
        if let paper = q.moeBatchPaper, let e = spec.experts {
            let g = s.routing.imbalance == 1 ? "" : " / Γ"
            let model = q.moeBatchModel.map { "\($0)" } ?? "never (by 2^24)"
            out.append("  B_MoE = RP x n_e / n_k\(g) = \(whole(paper)) tokens (\(e.routed) experts, top-\(e.perToken)); "
                       + "model: expert matmuls reach the ridge at B = \(model)")
        }
        let m = q.memory
        let cap = m.capacity > 0 ? " of \(bytes(m.capacity))" : ""
        out.append("  memory per device at batch \(s.batch): weights \(bytes(m.weights)) + KV cache \(bytes(m.kvCache)) + activations \(bytes(m.activations)) = \(bytes(m.total))\(cap)"
                   + (m.capacity > 0 ? (m.fits ? ": fits" : ": does NOT fit") : ""))
        switch q.maxBatch {
        case nil:
            out.append("  max batch in memory: unknown capacity")
        case 0?:
            out.append("  max batch in memory at context \(s.context): none — the weights alone need \(bytes(m.weights)) per device; spread them with --ep / --tp / --dp")
        case let n?:
            out.append("  max batch in memory at context \(s.context): \(n) sequences over \(p.devices) device(s)")
        }
        if spec.experts != nil {
            if p.ep > 1 {
                out.append("  MoE all-to-all (dispatch + combine) per MoE layer: \(Format.seconds(q.allToAllSecondsPerMoELayer)) over \(p.ep) devices "
                           + "(2·Γ·hidden·bytes·n_k·B / (bandwidth·devices) + 2 latency), \(Format.seconds(q.allToAllSecondsPerMoELayer * Double(spec.moeLayerCount))) per step")
            } else {
                out.append("  MoE all-to-all: none (ep = 1; use --ep N --dp N to spread experts)")
            }
        }
        if p.tp > 1 {
            out.append("  TP all-reduce: \(Format.seconds(q.allReduceSecondsPerLayer)) per layer (2 ring all-reduces)")
        }
        return out
    }

    // MARK: Comparison

    static func comparison(_ c: AttentionComparison, spec: ArchitectureSpec, accelerator: Accelerator,
                           batch: Int, context: Int, dtype: AnalysisDType) -> String {
        var out = ["Attention compared at hidden \(spec.hidden), \(spec.heads) heads (from \(spec.modelType)), one layer, "
                   + "batch \(batch), context \(context), \(dtype.rawValue) on \(accelerator.name) (ridge \(Format.number(c.roofline.ridge)) FLOP/B)"]
        for phase in [Phase.decode, .prefill] {
            let rows = c.rows.filter { $0.phase == phase }
            var t = [["variant", "KV cache/token/layer", "score FLOP/B", "score+softmax+context FLOP/B", "block FLOP/B", "block time", "bound"]]
            for r in rows {
                t.append([r.variant, bytes(r.kvBytesPerTokenPerLayer), Format.number(r.score.intensity),
                          Format.number(r.core.intensity), Format.number(r.block.intensity), Format.seconds(r.block.seconds),
                          r.core.bound(c.roofline).rawValue])
            }
            out.append("\n\(phase == .decode ? "Decode (1 new token per sequence)" : "Prefill (\(context) tokens per sequence)"):")
            out.append(table(t))
            if let mha = rows.first, let mla = rows.last, mha.score.intensity > 0 {
                out.append("  MLA absorbed / MHA score intensity: \(Format.number(mla.score.intensity / mha.score.intensity))x")
            }
        }
        out.append("\nblock = every attention op of the layer (projections, rope, score, softmax, context, up-projections); bound is the score+softmax+context's.")
        return out.joined(separator: "\n")
    }

    static func comparisonJSON(_ c: AttentionComparison) throws -> String {
        struct Row: Encodable {
            var variant, phase, bound: String
            var kvBytesPerTokenPerLayer, scoreIntensity, coreIntensity, blockIntensity, blockSeconds: Double
            enum CodingKeys: String, CodingKey {
                case variant, phase, bound
                case kvBytesPerTokenPerLayer = "kv_cache_bytes_per_token_per_layer", scoreIntensity = "score_intensity"
                case coreIntensity = "score_softmax_context_intensity", blockIntensity = "block_intensity"
                case blockSeconds = "block_seconds"
            }
        }
        let rows = c.rows.map { r in
            Row(variant: r.variant, phase: r.phase.rawValue, bound: r.core.bound(c.roofline).rawValue,
                kvBytesPerTokenPerLayer: r.kvBytesPerTokenPerLayer, scoreIntensity: r.score.intensity,
                coreIntensity: r.core.intensity, blockIntensity: r.block.intensity, blockSeconds: r.block.seconds)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(["ridge_flops_per_byte": AnyEncodable(c.roofline.ridge), "compare": AnyEncodable(rows)]),
                      as: UTF8.self)
    }

    /// Lets one JSON object mix a number and a list.
    struct AnyEncodable: Encodable {
        let value: any Encodable
        init(_ value: any Encodable) { self.value = value }
        func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
    }

    // MARK: Sweep

    static func sweep(_ r: Sweep.Result) -> String {
        let names = r.seriesNames.filter { $0 != "whole step" }
        var rows = [[r.variable.rawValue] + names.map { "\($0)" } + ["step", "step time", "tokens/s/device"]]
        for p in r.points {
            func cell(_ n: String) -> String {
                p.groups.first { $0.name == n }.map { Format.number($0.aggregate.intensity) } ?? "-"
            }
            rows.append(["\(p.value)"] + names.map(cell) + [cell("whole step"), Format.seconds(p.stepSeconds), Format.number(p.tokensPerSecondPerDevice)])
        }
        return "Arithmetic intensity (FLOP/B) per op group: \(r.title); ridge \(Format.number(r.roofline.ridge)) FLOP/B\n"
            + table(rows)
    }

    static func sweepJSON(_ r: Sweep.Result) throws -> String {
        struct Point: Encodable {
            var value: Int
            var stepSeconds: Double
            var tokensPerSecondPerDevice: Double
            var series: [String: [String: Double]]
            enum CodingKeys: String, CodingKey {
                case value, series
                case stepSeconds = "step_seconds", tokensPerSecondPerDevice = "tokens_per_second_per_device"
            }
        }
        struct Body: Encodable {
            var variable: String
            var title: String
            var ridgeFlopsPerByte: Double
            var points: [Point]
            enum CodingKeys: String, CodingKey {
                case variable, title, points
                case ridgeFlopsPerByte = "ridge_flops_per_byte"
            }
        }
        let body = Body(variable: r.variable.rawValue, title: r.title, ridgeFlopsPerByte: r.roofline.ridge, points: r.points.map { p in
            Point(value: p.value, stepSeconds: p.stepSeconds, tokensPerSecondPerDevice: p.tokensPerSecondPerDevice,
                  series: Dictionary(uniqueKeysWithValues: p.groups.map { g in
                      (g.name, ["flops": g.aggregate.cost.flops, "bytes": g.aggregate.cost.bytes,
                                "intensity": g.aggregate.intensity, "seconds": g.aggregate.seconds])
                  }))
        })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(body), as: UTF8.self)
    }
}
