import Foundation
import Tensor

/// One sequence being decoded: owns its latent KV cache and activation buffers.
///
/// ```swift
/// let model = try Model.load(from: url)
/// let session = model.makeSession()
/// let result = try session.generate(prompt: [1, 2, 3], maxTokens: 16, sampling: .greedy)
/// ```
public final class Session {
    public let model: Model
    public let cache: LatentCache
    /// Attention order, expert execution and run-time top-k for every forward of this session.
    public var options = ForwardOptions()
    /// Attach an `OpRecorder` to time and cost every operator (nil = off, zero overhead).
    public var recorder: OpRecorder?
    /// Residual stream after each layer of the last forward, when `options.keepHiddenStates`.
    public private(set) var hiddenStates: [[Float]] = []
    /// Token ids in the cache, in order.
    public private(set) var tokens: [Int] = []

    let workspace = Workspace()
    var routes = Routes()

    init(model: Model, capacity: Int) {
        self.model = model
        self.cache = LatentCache(config: model.config, capacity: max(1, min(capacity, model.config.maxPositionEmbeddings)))
    }

    /// Positions used so far.
    public var position: Int { cache.count }

    /// Runs `newTokens` through the model at the next positions (a whole prompt at once, or one
    /// token of decode) and returns logits: one row per token with `allLogits`, else the last row.
    /// The tensor is a view into the session's buffers, valid until the next call.
    @discardableResult
    public func forward(_ newTokens: [Int], allLogits: Bool = false) throws(ModelError) -> Tensor {
        try validate(newTokens)
        // A prompt (or a first token) is prefill; one token onto an existing cache is decode.
        recorder?.phase = (newTokens.count > 1 || position == 0) ? .prefill : .decode
        var opts = options
        opts.allLogits = allLogits
        hiddenStates.removeAll(keepingCapacity: true)
        let logits = model.forward(batch: [(newTokens, cache)], options: opts, workspace: workspace, routes: &routes,
                                   recorder: recorder, hiddenStates: &hiddenStates)
        tokens.append(contentsOf: newTokens)
        return logits
    }

    /// Forgets the sequence; the cache is reused.
    public func reset() {
        cache.reset()
        tokens.removeAll(keepingCapacity: true)
    }

    func validate(_ newTokens: [Int]) throws(ModelError) {
        let c = model.config
        guard !newTokens.isEmpty else { throw .emptyPrompt }
        for id in newTokens where id < 0 || id >= c.vocabSize {
            throw .tokenOutOfRange(token: id, vocabSize: c.vocabSize)
        }
        guard position + newTokens.count <= cache.capacity else {
            throw .contextOverflow(needed: position + newTokens.count, limit: cache.capacity)
        }
        if let k = options.expertsPerToken, c.routedExperts > 0 {
            let limit = c.isV3 || c.topkMethod == "group_limited_greedy"
                ? c.groupsKept * (c.routedExperts / c.groups) : c.routedExperts
            guard k >= 1 && k <= limit else {
                throw .invalidArgument(name: "experts per token", reason: "\(k) must be between 1 and \(limit)")
            }
        }
    }
}

extension Session {
    /// Drops every position from `n` on (cache and token history), e.g. to time the same decode
    /// step twice or to re-run a prompt suffix.
    public func rewind(to n: Int) {
        let keep = min(max(n, 0), position)
        cache.truncate(to: keep)
        tokens.removeLast(tokens.count - keep)
    }
}
