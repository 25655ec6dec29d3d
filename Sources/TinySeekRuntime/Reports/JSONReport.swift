import Foundation
import TinySeek

/// The profile as one JSON object, for scripts and notebooks:
///
///     { "model": "deepseek-v3-tiny",
///       "machine": { "gemm_gflops", "bandwidth_gbps", "ridge_flops_per_byte" },
///       "tokens":  { "prefill": 8, "decode": 4 },
///       "summary": { "prefill": { "seconds", "flops", "bytes", "tokens_per_second",
///                                 "bandwidth_utilisation", "flop_utilisation",
///                                 "by_part": { "attention": {...}, ... }, "by_kind": {...} },
///                    "decode": {...} },
///       "ops": [ OpRow, ... ] }
///
/// `ops` is `OpRow`'s own encoding (the keys of the CSV columns and of `tinyseek analyze --json`)
/// so measured and modelled runs load into the same data frame. Phases without records are left
/// out of `summary`. Keys are sorted so two reports diff cleanly.
///
/// JSON has no NaN or infinity: every non-finite number is written as 0 (see `finiteOrZero`).
public enum JSONReport {
    /// The report as UTF-8 JSON (pretty-printed, sorted keys, trailing newline).
    public static func render(_ report: ProfileReport, model: String) throws(ReportError) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            return try encoder.encode(Document(report, model: model)) + Data("\n".utf8)
        } catch {
            throw .unencodable(format: "JSON", reason: "\(error)")
        }
    }

    /// Writes `render(report, model:)` to `url` (atomically, creating the directory).
    public static func write(_ report: ProfileReport, model: String, to url: URL) throws(ReportError) {
        try ReportFile.write(try render(report, model: model), to: url)
    }

    // MARK: The document

    struct Document: Encodable {
        var model: String
        var machine: Machine
        var tokens: Tokens
        var summary: [String: PhaseSummary]
        var ops: [OpRow]

        init(_ report: ProfileReport, model: String) {
            self.model = model
            machine = Machine(report.roofline)
            tokens = Tokens(prefill: report.tokens[.prefill] ?? 0, decode: report.tokens[.decode] ?? 0)
            summary = Dictionary(uniqueKeysWithValues: report.phases.map { ($0.rawValue, PhaseSummary(report, $0)) })
            ops = report.rows().map(\.finite)
        }
    }

    struct Machine: Encodable {
        var gemmGFLOPS, bandwidthGBps, ridgeFlopsPerByte: Double

        init(_ roof: Roofline) {
            gemmGFLOPS = (roof.peakFlops / 1e9).finiteOrZero
            bandwidthGBps = (roof.bandwidth / 1e9).finiteOrZero
            ridgeFlopsPerByte = roof.ridge.finiteOrZero
        }

        enum CodingKeys: String, CodingKey {
            case gemmGFLOPS = "gemm_gflops", bandwidthGBps = "bandwidth_gbps", ridgeFlopsPerByte = "ridge_flops_per_byte"
        }
    }

    struct Tokens: Encodable {
        var prefill, decode: Int
    }

    /// Totals of one phase and the paper's headline ratios: MBU for decode, MFU for prefill.
    struct PhaseSummary: Encodable {
        var seconds, flops, bytes, bytesRead, bytesWritten, intensity: Double
        var tokens: Int
        var tokensPerSecond, bandwidthUtilisation, flopUtilisation: Double
        var byPart: [String: Group]
        var byKind: [String: Group]

        init(_ report: ProfileReport, _ phase: Phase) {
            let t = report.total(phase)
            seconds = t.seconds.finiteOrZero
            flops = t.cost.flops.finiteOrZero
            bytes = t.cost.bytes.finiteOrZero
            bytesRead = t.cost.bytesRead.finiteOrZero
            bytesWritten = t.cost.bytesWritten.finiteOrZero
            intensity = t.intensity.finiteOrZero
            tokens = report.tokens[phase] ?? 0
            tokensPerSecond = report.tokensPerSecond(phase).finiteOrZero
            bandwidthUtilisation = report.bandwidthUtilisation(phase).finiteOrZero
            flopUtilisation = report.flopUtilisation(phase).finiteOrZero
            let total = t.seconds
            func groups<K>(_ list: [(key: K, value: Aggregate)], _ name: (K) -> String) -> [String: Group] {
                Dictionary(list.map { (name($0.key), Group($0.value, phaseSeconds: total, report.roofline)) },
                           uniquingKeysWith: { a, _ in a })
            }
            byPart = groups(report.byPart(phase), \.rawValue)
            byKind = groups(report.byKind(phase), \.rawValue)
        }

        enum CodingKeys: String, CodingKey {
            case seconds, flops, bytes, intensity, tokens
            case bytesRead = "bytes_read", bytesWritten = "bytes_written", tokensPerSecond = "tokens_per_second"
            case bandwidthUtilisation = "bandwidth_utilisation", flopUtilisation = "flop_utilisation"
            case byPart = "by_part", byKind = "by_kind"
        }
    }

    /// An op group (a model part or an op kind) within a phase.
    struct Group: Encodable {
        var count: Int
        var seconds, share, flops, bytes, intensity: Double
        var bound: String
        var roofFraction: Double

        init(_ a: Aggregate, phaseSeconds: Double, _ roof: Roofline) {
            count = a.count
            seconds = a.seconds.finiteOrZero
            share = (phaseSeconds > 0 ? a.seconds / phaseSeconds : 0).finiteOrZero
            flops = a.cost.flops.finiteOrZero
            bytes = a.cost.bytes.finiteOrZero
            intensity = a.intensity.finiteOrZero
            bound = a.bound(roof).rawValue
            roofFraction = a.roofFraction(roof).finiteOrZero
        }

        enum CodingKeys: String, CodingKey {
            case count, seconds, share, flops, bytes, intensity, bound
            case roofFraction = "roof_fraction"
        }
    }
}

extension OpRow {
    /// This row with every non-finite number replaced by 0, so it can be written as JSON.
    var finite: OpRow {
        var r = self
        r.flops = flops.finiteOrZero
        r.bytesRead = bytesRead.finiteOrZero
        r.weightBytes = weightBytes.finiteOrZero
        r.activationBytes = activationBytes.finiteOrZero
        r.cacheBytes = cacheBytes.finiteOrZero
        r.bytesWritten = bytesWritten.finiteOrZero
        r.seconds = seconds.finiteOrZero
        r.intensity = intensity.finiteOrZero
        r.roofFraction = roofFraction.finiteOrZero
        return r
    }
}
