import Foundation
import TinySeek

/// A sum of op records: total cost and time, with the roofline metrics of the sum.
public struct Aggregate: Sendable {
    public var count = 0
    public var cost = OpCost()
    public var seconds = 0.0

    public init() {}

    public mutating func add(_ r: OpRecord) {
        count += 1
        cost = cost + r.cost
        seconds += r.seconds
    }

    public var intensity: Double { cost.intensity }
    public var gflops: Double { seconds > 0 ? cost.flops / seconds / 1e9 : 0 }
    public var gbps: Double { seconds > 0 ? cost.bytes / seconds / 1e9 : 0 }
    public func bound(_ roof: Roofline) -> Bound { roof.bound(intensity: intensity) }
    public func roofFraction(_ roof: Roofline) -> Double { roof.roofFraction(cost, seconds: seconds) }
}

/// The profiler's view of a run: op records turned into the paper's quantities (arithmetic
/// intensity against this machine's roofline), grouped by op kind, layer and model part.
public struct ProfileReport: Sendable {
    public let records: [OpRecord]
    public let roofline: Roofline
    /// New tokens processed per phase (prompt tokens for prefill, generated steps for decode).
    public let tokens: [Phase: Int]
    /// Tokens per expert per MoE layer and step, when the run counted them.
    public let expertLoad: [ExpertLoadRecorder.Step]

    public init(records: [OpRecord], roofline: Roofline, tokens: [Phase: Int], expertLoad: [ExpertLoadRecorder.Step] = []) {
        self.records = records
        self.roofline = roofline
        self.tokens = tokens
        self.expertLoad = expertLoad
    }

    /// Tokens routed to each expert over the whole run, as CSV rows `layer,expert,count`.
    public func expertCountsCSV() -> String {
        var sums: [Int: [Int]] = [:]
        for s in expertLoad {
            var row = sums[s.layer] ?? Array(repeating: 0, count: s.counts.count)
            for (i, n) in s.counts.enumerated() { row[i] += n }
            sums[s.layer] = row
        }
        var out = "layer,expert,count\n"
        for layer in sums.keys.sorted() {
            for (e, n) in (sums[layer] ?? []).enumerated() { out += "\(layer),\(e),\(n)\n" }
        }
        return out
    }

    public var phases: [Phase] { [.prefill, .decode].filter { p in records.contains { $0.phase == p } } }

    public func records(_ phase: Phase) -> [OpRecord] { records.filter { $0.phase == phase } }

    public func rows() -> [OpRow] { records.map { OpRow(record: $0, roofline: roofline) } }

    public func total(_ phase: Phase) -> Aggregate {
        var a = Aggregate()
        for r in records where r.phase == phase { a.add(r) }
        return a
    }

    /// Groups the records of `phase` by `key`, in first-seen order.
    public func grouped<K: Hashable>(_ phase: Phase, by key: (OpRecord) -> K) -> [(key: K, value: Aggregate)] {
        var order: [K] = []
        var sums: [K: Aggregate] = [:]
        for r in records where r.phase == phase {
            let k = key(r)
            if sums[k] == nil { order.append(k); sums[k] = Aggregate() }
            sums[k]?.add(r)
        }
        return order.map { ($0, sums[$0] ?? Aggregate()) }
    }

    public func byKind(_ phase: Phase) -> [(key: OpKind, value: Aggregate)] { grouped(phase) { $0.kind } }
    public func byPart(_ phase: Phase) -> [(key: ModelPart, value: Aggregate)] { grouped(phase) { ModelPart(opName: $0.name) } }
    public func byLayer(_ phase: Phase) -> [(key: Int?, value: Aggregate)] { grouped(phase) { $0.layer } }
    public func byName(_ phase: Phase) -> [(key: String, value: Aggregate)] { grouped(phase) { $0.name } }

    /// Model bandwidth utilisation: bytes really read per token over the time per token,
    /// against the bandwidth roof. The headline for memory-bound decode.
    public func bandwidthUtilisation(_ phase: Phase) -> Double {
        let t = total(phase)
        return t.seconds > 0 ? t.cost.bytes / t.seconds / roofline.bandwidth : 0
    }

    /// Model FLOP utilisation: FLOPs per second against the compute roof. The prefill headline.
    public func flopUtilisation(_ phase: Phase) -> Double {
        let t = total(phase)
        return t.seconds > 0 ? t.cost.flops / t.seconds / roofline.peakFlops : 0
    }

    public func tokensPerSecond(_ phase: Phase) -> Double {
        let t = total(phase)
        return t.seconds > 0 ? Double(tokens[phase] ?? 0) / t.seconds : 0
    }

    /// One line per layer naming the part that takes most of its time and where that part sits
    /// on the roofline, e.g. "MoE experts: memory-bound, intensity 0.5 FLOP/B, 86% of bandwidth roof".
    public func verdicts(_ phase: Phase) -> [(layer: Int?, text: String)] {
        let layers = grouped(phase) { $0.layer }.map(\.key)
        return layers.map { layer in
            let parts = grouped(phase) { $0.layer == layer ? ModelPart(opName: $0.name) : nil }
                .compactMap { $0.key == nil ? nil : ($0.key!, $0.value) }
            let layerTime = parts.reduce(0) { $0 + $1.1.seconds }
            guard let (part, agg) = parts.max(by: { $0.1.seconds < $1.1.seconds }) else { return (layer, "no ops") }
            let share = layerTime > 0 ? agg.seconds / layerTime : 0
            return (layer, Self.verdict(part.title, agg, share: share, of: layer == nil ? "time outside layers" : "layer time",
                                        roofline: roofline))
        }
    }

    static func verdict(_ title: String, _ a: Aggregate, share: Double, of whole: String, roofline: Roofline) -> String {
        let bound = a.bound(roofline)
        let roofName = bound == .memory ? "bandwidth" : "compute"
        return "\(title) (\(Format.percent(share)) of \(whole)): \(bound.rawValue)-bound, intensity "
            + "\(Format.number(a.intensity)) FLOP/B, \(Format.percent(a.roofFraction(roofline))) of \(roofName) roof"
    }
}

/// Number formatting shared by every report.
public enum Format {
    public static func number(_ x: Double) -> String {
        if x == 0 { return "0" }
        let a = abs(x)
        if a >= 1e4 || a < 1e-2 { return String(format: "%.2e", x) }
        if a >= 100 { return String(format: "%.0f", x) }
        if a >= 10 { return String(format: "%.1f", x) }
        return String(format: "%.2f", x)
    }

    public static func percent(_ x: Double) -> String { String(format: "%.0f%%", x * 100) }

    /// 1.23 G, 456 M, ... for FLOPs and bytes.
    public static func si(_ x: Double, unit: String = "") -> String {
        let prefixes = ["", "K", "M", "G", "T", "P"]
        var v = x, i = 0
        while abs(v) >= 1000 && i < prefixes.count - 1 { v /= 1000; i += 1 }
        return (i == 0 ? String(format: "%.0f", v) : String(format: "%.2f", v)) + " \(prefixes[i])\(unit)"
    }

    public static func seconds(_ s: Double) -> String {
        if s >= 1 { return String(format: "%.2f s", s) }
        if s >= 1e-3 { return String(format: "%.2f ms", s * 1e3) }
        return String(format: "%.1f us", s * 1e6)
    }
}
