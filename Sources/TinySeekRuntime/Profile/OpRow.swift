import TinySeek

/// One op as users load it in pandas: the same keys in the profiler's JSON and CSV and in
/// `tinyseek analyze --json`, so measured and modelled runs compare column by column.
public struct OpRow: Codable, Sendable, Equatable {
    public var name: String
    public var kind: String
    /// Decoder layer, null outside the layers (embedding, final norm, LM head).
    public var layer: Int?
    /// Routed expert for per-expert ops, else null.
    public var expert: Int?
    public var part: String
    public var phase: String
    public var flops: Double
    public var bytesRead: Double
    public var weightBytes: Double
    public var activationBytes: Double
    public var cacheBytes: Double
    public var bytesWritten: Double
    /// Measured wall time (profiler) or roofline time (analyzer).
    public var seconds: Double
    public var intensity: Double
    public var bound: String
    /// Minimum (roofline) time over `seconds`: 1 means at the roof.
    public var roofFraction: Double

    enum CodingKeys: String, CodingKey {
        case name, kind, layer, expert, part, phase, flops
        case bytesRead = "bytes_read", weightBytes = "weight_bytes", activationBytes = "activation_bytes"
        case cacheBytes = "cache_bytes", bytesWritten = "bytes_written", seconds, intensity, bound
        case roofFraction = "roof_fraction"
    }

    /// Writes every key, with `layer` and `expert` as explicit nulls when absent. The synthesized
    /// encoder would omit them (`encodeIfPresent`), so rows outside the layers had fewer keys than
    /// the documented schema and than the CSV columns. Decoding stays synthesized: it accepts a
    /// null and a missing key alike.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(kind, forKey: .kind)
        try c.encode(layer, forKey: .layer)
        try c.encode(expert, forKey: .expert)
        try c.encode(part, forKey: .part)
        try c.encode(phase, forKey: .phase)
        try c.encode(flops, forKey: .flops)
        try c.encode(bytesRead, forKey: .bytesRead)
        try c.encode(weightBytes, forKey: .weightBytes)
        try c.encode(activationBytes, forKey: .activationBytes)
        try c.encode(cacheBytes, forKey: .cacheBytes)
        try c.encode(bytesWritten, forKey: .bytesWritten)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(intensity, forKey: .intensity)
        try c.encode(bound, forKey: .bound)
        try c.encode(roofFraction, forKey: .roofFraction)
    }

    /// Column order for CSV.
    public static let columns = ["name", "kind", "layer", "expert", "part", "phase", "flops", "bytes_read",
                                 "weight_bytes", "activation_bytes", "cache_bytes", "bytes_written", "seconds",
                                 "intensity", "bound", "roof_fraction"]

    public init(record r: OpRecord, roofline: Roofline) {
        name = r.name
        kind = r.kind.rawValue
        layer = r.layer
        expert = r.expert
        part = ModelPart(opName: r.name).rawValue
        phase = r.phase.rawValue
        flops = r.cost.flops
        bytesRead = r.cost.bytesRead
        weightBytes = r.cost.weightBytes
        activationBytes = r.cost.activationBytes
        cacheBytes = r.cost.cacheBytes
        bytesWritten = r.cost.bytesWritten
        seconds = r.seconds
        intensity = r.cost.intensity
        bound = roofline.bound(intensity: r.cost.intensity).rawValue
        roofFraction = roofline.roofFraction(r.cost, seconds: r.seconds)
    }

    /// The CSV cells in `columns` order (empty for null).
    public var csvCells: [String] {
        [name, kind, layer.map(String.init) ?? "", expert.map(String.init) ?? "", part, phase,
         "\(flops)", "\(bytesRead)", "\(weightBytes)", "\(activationBytes)", "\(cacheBytes)", "\(bytesWritten)",
         "\(seconds)", "\(intensity)", bound, "\(roofFraction)"]
    }
}
