import Foundation
import Tensor

/// Anything that hands out named tensors: a safetensors checkpoint, or an in-memory table in tests.
public protocol WeightSource {
    var tensorNames: [String] { get }
    func shape(of name: String) throws -> [Int]
    /// The tensor as float32: zero-copy where the file stores F32.
    func float32(_ name: String) throws -> Tensor
    /// A rank-2 linear weight in its stored format (F32, BF16, F16, or Q8_0 from an I8 tensor plus
    /// its `_scale` tensor), read in place. Default: the float32 tensor.
    func matrix(_ name: String) throws -> WeightMatrix
}

extension WeightSource {
    public func matrix(_ name: String) throws -> WeightMatrix { WeightMatrix(try float32(name)) }
}

/// The weights of one MLA block, under HF's names. `kvB` is kv_b_proj viewed [H, dn+dv, r]:
/// rows [:dn] of each head are W_UK, rows [dn:] are W_UV (see `MLA`).
public struct AttentionWeights: Sendable {
    public var qA: Linear?        // q_a_proj (q_lora_rank, hidden)
    public var qANorm: Tensor?    // q_a_layernorm (q_lora_rank)
    public var qB: Linear?        // q_b_proj (H·(dn+dr), q_lora_rank)
    public var q: Linear?         // q_proj (H·(dn+dr), hidden) when q_lora_rank is null
    public var kvA: Linear        // kv_a_proj_with_mqa (r + dr, hidden)
    public var kvANorm: Tensor    // kv_a_layernorm (r)
    public var kvB: Linear        // kv_b_proj (H·(dn+dv), r)
    public var o: Linear          // o_proj (hidden, H·dv)
    /// W_UK for q_absorb's q̃_h = W_UK,hᵀ·q_nope,h (see `AbsorbedKey`).
    public var wUK: AbsorbedKey
    /// W_UV,h of every head gathered, (H·dv, r): an exact copy of kv_b_proj's W_UV rows, made at
    /// load so that v_absorb's per-head products stream one contiguous run of rows. In kv_b_proj
    /// each head's W_UV sits between two W_UK blocks, and 16 separate 64 KB (F32) or 17 KB (Q8_0)
    /// streams ran 15% (F32) to 40% (Q8_0) slower than the same bytes contiguous.
    public var wUV: WeightMatrix
}

/// How q_absorb reads W_UK: exact copies of kv_b_proj's W_UK rows, made at load (1/2 of
/// kv_b_proj in memory; 0.4% of the F32 benchmark model).
public enum AbsorbedKey: Sendable {
    /// W_UK,hᵀ of every head, (H·r, dn), for F32/BF16/F16: q̃_h is a plain matvec over contiguous
    /// rows. Read from kv_b_proj it was a transposed product over four 1 KB rows at a time, which
    /// streamed at ~20 GB/s against ~37 for the matvecs around it.
    case transposed(WeightMatrix)
    /// W_UK,h of every head gathered, (H·dn, r), for Q8_0, whose blocks of 32 run along the rows
    /// and cannot be transposed without re-quantising: q̃_h is read as a transposed product.
    case gathered(WeightMatrix)

    /// The stored matrix, and whether a head's q̃ is a transposed product over its rows (gathered)
    /// rather than a plain one (the transposed copy): what `LatentAttention.InputProjection` takes.
    var matrix: WeightMatrix {
        switch self {
        case let .transposed(w), let .gathered(w): return w
        }
    }
    var appliedTransposed: Bool {
        if case .gathered = self { return true }
        return false
    }
}

/// A SwiGLU feed-forward block: the dense FFN, a routed expert, or the fused shared experts.
public struct FeedForwardWeights: Sendable {
    public var gate: Linear       // gate_proj (intermediate, hidden)
    public var up: Linear         // up_proj (intermediate, hidden)
    public var down: Linear       // down_proj (hidden, intermediate)
    public var intermediateSize: Int { gate.outFeatures }
}

public struct MoEWeights: Sendable {
    public let router: Tensor                 // gate.weight (n_routed_experts, hidden)
    public let correctionBias: Tensor?        // gate.e_score_correction_bias (n_routed_experts), V3 only
    public let experts: [FeedForwardWeights]  // experts.E.{gate,up,down}_proj
    public let shared: FeedForwardWeights?    // shared_experts, intermediate = moe_intermediate·n_shared
    /// `experts` as decode's jobs take them (`RoutedExpert`), one small entry each.
    let routed: [RoutedExpert]

    public init(router: Tensor, correctionBias: Tensor?, experts: [FeedForwardWeights], shared: FeedForwardWeights?) {
        self.router = router
        self.correctionBias = correctionBias
        self.experts = experts
        self.shared = shared
        routed = experts.map(RoutedExpert.init)
    }
}

public enum MLPWeights: Sendable {
    case dense(FeedForwardWeights)
    case moe(MoEWeights)
}

public struct LayerWeights: Sendable {
    public var inputNorm: Tensor      // input_layernorm (hidden)
    public var attention: AttentionWeights
    public var postAttentionNorm: Tensor  // post_attention_layernorm (hidden)
    public var mlp: MLPWeights
}

/// All weights of a decoder, checked against the config: every expected tensor present with
/// the right shape, and no tensor in the checkpoint left unused.
///
/// Formats: every linear weight and the embedding table are `WeightMatrix`es in the stored
/// format, read in place (F32/BF16/F16 straight from the mapping; nothing is converted at load, so
/// loading is instant and resident memory is the file). Norm weights, biases, the MoE router and
/// its correction bias are small and become float32 `Tensor`s (converted once if stored in 16 bits);
/// transformers keeps the router in float32 too.
///
/// Q8_0 (written by `tinyseek quantize`): a linear weight `<name>` stored as an I8 tensor of
/// shape [out, in] holds the int8 values, and `<name>_scale` (`Q8_0.scaleName(for:)`), F16 of
/// shape [out, ⌈in/32⌉], holds one scale per block of 32 consecutive weights of a row:
/// W[i, j] = scale[i, j / 32] · values[i, j]. Only linear weights are ever quantised.
public struct ModelWeights: Sendable {
    public var embedding: WeightMatrix  // embed_tokens (vocab, hidden), rows decoded on lookup
    public var layers: [LayerWeights]
    public var norm: Tensor           // norm (hidden)
    public var lmHead: Linear         // lm_head (vocab, hidden), or the embedding when tied

    /// The one table from HF tensor names to TinySeek's structures.
    public static func load(from source: any WeightSource, config c: ModelConfig) throws(ModelError) -> ModelWeights {
        try table(source, c).weights
    }

    /// The checkpoint names of every linear layer's weight (attention projections, dense FFN,
    /// routed and shared experts, LM head; not the embedding, norms, router or biases): the tensors
    /// `tinyseek quantize` converts. Read from the same table, so the two cannot disagree.
    public static func linearWeightNames(in source: any WeightSource, config c: ModelConfig) throws(ModelError) -> [String] {
        try table(source, c).linearNames
    }

    private static func table(_ source: any WeightSource, _ c: ModelConfig) throws(ModelError)
        -> (weights: ModelWeights, linearNames: [String]) {
        var take = WeightLoader(source: source)
        var linearNames: [String] = []
        let d = c.hiddenSize, h = c.numAttentionHeads
        let qkHead = c.qkHeadDim

        func linear(_ name: String, _ out: Int, _ inp: Int, bias: Bool = false) throws(ModelError) -> Linear {
            linearNames.append(name + ".weight")
            return Linear(weight: try take.matrix(name + ".weight", [out, inp]), bias: bias ? try take(name + ".bias", [out]) : nil)
        }
        func ffn(_ p: String, _ inter: Int) throws(ModelError) -> FeedForwardWeights {
            FeedForwardWeights(gate: try linear(p + ".gate_proj", inter, d, bias: c.hasMLPBias),
                               up: try linear(p + ".up_proj", inter, d, bias: c.hasMLPBias),
                               down: try linear(p + ".down_proj", d, inter, bias: c.hasMLPBias))
        }

        // MLA's load-time copies of kv_b_proj rows, in 2 MB pages (see `WeightArena`).
        let arena = WeightArena()
        let embedding = try take.matrix("model.embed_tokens.weight", [c.vocabSize, d])
        var layers: [LayerWeights] = []
        for l in 0..<c.numHiddenLayers {
            let p = "model.layers.\(l)"
            let a = "\(p).self_attn"
            let headRows = c.qkNopeHeadDim + c.vHeadDim
            let kvB = try linear("\(a).kv_b_proj", h * headRows, c.kvLoraRank)
            var attn = AttentionWeights(
                kvA: try linear("\(a).kv_a_proj_with_mqa", c.kvLoraRank + c.qkRopeHeadDim, d, bias: c.hasAttentionBias),
                kvANorm: try take("\(a).kv_a_layernorm.weight", [c.kvLoraRank]),
                kvB: kvB,
                o: try linear("\(a).o_proj", d, h * c.vHeadDim, bias: c.hasAttentionBias),
                wUK: kvB.weight.transposingBlocks(h, rowsPerBlock: c.qkNopeHeadDim, blockStride: headRows, in: arena)
                    .map { .transposed($0) }
                    ?? .gathered(kvB.weight.gatheringBlocks(h, rowsPerBlock: c.qkNopeHeadDim, blockStride: headRows, firstRow: 0,
                                                            in: arena)),
                wUV: kvB.weight.gatheringBlocks(h, rowsPerBlock: c.vHeadDim, blockStride: headRows, firstRow: c.qkNopeHeadDim,
                                                in: arena))
            if let qr = c.qLoraRank {
                attn.qA = try linear("\(a).q_a_proj", qr, d, bias: c.hasAttentionBias)
                attn.qANorm = try take("\(a).q_a_layernorm.weight", [qr])
                attn.qB = try linear("\(a).q_b_proj", h * qkHead, qr)
            } else {
                attn.q = try linear("\(a).q_proj", h * qkHead, d)
            }
            let mlp: MLPWeights
            if c.isMoELayer(l) {
                let e = c.routedExperts, inter = c.expertIntermediateSize
                var experts: [FeedForwardWeights] = []
                for i in 0..<e { experts.append(try ffn("\(p).mlp.experts.\(i)", inter)) }
                mlp = .moe(MoEWeights(
                    router: try take("\(p).mlp.gate.weight", [e, d]),
                    correctionBias: c.isV3 ? try take("\(p).mlp.gate.e_score_correction_bias", [e]) : nil,
                    experts: experts,
                    shared: c.sharedExperts > 0 ? try ffn("\(p).mlp.shared_experts", inter * c.sharedExperts) : nil))
            } else {
                mlp = .dense(try ffn("\(p).mlp", c.intermediateSize))
            }
            layers.append(LayerWeights(
                inputNorm: try take("\(p).input_layernorm.weight", [d]),
                attention: attn,
                postAttentionNorm: try take("\(p).post_attention_layernorm.weight", [d]),
                mlp: mlp))
        }
        let norm = try take("model.norm.weight", [d])
        let lmHead: Linear
        if c.tiesEmbeddings {
            lmHead = Linear(weight: embedding)
            take.ignore("lm_head.weight")
        } else {
            lmHead = try linear("lm_head", c.vocabSize, d)
        }
        // transformers builds shared_experts even when n_shared_experts is 0, as empty [0, d] Linears.
        take.ignore { name in
            c.sharedExperts == 0 && name.contains(".mlp.shared_experts.") && ((try? source.shape(of: name))?.contains(0) ?? false)
        }
        // DeepSeek-V3 checkpoints carry multi-token-prediction layers (index num_hidden_layers and up)
        // that next-token decoding does not use; transformers skips them too.
        take.ignore { name in
            let parts = name.split(separator: ".")
            return name.hasPrefix("model.layers.") && parts.count > 2 && (Int(parts[2]) ?? -1) >= c.numHiddenLayers
        }
        try take.checkAllUsed()
        return (ModelWeights(embedding: embedding, layers: layers, norm: norm, lmHead: lmHead), linearNames)
    }

    /// Parameters stored (all experts).
    public var parameterCount: Int { footprint.parameters }
    /// Bytes the weights take in memory: matrices at their stored format, the rest float32.
    public var byteCount: Double { footprint.bytes }

    private var footprint: (parameters: Int, bytes: Double) {
        var n = 0, bytes = 0.0
        func add(_ t: Tensor?) { if let t { n += t.count; bytes += Double(t.count * 4) } }
        func add(_ l: Linear?) { if let l { n += l.weight.count; bytes += l.weight.byteCount; add(l.bias) } }
        func add(_ f: FeedForwardWeights?) { if let f { add(f.gate); add(f.up); add(f.down) } }
        n += embedding.count
        bytes += embedding.byteCount
        add(norm)
        if !lmHead.weight.sharesStorage(with: embedding) { add(lmHead) }
        for l in layers {
            add(l.inputNorm); add(l.postAttentionNorm)
            let a = l.attention
            for linear in [a.qA, a.qB, a.q, a.kvA, a.kvB, a.o] { add(linear) }
            add(a.qANorm); add(a.kvANorm)
            switch l.mlp {
            case let .dense(f): add(f)
            case let .moe(m):
                add(m.router); add(m.correctionBias); add(m.shared)
                for e in m.experts { add(e) }
            }
        }
        return (n, bytes)
    }
}

extension FeedForwardWeights {
    public var parameterCount: Int { gate.parameterCount + up.parameterCount + down.parameterCount }
}

/// Hands out tensors by name, checking shapes, and remembers which were taken so that
/// loading can fail on a tensor the model would silently ignore.
struct WeightLoader {
    let source: any WeightSource
    private let available: Set<String>
    private var used = Set<String>()
    private var ignoredPredicates: [(String) -> Bool] = []

    init(source: any WeightSource) {
        self.source = source
        self.available = Set(source.tensorNames)
    }

    mutating func callAsFunction(_ name: String, _ shape: [Int]) throws(ModelError) -> Tensor {
        guard available.contains(name) else {
            throw .missingTensor(name: name)
        }
        let got: [Int]
        do { got = try source.shape(of: name) } catch { throw .weights("\(error)") }
        guard got == shape else { throw .tensorShape(name: name, expected: shape, got: got) }
        used.insert(name)
        do { return try source.float32(name) } catch { throw .weights("\(error)") }
    }

    /// A linear weight in its stored format; a Q8_0 matrix also uses its `_scale` tensor.
    mutating func matrix(_ name: String, _ shape: [Int]) throws(ModelError) -> WeightMatrix {
        guard available.contains(name) else { throw .missingTensor(name: name) }
        let got: [Int]
        do { got = try source.shape(of: name) } catch { throw .weights("\(error)") }
        guard got == shape else { throw .tensorShape(name: name, expected: shape, got: got) }
        used.insert(name)
        let m: WeightMatrix
        do { m = try source.matrix(name) } catch let e as ModelError { throw e } catch { throw .weights("\(error)") }
        if m.format == .q8_0 { used.insert(Q8_0.scaleName(for: name)) }
        return m
    }

    mutating func ignore(_ name: String) { used.insert(name) }
    mutating func ignore(where predicate: @escaping (String) -> Bool) { ignoredPredicates.append(predicate) }

    func checkAllUsed() throws(ModelError) {
        let unused = source.tensorNames.filter { name in !used.contains(name) && !ignoredPredicates.contains { $0(name) } }
        guard unused.isEmpty else { throw .unusedTensors(names: unused.sorted()) }
    }
}
