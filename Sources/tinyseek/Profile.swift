import ArgumentParser
import Foundation
import TinySeek
import TinySeekRuntime

struct Profile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Profile a model: every op's FLOPs, bytes and time against this machine's roofline.",
        discussion: """
        Prefills a prompt, then decodes greedily, recording every operator where it is called. Prints tables per \
        model part, op kind and layer for prefill and decode, a verdict per layer, the measured naive-vs-absorbed \
        attention crossover, and writes CSV/JSON/Chrome-trace/HTML reports on request. The roofline comes from \
        `tinyseek calibrate` (measured quickly on the spot when none is saved).
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Prompt length to prefill.")
    var promptTokens: Int = 64

    @Option(name: .long, help: "Decode steps after the prompt.")
    var decodeTokens: Int = 16

    @Option(name: .long, help: ArgumentHelp("Machine profile JSON from `tinyseek calibrate` (default: the saved one).", valueName: "file"))
    var machine: String?

    @Option(name: .long, help: ArgumentHelp("Write one CSV row per op record.", valueName: "file"))
    var csv: String?

    @Option(name: .long, help: ArgumentHelp("Write a JSON object with an \"ops\" array (one record per op) and summaries.", valueName: "file"))
    var json: String?

    @Option(name: .long, help: ArgumentHelp("Write a Chrome trace (open in Perfetto or chrome://tracing).", valueName: "file"))
    var trace: String?

    @Option(name: .long, help: ArgumentHelp("Write a self-contained HTML report with the roofline chart.", valueName: "file"))
    var html: String?

    @Option(name: .long, help: ArgumentHelp("Also decode B sequences together for each B (e.g. 1,4,16,64): expert intensity and time per token against batch size, next to the prediction Γ·B·k/E.", valueName: "sizes"))
    var batch: String?

    @Option(name: .long, help: ArgumentHelp("Write tokens per expert over the run as CSV rows layer,expert,count.", valueName: "file"))
    var expertCsv: String?

    @Flag(name: .long, help: "Print one layer's ops with their shapes and FLOP/byte formulas instead of profiling.")
    var explain = false

    @Option(name: .long, help: "With --explain: the layer to explain (default: the first MoE layer).")
    var layer: Int?

    @Flag(name: .long, help: "Skip measuring naive vs absorbed attention at several lengths.")
    var noAdvice = false

    @Option(name: .long, help: "How many ops to list in the top-ops table.")
    var top: Int = 12

    func run() throws {
        guard promptTokens >= 1 else { throw CLIError("--prompt-tokens must be >= 1, got \(promptTokens)") }
        guard decodeTokens >= 0 else { throw CLIError("--decode-tokens must be >= 0, got \(decodeTokens)") }
        for path in [csv, json, trace, html, expertCsv].compactMap({ $0 }) { try checkWritable(path) }
        let batches = try batch.map { try parseTokenList($0, option: "--batch") }
        if let b = batches, b.contains(where: { $0 < 1 }) { throw CLIError("--batch sizes must be >= 1") }
        let model = try modelOptions.load()
        if explain { return try printExplanation(model) }
        let roofline = try loadRoofline()

        let options = ProfileOptions(promptTokens: promptTokens, decodeTokens: decodeTokens, attention: modelOptions.attention,
                                     expertsPerToken: modelOptions.expertsPerToken)
        let report = try Profiler.run(model: model, options: options, roofline: roofline) { printError("  \($0)") }
        print("TinySeek profile: \(modelOptions.model)  attention \(modelOptions.attention.rawValue)")
        print("machine roofline: \(Format.number(roofline.peakFlops / 1e9)) GFLOP/s, \(Format.number(roofline.bandwidth / 1e9)) GB/s, "
              + "ridge \(Format.number(roofline.ridge)) FLOP/B")
        for phase in report.phases { printPhase(report, phase) }

        if let batches {
            let points = try BatchSweep.run(model: model, batches: batches, promptTokens: min(promptTokens, 16),
                                            decodeSteps: max(decodeTokens, 4)) { printError("  \($0)") }
            printBatchSweep(points, model: model, roofline: roofline)
        }
        if !noAdvice {
            let lengths = adviceLengths()
            let advice = try AttentionAdvice.measure(model: model, lengths: lengths) { printError("  \($0)") }
            printAdvice(advice)
        }
        let overhead = try Profiler.recordingOverhead(model: model)
        print("\nrecording overhead on a decode step: \(String(format: "%+.1f%%", overhead * 100)) (median of 64 steps, recorder on vs off)")
        try writeFiles(report, model: model, roofline: roofline, options: options)
    }

    func adviceLengths() -> [Int] {
        var lengths: [Int] = []
        var n = 2
        while n < promptTokens { lengths.append(n); n *= 4 }
        lengths.append(promptTokens)
        return lengths
    }

    func loadRoofline() throws -> Roofline {
        if let machine {
            return Roofline(machine: try MachineProfile.load(from: URL(fileURLWithPath: machine)))
        }
        if let saved = try? MachineProfile.load(from: MachineProfile.defaultURL) { return Roofline(machine: saved) }
        printError("no saved machine profile (run `tinyseek calibrate`); measuring a quick one now")
        return Roofline(machine: Calibration.measure(options: .quick) { printError("  \($0)") })
    }

    func printPhase(_ report: ProfileReport, _ phase: Phase) {
        let roof = report.roofline
        let total = report.total(phase)
        let tokens = report.tokens[phase] ?? 0
        print("\n== \(phase.rawValue.uppercased()): \(tokens) token(s) in \(Format.seconds(total.seconds)), "
              + "\(Format.number(report.tokensPerSecond(phase))) tok/s; bandwidth utilisation \(Format.percent(report.bandwidthUtilisation(phase))), "
              + "FLOP utilisation \(Format.percent(report.flopUtilisation(phase))) ==")

        func row(_ label: String, _ a: Aggregate) -> [String] {
            [label, Format.seconds(a.seconds), Format.percent(total.seconds > 0 ? a.seconds / total.seconds : 0),
             Format.si(a.cost.flops), Format.si(a.cost.bytes, unit: "B"), Format.number(a.intensity),
             a.bound(roof).rawValue, Format.percent(a.roofFraction(roof))]
        }
        let headers = ["", "time", "share", "FLOPs", "bytes", "FLOP/B", "bound", "% roof"]
        var parts = TerminalTable(["model part"] + headers.dropFirst())
        for (part, a) in report.byPart(phase).sorted(by: { $0.value.seconds > $1.value.seconds }) { parts.append(row(part.title, a)) }
        print(parts.render())
        var kinds = TerminalTable(["op kind"] + headers.dropFirst())
        for (kind, a) in report.byKind(phase).sorted(by: { $0.value.seconds > $1.value.seconds }) { kinds.append(row(kind.rawValue, a)) }
        print("\n" + kinds.render())
        var layers = TerminalTable(["layer"] + headers.dropFirst())
        for (layer, a) in report.byLayer(phase) { layers.append(row(layer.map(String.init) ?? "-", a)) }
        print("\n" + layers.render())
        var ops = TerminalTable(["top ops", "count"] + headers.dropFirst())
        for (name, a) in report.byName(phase).sorted(by: { $0.value.seconds > $1.value.seconds }).prefix(top) {
            var r = row(name, a)
            r.insert(String(a.count), at: 1)
            ops.append(r)
        }
        print("\n" + ops.render())
        print("\nverdicts:")
        for (layer, text) in report.verdicts(phase) { print("  \(layer.map { "layer \($0)" } ?? "outside layers"): \(text)") }
    }

    func printBatchSweep(_ points: [BatchPoint], model: Model, roofline: Roofline) {
        let c = model.config
        print("\n== BATCHED DECODE: routed experts vs batch (E=\(c.routedExperts), k=\(c.expertsPerToken)) ==")
        var table = TerminalTable(["batch", "step", "tok/s", "experts/step", "tokens/expert", "max", "Γ", "B·k/E",
                                   "expert FLOP/B", "predicted", "expert GFLOP/s", "bound"])
        for p in points {
            table.append([String(p.batch), Format.seconds(p.stepSeconds), Format.number(p.tokensPerSecond),
                          Format.number(p.distinctExperts), Format.number(p.tokensPerActiveExpert), Format.number(p.maxTokensPerExpert),
                          Format.number(p.imbalance), Format.number(p.predictedTokensPerExpert),
                          Format.number(p.expertIntensity), Format.number(p.predictedIntensity),
                          Format.number(p.expertGFLOPS), roofline.bound(intensity: p.expertIntensity).rawValue])
        }
        print(table.render())
        print("tokens/expert: measured mean per active expert; max = Γ·B·k/E with Γ the measured max/mean imbalance; "
              + "B·k/E the balanced prediction, and 'predicted' the cost model's intensity for it.")
        print("An expert's weights stream once per step for all its tokens, so intensity grows with tokens per expert "
              + "towards the ridge (\(Format.number(roofline.ridge)) FLOP/B here).")
    }

    func printAdvice(_ advice: AttentionAdvice) {
        print("\n== ATTENTION ORDER: measured attention time, naive vs absorbed ==")
        var table = TerminalTable(["phase", "length", "naive", "absorbed", "faster", "attn_score FLOP/B naive", "absorbed"])
        for p in advice.points.sorted(by: { ($0.phase.rawValue, $0.length) < ($1.phase.rawValue, $1.length) }) {
            table.append([p.phase.rawValue, String(p.length), Format.seconds(p.naive), Format.seconds(p.absorbed),
                          p.naive < p.absorbed ? "naive" : "absorbed",
                          Format.number(p.naiveScoreIntensity), Format.number(p.absorbedScoreIntensity)])
        }
        print(table.render())
        for phase in [Phase.prefill, .decode] { print("advice: " + advice.summary(phase)) }
    }

    func printExplanation(_ model: Model) throws {
        let c = model.config
        let l = layer ?? (0..<c.numHiddenLayers).first(where: c.isMoELayer) ?? 0
        guard l >= 0 && l < c.numHiddenLayers else { throw CLIError("--layer must be in 0..<\(c.numHiddenLayers), got \(l)") }
        print("layer \(l) of \(modelOptions.model) (\(c.isMoELayer(l) ? "MoE" : "dense FFN")): ops in order, shapes, and cost formulas")
        print("symbols: T new tokens, S positions attended, d=\(c.hiddenSize) H=\(c.numAttentionHeads) qr=\(c.qLoraRank.map(String.init) ?? "-") "
              + "r=\(c.kvLoraRank) dn=\(c.qkNopeHeadDim) dr=\(c.qkRopeHeadDim) dv=\(c.vHeadDim) I=\(c.intermediateSize) "
              + "Ie=\(c.expertIntermediateSize) Is=\(c.expertIntermediateSize * c.sharedExperts) E=\(c.routedExperts) k=\(c.expertsPerToken), "
              + "n tokens of one expert, w=4 bytes per weight (F32)")
        for (phase, t, s, order) in [(Phase.prefill, promptTokens, promptTokens, modelOptions.attention.resolved(tokens: promptTokens)),
                                     (Phase.decode, 1, promptTokens + 1, modelOptions.attention.resolved(tokens: 1))] {
            let perExpert = max(1, t * c.expertsPerToken / max(c.routedExperts, 1))
            let sym = Explain.symbols(c, tokens: t, positions: s, expertTokens: perExpert)
            print("\n\(phase.rawValue): T=\(t), S=\(s), \(order.rawValue) attention" + (c.isMoELayer(l) ? ", n=\(perExpert) (T·k/E)" : ""))
            var table = TerminalTable(["op", "shapes", "FLOPs", "=", "bytes", "=", "FLOP/B", "why"])
            for name in opNames(c, layer: l, order: order) {
                guard let e = Explain.entry(for: name, order: order) else { continue }
                let f = Explain.evaluate(e.flops, sym) ?? 0, b = Explain.evaluate(e.bytes, sym) ?? 0
                table.append([name, e.shapes, e.flops, Format.si(f), e.bytes, Format.si(b, unit: "B"), Format.number(b > 0 ? f / b : 0), e.why])
            }
            print(table.render())
        }
    }

    func opNames(_ c: ModelConfig, layer l: Int, order: AttentionOrder) -> [String] {
        var names = ["attn_norm"] + (c.qLoraRank != nil ? ["q_a_proj", "q_a_norm", "q_b_proj"] : ["q_proj"])
        names += ["kv_a_proj", "kv_norm", "rope"]
        names += order == .absorbed ? ["q_absorb", "attn_score", "softmax", "attn_context", "v_absorb"]
                                    : ["kv_decompress", "attn_score", "softmax", "attn_context"]
        names += ["o_proj", "attn_residual", "mlp_norm"]
        if c.isMoELayer(l) {
            names += ["router", "route_select", "expert_gate_up", "expert_act", "expert_down", "expert_combine"]
            if c.sharedExperts > 0 { names += ["shared_gate_up", "shared_act", "shared_down", "shared_add"] }
        } else {
            names += ["ffn_gate_up", "ffn_act", "ffn_down"]
        }
        return names + ["mlp_residual"]
    }

    func writeFiles(_ report: ProfileReport, model: Model, roofline: Roofline, options: ProfileOptions) throws {
        let name = modelOptions.model
        if let csv { try CSVReport.write(report, to: URL(fileURLWithPath: csv)); printError("wrote \(csv)") }
        if let json { try JSONReport.write(report, model: name, to: URL(fileURLWithPath: json)); printError("wrote \(json)") }
        if let trace { try TraceReport.write(report, model: name, to: URL(fileURLWithPath: trace)); printError("wrote \(trace)") }
        if let expertCsv { try write(report.expertCountsCSV(), to: expertCsv) }
        if let html {
            // A second run in the other MLA order puts naive and absorbed attention side by side on the roofline.
            var other = options
            other.attention = modelOptions.attention == .naive ? .absorbed : .naive
            let second = try Profiler.run(model: model, options: other, roofline: roofline) { printError("  \($0) (\(other.attention.rawValue) run)") }
            let label = modelOptions.attention == .auto ? "auto (naive prefill, absorbed decode)" : modelOptions.attention.rawValue
            let heat = ExpertLoadRecorder.heatMap(report.expertLoad)
            try HTMLReport.write(runs: [HTMLReport.Run(label: label, report: report),
                                        HTMLReport.Run(label: other.attention.rawValue, report: second)],
                                 title: "TinySeek profile: \(name)", expertTokens: heat.counts.isEmpty ? nil : heat.counts,
                                 to: URL(fileURLWithPath: html))
            printError("wrote \(html)")
        }
    }

    func write(_ text: String, to path: String) throws {
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw CLIError("cannot write '\(path)': \(error.localizedDescription)")
        }
        printError("wrote \(path)")
    }
}

/// Fails early, before a long run, when an output path cannot be written.
func checkWritable(_ path: String) throws {
    let dir = URL(fileURLWithPath: path).deletingLastPathComponent()
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue,
          FileManager.default.isWritableFile(atPath: dir.path) else {
        throw CLIError("cannot write '\(path)': folder '\(dir.path)' does not exist or is not writable")
    }
}
