import ArgumentParser
import Foundation
import Tensor

@main
struct TinySeekCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tinyseek",
        abstract: "A small inference engine for DeepSeek-style models (MLA + DeepSeekMoE).",
        discussion: """
        Runs Hugging Face-layout model folders (config.json + *.safetensors) on the CPU, \
        profiles every operator against this machine's roofline, and models real-scale configs.
        """,
        subcommands: [
            Generate.self, Logits.self, Inspect.self, Profile.self, Analyze.self, Bench.self, Quantize.self, Calibrate.self,
        ]
    )

    /// Refuses environment settings it would ignore (`EnvironmentSettings`), relaunches if
    /// OpenBLAS fell back to its generic kernels on this CPU (`BLAS.relaunchWithBetterCore`),
    /// then parses and runs the command.
    static func main() async {
        do {
            try EnvironmentSettings.validate(ProcessInfo.processInfo.environment)
        } catch {
            exit(withError: error)
        }
        BLAS.relaunchWithBetterCore()
        await main(nil)
    }
}
