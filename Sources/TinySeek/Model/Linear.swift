import Tensor

/// A PyTorch-layout linear layer: `weight` stored (outFeatures, inFeatures), y = x·Wᵀ + b.
///
/// The weight is a `WeightMatrix` in the checkpoint's own format (F32, BF16, F16 or Q8_0),
/// usually read in place from the memory-mapped file: the kernels widen it as they stream it.
public struct Linear: Sendable {
    public let weight: WeightMatrix   // (outFeatures, inFeatures)
    public let bias: Tensor?          // (outFeatures)

    public init(weight: WeightMatrix, bias: Tensor? = nil) {
        self.weight = weight
        self.bias = bias
    }

    /// A float32 layer over a rank-2 tensor (zero-copy), e.g. the MoE router.
    public init(weight: Tensor, bias: Tensor? = nil) {
        self.init(weight: WeightMatrix(weight), bias: bias)
    }

    public var outFeatures: Int { weight.rows }
    public var inFeatures: Int { weight.cols }
    /// Bytes per weight element as stored in memory: 4 (F32), 2 (BF16/F16), 34/32 (Q8_0).
    public var weightBytes: Double { weight.bytesPerElement }
    public var parameterCount: Int { weight.count + (bias?.count ?? 0) }
    /// The bias's floats, if any (for the matvec jobs, which add it in place).
    var biasPointer: UnsafePointer<Float>? { bias.map { UnsafePointer($0.pointer) } }

    /// out[rows, outFeatures] = x[rows, inFeatures] · Wᵀ (+ b); `ldx`/`ldo` are row strides;
    /// `next`: the job after this one (see `WeightMatrix.apply`).
    @inline(__always)
    public func apply(_ x: UnsafePointer<Float>, rows: Int, ldx: Int? = nil,
                      into out: UnsafeMutablePointer<Float>, ldo: Int? = nil, then next: UpcomingJob? = nil) {
        weight.apply(x, rows: rows, ldx: ldx ?? inFeatures, into: out, ldy: ldo ?? outFeatures, then: next)
        addBias(to: out, rows: rows, ldo: ldo)
    }

    /// out[r] += b for each of `rows` rows (nothing without a bias): for callers that computed
    /// x·Wᵀ themselves, e.g. in a `MatvecBatch`.
    @inline(__always)
    public func addBias(to out: UnsafeMutablePointer<Float>, rows: Int, ldo: Int? = nil) {
        guard let bias else { return }
        for r in 0..<rows {
            Kernels.add(out + r * (ldo ?? outFeatures), bias.pointer, count: outFeatures, out: out + r * (ldo ?? outFeatures))
        }
    }

    /// The op cost of applying this layer to `tokens` rows (see `Cost.linear`).
    public func cost(tokens: Int) -> OpCost {
        Cost.linear(tokens: tokens, inFeatures: inFeatures, outFeatures: outFeatures, weightBytes: weightBytes)
    }

    /// gemm for a batch, gemv for a single row: how the roofline tells them apart.
    public func kind(tokens: Int) -> OpKind { tokens == 1 ? .gemv : .gemm }
}

extension MatvecBatch {
    /// Adds y[outFeatures] = layer(x[inFeatures]): the layer's weight, its bias added in the same
    /// piece as the rows. How decode streams the layers that read the same input as one job (q_a
    /// and kv_a, the router with the shared gate and up, a token's experts).
    func append(_ layer: Linear, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        append(layer.weight, x: x, y: y, bias: layer.biasPointer)
    }

    /// Adds out = silu(gate(x)) ⊙ up(x), up's output going to `upOut` on the way (`appendGated`).
    func appendGated(gate: Linear, up: Linear, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                     upOut: UnsafeMutablePointer<Float>) {
        appendGated(gate: gate.weight, up: up.weight, x: x, out: out, upOut: upOut,
                    gateBias: gate.biasPointer, upBias: up.biasPointer)
    }
}
