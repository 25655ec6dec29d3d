import TinySeek

/// Parameters of an architecture by how they are laid out over devices, for the memory plan.
/// Matrix weights and norms only: biases (GPT) and DeepSeek's router correction bias are left
/// out (under 0.01% of any model here).
public struct ParameterCount: Sendable, Equatable {
    /// Attention matrices split across tensor-parallel ranks by head (q_b/q_proj, k, v, kv_b, o).
    public var attentionSharded: Double = 0
    /// What every tensor-parallel rank holds whole: MLA's q_a_proj and kv_a_proj (their outputs
    /// feed every head), the norms and the routers.
    public var replicated: Double = 0
    public var denseFFN: Double = 0
    public var sharedExperts: Double = 0
    /// All routed experts of all MoE layers.
    public var routedExperts: Double = 0
    /// Token embedding, GPT's position table and an untied LM head (vocabulary-parallel).
    public var embeddings: Double = 0
    /// Routed-expert parameters one token actually uses: n_k / n_e of them.
    public var routedActive: Double = 0

    public var total: Double { attentionSharded + replicated + denseFFN + sharedExperts + routedExperts + embeddings }
    /// Parameters touched per token (all but the routed experts it is not sent to).
    public var activePerToken: Double { total - routedExperts + routedActive }

    public init(_ spec: ArchitectureSpec) {
        let d = Double(spec.hidden), h = Double(spec.heads)
        for l in 0..<spec.layers {
            replicated += 2 * d   // attention and MLP norms
            switch spec.attention {
            case let .latent(m):
                let dn = Double(m.nopeHeadDim), dr = Double(m.ropeHeadDim), dv = Double(m.vHeadDim), r = Double(m.kvLoraRank)
                if let q = m.qLoraRank.map(Double.init) {
                    replicated += d * q + q
                    attentionSharded += q * h * (dn + dr)
                } else {
                    attentionSharded += d * h * (dn + dr)
                }
                replicated += d * (r + dr) + r
                attentionSharded += r * h * (dn + dv) + h * dv * d
            case let .grouped(g):
                let hd = Double(g.headDim), kv = Double(g.kvHeads)
                attentionSharded += 2 * d * h * hd + 2 * d * kv * hd
            }
            let matrices: Double = spec.feedForward == .gated ? 3 : 2
            if spec.isMoE(layer: l), let e = spec.experts {
                replicated += Double(e.routed) * d
                let perExpert = matrices * d * Double(e.intermediate)
                routedExperts += Double(e.routed) * perExpert
                routedActive += Double(e.perToken) * perExpert
                sharedExperts += matrices * d * Double(e.sharedIntermediate)
            } else {
                denseFFN += matrices * d * Double(spec.denseIntermediate)
            }
        }
        replicated += d   // final norm
        embeddings = Double(spec.vocab) * d * (spec.tiedEmbeddings ? 1 : 2)
        if spec.learnedPositions { embeddings += Double(spec.maxPositions) * d }
    }
}
