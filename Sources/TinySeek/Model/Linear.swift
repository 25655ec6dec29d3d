import Tensor

/// A PyTorch-layout linear layer: `weight` stored (outFeatures, inFeatures), y = x·Wᵀ + b.
///
/// The weight is usually a zero-copy view into the memory-mapped checkpoint.
public struct Linear: Sendable {
    public let weight: Tensor   // (outFeatures, inFeatures)
    public let bias: Tensor?    // (outFeatures)

    public init(weight: Tensor, bias: Tensor? = nil) {
        self.weight = weight
        self.bias = bias
    }

    public var outFeatures: Int { weight.shape[0] }
    public var inFeatures: Int { weight.shape[1] }
    /// Bytes per weight element as stored in memory (F32 today).
    public var weightBytes: Double { 4 }
    public var parameterCount: Int { weight.count + (bias?.count ?? 0) }

    /// out[rows, outFeatures] = x[rows, inFeatures] · Wᵀ (+ b); `ldx`/`ldo` are row strides.
    @inline(__always)
    public func apply(_ x: UnsafePointer<Float>, rows: Int, ldx: Int? = nil,
                      into out: UnsafeMutablePointer<Float>, ldo: Int? = nil) {
        Kernels.gemm(m: rows, n: outFeatures, k: inFeatures, a: x, lda: ldx ?? inFeatures,
                     b: weight.pointer, ldb: inFeatures, transposeB: true,
                     c: out, ldc: ldo ?? outFeatures)
        if let bias {
            for r in 0..<rows {
                Kernels.add(out + r * (ldo ?? outFeatures), bias.pointer, count: outFeatures,
                            out: out + r * (ldo ?? outFeatures))
            }
        }
    }

    /// The op cost of applying this layer to `tokens` rows (see `Cost.linear`).
    public func cost(tokens: Int) -> OpCost {
        Cost.linear(tokens: tokens, inFeatures: inFeatures, outFeatures: outFeatures, weightBytes: weightBytes)
    }

    /// gemm for a batch, gemv for a single row: how the roofline tells them apart.
    public func kind(tokens: Int) -> OpKind { tokens == 1 ? .gemv : .gemm }
}
