import ArgumentParser
import Foundation
import TinySeek
import TinySeekRuntime

/// `tinyseek bench`: prompt-processing and decode throughput with the roofline fraction of each,
/// measured against this machine's roofline in the same run (see `Benchmark`).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark prompt processing (pp) and decode (tg) in tokens/s, as a fraction of this machine's roofline.",
        discussion: """
        Like llama-bench: pp<p> times one prefill of a p-token prompt, tg<n> times n greedy decode \
        steps from an empty context; each is repeated and reported as mean ± standard deviation of \
        tokens/s. Before the timed runs every page of the weights is faulted in (all experts) and \
        one prefill and a few decode steps warm up; load time and the first prompt on cold pages \
        are reported apart. The roof is measured next to the runs: the best of \
        three 1024³ sgemms before each pp run, and for tg a burst of 16 64 MiB slices of a 256 MiB \
        buffer streamed on the same threads right before and after each run, a run's bandwidth \
        being the mean of the two bursts around it (slices between the steps slowed the decode). \
        Every fourth slice of a burst is also read through the F32 matvec kernel, and the machine \
        line gives its rate beside the probe's: the decode kernel's own ceiling, not a roof. \
        Roofline fraction: pp = FLOPs per token (cost \
        model) × tokens/s ÷ sgemm FLOP/s; tg = bytes per token streamed from memory (weights \
        touched + latent cache, cost model) × tokens/s ÷ read bandwidth. A calibration before \
        loading is reported for the record. Progress goes to stderr. Threads: TINYSEEK_THREADS \
        (default: all cores).
        """)

    @Option(name: .long, help: ArgumentHelp("Model folder in Hugging Face layout.", valueName: "dir"))
    var model: String

    @Option(name: [.customShort("p"), .customLong("n-prompt")], help: "Prompt tokens of the pp test (0 skips it).")
    var promptTokens = 512

    @Option(name: [.customShort("n"), .customLong("n-gen")], help: "Decode steps of the tg test (0 skips it).")
    var decodeTokens = 128

    @Option(name: .long, help: ArgumentHelp("Sequences decoded together, comma-separated (e.g. 1,4,16); each B > 1 adds a tgN@B test: B sequences decoded together, tokens grouped per expert.", valueName: "sizes"))
    var batch = "1"

    @Option(name: [.customShort("r"), .long], help: "Timed runs of each test.")
    var repetitions = 5

    @Option(name: .long, help: "MLA order: naive, absorbed, or auto (naive for prefill, absorbed for decode).")
    var attention: AttentionOrder = .auto

    @Flag(name: .long, help: "Read the weights into memory (2 MB huge pages where the kernel allows) instead of memory-mapping them.")
    var noMmap = false

    @Flag(name: .long, help: "Run the full calibration before loading (~10 s) instead of the quick one (~1 s); it is reported for the record, the fractions use the probes next to the runs.")
    var fullCalibration = false

    @Flag(help: "Print one JSON object on stdout instead of the table.")
    var json = false

    func run() throws {
        var options = BenchmarkOptions()
        options.promptTokens = promptTokens
        options.decodeTokens = decodeTokens
        options.repetitions = repetitions
        options.attention = attention
        options.calibration = fullCalibration ? .default : .quick
        options.residency = noMmap ? .resident : .mapped
        options.batchSizes = try parseTokenList(batch, option: "--batch")
        let url = URL(fileURLWithPath: model, isDirectory: true)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CLIError("model folder '\(model)' does not exist or is not a directory")
        }
        let report = try Benchmark.run(modelDirectory: url, options: options) { printError($0) }
        if json {
            FileHandle.standardOutput.write(try report.jsonData())
        } else {
            print(report.table())
        }
    }
}
