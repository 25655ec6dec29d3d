import Foundation

/// This machine's roofline: how fast it computes and how fast it streams memory.
///
/// Every profiled op is placed against it: an op whose arithmetic intensity (FLOP per byte)
/// is below `ridgeFlopsPerByte` is bound by `bandwidthGBps`, above it by `gemmGFLOPS`.
/// `tinyseek calibrate` measures it once (see `Calibration`) and saves it as JSON with
/// snake_case keys, so later runs can report "% of roofline" without measuring again.
public struct MachineProfile: Codable, Sendable, Equatable {
    /// Sustained FP32 sgemm throughput on all cores, GFLOP/s (10⁹ FLOP/s): the flat roof.
    public let gemmGFLOPS: Double
    /// Streaming read bandwidth on all cores, GB/s (10⁹ B/s): the slope batch-1 decode runs on.
    public let bandwidthGBps: Double
    /// STREAM triad a = b + s·c on all cores, GB/s, counting 3 arrays per element (STREAM's
    /// convention; a write-allocate read of `a`, where the CPU does one, is not counted).
    public let triadGBps: Double
    /// Threads the memory measurements ran on (all active cores).
    public let threads: Int
    /// CPU model name (from /proc/cpuinfo), or "unknown".
    public let cpu: String
    /// When it was measured, ISO 8601 (e.g. "2026-01-31T12:00:00Z").
    public let measuredAt: String

    /// FLOP per byte where compute and memory time are equal: GEMM GFLOP/s ÷ read GB/s.
    /// Derived, so it cannot disagree with the two measurements; it is still written to the
    /// JSON for readers that do not recompute it.
    public var ridgeFlopsPerByte: Double { gemmGFLOPS / bandwidthGBps }

    public init(gemmGFLOPS: Double, bandwidthGBps: Double, triadGBps: Double, threads: Int,
                cpu: String, measuredAt: String) {
        self.gemmGFLOPS = gemmGFLOPS
        self.bandwidthGBps = bandwidthGBps
        self.triadGBps = triadGBps
        self.threads = threads
        self.cpu = cpu
        self.measuredAt = measuredAt
    }

    enum CodingKeys: String, CodingKey {
        case gemmGFLOPS = "gemm_gflops"
        case bandwidthGBps = "bandwidth_gbps"
        case triadGBps = "triad_gbps"
        case ridgeFlopsPerByte = "ridge_flops_per_byte"
        case threads, cpu
        case measuredAt = "measured_at"
    }

    /// Decodes and validates: rates must be positive and finite, `threads` at least 1, and a
    /// stored ridge must agree (within 1%) with gemm ÷ bandwidth, so a hand-edited file cannot
    /// carry two different rooflines.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func rate(_ key: CodingKeys) throws -> Double {
            let v = try c.decode(Double.self, forKey: key)
            guard v.isFinite, v > 0 else {
                throw DecodingError.dataCorruptedError(forKey: key, in: c,
                    debugDescription: "must be a positive finite number, got \(v)")
            }
            return v
        }
        gemmGFLOPS = try rate(.gemmGFLOPS)
        bandwidthGBps = try rate(.bandwidthGBps)
        triadGBps = try rate(.triadGBps)
        threads = try c.decode(Int.self, forKey: .threads)
        guard threads >= 1 else {
            throw DecodingError.dataCorruptedError(forKey: .threads, in: c, debugDescription: "must be at least 1, got \(threads)")
        }
        cpu = try c.decode(String.self, forKey: .cpu)
        measuredAt = try c.decode(String.self, forKey: .measuredAt)
        if let stored = try c.decodeIfPresent(Double.self, forKey: .ridgeFlopsPerByte),
           !(abs(stored - ridgeFlopsPerByte) <= 0.01 * ridgeFlopsPerByte) {
            throw DecodingError.dataCorruptedError(forKey: .ridgeFlopsPerByte, in: c, debugDescription:
                "\(stored) disagrees with gemm_gflops / bandwidth_gbps = \(ridgeFlopsPerByte)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(gemmGFLOPS, forKey: .gemmGFLOPS)
        try c.encode(bandwidthGBps, forKey: .bandwidthGBps)
        try c.encode(triadGBps, forKey: .triadGBps)
        try c.encode(ridgeFlopsPerByte, forKey: .ridgeFlopsPerByte)
        try c.encode(threads, forKey: .threads)
        try c.encode(cpu, forKey: .cpu)
        try c.encode(measuredAt, forKey: .measuredAt)
    }
}

// MARK: - Persistence

extension MachineProfile {
    /// Where the profile lives unless a path is given: `$TINYSEEK_MACHINE` if set, else
    /// `$XDG_CACHE_HOME/tinyseek/machine.json`, else `~/.cache/tinyseek/machine.json`.
    public static var defaultURL: URL { defaultURL(environment: ProcessInfo.processInfo.environment) }

    /// `defaultURL` resolved against an explicit environment (testable without mutating the process's).
    public static func defaultURL(environment env: [String: String]) -> URL {
        if let path = env["TINYSEEK_MACHINE"], !path.isEmpty { return URL(fileURLWithPath: path) }
        // The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
        let cache: URL
        if let xdg = env["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            cache = URL(fileURLWithPath: xdg, isDirectory: true)
        } else if let home = env["HOME"], !home.isEmpty {
            cache = URL(fileURLWithPath: home, isDirectory: true).appendingPathComponent(".cache", isDirectory: true)
        } else {
            cache = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache", isDirectory: true)
        }
        return cache.appendingPathComponent("tinyseek", isDirectory: true).appendingPathComponent("machine.json")
    }

    /// Reads and validates a saved profile.
    public static func load(from url: URL) throws(MachineProfileError) -> MachineProfile {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch let error as CocoaError where error.code == .fileReadNoSuchFile {
            throw .notFound(path: url.path)
        } catch {
            throw .unreadable(path: url.path, reason: systemReason(error))
        }
        do {
            return try JSONDecoder().decode(MachineProfile.self, from: data)
        } catch let error as DecodingError {
            throw .malformed(path: url.path, reason: summary(error))
        } catch {
            throw .malformed(path: url.path, reason: "\(error)")
        }
    }

    /// The profile as pretty-printed JSON with sorted keys, as `save(to:)` writes it.
    /// Throws `EncodingError` only for a non-finite rate, which JSON cannot represent.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self) + Data("\n".utf8)
    }

    /// Writes `jsonData()`, creating the directory if needed. The write is atomic (a temporary
    /// file renamed into place), so a reader never sees half a profile.
    public func save(to url: URL) throws(MachineProfileError) {
        let data: Data
        do { data = try jsonData() } catch {
            throw .unwritable(path: url.path, reason: "cannot encode the profile: \(error)")
        }
        try Self.createDirectory(for: url)
        do { try data.write(to: url, options: .atomic) } catch {
            throw .unwritable(path: url.path, reason: Self.systemReason(error))
        }
    }

    /// Fails now, with the reason, if a profile could not be saved at `url` later: creates the
    /// directory and a probe file in it (removed again). Lets `tinyseek calibrate` refuse a bad
    /// `--output` before, not after, its measurements.
    public static func checkWritable(_ url: URL) throws(MachineProfileError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw .unwritable(path: url.path, reason: "it is a directory")
        }
        try createDirectory(for: url)
        let probe = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).probe")
        do {
            try Data().write(to: probe)
            try? FileManager.default.removeItem(at: probe)
        } catch {
            throw .unwritable(path: url.path, reason: systemReason(error))
        }
    }

    /// Creates the directory `url` goes in, naming a regular file that is in the way.
    static func createDirectory(for url: URL) throws(MachineProfileError) {
        let directory = url.deletingLastPathComponent()
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw .unwritable(path: url.path, reason: "\(directory.path) is not a directory")
        }
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw .unwritable(path: url.path, reason: systemReason(error))
        }
    }

    /// The operating system's words for a file error ("Permission denied", "Is a directory"),
    /// which Foundation on Linux hides behind "The operation could not be completed".
    static func systemReason(_ error: any Error) -> String {
        let underlying = (error as? CocoaError)?.underlying ?? error
        if let posix = underlying as? POSIXError { return String(cString: strerror(posix.code.rawValue)) }
        return underlying.localizedDescription
    }

    /// One line for a decoding failure, naming the JSON key: "missing key 'threads'".
    static func summary(_ error: DecodingError) -> String {
        func key(_ context: DecodingError.Context) -> String {
            context.codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case let .keyNotFound(k, _):
            return "missing key '\(k.stringValue)'"
        case let .typeMismatch(type, context):
            return context.codingPath.isEmpty ? "expected a JSON object" : "'\(key(context))' is not of type \(type)"
        case let .valueNotFound(_, context):
            return "'\(key(context))' is null"
        case let .dataCorrupted(context):
            return context.codingPath.isEmpty ? "not valid JSON" : "'\(key(context))' \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

/// Why a machine profile could not be loaded or saved; every case names the file.
public enum MachineProfileError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// No file there: the machine has not been calibrated (or the path is wrong).
    case notFound(path: String)
    /// The file exists but cannot be read (permissions, a directory, ...).
    case unreadable(path: String, reason: String)
    /// The file is not a valid profile: not JSON, a key missing or of the wrong type, a bad value.
    case malformed(path: String, reason: String)
    /// The profile cannot be written there.
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .notFound(path):
            return "no machine profile at \(path); run `tinyseek calibrate` to measure this machine"
        case let .unreadable(path, reason):
            return "cannot read machine profile \(path): \(reason)"
        case let .malformed(path, reason):
            return "machine profile \(path) is invalid: \(reason)"
        case let .unwritable(path, reason):
            return "cannot write machine profile to \(path): \(reason)"
        }
    }

    public var errorDescription: String? { description }
}
