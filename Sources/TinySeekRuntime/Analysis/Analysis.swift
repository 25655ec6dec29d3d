import Foundation
import TinySeek

/// A modelled step timed on an accelerator's roofline: per-op time = max(FLOPs / peak,
/// bytes / bandwidth), ops back to back (no overlap), plus the interconnect time of the
/// all-to-alls (ep > 1) and all-reduces (tp > 1), also not overlapped with compute.
public struct Analysis: Sendable {
    public let model: AnalyticModel
    public let accelerator: Accelerator
    public let roofline: Roofline
    /// The peak's dtype key actually used ("bf16" when fp8 falls back on a device without FP8).
    public let peakDType: String
    public let ops: [ModelledOp]
    /// Roofline seconds of each op, parallel to `ops`.
    public let seconds: [Double]

    public var spec: ArchitectureSpec { model.spec }
    public var scenario: Scenario { model.scenario }

    public init(spec: ArchitectureSpec, scenario: Scenario, accelerator: Accelerator) throws(AnalysisError) {
        let model = try AnalyticModel(spec: spec, scenario: scenario)
        guard let peak = accelerator.peakFlops(for: scenario.dtype) else {
            throw .noPeak(hardware: accelerator.name, dtype: scenario.dtype.rawValue)
        }
        let p = scenario.parallelism
        if p.tp > 1 || (p.ep > 1 && spec.experts != nil), accelerator.interconnectGBps == nil {
            throw .invalidArgument(name: "parallelism", reason: "\(accelerator.name) has no interconnect in the table (needed for tp or ep > 1)")
        }
        self.model = model
        self.accelerator = accelerator
        self.peakDType = peak.dtype
        let roofline = Roofline(peakFlops: peak.flops, bandwidth: accelerator.memoryBandwidthGBps * 1e9)
        let ops = model.ops()
        self.roofline = roofline
        self.ops = ops
        self.seconds = ops.map { roofline.minimumSeconds($0.cost) }
    }

    /// The ops as the profiler's JSON/CSV rows.
    public func rows() -> [OpRow] { ops.map { OpRow(op: $0, roofline: roofline) } }

    /// Cost and roofline time of the ops `include` selects.
    public func aggregate(where include: (ModelledOp) -> Bool) -> Aggregate {
        var a = Aggregate()
        for (op, s) in zip(ops, seconds) where include(op) {
            a.count += 1
            a.cost = a.cost + op.cost
            a.seconds += s
        }
        return a
    }

    public func layer(_ l: Int) -> Aggregate { aggregate { $0.layer == l } }

    /// Compute time of the step on one device: the sum of op roofline times.
    public var computeSeconds: Double { seconds.reduce(0, +) }
    public var total: Aggregate { aggregate { _ in true } }

    // MARK: Interconnect

    var linkBandwidth: Double { (accelerator.interconnectGBps ?? 0) * 1e9 }
    var linkLatency: Double { (accelerator.interconnectLatencyMicroseconds ?? 0) * 1e-6 }

    /// MoE dispatch + combine per MoE layer over `ep` devices:
    ///   2 · Γ · token_bytes · n_k · B / (bandwidth · devices) + 2 · latency,
    /// token_bytes = hidden · activation bytes, B = tokens in the step. 0 without expert parallelism.
    public var allToAllSecondsPerMoELayer: Double {
        let p = scenario.parallelism
        guard let e = spec.experts, p.ep > 1 else { return 0 }
        let tokenBytes = Double(spec.hidden) * scenario.dtype.activationBytes
        return 2 * scenario.routing.imbalance * tokenBytes * Double(e.perToken) * Double(scenario.tokens)
            / (linkBandwidth * Double(p.ep)) + 2 * linkLatency
    }

    /// Two ring all-reduces per layer (after attention and after the MLP) of the rank's N·hidden
    /// activations: 2 · (2·(tp−1)/tp · N·hidden·bytes / bandwidth + latency). 0 when tp = 1.
    public var allReduceSecondsPerLayer: Double {
        let tp = Double(scenario.parallelism.tp)
        guard tp > 1 else { return 0 }
        let bytes = Double(model.rows * spec.hidden) * scenario.dtype.activationBytes
        return 2 * (2 * (tp - 1) / tp * bytes / linkBandwidth + linkLatency)
    }

    public var communicationSeconds: Double {
        allToAllSecondsPerMoELayer * Double(spec.moeLayerCount) + allReduceSecondsPerLayer * Double(spec.layers)
    }

    /// One step on the pool: compute plus communication.
    public var stepSeconds: Double { computeSeconds + communicationSeconds }

    // MARK: Throughput

    /// Tokens the step processes over the pool: B (decode) or B·L (prefill).
    public var tokensPerStep: Int { scenario.tokens }

    /// Decode: the time between two output tokens of a sequence (one step). Prefill: time to
    /// the first token.
    public var secondsPerStep: Double { stepSeconds }

    public var tokensPerSecondPerDevice: Double {
        stepSeconds > 0 ? Double(tokensPerStep) / stepSeconds / Double(scenario.parallelism.devices) : 0
    }

    /// FLOPs and bytes per processed token over the whole pool (replicated work included).
    public var flopsPerToken: Double { total.cost.flops * Double(scenario.parallelism.devices) / Double(tokensPerStep) }
    public var bytesPerToken: Double { total.cost.bytes * Double(scenario.parallelism.devices) / Double(tokensPerStep) }

    // MARK: KV cache

    public var kvCacheBytesPerToken: Double { spec.kvCacheBytesPerToken(bytesPerElement: scenario.dtype.cacheBytes) }
    public var kvCacheBytesPerRequest: Double {
        spec.kvCacheBytesPerRequest(context: scenario.context, bytesPerElement: scenario.dtype.cacheBytes)
    }
}
