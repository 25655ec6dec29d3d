import ArgumentParser
import Foundation
import TinySeek
import TinySeekRuntime

/// `tinyseek calibrate`: measure the roofline once, save it, and let every later profile and
/// benchmark report "% of roofline" against it.
struct Calibrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure this machine's roofline (GEMM GFLOP/s, memory GB/s).",
        discussion: """
        Times a large FP32 sgemm through OpenBLAS (the compute roof) and streams arrays far \
        larger than the last-level cache on all cores (the memory slope), then saves the result \
        as JSON. Ops below the ridge point (GFLOP/s ÷ GB/s) are memory-bound on this machine. \
        Takes about 10 s; --quick about a second. Progress goes to stderr.
        """
    )

    @Option(name: .shortAndLong,
            help: ArgumentHelp("Where to save the profile. Default: $TINYSEEK_MACHINE, else $XDG_CACHE_HOME/tinyseek/machine.json, else ~/.cache/tinyseek/machine.json.",
                               valueName: "file"))
    var output: String?

    @Flag(help: "Print the profile as JSON on stdout instead of the readable summary.")
    var json = false

    @Flag(help: "Measure roughly in about a second (1024³ sgemm, smaller arrays, fewer runs) instead of about 10 s.")
    var quick = false

    func run() async throws {
        let url = output.map { URL(fileURLWithPath: $0) } ?? MachineProfile.defaultURL
        try MachineProfile.checkWritable(url)  // fail before the measurements, not after

        let profile = Calibration.measure(options: quick ? .quick : .default) { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        try profile.save(to: url)

        if json {
            print(String(decoding: try profile.jsonData(), as: UTF8.self), terminator: "")
            FileHandle.standardError.write(Data("saved to \(url.path)\n".utf8))
        } else {
            print(summary(profile))
            print("Saved to \(url.path)")
        }
    }

    func summary(_ p: MachineProfile) -> String {
        func row(_ label: String, _ value: Double, _ unit: String) -> String {
            label.padding(toLength: 20, withPad: " ", startingAt: 0) + String(format: "%8.1f %@", value, unit)
        }
        return """
        Roofline of \(p.cpu), \(p.threads) threads
          \(row("GEMM (FP32 sgemm)", p.gemmGFLOPS, "GFLOP/s"))
          \(row("memory read", p.bandwidthGBps, "GB/s"))
          \(row("memory triad", p.triadGBps, "GB/s (STREAM, 3 arrays)"))
          \(row("ridge point", p.ridgeFlopsPerByte, "FLOP/byte"))
        An op below \(String(format: "%.1f", p.ridgeFlopsPerByte)) FLOP/byte is memory-bound here \
        (an FP32 matvec does 0.5).
        """
    }
}
