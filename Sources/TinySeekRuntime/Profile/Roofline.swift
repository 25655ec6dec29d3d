import TinySeek

/// Whether an op's arithmetic intensity puts it under the bandwidth slope or the compute ceiling.
public enum Bound: String, Codable, Sendable {
    case memory, compute
}

/// The roofline of a machine: attainable FLOP/s = min(peak, intensity × bandwidth).
///
/// An op with intensity I (FLOP/byte) below the ridge point peak/bandwidth cannot beat
/// I × bandwidth however fast the arithmetic is: it is memory-bound. The paper's central point
/// is that MHA decode sits at I ≈ 1 and absorbed MLA decode near I ≈ 100 (BF16).
public struct Roofline: Sendable, Equatable {
    /// Peak FLOP/s (measured sustained sgemm on this machine, or an accelerator's datasheet).
    public var peakFlops: Double
    /// Memory bandwidth in bytes/s.
    public var bandwidth: Double

    public init(peakFlops: Double, bandwidth: Double) {
        self.peakFlops = peakFlops
        self.bandwidth = bandwidth
    }

    public init(machine: MachineProfile) {
        self.init(peakFlops: machine.gemmGFLOPS * 1e9, bandwidth: machine.bandwidthGBps * 1e9)
    }

    /// FLOP per byte where the two roofs meet.
    public var ridge: Double { peakFlops / bandwidth }

    public func bound(intensity: Double) -> Bound { intensity < ridge ? .memory : .compute }

    /// Attainable FLOP/s at `intensity`.
    public func attainable(intensity: Double) -> Double { min(peakFlops, intensity * bandwidth) }

    /// The least time `cost` can take on this machine: max(FLOPs / peak, bytes / bandwidth).
    public func minimumSeconds(_ cost: OpCost) -> Double {
        max(cost.flops / peakFlops, cost.bytes / bandwidth)
    }

    /// How close a measured time is to the roof: minimum time / measured time (1 = at the roof).
    public func roofFraction(_ cost: OpCost, seconds: Double) -> Double {
        seconds > 0 ? minimumSeconds(cost) / seconds : 0
    }
}
