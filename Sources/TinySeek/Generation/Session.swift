import Foundation
import Tensor

/// One sequence being decoded: owns its latent KV cache and a `BatchExecutor` with its buffers.
///
/// ```swift
/// let model = try Model.load(from: url)
/// let session = model.makeSession()
/// let result = try session.generate(prompt: [1, 2, 3], maxTokens: 16, sampling: .greedy)
/// ```
public final class Session {
    public let model: Model
    public let cache: LatentCache
    public let executor: BatchExecutor
    /// Token ids in the cache, in order.
    public private(set) var tokens: [Int] = []
    /// The one-token batch `forward(token:)` reuses, so a decode step builds no array.
    private var single = [0]
    /// The one-entry batch every step reuses (its tokens are released after the step, so the
    /// next `single[0] = token` does not copy).
    private var entry: [(tokens: [Int], cache: LatentCache)]

    init(model: Model, capacity: Int) {
        self.model = model
        self.cache = LatentCache(config: model.config, capacity: max(1, min(capacity, model.config.maxPositionEmbeddings)))
        self.executor = BatchExecutor(model: model)
        self.entry = [([], cache)]
        tokens.reserveCapacity(cache.capacity)
    }

    /// Attention order, expert execution and run-time top-k for every forward of this session.
    public var options: ForwardOptions {
        get { executor.options }
        set { executor.options = newValue }
    }
    /// Attach an `OpRecorder` to time and cost every operator (nil = off, zero overhead).
    public var recorder: OpRecorder? {
        get { executor.recorder }
        set { executor.recorder = newValue }
    }
    /// Attach an `ExpertLoadRecorder` to count tokens per expert per MoE layer and step.
    public var expertLoad: ExpertLoadRecorder? {
        get { executor.expertLoad }
        set { executor.expertLoad = newValue }
    }
    /// Residual stream after each layer of the last forward, when `options.keepHiddenStates`.
    public var hiddenStates: [[Float]] { executor.hiddenStates }

    /// Positions used so far.
    public var position: Int { cache.count }

    /// Runs `newTokens` through the model at the next positions (a whole prompt at once, or one
    /// token of decode) and returns logits: one row per token with `allLogits`, else the last row.
    /// The tensor is a view into the session's buffers, valid until the next call.
    @discardableResult
    public func forward(_ newTokens: [Int], allLogits: Bool = false) throws(ModelError) -> Tensor {
        entry[0].tokens = newTokens
        defer { entry[0].tokens = [] }
        let logits = try executor.step(entry, allLogits: allLogits)
        tokens.append(contentsOf: newTokens)
        return logits
    }

    /// One decode step: `token` at the next position; returns its logits (a view, valid until the
    /// next call). The same as `forward([token])` without building an array per token.
    @discardableResult
    public func forward(token: Int) throws(ModelError) -> Tensor {
        single[0] = token
        return try forward(single)
    }

    /// Forgets the sequence; the cache is reused.
    public func reset() {
        cache.reset()
        tokens.removeAll(keepingCapacity: true)
    }

    /// Drops every position from `n` on (cache and token history), e.g. to time the same decode
    /// step twice or to re-run a prompt suffix.
    public func rewind(to n: Int) {
        let keep = min(max(n, 0), position)
        cache.truncate(to: keep)
        tokens.removeLast(tokens.count - keep)
    }
}
