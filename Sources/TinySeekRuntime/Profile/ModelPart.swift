import TinySeek

/// The parts users ask about: "how much of my time is attention vs MoE?"
public enum ModelPart: String, Codable, Sendable, CaseIterable {
    case attention
    case moeExperts = "moe_experts"
    case sharedExperts = "shared_experts"
    case router
    case denseFFN = "dense_ffn"
    case lmHead = "lm_head"
    case other

    /// Which part an op belongs to, from its name (names are fixed at the call sites).
    public init(opName name: String) {
        switch name {
        case "q_a_proj", "q_a_norm", "q_b_proj", "q_proj", "kv_a_proj", "kv_norm", "rope", "kv_decompress",
             "q_absorb", "attn_score", "softmax", "attn_context", "v_absorb", "o_proj",
             "qkv_proj", "k_proj", "v_proj":
            self = .attention
        case "router", "route_select": self = .router
        case "lm_head": self = .lmHead
        default:
            if name.hasPrefix("expert_") { self = .moeExperts }
            else if name.hasPrefix("shared_") { self = .sharedExperts }
            else if name.hasPrefix("ffn_") { self = .denseFFN }
            else { self = .other }
        }
    }

    public var title: String {
        switch self {
        case .attention: return "attention"
        case .moeExperts: return "MoE experts"
        case .sharedExperts: return "shared experts"
        case .router: return "router"
        case .denseFFN: return "dense FFN"
        case .lmHead: return "LM head"
        case .other: return "other"
        }
    }
}
