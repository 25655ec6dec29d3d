import Foundation

/// An accelerator's roofline and interconnect: what the analytic model times ops against.
///
/// Peaks are dense (no structured sparsity) datasheet FLOP/s per dtype; `interconnectGBps` is per
/// device and per direction (half the aggregate bidirectional figure datasheets quote), which is
/// what one side of an all-to-all can send. The built-in table is `Accelerator.builtIn`; a JSON
/// file (`--hardware-file`) adds entries or replaces ones of the same name, with these keys:
///
/// ```json
/// {"accelerators": [{"name": "H100 SXM", "aliases": ["h100"], "peak_tflops": {"bf16": 989.5, "fp8": 1979},
///   "memory_bandwidth_gbps": 3350, "memory_gb": 80, "interconnect": "NVLink 4",
///   "interconnect_gbps": 450, "interconnect_latency_us": 10}]}
/// ```
public struct Accelerator: Codable, Sendable, Equatable {
    public var name: String
    /// Other names `--hardware` accepts (matched ignoring case, spaces, '-' and '_').
    public var aliases: [String]
    /// Dense peak TFLOP/s by dtype key: "bf16", "fp8", "fp32".
    public var peakTFLOPS: [String: Double]
    public var memoryBandwidthGBps: Double
    /// Memory capacity in GB (10⁹ bytes); 0 when unknown.
    public var memoryGB: Double
    public var interconnect: String?
    /// Per device, per direction, GB/s.
    public var interconnectGBps: Double?
    /// Fixed cost of one collective (all-to-all or all-reduce step), microseconds.
    public var interconnectLatencyMicroseconds: Double?
    public var notes: String?

    public init(name: String, aliases: [String] = [], peakTFLOPS: [String: Double], memoryBandwidthGBps: Double,
                memoryGB: Double, interconnect: String? = nil, interconnectGBps: Double? = nil,
                interconnectLatencyMicroseconds: Double? = nil, notes: String? = nil) {
        self.name = name
        self.aliases = aliases
        self.peakTFLOPS = peakTFLOPS
        self.memoryBandwidthGBps = memoryBandwidthGBps
        self.memoryGB = memoryGB
        self.interconnect = interconnect
        self.interconnectGBps = interconnectGBps
        self.interconnectLatencyMicroseconds = interconnectLatencyMicroseconds
        self.notes = notes
    }

    enum CodingKeys: String, CodingKey {
        case name, aliases, notes, interconnect
        case peakTFLOPS = "peak_tflops", memoryBandwidthGBps = "memory_bandwidth_gbps", memoryGB = "memory_gb"
        case interconnectGBps = "interconnect_gbps", interconnectLatencyMicroseconds = "interconnect_latency_us"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        aliases = try c.decodeIfPresent([String].self, forKey: .aliases) ?? []
        peakTFLOPS = try c.decode([String: Double].self, forKey: .peakTFLOPS)
        memoryBandwidthGBps = try c.decode(Double.self, forKey: .memoryBandwidthGBps)
        memoryGB = try c.decodeIfPresent(Double.self, forKey: .memoryGB) ?? 0
        interconnect = try c.decodeIfPresent(String.self, forKey: .interconnect)
        interconnectGBps = try c.decodeIfPresent(Double.self, forKey: .interconnectGBps)
        interconnectLatencyMicroseconds = try c.decodeIfPresent(Double.self, forKey: .interconnectLatencyMicroseconds)
        notes = try c.decodeIfPresent(String.self, forKey: .notes)
        for (key, value) in peakTFLOPS where !(value.isFinite && value > 0) {
            throw DecodingError.dataCorruptedError(forKey: .peakTFLOPS, in: c, debugDescription: "'\(key)' must be a positive number, got \(value)")
        }
        guard !peakTFLOPS.isEmpty else {
            throw DecodingError.dataCorruptedError(forKey: .peakTFLOPS, in: c, debugDescription: "needs at least one dtype")
        }
        guard memoryBandwidthGBps.isFinite, memoryBandwidthGBps > 0 else {
            throw DecodingError.dataCorruptedError(forKey: .memoryBandwidthGBps, in: c, debugDescription: "must be positive")
        }
        guard memoryGB.isFinite, memoryGB >= 0 else {
            throw DecodingError.dataCorruptedError(forKey: .memoryGB, in: c, debugDescription: "must be >= 0")
        }
        if let bw = interconnectGBps, !(bw.isFinite && bw > 0) {
            throw DecodingError.dataCorruptedError(forKey: .interconnectGBps, in: c, debugDescription: "must be positive")
        }
    }

    /// The peak FLOP/s for `dtype`, falling back to a wider format the device has (fp8 -> bf16 ->
    /// fp32): e.g. FP8 weights on an A100 are upcast and multiplied at the BF16 rate.
    public func peakFlops(for dtype: AnalysisDType) -> (flops: Double, dtype: String)? {
        let chain: [String]
        switch dtype {
        case .fp8: chain = ["fp8", "bf16", "fp32"]
        case .bf16: chain = ["bf16", "fp32"]
        case .fp32: chain = ["fp32"]
        }
        for key in chain { if let t = peakTFLOPS[key] { return (t * 1e12, key) } }
        return nil
    }

    public func roofline(for dtype: AnalysisDType) throws(AnalysisError) -> Roofline {
        guard let peak = peakFlops(for: dtype) else { throw .noPeak(hardware: name, dtype: dtype.rawValue) }
        return Roofline(peakFlops: peak.flops, bandwidth: memoryBandwidthGBps * 1e9)
    }

    public var memoryBytes: Double { memoryGB * 1e9 }

    /// Names compare ignoring case, spaces, '-' and '_': "H100 SXM" = "h100-sxm" = "h100_sxm".
    static func normalized(_ s: String) -> String {
        s.lowercased().filter { !" -_".contains($0) }
    }

    func answers(to name: String) -> Bool {
        let n = Self.normalized(name)
        return ([self.name] + aliases).contains { Self.normalized($0) == n }
    }
}

// MARK: - The table

extension Accelerator {
    /// The name of the accelerator built from `tinyseek calibrate`'s saved profile.
    public static let thisMachine = "this-machine"

    /// Datasheet values. BF16 TFLOPS / GB/s / GB for the GPUs are the DESIGN.md reference points.
    public static let builtIn: [Accelerator] = [
        Accelerator(name: "V100", aliases: ["v100-sxm2", "v100-32gb"],
                    peakTFLOPS: ["bf16": 125, "fp32": 15.7], memoryBandwidthGBps: 900, memoryGB: 32,
                    interconnect: "NVLink 2 (300 GB/s aggregate)", interconnectGBps: 150, interconnectLatencyMicroseconds: 10,
                    notes: "no BF16 units: the 16-bit figure is FP16 tensor-core peak, which moves the same bytes"),
        Accelerator(name: "A100", aliases: ["a100-80gb", "a100-sxm"],
                    peakTFLOPS: ["bf16": 312, "fp32": 19.5], memoryBandwidthGBps: 2039, memoryGB: 80,
                    interconnect: "NVLink 3 (600 GB/s aggregate)", interconnectGBps: 300, interconnectLatencyMicroseconds: 10,
                    notes: "80 GB SXM; no FP8 units (fp8 weights run at the BF16 peak)"),
        Accelerator(name: "H100 SXM", aliases: ["h100", "h100-sxm5"],
                    peakTFLOPS: ["bf16": 989.5, "fp8": 1979, "fp32": 67], memoryBandwidthGBps: 3350, memoryGB: 80,
                    interconnect: "NVLink 4 (900 GB/s aggregate)", interconnectGBps: 450, interconnectLatencyMicroseconds: 10),
        Accelerator(name: "H200", aliases: ["h200-sxm"],
                    peakTFLOPS: ["bf16": 989.5, "fp8": 1979, "fp32": 67], memoryBandwidthGBps: 4800, memoryGB: 141,
                    interconnect: "NVLink 4 (900 GB/s aggregate)", interconnectGBps: 450, interconnectLatencyMicroseconds: 10),
        Accelerator(name: "B200", aliases: ["b200-sxm"],
                    peakTFLOPS: ["bf16": 2250, "fp8": 4500], memoryBandwidthGBps: 8000, memoryGB: 192,
                    interconnect: "NVLink 5 (1.8 TB/s aggregate)", interconnectGBps: 900, interconnectLatencyMicroseconds: 10),
        Accelerator(name: "MI325X", aliases: ["mi325"],
                    peakTFLOPS: ["bf16": 1307.4, "fp8": 2614.9, "fp32": 163.4], memoryBandwidthGBps: 6000, memoryGB: 256,
                    interconnect: "Infinity Fabric (7 links, 896 GB/s aggregate)", interconnectGBps: 448,
                    interconnectLatencyMicroseconds: 10),
        Accelerator(name: "TPU v5p", aliases: ["tpuv5p", "v5p"],
                    peakTFLOPS: ["bf16": 459], memoryBandwidthGBps: 2765, memoryGB: 95,
                    interconnect: "ICI (4800 Gbps = 600 GB/s per chip)", interconnectGBps: 300, interconnectLatencyMicroseconds: 10,
                    notes: "no FP8 units (INT8 918 TOPS is not used here): fp8 weights run at the BF16 peak"),
    ]

    /// `this-machine` from a `tinyseek calibrate` profile: FP32 only (sgemm peak and streaming
    /// read bandwidth as measured), capacity from /proc/meminfo, no interconnect.
    public static func calibrated(profile p: MachineProfile, memoryBytes: Double?) -> Accelerator {
        Accelerator(name: thisMachine, aliases: ["this", "local", "cpu"],
                    peakTFLOPS: ["fp32": p.gemmGFLOPS / 1000], memoryBandwidthGBps: p.bandwidthGBps,
                    memoryGB: (memoryBytes ?? 0) / 1e9,
                    notes: "\(p.cpu), \(p.threads) threads, measured \(p.measuredAt): FP32 sgemm peak, FP32 only")
    }

    /// Bytes of RAM from /proc/meminfo (Linux), nil elsewhere.
    static func installedMemory() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") }),
              let kib = line.split(separator: " ").compactMap({ Double($0) }).first else { return nil }
        return kib * 1024
    }

    /// The built-in table with a `--hardware-file`'s entries added or replacing same-named ones.
    public static func table(overrides url: URL?) throws(AnalysisError) -> [Accelerator] {
        var table = builtIn
        guard let url else { return table }
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw .invalidHardwareFile(path: url.path, reason: "cannot read it") }
        struct Wrapped: Decodable { var accelerators: [Accelerator] }
        let entries: [Accelerator]
        do {
            // A bare list of accelerators, or {"accelerators": [...]}.
            if (try? JSONSerialization.jsonObject(with: data)) is [Any] {
                entries = try JSONDecoder().decode([Accelerator].self, from: data)
            } else {
                entries = try JSONDecoder().decode(Wrapped.self, from: data).accelerators
            }
        } catch {
            throw .invalidHardwareFile(path: url.path, reason: describeDecoding(error))
        }
        for entry in entries {
            if let i = table.firstIndex(where: { $0.answers(to: entry.name) }) { table[i] = entry } else { table.append(entry) }
        }
        return table
    }

    /// Finds `name` in the table; `this-machine` loads the calibrated profile (from
    /// `machineProfile`, default `MachineProfile.defaultURL`) unless the table defines it.
    public static func named(_ name: String, in table: [Accelerator],
                             machineProfile: URL = MachineProfile.defaultURL) throws -> Accelerator {
        if let hit = table.first(where: { $0.answers(to: name) }) { return hit }
        let local = Accelerator(name: thisMachine, aliases: ["this", "local", "cpu"], peakTFLOPS: ["fp32": 1],
                                memoryBandwidthGBps: 1, memoryGB: 0)
        if local.answers(to: name) {
            let profile = try MachineProfile.load(from: machineProfile)
            return calibrated(profile: profile, memoryBytes: installedMemory())
        }
        throw AnalysisError.unknownHardware(name: name, known: table.map(\.name) + [thisMachine])
    }
}
