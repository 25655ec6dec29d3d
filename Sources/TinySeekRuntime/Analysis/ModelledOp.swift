import TinySeek

/// One operator of a modelled step: what the executor would record at the same call site
/// (name, layer, expert, kind, phase, cost), before timing it against a roofline.
public struct ModelledOp: Sendable, Equatable {
    public var name: String
    public var layer: Int?
    /// Routed expert for per-expert rows (observed routing); nil for ops over all experts.
    public var expert: Int?
    public var kind: OpKind
    public var phase: Phase
    public var cost: OpCost

    public init(name: String, layer: Int?, expert: Int? = nil, kind: OpKind, phase: Phase, cost: OpCost) {
        self.name = name
        self.layer = layer
        self.expert = expert
        self.kind = kind
        self.phase = phase
        self.cost = cost
    }

    public var part: ModelPart { ModelPart(opName: name) }
}

extension OpCost {
    /// Every term times `k`: `k` independent copies of the op (e.g. one per sequence).
    public func scaled(by k: Double) -> OpCost {
        OpCost(flops: flops * k, weightBytes: weightBytes * k, activationBytes: activationBytes * k,
               cacheBytes: cacheBytes * k, bytesWritten: bytesWritten * k)
    }

    /// An op cost at a fractional token count. Every `Cost` formula the experts use is affine in
    /// its token count (weights once, FLOPs and activations per token), so the cost at t tokens is
    /// exactly c(0) + t·(c(1) − c(0)) — evaluated through the same formula, not a copy of it.
    public static func atTokens(_ t: Double, _ formula: (Int) -> OpCost) -> OpCost {
        let c0 = formula(0), c1 = formula(1)
        func lerp(_ a: Double, _ b: Double) -> Double { a + t * (b - a) }
        return OpCost(flops: lerp(c0.flops, c1.flops), weightBytes: lerp(c0.weightBytes, c1.weightBytes),
                      activationBytes: lerp(c0.activationBytes, c1.activationBytes),
                      cacheBytes: lerp(c0.cacheBytes, c1.cacheBytes), bytesWritten: lerp(c0.bytesWritten, c1.bytesWritten))
    }
}

extension OpRow {
    /// The analyser's row: the profiler's schema with `seconds` the roofline time (so
    /// `roof_fraction` is 1 by construction).
    public init(op: ModelledOp, roofline: Roofline) {
        self.init(record: OpRecord(name: op.name, layer: op.layer, expert: op.expert, phase: op.phase, kind: op.kind,
                                   cost: op.cost, seconds: roofline.minimumSeconds(op.cost)),
                  roofline: roofline)
    }
}
