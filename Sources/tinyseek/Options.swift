import ArgumentParser
import Foundation
import Tensor
import TinySeek

extension AttentionOrder: ExpressibleByArgument {}

/// Options every model-running command shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Model folder in Hugging Face layout (config.json + *.safetensors).", valueName: "dir"))
    var model: String

    @Option(name: .long, help: "MLA execution order: naive (decompress K/V), absorbed (attend over the latent), or auto (naive for prefill, absorbed for decode).")
    var attention: AttentionOrder = .auto

    @Option(name: .long, help: ArgumentHelp("Routed experts per token (overrides num_experts_per_tok; fewer is faster, lower quality).", valueName: "k"))
    var expertsPerToken: Int?

    @Flag(name: .long, help: "Read the weights into memory (2 MB huge pages where the kernel allows) instead of memory-mapping them: a slower load, faster decode on large models.")
    var noMmap = false

    func load() throws -> Model { try loadModel(at: model, residency: noMmap ? .resident : .mapped) }

    func makeSession(_ model: Model, capacity: Int? = nil) -> Session {
        let session = model.makeSession(capacity: capacity)
        session.options.attention = attention
        session.options.expertsPerToken = expertsPerToken
        return session
    }
}

/// Loads a model folder, with a clear message when the path is not a folder.
func loadModel(at path: String, residency: WeightResidency = .mapped) throws -> Model {
    let url = URL(fileURLWithPath: path, isDirectory: true)
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue else {
        throw CLIError("model folder '\(path)' does not exist or is not a directory")
    }
    return try Model.load(from: url, residency: residency)
}

/// A message for the user; ArgumentParser prints it and exits non-zero.
struct CLIError: Error, CustomStringConvertible, LocalizedError {
    let description: String
    init(_ message: String) { description = message }
    var errorDescription: String? { description }
}

/// Parses "1,2,3" (spaces allowed) into token ids, naming the bad entry.
func parseTokenList(_ text: String, option: String) throws -> [Int] {
    let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    if parts.count == 1 && parts[0].isEmpty { throw CLIError("\(option) is empty: give comma-separated token ids, e.g. 1,2,3") }
    return try parts.enumerated().map { i, p in
        guard let v = Int(p) else { throw CLIError("\(option): entry \(i + 1) '\(p)' is not an integer token id") }
        return v
    }
}

/// Writes to stderr (progress and summaries; stdout carries the data).
func printError(_ s: String, terminator: String = "\n") {
    FileHandle.standardError.write(Data((s + terminator).utf8))
}

/// Shortest round-trip text for a float (what Python's repr gives for the same float32).
@inline(__always)
func formatFloat(_ x: Float) -> String {
    x.isFinite ? x.description : (x.isNaN ? "NaN" : (x > 0 ? "Infinity" : "-Infinity"))
}

/// A JSON string literal for `s`, escaped.
func jsonString(_ s: String) -> String {
    let data = (try? JSONEncoder().encode(s)) ?? Data("\"\"".utf8)
    return String(decoding: data, as: UTF8.self)
}
