import Tensor

/// Runs forward steps over batches of sequences, each with its own latent cache, sharing one set
/// of activation buffers. `Session` (one sequence) and the runtime's scheduler (many) are both
/// built on it, so single-sequence and batched decoding are one code path.
public final class BatchExecutor {
    public let model: Model
    /// Attention order, expert execution and run-time top-k for every step.
    public var options = ForwardOptions()
    /// Attach an `OpRecorder` to time and cost every operator (nil = off, zero overhead).
    public var recorder: OpRecorder?
    /// Attach an `ExpertLoadRecorder` to count tokens per expert per MoE layer and step.
    public var expertLoad: ExpertLoadRecorder?
    /// Residual stream after each layer of the last step, when `options.keepHiddenStates`.
    public private(set) var hiddenStates: [[Float]] = []

    let workspace = Workspace()
    var routes = Routes()

    public init(model: Model) { self.model = model }

    /// One step: appends each entry's tokens to its cache and returns logits, one row per
    /// sequence (its last token), or one row per token with `allLogits`. Every entry is validated
    /// before anything runs, so a rejected step changes no cache. The result is a view into this
    /// executor's buffers, valid until the next step.
    public func step(_ batch: [(tokens: [Int], cache: LatentCache)], allLogits: Bool = false) throws(ModelError) -> Tensor {
        guard !batch.isEmpty else { throw .emptyPrompt }
        for entry in batch { try validate(entry.tokens, cache: entry.cache) }
        for i in batch.indices {
            for j in batch.indices where j > i && batch[i].cache === batch[j].cache {
                throw .invalidArgument(name: "batch", reason: "two entries share one cache")
            }
        }
        if let recorder {
            // A step with any prompt in it is prefill; one token per sequence onto caches is decode.
            recorder.phase = batch.contains { $0.tokens.count > 1 || $0.cache.count == 0 } ? .prefill : .decode
        }
        var opts = options
        opts.allLogits = allLogits
        hiddenStates.removeAll(keepingCapacity: true)
        workspace.beginStep()
        return model.forward(batch: batch, options: opts, workspace: workspace, routes: &routes,
                             recorder: recorder, expertLoad: expertLoad, hiddenStates: &hiddenStates)
    }

    func validate(_ tokens: [Int], cache: LatentCache) throws(ModelError) {
        let c = model.config
        guard !tokens.isEmpty else { throw .emptyPrompt }
        for id in tokens where id < 0 || id >= c.vocabSize {
            throw .tokenOutOfRange(token: id, vocabSize: c.vocabSize)
        }
        guard cache.count + tokens.count <= cache.capacity else {
            throw .contextOverflow(needed: cache.count + tokens.count, limit: cache.capacity)
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
