import ArgumentParser
import Foundation
import TinySeek
import TinySeekRuntime

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate tokens from a prompt of token ids, or serve a file of requests with continuous batching.",
        discussion: """
        With --prompt-tokens: prefills the prompt in one pass, then decodes one token at a time with the latent KV \
        cache; generated ids stream to stdout, timing goes to stderr.
        With --requests FILE (JSON Lines, one request per line, e.g. \
        {"id": "a", "prompt_tokens": [1, 2, 3], "max_tokens": 32, "temperature": 0, "seed": 7}): requests join the \
        running batch as room allows (--max-batch, --kv-budget-mb), tokens are grouped per expert each step, and \
        each request's output is printed when it finishes.
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: ArgumentHelp("Prompt as comma-separated token ids, e.g. 1,2,3.", valueName: "ids"))
    var promptTokens: String?

    @Option(name: .long, help: ArgumentHelp("JSON Lines file of requests to run with continuous batching.", valueName: "file"))
    var requests: String?

    @Option(name: .long, help: "With --requests: most sequences in one batched step.")
    var maxBatch: Int = 16

    @Option(name: .long, help: ArgumentHelp("With --requests: KV-cache budget in MiB that admitted requests may reserve (default: unlimited).", valueName: "MiB"))
    var kvBudgetMb: Double?

    @Flag(name: .long, help: "With --requests: print one JSON object per request per line.")
    var json = false

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
        switch (promptTokens, requests) {
        case let (text?, nil): try generate(prompt: try parseTokenList(text, option: "--prompt-tokens"))
        case let (nil, file?): try serve(file: file)
        case (nil, nil): throw CLIError("give --prompt-tokens or --requests")
        case (_?, _?): throw CLIError("give either --prompt-tokens or --requests, not both")
        }
    }

    func serve(file: String) throws {
        let text: String
        do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
            throw CLIError("cannot read requests file '\(file)': \(error.localizedDescription)")
        }
        let list = try GenerationRequest.parseLines(text, source: file)
        guard !list.isEmpty else { throw CLIError("requests file '\(file)' has no requests") }
        if let mb = kvBudgetMb, !(mb > 0) { throw CLIError("--kv-budget-mb must be positive, got \(mb)") }
        let model = try modelOptions.load()
        var options = ForwardOptions(attention: modelOptions.attention)
        options.expertsPerToken = modelOptions.expertsPerToken
        let limits = SchedulerLimits(maxBatch: maxBatch, kvBudgetBytes: kvBudgetMb.map { Int($0 * 1_048_576) })
        let scheduler = try Scheduler(model: model, limits: limits, options: options)
        var rejected = 0
        for r in list {
            do { try scheduler.submit(r) } catch {
                rejected += 1
                if json {
                    print(#"{"id": \#(jsonString(r.id)), "tokens": [], "finish_reason": "rejected", "error": \#(jsonString(error.description))}"#)
                } else {
                    printError("\(error)")
                }
            }
        }
        let t0 = Date()
        var printed = 0, generated = 0
        while !scheduler.isIdle {
            generated += try scheduler.step().count
            for c in scheduler.completions[printed...] {
                if json {
                    print(#"{"id": \#(jsonString(c.id)), "tokens": [\#(c.tokens.map(String.init).joined(separator: ", "))], "finish_reason": "\#(c.finishReason.rawValue)"}"#)
                } else {
                    print("\(c.id): \(c.tokens.map(String.init).joined(separator: " "))  [\(c.finishReason.rawValue)]")
                }
            }
            printed = scheduler.completions.count
        }
        let seconds = Date().timeIntervalSince(t0)
        printError("\(list.count - rejected) requests, \(generated) tokens in \(scheduler.stepCount) steps, "
                   + String(format: "%.2f s (%.1f tok/s aggregate)", seconds, Double(generated) / max(seconds, 1e-9))
                   + (rejected > 0 ? ", \(rejected) rejected" : ""))
        if rejected > 0 { throw ExitCode(2) }
    }

    func generate(prompt: [Int]) throws {
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
