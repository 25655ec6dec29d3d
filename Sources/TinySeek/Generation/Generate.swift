import Foundation
import Tensor

/// Why generation stopped.
public enum FinishReason: String, Sendable, Codable {
    /// The model produced an end-of-sequence token (it is included in the output).
    case eos
    /// `maxTokens` new tokens were produced.
    case length
    /// The caller's callback asked to stop.
    case stopped
}

public struct GenerationResult: Sendable {
    public var tokens: [Int]
    public var finishReason: FinishReason
    /// Wall time of the prompt prefill and of the decode steps.
    public var prefillSeconds: Double
    public var decodeSeconds: Double
}

extension Session {
    /// Prefills `prompt` in one batched pass, then decodes up to `maxTokens` tokens one at a time,
    /// stopping early at an EOS token (config `eos_token_id`) unless `stopAtEOS` is false.
    /// `onToken` sees each new token as it is produced and may return false to stop.
    public func generate(prompt: [Int], maxTokens: Int, sampling: SamplingParameters = .greedy,
                         stopAtEOS: Bool = true, onToken: (Int) -> Bool = { _ in true }) throws(ModelError) -> GenerationResult {
        try sampling.validate()
        guard maxTokens >= 0 else { throw .invalidArgument(name: "max tokens", reason: "must be >= 0, got \(maxTokens)") }
        guard !prompt.isEmpty else { throw .emptyPrompt }
        let limit = min(cache.capacity, model.config.maxPositionEmbeddings)
        guard position + prompt.count + maxTokens <= limit else {
            throw .contextOverflow(needed: position + prompt.count + maxTokens, limit: limit)
        }
        var sampler = Sampler(sampling)
        let eos = Set(model.config.eosTokens)
        var out: [Int] = []
        var reason = FinishReason.length
        let t0 = DispatchTime.now().uptimeNanoseconds
        var logits = try forward(prompt)
        let t1 = DispatchTime.now().uptimeNanoseconds
        while out.count < maxTokens {
            let next = sampler.sample(UnsafeBufferPointer(logits.buffer))
            out.append(next)
            if !onToken(next) { reason = .stopped; break }
            if stopAtEOS && eos.contains(next) { reason = .eos; break }
            if out.count == maxTokens { break }
            logits = try forward(token: next)
        }
        let t2 = DispatchTime.now().uptimeNanoseconds
        return GenerationResult(tokens: out, finishReason: reason,
                                prefillSeconds: Double(t1 - t0) * 1e-9, decodeSeconds: Double(t2 - t1) * 1e-9)
    }
}
