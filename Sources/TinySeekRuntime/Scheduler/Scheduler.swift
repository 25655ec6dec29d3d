import Foundation
import TinySeek

/// Limits on what runs at once.
public struct SchedulerLimits: Sendable {
    /// Sequences in one step (decoding ones plus those joining with their prompt).
    public var maxBatch: Int
    /// Bytes of latent KV cache that admitted requests may reserve (nil = unlimited). A request
    /// reserves (prompt + max_tokens) positions when admitted and frees them when it finishes.
    public var kvBudgetBytes: Int?

    public init(maxBatch: Int = 16, kvBudgetBytes: Int? = nil) {
        self.maxBatch = maxBatch
        self.kvBudgetBytes = kvBudgetBytes
    }
}

/// Continuous batching: requests wait in a FIFO queue, join the running batch (their prompt is
/// prefilled in the same step as the others' decode tokens) while there is room under the batch
/// limit and the KV budget, and leave on EOS or max tokens, freeing their cache for the next.
///
/// Every step is one `BatchExecutor.step`: projections, router, experts (tokens grouped per
/// expert) and LM head run once over all rows, so an expert's weights stream once per step for
/// all the tokens routed to it — the batching that lifts MoE intensity towards the ridge.
public final class Scheduler {
    public let model: Model
    public let limits: SchedulerLimits
    public let executor: BatchExecutor
    /// Called with each request's logits row every step it samples (tests compare these).
    public var onLogits: ((String, UnsafeBufferPointer<Float>) -> Void)?

    struct Active {
        var request: GenerationRequest
        var cache: LatentCache
        var sampler: Sampler
        var pending: [Int]
        var generated: [Int] = []
        var admittedAt: Int
        var reservedBytes: Int
    }

    private var waiting: [GenerationRequest] = []
    private var running: [Active] = []
    private var reserved = 0
    public private(set) var stepCount = 0
    public private(set) var completions: [Completion] = []

    public init(model: Model, limits: SchedulerLimits = SchedulerLimits(), options: ForwardOptions = ForwardOptions()) throws(SchedulerError) {
        guard limits.maxBatch >= 1 else { throw .invalidLimits("max batch must be >= 1, got \(limits.maxBatch)") }
        if let b = limits.kvBudgetBytes, b <= 0 { throw .invalidLimits("KV budget must be positive, got \(b) bytes") }
        self.model = model
        self.limits = limits
        self.executor = BatchExecutor(model: model)
        executor.options = options
    }

    public var pendingCount: Int { waiting.count }
    public var runningCount: Int { running.count }
    public var isIdle: Bool { waiting.isEmpty && running.isEmpty }
    public var reservedCacheBytes: Int { reserved }

    func cacheBytes(_ r: GenerationRequest) -> Int {
        (r.promptTokens.count + r.maxTokens) * model.config.numHiddenLayers * model.config.latentCacheWidth * 4
    }

    /// Queues a request, or rejects it at once if it can never run: bad tokens or sampling
    /// settings, longer than the context, or larger than the whole KV budget.
    public func submit(_ r: GenerationRequest) throws(SchedulerError) {
        let c = model.config
        func reject(_ why: String) -> SchedulerError { .rejected(id: r.id, reason: why) }
        guard !r.promptTokens.isEmpty else { throw reject("prompt_tokens is empty") }
        if let bad = r.promptTokens.first(where: { $0 < 0 || $0 >= c.vocabSize }) {
            throw reject("token id \(bad) is outside the vocabulary 0..<\(c.vocabSize)")
        }
        guard r.maxTokens >= 0 else { throw reject("max_tokens must be >= 0, got \(r.maxTokens)") }
        let needed = r.promptTokens.count + r.maxTokens
        guard needed <= c.maxPositionEmbeddings else {
            throw reject("prompt + max_tokens = \(needed) exceeds the context of \(c.maxPositionEmbeddings) positions")
        }
        do { try r.sampling.validate() } catch { throw reject(error.description) }
        if let budget = limits.kvBudgetBytes, cacheBytes(r) > budget {
            throw reject("needs \(cacheBytes(r)) bytes of KV cache, more than the whole budget of \(budget)")
        }
        waiting.append(r)
    }

    /// Admits waiting requests in order while the batch and KV budget allow (head-of-line: a
    /// request that does not fit yet waits, and so do those behind it, to keep FIFO fairness).
    private func admit() {
        while running.count < limits.maxBatch, let next = waiting.first {
            let bytes = cacheBytes(next)
            if let budget = limits.kvBudgetBytes, reserved + bytes > budget { break }
            waiting.removeFirst()
            if next.maxTokens == 0 {
                completions.append(Completion(id: next.id, tokens: [], finishReason: .length,
                                              admittedAtStep: stepCount, finishedAtStep: stepCount))
                continue
            }
            let cache = LatentCache(config: model.config, capacity: next.promptTokens.count + next.maxTokens)
            running.append(Active(request: next, cache: cache, sampler: Sampler(next.sampling), pending: next.promptTokens,
                                  admittedAt: stepCount, reservedBytes: bytes))
            reserved += bytes
        }
    }

    /// Runs one batched step; returns the (request id, token) pairs produced.
    @discardableResult
    public func step() throws(ModelError) -> [(id: String, token: Int)] {
        admit()
        guard !running.isEmpty else { return [] }
        let logits = try executor.step(running.map { ($0.pending, $0.cache) })
        let vocab = model.config.vocabSize
        let eos = Set(model.config.eosTokens)
        var produced: [(String, Int)] = []
        var stillRunning: [Active] = []
        for (i, var a) in running.enumerated() {
            let row = UnsafeBufferPointer(start: logits.pointer + i * vocab, count: vocab)
            onLogits?(a.request.id, row)
            let token = a.sampler.sample(row)
            a.generated.append(token)
            produced.append((a.request.id, token))
            let hitEOS = !(a.request.ignoreEOS ?? false) && eos.contains(token)
            if hitEOS || a.generated.count >= a.request.maxTokens {
                completions.append(Completion(id: a.request.id, tokens: a.generated, finishReason: hitEOS ? .eos : .length,
                                              admittedAtStep: a.admittedAt, finishedAtStep: stepCount))
                reserved -= a.reservedBytes
            } else {
                a.pending = [token]
                stillRunning.append(a)
            }
        }
        running = stillRunning
        stepCount += 1
        return produced
    }

    /// Steps until every queued request has finished; returns all completions in finish order.
    public func runToCompletion(onStep: ([(id: String, token: Int)]) -> Void = { _ in }) throws(ModelError) -> [Completion] {
        while !isIdle { onStep(try step()) }
        return completions
    }
}
