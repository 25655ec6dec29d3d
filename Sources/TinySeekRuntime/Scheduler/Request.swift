import Foundation
import TinySeek

/// One generation request, as a line of a `--requests` JSON Lines file:
/// `{"id": "a", "prompt_tokens": [1, 2, 3], "max_tokens": 32, "temperature": 0, "seed": 7}`.
/// Sampling fields are optional (greedy, all tokens, seed 0).
public struct GenerationRequest: Codable, Sendable, Equatable {
    public var id: String
    public var promptTokens: [Int]
    public var maxTokens: Int
    public var temperature: Float?
    public var topK: Int?
    public var topP: Float?
    public var seed: UInt64?
    /// Keep going after an end-of-sequence token.
    public var ignoreEOS: Bool?

    enum CodingKeys: String, CodingKey {
        case id, promptTokens = "prompt_tokens", maxTokens = "max_tokens", temperature
        case topK = "top_k", topP = "top_p", seed, ignoreEOS = "ignore_eos"
    }

    public init(id: String, promptTokens: [Int], maxTokens: Int, sampling: SamplingParameters = .greedy, ignoreEOS: Bool = false) {
        self.id = id
        self.promptTokens = promptTokens
        self.maxTokens = maxTokens
        temperature = sampling.temperature
        topK = sampling.topK
        topP = sampling.topP
        seed = sampling.seed
        self.ignoreEOS = ignoreEOS
    }

    public var sampling: SamplingParameters {
        SamplingParameters(temperature: temperature ?? 0, topK: topK, topP: topP, seed: seed ?? 0)
    }

    /// Parses JSON Lines (blank lines skipped), naming the line of any error.
    public static func parseLines(_ text: String, source: String) throws(SchedulerError) -> [GenerationRequest] {
        var out: [GenerationRequest] = []
        var ids = Set<String>()
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            let request: GenerationRequest
            do { request = try JSONDecoder().decode(GenerationRequest.self, from: Data(trimmed.utf8)) } catch {
                throw .invalidRequestLine(source: source, line: i + 1, reason: describeDecodingError(error))
            }
            guard ids.insert(request.id).inserted else {
                throw .invalidRequestLine(source: source, line: i + 1, reason: "duplicate id '\(request.id)'")
            }
            out.append(request)
        }
        return out
    }
}

/// What came out of a request.
public struct Completion: Codable, Sendable, Equatable {
    public var id: String
    /// Generated token ids (an EOS token, when it ended the request, is included).
    public var tokens: [Int]
    public var finishReason: FinishReason
    /// Step at which the request was admitted and at which it finished.
    public var admittedAtStep: Int
    public var finishedAtStep: Int

    enum CodingKeys: String, CodingKey {
        case id, tokens, finishReason = "finish_reason", admittedAtStep = "admitted_at_step", finishedAtStep = "finished_at_step"
    }
}

public enum SchedulerError: Error, Equatable, CustomStringConvertible {
    case invalidRequestLine(source: String, line: Int, reason: String)
    case rejected(id: String, reason: String)
    case invalidLimits(String)

    public var description: String {
        switch self {
        case let .invalidRequestLine(source, line, reason): return "\(source) line \(line): \(reason)"
        case let .rejected(id, reason): return "request '\(id)' rejected: \(reason)"
        case let .invalidLimits(reason): return "scheduler limits: \(reason)"
        }
    }
}
