import Foundation

/// What kind of work an operator is; the roofline treats them alike, the reports group by it.
public enum OpKind: String, Codable, Sendable, CaseIterable {
    /// A weight matrix times a batch of rows (T > 1): sgemm.
    case gemm
    /// A weight matrix times one row: memory-bound matrix-vector product.
    case gemv
    /// Score, softmax and context over the KV cache.
    case attention
    /// Norms, rope, activations, residual adds.
    case elementwise
    /// The MoE router: gate logits, scoring and top-k selection.
    case routing
}

/// Prefill (the whole prompt at once) or decode (one new token per sequence per step).
public enum Phase: String, Codable, Sendable {
    case prefill, decode
}

/// The cost of one operator call, from the formulas written next to the op (see `Cost`).
/// FLOPs count 2 per multiply-add; bytes are at the dtype actually read.
public struct OpCost: Sendable, Equatable {
    public var flops: Double
    /// Weight bytes streamed from memory.
    public var weightBytes: Double
    /// Activation bytes read (inputs other than weights and cache).
    public var activationBytes: Double
    /// KV-cache bytes read.
    public var cacheBytes: Double
    public var bytesWritten: Double

    public init(flops: Double = 0, weightBytes: Double = 0, activationBytes: Double = 0,
                cacheBytes: Double = 0, bytesWritten: Double = 0) {
        self.flops = flops
        self.weightBytes = weightBytes
        self.activationBytes = activationBytes
        self.cacheBytes = cacheBytes
        self.bytesWritten = bytesWritten
    }

    public var bytesRead: Double { weightBytes + activationBytes + cacheBytes }
    public var bytes: Double { bytesRead + bytesWritten }
    /// Arithmetic intensity, FLOP per byte moved.
    public var intensity: Double { bytes > 0 ? flops / bytes : 0 }

    public static func + (a: OpCost, b: OpCost) -> OpCost {
        OpCost(flops: a.flops + b.flops, weightBytes: a.weightBytes + b.weightBytes,
               activationBytes: a.activationBytes + b.activationBytes, cacheBytes: a.cacheBytes + b.cacheBytes,
               bytesWritten: a.bytesWritten + b.bytesWritten)
    }
}

/// One executed operator: where it ran, what it cost, how long it took.
public struct OpRecord: Sendable {
    public var name: String
    /// Decoder layer, or nil for ops outside the layers (embedding, final norm, LM head).
    public var layer: Int?
    /// Routed expert index for per-expert ops (expert_gate_up, expert_down), else nil; also nil
    /// for single-token decode, which runs a token's experts as one fused op.
    public var expert: Int?
    public var phase: Phase
    public var kind: OpKind
    public var cost: OpCost
    public var seconds: Double
    /// Start time relative to the recorder's creation, for traces.
    public var start: Double

    public init(name: String, layer: Int?, expert: Int? = nil, phase: Phase, kind: OpKind, cost: OpCost,
                seconds: Double, start: Double = 0) {
        self.name = name
        self.layer = layer
        self.expert = expert
        self.phase = phase
        self.kind = kind
        self.cost = cost
        self.seconds = seconds
        self.start = start
    }
}
