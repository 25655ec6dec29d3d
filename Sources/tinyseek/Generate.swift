import ArgumentParser
import Foundation
import TinySeek

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate tokens from a prompt of token ids.",
        discussion: "Prefills the prompt in one batched pass, then decodes one token at a time with the latent KV cache. Generated ids stream to stdout; timing goes to stderr.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: ArgumentHelp("Prompt as comma-separated token ids, e.g. 1,2,3.", valueName: "ids"))
    var promptTokens: String

    @Option(name: .long, help: "Maximum number of new tokens.")
    var maxTokens: Int = 16

    @Option(name: .long, help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(name: .long, help: "Sample only from the k most likely tokens (0 = all).")
    var topK: Int = 0

    @Option(name: .long, help: "Nucleus sampling: smallest set of tokens with probability >= p (1 = all).")
    var topP: Float = 1

    @Option(name: .long, help: "Random seed; the same seed gives the same tokens.")
    var seed: UInt64 = 0

    @Flag(name: .long, help: "Keep generating after an end-of-sequence token.")
    var ignoreEos = false

    func run() throws {
        let prompt = try parseTokenList(promptTokens, option: "--prompt-tokens")
        let model = try modelOptions.load()
        let session = modelOptions.makeSession(model, capacity: prompt.count + max(maxTokens, 0))
        let sampling = SamplingParameters(temperature: temperature, topK: topK, topP: topP, seed: seed)
        let out = FileHandle.standardOutput
        var first = true
        let result = try session.generate(prompt: prompt, maxTokens: maxTokens, sampling: sampling, stopAtEOS: !ignoreEos) { token in
            out.write(Data(((first ? "" : " ") + String(token)).utf8))
            first = false
            return true
        }
        out.write(Data("\n".utf8))
        let n = result.tokens.count
        let pp = Double(prompt.count) / max(result.prefillSeconds, 1e-9)
        let tg = n > 1 ? Double(n - 1) / max(result.decodeSeconds, 1e-9) : 0
        printError("prompt \(prompt.count) tokens: \(String(format: "%.1f", pp)) tok/s | generated \(n) tokens: "
                   + "\(String(format: "%.1f", tg)) tok/s | finish: \(result.finishReason.rawValue)")
    }
}
