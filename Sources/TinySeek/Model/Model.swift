import Foundation
import Tensor

/// Options for one forward pass.
public struct ForwardOptions: Sendable {
    public var attention: AttentionOrder = .auto
    public var experts: ExpertExecution = .grouped
    /// Which positions need logits: all (for `tinyseek logits` and tests) or only the last
    /// (generation; saves T-1 rows of the LM head).
    public var allLogits: Bool = false
    /// Keep the residual stream after every layer (the parity harness compares them).
    public var keepHiddenStates: Bool = false
    /// Overrides num_experts_per_tok at run time (quality for speed); nil = the config's.
    public var expertsPerToken: Int? = nil

    public init(attention: AttentionOrder = .auto, experts: ExpertExecution = .grouped, allLogits: Bool = false,
                keepHiddenStates: Bool = false, expertsPerToken: Int? = nil) {
        self.attention = attention
        self.experts = experts
        self.allLogits = allLogits
        self.keepHiddenStates = keepHiddenStates
        self.expertsPerToken = expertsPerToken
    }
}

/// A loaded DeepSeek-V2/V3 decoder: config, weights and rotary tables. Immutable and shareable;
/// per-sequence state lives in a `Session` (its latent cache and workspace).
///
/// Forward pass (transformers' DeepseekV3Model):
///   h = embed(tokens)
///   for each layer:  h = h + MLA(RMSNorm(h));  h = h + FFN-or-MoE(RMSNorm(h))
///   logits = lm_head(RMSNorm(h))
public final class Model: @unchecked Sendable {
    public let config: ModelConfig
    public let weights: ModelWeights
    public let rope: RotaryEmbedding
    /// Keeps memory-mapped files alive for the zero-copy weights.
    let source: (any WeightSource)?

    public init(config: ModelConfig, weights: ModelWeights, source: (any WeightSource)? = nil) {
        self.config = config
        self.weights = weights
        self.rope = RotaryEmbedding(config: config)
        self.source = source
    }

    /// Loads a Hugging Face-layout folder: config.json plus *.safetensors (sharded or not),
    /// memory-mapped by default, or read into memory (`WeightResidency.resident`).
    public static func load(from directory: URL, residency: WeightResidency = .mapped) throws(ModelError) -> Model {
        let config = try ModelConfig.load(from: directory)
        let checkpoint: SafetensorsCheckpoint
        do { checkpoint = try SafetensorsCheckpoint(directory: directory, residency: residency) } catch { throw .weights(error.description) }
        let weights = try ModelWeights.load(from: checkpoint, config: config)
        return Model(config: config, weights: weights, source: checkpoint)
    }

    /// Faults in every page of the memory-mapped weights (all experts, the whole LM head), for
    /// benchmarks that must not time page faults. Returns the bytes touched (0 for in-memory weights).
    @discardableResult
    public func touchWeights() -> Int {
        guard let checkpoint = source as? SafetensorsCheckpoint else { return 0 }
        _ = checkpoint.touchPages()
        return checkpoint.files.reduce(0) { $0 + $1.fileSize }
    }

    /// Where the checkpoint files behind the weights are in this process's memory.
    public var weightMemory: [UnsafeRawBufferPointer] {
        (source as? SafetensorsCheckpoint)?.files.map(\.memory) ?? []
    }

    /// Bytes of the checkpoint files behind the weights (0 for in-memory weights).
    public var fileBytes: Int {
        (source as? SafetensorsCheckpoint)?.files.reduce(0) { $0 + $1.fileSize } ?? 0
    }

    public func makeSession(capacity: Int? = nil) -> Session {
        Session(model: self, capacity: capacity ?? config.maxPositionEmbeddings)
    }

    /// Runs one step for a batch of sequences: each brings its new tokens (a whole prompt, or one
    /// token of decode) and its own latent cache. Every projection, the router, the experts and
    /// the LM head run once over all N = Σ tokens rows; attention runs per sequence.
    ///
    /// Returns logits as a view into the workspace, valid until the next call: one row per input
    /// token with `allLogits`, else one row (the last token's) per sequence, in batch order.
    func forward(batch: [(tokens: [Int], cache: LatentCache)], options: ForwardOptions,
                 workspace ws: Workspace, routes: inout Routes, recorder rec: OpRecorder?,
                 expertLoad: ExpertLoadRecorder? = nil, hiddenStates: inout [[Float]]) -> Tensor {
        // Jobs name the job after them (`UpcomingJob`) from inside this scope only: the lanes'
        // pulls of their weights end before it returns.
        WorkerPool.shared.withPulls {
            step(batch: batch, options: options, workspace: ws, routes: &routes, recorder: rec, expertLoad: expertLoad,
                 hiddenStates: &hiddenStates)
        }
    }

    private func step(batch: [(tokens: [Int], cache: LatentCache)], options: ForwardOptions,
                      workspace ws: Workspace, routes: inout Routes, recorder rec: OpRecorder?,
                      expertLoad: ExpertLoadRecorder?, hiddenStates: inout [[Float]]) -> Tensor {
        let c = config, d = c.hiddenSize
        var moeConfig = c
        if let k = options.expertsPerToken { moeConfig.numExpertsPerTok = k }

        ws.slices.removeAll(keepingCapacity: true)
        var N = 0
        for entry in batch {
            ws.slices.append(SequenceSlice(row: N, count: entry.tokens.count, start: entry.cache.count, cache: entry.cache))
            N += entry.tokens.count
        }
        MLA.absorbedRuns(of: ws.slices, order: options.attention, into: &ws.absorbedRuns)
        let sequences = ws.slices, absorbedRuns = ws.absorbedRuns

        let x = ws.pointer(.x, N * d), xn = ws.pointer(.normed, N * d), delta = ws.pointer(.residual, N * d)
        rec.op("embedding", layer: nil, kind: .elementwise,
               cost: Cost.embedding(tokens: N, hidden: d, weightBytes: weights.embedding.bytesPerElement)) {
            for (entry, s) in zip(batch, sequences) {
                for (t, id) in entry.tokens.enumerated() { weights.embedding.dequantizeRow(id, into: x + (s.row + t) * d) }
            }
        }
        // Rotary angles of every row's position, shared by every layer.            (N, dr/2)
        let half = c.qkRopeHeadDim / 2
        let cos = ws.pointer(.ropeCos, N * half), sin = ws.pointer(.ropeSin, N * half)
        for s in sequences {
            for t in 0..<s.count {
                rope.angles(position: s.start + t, cos: cos + (s.row + t) * half, sin: sin + (s.row + t) * half)
            }
        }

        // One row: each layer's last job names the job after it, the next layer's first or the LM
        // head, and attention's last names the MoE's first (`UpcomingJob`: lanes left waiting
        // pull their first bytes of it), once a step has built those (`Workspace.builtJob`).
        let layerCount = weights.layers.count
        func firstJob(ofLayer l: Int) -> UpcomingJob? {
            guard N == 1 else { return nil }
            guard l < layerCount else { return .matvec(weights.lmHead.weight.view) }
            return ws.builtJob(.attentionInput(layer: l)).map { .batch($0) }
        }
        for (l, layer) in weights.layers.enumerated() {
            rec.op("attn_norm", layer: l, kind: .elementwise, cost: Cost.rmsNorm(rows: N, width: d)) {
                for t in 0..<N { Kernels.rmsNorm(x + t * d, weight: layer.inputNorm.pointer, eps: c.eps, count: d, out: xn + t * d) }
            }
            var mlpJob: UpcomingJob?
            if N == 1 {
                switch layer.mlp {
                case .dense: mlpJob = ws.builtJob(.denseInput(layer: l)).map { .batch($0) }
                case .moe: mlpJob = options.experts == .grouped ? ws.builtJob(.moeInput(layer: l)).map { .batch($0) } : nil
                }
            }
            MLA(config: c, weights: layer.attention, layer: l)
                .forward(xn, rows: N, sequences: sequences, absorbedRuns: absorbedRuns, order: options.attention, rope: rope,
                         cos: cos, sin: sin, workspace: ws, recorder: rec, out: delta, then: mlpJob)
            rec.op("attn_residual", layer: l, kind: .elementwise, cost: Cost.elementwise(elements: N * d)) {
                Kernels.add(x, delta, count: N * d, out: x)
            }
            rec.op("mlp_norm", layer: l, kind: .elementwise, cost: Cost.rmsNorm(rows: N, width: d)) {
                for t in 0..<N { Kernels.rmsNorm(x + t * d, weight: layer.postAttentionNorm.pointer, eps: c.eps, count: d, out: xn + t * d) }
            }
            switch layer.mlp {
            case let .dense(ffn):
                ffn.forward(xn, rows: N, ldx: d, into: delta, role: .dense, layer: l, workspace: ws, recorder: rec,
                            then: firstJob(ofLayer: l + 1))
            case let .moe(moe):
                MoE(config: moeConfig, weights: moe, layer: l)
                    .forward(xn, tokens: N, execution: options.experts, routes: &routes, workspace: ws, recorder: rec,
                             expertLoad: expertLoad, out: delta, then: firstJob(ofLayer: l + 1))
            }
            rec.op("mlp_residual", layer: l, kind: .elementwise, cost: Cost.elementwise(elements: N * d)) {
                Kernels.add(x, delta, count: N * d, out: x)
            }
            if options.keepHiddenStates { hiddenStates.append(Array(UnsafeBufferPointer(start: x, count: N * d))) }
        }
        for s in sequences { s.cache.count = s.end }

        // Final norm and LM head over the rows that need logits, gathered contiguously.
        let outRows = options.allLogits ? N : sequences.count
        rec.op("final_norm", layer: nil, kind: .elementwise, cost: Cost.rmsNorm(rows: outRows, width: d)) {
            if options.allLogits {
                for t in 0..<N { Kernels.rmsNorm(x + t * d, weight: weights.norm.pointer, eps: c.eps, count: d, out: xn + t * d) }
            } else {
                for (i, s) in sequences.enumerated() {
                    Kernels.rmsNorm(x + (s.end - s.start - 1 + s.row) * d, weight: weights.norm.pointer, eps: c.eps, count: d, out: xn + i * d)
                }
            }
        }
        let logits = ws.matrix(.logits, rows: outRows, cols: c.vocabSize)
        rec.op("lm_head", layer: nil, kind: weights.lmHead.kind(tokens: outRows), cost: weights.lmHead.cost(tokens: outRows)) {
            // ...and the LM head names the next step's first job, in case it has one row again.
            weights.lmHead.apply(xn, rows: outRows, into: logits.pointer, then: outRows == 1 ? firstJob(ofLayer: 0) : nil)
        }
        return logits
    }
}
