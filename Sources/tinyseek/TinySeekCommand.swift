import ArgumentParser
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

    /// Relaunches first if OpenBLAS fell back to its generic kernels on this CPU (see
    /// `BLAS.relaunchWithBetterCore`), then parses and runs the command.
    static func main() async {
        BLAS.relaunchWithBetterCore()
        await main(nil)
    }
}
