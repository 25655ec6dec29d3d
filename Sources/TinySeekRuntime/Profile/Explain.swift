import Foundation
import TinySeek

/// The teaching view: each op of a layer with the shapes flowing in and out and its FLOP and byte
/// formulas, written with the config's names and evaluated for the model.
///
/// The formulas are text, so a test evaluates every one of them and checks it against the
/// executor's recorded costs: what this view teaches is exactly what `Cost.swift` counts.
public enum Explain {
    /// One op's story. Symbols: T new tokens, S positions attended, d hidden_size, H heads,
    /// qr q_lora_rank, r kv_lora_rank, dn/dr/dv qk_nope/qk_rope/v head dims, I intermediate_size,
    /// Ie moe_intermediate_size, Is = Ie·n_shared_experts, E n_routed_experts, n tokens routed to
    /// one expert, V vocab_size, w bytes per weight element (4 for F32).
    public struct Entry: Sendable {
        public var name: String
        public var shapes: String
        public var flops: String
        public var bytes: String
        public var why: String
    }

    static func entry(_ name: String, _ shapes: String, _ flops: String, _ bytes: String, _ why: String) -> Entry {
        Entry(name: name, shapes: shapes, flops: flops, bytes: bytes, why: why)
    }

    static let common: [String: Entry] = Dictionary(uniqueKeysWithValues: [
        entry("attn_norm", "(T, d) -> (T, d)", "4*T*d", "4*d + 8*T*d", "RMSNorm before attention"),
        entry("q_a_proj", "(T, d) -> (T, qr)", "2*T*d*qr", "w*d*qr + 4*T*d + 4*T*qr", "query down-projection (low-rank)"),
        entry("q_a_norm", "(T, qr) -> (T, qr)", "4*T*qr", "4*qr + 8*T*qr", "RMSNorm of the query latent"),
        entry("q_b_proj", "(T, qr) -> (T, H*(dn+dr))", "2*T*qr*H*(dn+dr)", "w*qr*H*(dn+dr) + 4*T*qr + 4*T*H*(dn+dr)", "query up-projection: [q_nope | q_pe] per head"),
        entry("q_proj", "(T, d) -> (T, H*(dn+dr))", "2*T*d*H*(dn+dr)", "w*d*H*(dn+dr) + 4*T*d + 4*T*H*(dn+dr)", "direct query projection (q_lora_rank null)"),
        entry("kv_a_proj", "(T, d) -> (T, r + dr)", "2*T*d*(r+dr)", "w*d*(r+dr) + 4*T*d + 4*T*(r+dr)", "compress to the latent c and the shared rope key"),
        entry("kv_norm", "(T, r) -> cache (T, r)", "4*T*r", "4*r + 8*T*r", "RMSNorm of the latent; c is what the cache keeps"),
        entry("rope", "q_pe (T, H, dr), k_pe (T, dr)", "3*T*(H+1)*dr", "12*T*(H+1)*dr", "decoupled RoPE on the rope parts only"),
        entry("o_proj", "(T, H*dv) -> (T, d)", "2*T*H*dv*d", "w*H*dv*d + 4*T*H*dv + 4*T*d", "output projection"),
        entry("attn_residual", "(T, d) + (T, d)", "T*d", "12*T*d", "residual add"),
        entry("mlp_norm", "(T, d) -> (T, d)", "4*T*d", "4*d + 8*T*d", "RMSNorm before the FFN/MoE"),
        entry("ffn_gate_up", "(T, d) -> 2 x (T, I)", "4*T*d*I", "2*w*d*I + 8*T*d + 8*T*I", "dense SwiGLU gate and up"),
        entry("ffn_act", "(T, I) x (T, I) -> (T, I)", "5*T*I", "12*T*I", "silu(gate) * up"),
        entry("ffn_down", "(T, I) -> (T, d)", "2*T*I*d", "w*I*d + 4*T*I + 4*T*d", "dense down projection"),
        entry("router", "(T, d) -> (T, E)", "2*T*d*E", "4*d*E + 4*T*d + 4*T*E", "router logits (float32)"),
        entry("route_select", "(T, E) -> (T, k) experts + weights", "8*T*E", "8*T*E", "scores, group limit, top-k"),
        entry("expert_gate_up", "(n, d) -> 2 x (n, Ie)", "4*n*d*Ie", "2*w*d*Ie + 8*n*d + 8*n*Ie", "one expert over its n tokens: weights read once"),
        entry("expert_act", "(n, Ie) x (n, Ie) -> (n, Ie)", "5*n*Ie", "12*n*Ie", "silu(gate) * up"),
        entry("expert_down", "(n, Ie) -> (n, d)", "2*n*Ie*d", "w*Ie*d + 4*n*Ie + 4*n*d", "expert down projection"),
        entry("expert_combine", "(n, d) -> scatter-add into (T, d)", "2*n*d", "12*n*d", "weighted sum back into each token"),
        entry("shared_gate_up", "(T, d) -> 2 x (T, Is)", "4*T*d*Is", "2*w*d*Is + 8*T*d + 8*T*Is", "shared experts (always on), fused"),
        entry("shared_act", "(T, Is) x (T, Is) -> (T, Is)", "5*T*Is", "12*T*Is", "silu(gate) * up"),
        entry("shared_down", "(T, Is) -> (T, d)", "2*T*Is*d", "w*Is*d + 4*T*Is + 4*T*d", "shared experts down projection"),
        entry("shared_add", "(T, d) + (T, d)", "T*d", "12*T*d", "routed + shared"),
        entry("mlp_residual", "(T, d) + (T, d)", "T*d", "12*T*d", "residual add"),
    ].map { ($0.name, $0) })

    static let naive: [String: Entry] = Dictionary(uniqueKeysWithValues: [
        entry("kv_decompress", "cache (S, r) -> (S, H*(dn+dv))", "2*S*r*H*(dn+dv)", "w*r*H*(dn+dv) + 4*S*r + 4*S*H*(dn+dv)", "K_nope and V for every head and position: reads the whole cache"),
        entry("attn_score", "(T, H, dn+dr) x (S, H, dn+dr) -> (H, T, S)", "2*H*T*S*(dn+dr)", "4*H*T*(dn+dr) + 4*H*S*dn + 4*S*dr + 4*H*T*S", "per-head keys: ~1 FLOP/B at decode, like MHA"),
        entry("softmax", "(H, T, S) -> (H, T, S)", "5*H*T*S", "8*H*T*S", "causal, numerically stable"),
        entry("attn_context", "(H, T, S) x (S, H, dv) -> (T, H*dv)", "2*H*T*S*dv", "4*H*T*S + 4*H*S*dv + 4*H*T*dv", "weighted sum of per-head values"),
    ].map { ($0.name, $0) })

    static let absorbed: [String: Entry] = Dictionary(uniqueKeysWithValues: [
        entry("q_absorb", "(T, H, dn) -> (T, H, r)", "2*H*T*dn*r", "w*H*dn*r + 4*H*T*dn + 4*H*T*r", "fold W_UK into the query: q~ = W_UK^T q_nope"),
        entry("attn_score", "(T*H, r+dr) x cache (S, r+dr) -> (T, H, S)", "2*H*T*S*(r+dr)", "4*H*T*(r+dr) + 4*S*(r+dr) + 4*H*T*S", "MQA over the latent: the cache is read once for all H heads"),
        entry("softmax", "(T, H, S) -> (T, H, S)", "5*H*T*S", "8*H*T*S", "causal, numerically stable"),
        entry("attn_context", "(T*H, S) x cache (S, r) -> (T, H, r)", "2*H*T*S*r", "4*H*T*S + 4*S*r + 4*H*T*r", "the latent is also the value"),
        entry("v_absorb", "(T, H, r) -> (T, H*dv)", "2*H*T*r*dv", "w*H*dv*r + 4*H*T*r + 4*H*T*dv", "apply W_UV after attention"),
    ].map { ($0.name, $0) })

    /// The entry for op `name` run in `order` (attention ops differ by order).
    public static func entry(for name: String, order: AttentionOrder) -> Entry? {
        (order == .absorbed ? absorbed[name] : naive[name]) ?? common[name]
    }

    /// Values of the symbols for a model and a step of T new tokens over S positions.
    public static func symbols(_ c: ModelConfig, tokens: Int, positions: Int, expertTokens: Int = 0,
                               weightBytes: Double = 4) -> [String: Double] {
        [
            "T": Double(tokens), "S": Double(positions), "d": Double(c.hiddenSize), "H": Double(c.numAttentionHeads),
            "qr": Double(c.qLoraRank ?? 0), "r": Double(c.kvLoraRank), "dn": Double(c.qkNopeHeadDim),
            "dr": Double(c.qkRopeHeadDim), "dv": Double(c.vHeadDim), "I": Double(c.intermediateSize),
            "Ie": Double(c.expertIntermediateSize), "Is": Double(c.expertIntermediateSize * c.sharedExperts),
            "E": Double(c.routedExperts), "k": Double(c.expertsPerToken), "n": Double(expertTokens),
            "V": Double(c.vocabSize), "w": weightBytes,
        ]
    }

    /// Evaluates a formula of + - * / parentheses, numbers and symbols. Unknown symbols are nil.
    public static func evaluate(_ formula: String, _ symbols: [String: Double]) -> Double? {
        var p = FormulaParser(text: Array(formula), symbols: symbols)
        guard let v = p.expression(), p.atEnd else { return nil }
        return v
    }
}

/// Recursive-descent evaluator for the formulas above (expression := term (± term)*, ...).
struct FormulaParser {
    let text: [Character]
    let symbols: [String: Double]
    var i = 0

    init(text: [Character], symbols: [String: Double]) {
        self.text = text
        self.symbols = symbols
    }

    var atEnd: Bool { mutating get { skip(); return i == text.count } }

    mutating func skip() { while i < text.count && text[i] == " " { i += 1 } }

    mutating func expression() -> Double? {
        guard var v = term() else { return nil }
        while true {
            skip()
            guard i < text.count, text[i] == "+" || text[i] == "-" else { return v }
            let op = text[i]; i += 1
            guard let rhs = term() else { return nil }
            v = op == "+" ? v + rhs : v - rhs
        }
    }

    mutating func term() -> Double? {
        guard var v = factor() else { return nil }
        while true {
            skip()
            guard i < text.count, text[i] == "*" || text[i] == "/" else { return v }
            let op = text[i]; i += 1
            guard let rhs = factor() else { return nil }
            v = op == "*" ? v * rhs : v / rhs
        }
    }

    mutating func factor() -> Double? {
        skip()
        guard i < text.count else { return nil }
        if text[i] == "(" {
            i += 1
            let v = expression()
            skip()
            guard i < text.count, text[i] == ")" else { return nil }
            i += 1
            return v
        }
        let start = i
        if text[i].isNumber {
            while i < text.count && (text[i].isNumber || text[i] == ".") { i += 1 }
            return Double(String(text[start..<i]))
        }
        while i < text.count && (text[i].isLetter || text[i].isNumber) { i += 1 }
        return symbols[String(text[start..<i])]
    }
}
