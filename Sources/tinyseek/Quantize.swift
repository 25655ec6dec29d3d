import ArgumentParser
import Foundation
import Tensor
import TinySeek

extension WeightFormat: ExpressibleByArgument {}

/// `tinyseek quantize`: a copy of a model folder with its linear weights in another format.
struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a copy of a model with its linear weights as q8_0, bf16, f16 (or f32).",
        discussion: """
        Converts every linear layer's weight (attention projections, dense FFN, routed and shared \
        experts, LM head); norms, the MoE router and biases are copied unchanged, and the \
        embedding table is converted for bf16/f16 and kept as is for q8_0. q8_0 stores each \
        weight as an I8 tensor plus an F16 `<name>_scale` tensor with one scale per 32 weights of \
        a row (34/32 bytes per weight); config.json records it under quantization_config. The \
        output is a Hugging Face-layout folder that every tinyseek command loads.
        """)

    @Option(name: .long, help: ArgumentHelp("Model folder to read.", valueName: "dir"))
    var model: String

    @Option(name: .long, help: ArgumentHelp("Folder to write (created; must not already hold *.safetensors).", valueName: "dir"))
    var out: String

    @Option(name: .long, help: "Weight format: q8_0, bf16, f16 or f32.")
    var type: WeightFormat

    func run() throws {
        let input = URL(fileURLWithPath: model, isDirectory: true)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: input.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CLIError("model folder '\(model)' does not exist or is not a directory")
        }
        let start = Date()
        let summary = try Quantizer.convert(from: input, to: URL(fileURLWithPath: out, isDirectory: true), format: type)
        printError(String(format: "%d tensors converted to %@, %d copied; %.1f MB -> %.1f MB in %.1f s",
                          summary.converted, type.rawValue, summary.copied, Double(summary.inputBytes) / 1e6,
                          Double(summary.outputBytes) / 1e6, Date().timeIntervalSince(start)))
        print(out)
    }
}
