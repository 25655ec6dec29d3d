import ArgumentParser
import Foundation
import TinySeek
import TinySeekRuntime

extension Phase: ExpressibleByArgument {}
extension AnalysisDType: ExpressibleByArgument {}

/// `tinyseek analyze`: the executor's cost formulas evaluated for a real-scale config on an
/// accelerator, without running anything.
struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Model a real-scale config on an accelerator: per-op FLOPs, bytes, intensity and roofline time.",
        discussion: """
        Evaluates the same cost formulas the executor records (one cost model) for any supported \
        Hugging Face config (DeepSeek-V2/V3, Kimi-K2, Llama-3, Llama-4, Qwen3-MoE, Mixtral, GPT-3) \
        at batch B and context L, without running it. Each op takes max(FLOPs / peak, bytes / \
        bandwidth); the report gives per-layer and per-token totals, the KV cache, decode time per \
        token, tokens/s per device and the paper's system quantities (B_attn, B_MoE, the largest \
        batch that fits, MoE all-to-all time). Configs of real models are in Models/configs/.
        Examples:
          tinyseek analyze --config Models/configs/deepseek-v3.json --hardware H200 --batch 64 --context 4096
          tinyseek analyze --compare
          tinyseek analyze --config Models/configs/deepseek-v3.json --sweep batch=1,2,4,...,4096 --svg moe.svg
        """
    )

    @Option(help: ArgumentHelp("Model config: a config.json in Hugging Face form, or a model folder holding one. Default with --compare: Models/configs/deepseek-v3.json.",
                               valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("Accelerator: V100, A100, H100 SXM, H200, B200, MI325X, TPU v5p, or this-machine (the `tinyseek calibrate` profile). See --list-hardware.",
                               valueName: "name"))
    var hardware: String = "H200"

    @Option(name: .customLong("hardware-file"),
            help: ArgumentHelp("JSON file adding accelerators or replacing same-named ones: {\"accelerators\": [{\"name\", \"peak_tflops\": {\"bf16\", \"fp8\"}, \"memory_bandwidth_gbps\", \"memory_gb\", \"interconnect_gbps\", \"interconnect_latency_us\"}]}.",
                               valueName: "file"))
    var hardwareFile: String?

    @Option(help: ArgumentHelp("B: sequences in the step, over all data-parallel ranks.", valueName: "B"))
    var batch: Int = 1

    @Option(help: ArgumentHelp("L: positions attended — the cache length after a decode step, or the prompt length in prefill.", valueName: "L"))
    var context: Int = 4096

    @Option(help: "decode (one new token per sequence, attending to L positions) or prefill (L new tokens per sequence).")
    var phase: Phase = .decode

    @Option(help: "bf16 (2-byte weights, activations, cache), fp8 (1-byte weights at the FP8 peak; activations and cache bf16) or fp32 (the executor's format). Default: bf16, fp32 on this-machine.")
    var dtype: AnalysisDType?

    @Option(help: "MLA order: naive (decompress K/V), absorbed (attend over the latent) or auto (naive for prefill, absorbed for decode, as the executor).")
    var attention: AttentionOrder = .auto

    @Option(help: ArgumentHelp("Data-parallel attention ranks: each runs B/dp sequences with all attention weights (the paper's deg_DP).", valueName: "N"))
    var dp: Int = 1

    @Option(help: ArgumentHelp("Tensor-parallel ranks inside a data-parallel rank: heads, FFN width and vocabulary split N ways.", valueName: "N"))
    var tp: Int = 1

    @Option(help: ArgumentHelp("Expert-parallel devices the routed experts are spread over (must divide dp x tp); the rest of the pool splits each expert's width.", valueName: "N"))
    var ep: Int = 1

    @Option(help: ArgumentHelp("Load imbalance Γ = most loaded expert's tokens / mean (>= 1); experts are evaluated at Γ·B·n_k/n_e tokens.", valueName: "G"))
    var imbalance: Double = 1

    @Flag(help: "Print one JSON object: ops (the profiler's row keys, seconds = roofline time), layers, totals, kv_cache, system quantities.")
    var json = false

    @Option(help: ArgumentHelp("Evaluate at several values: batch=1,2,4,...,4096 or context=1024,2048,...,131072 ('...' continues the progression).", valueName: "var=values"))
    var sweep: String?

    @Option(help: ArgumentHelp("Write CSV: the sweep's per-op-group rows with --sweep, else every op of the step (the profiler's CSV columns).", valueName: "file"))
    var csv: String?

    @Option(help: ArgumentHelp("With --sweep: write a self-contained SVG chart of intensity vs the swept variable, log-log, with the ridge.", valueName: "file"))
    var svg: String?

    @Flag(help: "Compare MHA, GQA and MLA (naive and absorbed) at the config's hidden size and heads, decode and prefill, one layer on one device.")
    var compare = false

    @Flag(name: .customLong("list-hardware"), help: "Print the accelerator table (with --hardware-file entries) and exit.")
    var listHardware = false

    @Flag(name: .customLong("all-ops"), help: "List every op of the step, not just the representative layers.")
    var allOps = false

    func run() throws {
        let table = try Accelerator.table(overrides: hardwareFile.map { URL(fileURLWithPath: $0) })
        if listHardware {
            print(AnalyzeOutput.hardwareTable(table))
            return
        }
        if svg != nil && sweep == nil { throw CLIError("--svg needs --sweep (the chart plots the sweep)") }
        let accelerator = try Accelerator.named(hardware, in: table)
        let path = try configPath()
        let spec = try ArchitectureSpec.load(from: URL(fileURLWithPath: path))
        let dtype = dtype ?? (accelerator.name == Accelerator.thisMachine ? .fp32 : .bf16)
        if context > spec.maxPositions {
            printError("note: context \(context) exceeds \(spec.modelType)'s max_position_embeddings \(spec.maxPositions); modelled anyway")
        }
        if let peak = accelerator.peakFlops(for: dtype), peak.dtype != dtype.rawValue, !json {
            printError("note: \(accelerator.name) has no \(dtype.rawValue) peak; using its \(peak.dtype) peak")
        }
        let scenario = Scenario(batch: batch, context: context, phase: phase, dtype: dtype, attention: attention,
                                parallelism: Parallelism(dp: dp, tp: tp, ep: ep), routing: .expected(imbalance: imbalance))
        try scenario.validate(for: spec)

        if compare {
            let comparison = try AttentionComparison(spec: spec, accelerator: accelerator, batch: batch, context: context, dtype: dtype)
            print(json ? try AnalyzeOutput.comparisonJSON(comparison)
                  : AnalyzeOutput.comparison(comparison, spec: spec, accelerator: accelerator, batch: batch, context: context, dtype: dtype))
            return
        }
        if let sweep {
            let result = try Sweep.parse(sweep).run(spec: spec, base: scenario, accelerator: accelerator)
            if let csv { try write(result.csv(), to: csv) }
            if let svg { try write(SweepChart(result: result).svg(), to: svg) }
            print(json ? try AnalyzeOutput.sweepJSON(result) : AnalyzeOutput.sweep(result))
            return
        }

        let analysis = try Analysis(spec: spec, scenario: scenario, accelerator: accelerator)
        let system = try SystemQuantities(analysis: analysis)
        if let csv {
            let rows = analysis.rows()
            try write(([OpRow.columns.joined(separator: ",")] + rows.map { $0.csvCells.joined(separator: ",") })
                .joined(separator: "\n") + "\n", to: csv)
        }
        if json {
            print(String(decoding: try AnalysisJSON(analysis: analysis, system: system, configPath: path).data(), as: UTF8.self))
        } else {
            print(AnalyzeOutput.report(analysis, system: system, allOps: allOps))
        }
    }

    func configPath() throws -> String {
        if let config { return config }
        guard compare else { throw CLIError("--config is required (e.g. --config Models/configs/deepseek-v3.json)") }
        return "Models/configs/deepseek-v3.json"
    }

    func write(_ text: String, to path: String) throws {
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw CLIError("cannot write \(path): \(error.localizedDescription)")
        }
        printError("wrote \(path)")
    }
}
