import Foundation
import TinySeek

/// `tinyseek analyze --compare`: one attention block of the same hidden size and head count as
/// MHA, GQA and MLA (naive and absorbed), in decode and prefill — the paper's first finding
/// (MLA's decode intensity is two orders of magnitude above MHA's) from the executor's formulas.
///
/// MHA and GQA use 128-dim heads (hd = 128, as DeepSeek's nope and value heads); GQA keeps 8 KV
/// heads. MLA uses the config's own latent shape when it is an MLA model, else DeepSeek-V3's
/// (r = 512, dr = 64, dn = dv = 128, direct q_proj).
public struct AttentionComparison: Sendable {
    public struct Variant: Sendable {
        public var name: String
        public var spec: ArchitectureSpec
        public var order: AttentionOrder
    }

    public struct Row: Sendable {
        public var variant: String
        public var phase: Phase
        /// KV cache per token per layer at the scenario's cache dtype.
        public var kvBytesPerTokenPerLayer: Double
        public var score: Aggregate
        /// Score, softmax and context: the attention proper.
        public var core: Aggregate
        /// Every attention op of the layer, projections included.
        public var block: Aggregate
    }

    public static let headDim = 128
    public static let gqaKVHeads = 8

    /// MHA, GQA, MLA naive and MLA absorbed at `spec`'s hidden size and heads (one layer each).
    public static func variants(of spec: ArchitectureSpec) -> [Variant] {
        func single(_ attention: ArchitectureSpec.Attention) -> ArchitectureSpec {
            ArchitectureSpec(modelType: spec.modelType, layers: 1, hidden: spec.hidden, heads: spec.heads, vocab: spec.vocab,
                             maxPositions: spec.maxPositions, attention: attention, denseIntermediate: spec.denseIntermediate)
        }
        func grouped(_ kv: Int) -> ArchitectureSpec {
            single(.grouped(.init(kvHeads: kv, headDim: headDim, ropeLayers: [true], chunkedLayers: [false])))
        }
        let latent: ArchitectureSpec.LatentAttention
        if case let .latent(m) = spec.attention {
            latent = m
        } else {
            latent = .init(qLoraRank: nil, kvLoraRank: 512, nopeHeadDim: 128, ropeHeadDim: 64, vHeadDim: 128)
        }
        // The largest divisor of the head count not above 8 KV heads.
        let kv = (1...min(gqaKVHeads, spec.heads)).last { spec.heads % $0 == 0 } ?? 1
        let mla = single(.latent(latent))
        return [
            Variant(name: "MHA (\(spec.heads) KV heads)", spec: grouped(spec.heads), order: .auto),
            Variant(name: "GQA (\(kv) KV heads)", spec: grouped(kv), order: .auto),
            Variant(name: "MLA naive", spec: mla, order: .naive),
            Variant(name: "MLA absorbed", spec: mla, order: .absorbed),
        ]
    }

    public var rows: [Row]
    public var roofline: Roofline

    /// Every variant in decode, then in prefill, at `batch` sequences and `context` positions.
    public init(spec: ArchitectureSpec, accelerator: Accelerator, batch: Int, context: Int,
                dtype: AnalysisDType) throws(AnalysisError) {
        rows = []
        roofline = try accelerator.roofline(for: dtype)
        for phase in [Phase.decode, .prefill] {
            for v in Self.variants(of: spec) {
                let scenario = Scenario(batch: batch, context: context, phase: phase, dtype: dtype, attention: v.order)
                let model = try AnalyticModel(spec: v.spec, scenario: scenario)
                let ops = model.attentionOps(0)
                func sum(_ include: (ModelledOp) -> Bool) -> Aggregate {
                    var a = Aggregate()
                    for op in ops where include(op) {
                        a.count += 1
                        a.cost = a.cost + op.cost
                        a.seconds += roofline.minimumSeconds(op.cost)
                    }
                    return a
                }
                rows.append(Row(variant: v.name, phase: phase,
                                kvBytesPerTokenPerLayer: Double(v.spec.cacheElementsPerTokenPerLayer) * dtype.cacheBytes,
                                score: sum { $0.name == "attn_score" },
                                core: sum { ["attn_score", "softmax", "attn_context"].contains($0.name) },
                                block: sum { _ in true }))
            }
        }
    }
}
