import Foundation

/// Everything that can be wrong with a model folder or a request to a model, named precisely.
public enum ModelError: Error, Equatable, CustomStringConvertible, LocalizedError {
    case configNotFound(path: String)
    case invalidConfigFile(path: String, reason: String)
    case invalidConfig(field: String, reason: String)
    case weights(String)
    case missingTensor(name: String)
    case tensorShape(name: String, expected: [Int], got: [Int])
    case unusedTensors(names: [String])
    case emptyPrompt
    case tokenOutOfRange(token: Int, vocabSize: Int)
    case contextOverflow(needed: Int, limit: Int)
    case invalidArgument(name: String, reason: String)

    public var description: String {
        switch self {
        case let .configNotFound(path): return "no config.json at \(path)"
        case let .invalidConfigFile(path, reason): return "\(path) is not a valid model config: \(reason)"
        case let .invalidConfig(field, reason): return "config.json field '\(field)': \(reason)"
        case let .weights(message): return message
        case let .missingTensor(name): return "checkpoint is missing tensor '\(name)'"
        case let .tensorShape(name, expected, got): return "tensor '\(name)' has shape \(got), expected \(expected) from config.json"
        case let .unusedTensors(names):
            let shown = names.prefix(5).joined(separator: ", ")
            return "checkpoint has \(names.count) tensor(s) the model does not use: \(shown)\(names.count > 5 ? ", ..." : "")"
        case .emptyPrompt: return "the prompt is empty: give at least one token"
        case let .tokenOutOfRange(token, vocab): return "token id \(token) is outside the vocabulary 0..<\(vocab)"
        case let .contextOverflow(needed, limit): return "\(needed) tokens do not fit in the context of \(limit) positions"
        case let .invalidArgument(name, reason): return "\(name): \(reason)"
        }
    }

    public var errorDescription: String? { description }
}
