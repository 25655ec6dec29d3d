import Foundation
import TinySeek

/// What the cost model needs to know about a decoder-only transformer, read from any supported
/// Hugging Face `config.json` (see `ArchitectureSpec+Decoding.swift`): the attention type and its
/// shapes, which layers are dense and which are MoE, and the FFN, expert and vocabulary sizes.
///
/// DeepSeek configs go through TinySeek's own `ModelConfig`, so the analyser and the executor
/// share every default (shared experts, expert width, first dense layers, `moe_layer_freq`).
public struct ArchitectureSpec: Sendable, Equatable {
    /// Multi-head Latent Attention (DeepSeek-V2/V3, Kimi-K2): one cached latent per token.
    public struct LatentAttention: Sendable, Equatable {
        /// Query compression rank, nil for a direct q_proj (DeepSeek-V2-Lite).
        public var qLoraRank: Int?
        /// r = d_KVco: the cached latent width.
        public var kvLoraRank: Int
        /// dn: per-head query/key width decompressed from the latent.
        public var nopeHeadDim: Int
        /// dr: the decoupled rotary width, one key shared by all heads (cached).
        public var ropeHeadDim: Int
        /// dv: per-head value width.
        public var vHeadDim: Int

        public init(qLoraRank: Int?, kvLoraRank: Int, nopeHeadDim: Int, ropeHeadDim: Int, vHeadDim: Int) {
            self.qLoraRank = qLoraRank
            self.kvLoraRank = kvLoraRank
            self.nopeHeadDim = nopeHeadDim
            self.ropeHeadDim = ropeHeadDim
            self.vHeadDim = vHeadDim
        }

        /// Elements cached per token per layer: r + dr (576 for DeepSeek-V3).
        public var cacheWidth: Int { kvLoraRank + ropeHeadDim }
    }

    /// MHA (kvHeads = heads), GQA (1 < kvHeads < heads) or MQA (kvHeads = 1).
    public struct GroupedAttention: Sendable, Equatable {
        public var kvHeads: Int
        public var headDim: Int
        /// Layers that rotate q and k (RoPE); false everywhere for GPT's learned positions and on
        /// Llama-4's NoPE layers.                                                    (layers)
        public var ropeLayers: [Bool]
        /// Llama-4's chunked local attention: these layers attend only within `chunkSize`
        /// positions, so their span and cache are capped at it.                       (layers)
        public var chunkSize: Int?
        public var chunkedLayers: [Bool]

        public init(kvHeads: Int, headDim: Int, ropeLayers: [Bool], chunkSize: Int? = nil, chunkedLayers: [Bool]) {
            self.kvHeads = kvHeads
            self.headDim = headDim
            self.ropeLayers = ropeLayers
            self.chunkSize = chunkSize
            self.chunkedLayers = chunkedLayers
        }

        /// Query heads per cached key/value head.
        public func groupSize(heads: Int) -> Int { heads / max(kvHeads, 1) }
    }

    public enum Attention: Sendable, Equatable {
        case latent(LatentAttention)
        case grouped(GroupedAttention)
    }

    /// SwiGLU (gate, up, down: three matrices) or a plain two-matrix MLP with GELU (GPT).
    public enum FeedForward: String, Sendable, Equatable {
        case gated, plain
    }

    /// Routed and shared experts of the MoE layers.
    public struct Experts: Sendable, Equatable {
        /// n_e.
        public var routed: Int
        /// n_k: experts each token is sent to.
        public var perToken: Int
        /// Width of one routed expert's FFN.
        public var intermediate: Int
        /// Width of the always-on shared FFN (DeepSeek fuses n_shared experts into one), 0 if none.
        public var sharedIntermediate: Int

        public init(routed: Int, perToken: Int, intermediate: Int, sharedIntermediate: Int) {
            self.routed = routed
            self.perToken = perToken
            self.intermediate = intermediate
            self.sharedIntermediate = sharedIntermediate
        }
    }

    /// `model_type` as written in the config.
    public var modelType: String
    public var layers: Int
    public var hidden: Int
    public var heads: Int
    public var vocab: Int
    public var maxPositions: Int
    public var attention: Attention
    public var feedForward: FeedForward
    /// Width of the dense layers' FFN.
    public var denseIntermediate: Int
    public var experts: Experts?
    /// Which layers are MoE.                                                          (layers)
    public var moeLayers: [Bool]
    public var tiedEmbeddings: Bool
    /// GPT's learned absolute position table, gathered next to the token embedding.
    public var learnedPositions: Bool

    public init(modelType: String, layers: Int, hidden: Int, heads: Int, vocab: Int, maxPositions: Int,
                attention: Attention, feedForward: FeedForward = .gated, denseIntermediate: Int,
                experts: Experts? = nil, moeLayers: [Bool]? = nil, tiedEmbeddings: Bool = false,
                learnedPositions: Bool = false) {
        self.modelType = modelType
        self.layers = layers
        self.hidden = hidden
        self.heads = heads
        self.vocab = vocab
        self.maxPositions = maxPositions
        self.attention = attention
        self.feedForward = feedForward
        self.denseIntermediate = denseIntermediate
        self.experts = experts
        self.moeLayers = moeLayers ?? Array(repeating: false, count: layers)
        self.tiedEmbeddings = tiedEmbeddings
        self.learnedPositions = learnedPositions
    }

    public func isMoE(layer: Int) -> Bool {
        experts != nil && moeLayers.indices.contains(layer) && moeLayers[layer]
    }

    public var moeLayerCount: Int { (0..<layers).filter { isMoE(layer: $0) }.count }

    /// The first dense and the first MoE layer: what the per-layer-type tables show.
    public var representativeLayers: (dense: Int?, moe: Int?) {
        ((0..<layers).first { !isMoE(layer: $0) }, (0..<layers).first { isMoE(layer: $0) })
    }

    /// "MLA (r 512 + rope 64)", "GQA (64 heads, 8 KV heads of 128)", "MHA (96 heads of 128)".
    public var attentionSummary: String {
        switch attention {
        case let .latent(m):
            return "MLA (\(heads) heads, kv_lora_rank \(m.kvLoraRank) + rope \(m.ropeHeadDim), "
                + (m.qLoraRank.map { "q_lora_rank \($0)" } ?? "direct q_proj") + ")"
        case let .grouped(g):
            let name = g.kvHeads == heads ? "MHA" : (g.kvHeads == 1 ? "MQA" : "GQA")
            var s = "\(name) (\(heads) heads" + (g.kvHeads == heads ? "" : ", \(g.kvHeads) KV heads") + " of \(g.headDim)"
            if let c = g.chunkSize, g.chunkedLayers.contains(true) {
                s += ", \(g.chunkedLayers.filter { $0 }.count) layers chunked at \(c)"
            }
            return s + ")"
        }
    }

    /// "MoE 256 experts top-8 + 1 shared" or "dense".
    public var mlpSummary: String {
        guard let e = experts else { return "dense FFN \(denseIntermediate)" }
        let dense = layers - moeLayerCount
        return "MoE \(e.routed) experts top-\(e.perToken)"
            + (e.sharedIntermediate > 0 ? " + shared \(e.sharedIntermediate)" : "")
            + ", expert FFN \(e.intermediate); \(moeLayerCount) MoE + \(dense) dense layers"
    }

    // MARK: KV cache

    /// Elements cached per token in one layer: r + dr for MLA, 2·n_kv·hd for MHA/GQA.
    public var cacheElementsPerTokenPerLayer: Int {
        switch attention {
        case let .latent(m): return m.cacheWidth
        case let .grouped(g): return 2 * g.kvHeads * g.headDim
        }
    }

    /// KV-cache bytes per token over all layers: (kv_lora_rank + rope) x layers x bytes for MLA,
    /// 2 x n_kv x head_dim x layers x bytes for MHA/GQA (the paper's per-token cache).
    public func kvCacheBytesPerToken(bytesPerElement b: Double) -> Double {
        Double(cacheElementsPerTokenPerLayer) * Double(layers) * b
    }

    /// Positions layer `l` attends to (and caches) at context `context`: all of them, except on
    /// Llama-4's chunked layers, which see at most one chunk (an upper bound: a query early in
    /// its chunk sees fewer).
    public func attendedPositions(layer l: Int, context: Int) -> Int {
        if case let .grouped(g) = attention, let chunk = g.chunkSize, g.chunkedLayers.indices.contains(l), g.chunkedLayers[l] {
            return min(context, chunk)
        }
        return context
    }

    /// KV-cache bytes one sequence of `context` tokens holds, chunked layers capped.
    public func kvCacheBytesPerRequest(context: Int, bytesPerElement b: Double) -> Double {
        (0..<layers).reduce(0) { $0 + Double(attendedPositions(layer: $1, context: context)) }
            * Double(cacheElementsPerTokenPerLayer) * b
    }
}
