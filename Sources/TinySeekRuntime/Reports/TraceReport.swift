import Foundation
import TinySeek

/// The profile as a Chrome trace (the trace-event JSON format that Perfetto, chrome://tracing
/// and speedscope open), to see the run on a timeline:
///
///     { "traceEvents": [ metadata..., layer slices..., ops... ], "displayTimeUnit": "ms" }
///
/// Every op is a complete event (`"ph": "X"`) at its recorded start, with its cost in `args`.
/// Each contiguous run of ops of one layer in one phase (a layer of one forward step) is
/// wrapped in an enclosing "layer N" slice on the same thread, so the viewer nests the ops
/// under their layer and shows the step's layers side by side. Ops outside the layers
/// (embedding, final norm, LM head) stay at the top level.
///
/// Times are whole nanoseconds written as microseconds (`ts`, `dur`), rounded once per op end,
/// so a layer slice's end is exactly its last op's end and nesting never breaks by a rounding.
public enum TraceReport {
    /// The process id and thread id every event is on: one sequence runs on one thread.
    static let pid = 1, tid = 1

    /// The trace as UTF-8 JSON. `model` names the process ("tinyseek deepseek-v3-tiny").
    public static func render(_ report: ProfileReport, model: String) throws(ReportError) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return try encoder.encode(Trace(traceEvents: events(report, model: model))) + Data("\n".utf8)
        } catch {
            throw .unencodable(format: "trace", reason: "\(error)")
        }
    }

    /// Writes `render(report, model:)` to `url` (atomically, creating the directory).
    public static func write(_ report: ProfileReport, model: String, to url: URL) throws(ReportError) {
        try ReportFile.write(try render(report, model: model), to: url)
    }

    // MARK: Events

    struct Trace: Encodable {
        var traceEvents: [Event]
        var displayTimeUnit = "ms"
    }

    /// One trace event. `ts` and `dur` are microseconds; `dur` is only for complete events.
    struct Event: Encodable {
        var name: String
        var cat: String?
        var ph: String
        var ts: Double?
        var dur: Double?
        var pid = TraceReport.pid
        var tid = TraceReport.tid
        var args: [String: Arg]
    }

    /// A value in `args`: the format allows any JSON; these are the ones the report uses.
    enum Arg: Encodable, Equatable {
        case number(Double), int(Int), text(String), null

        func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case let .number(x): try c.encode(x.finiteOrZero)
            case let .int(i): try c.encode(i)
            case let .text(s): try c.encode(s)
            case .null: try c.encodeNil()
            }
        }
    }

    /// Metadata, then for each layer run its enclosing slice followed by its ops, in time order.
    static func events(_ report: ProfileReport, model: String) -> [Event] {
        var events = [
            Event(name: "process_name", ph: "M", args: ["name": .text("tinyseek \(model)")]),
            Event(name: "thread_name", ph: "M", args: ["name": .text("forward (one sequence)")]),
        ]
        let rows = report.rows()
        var i = 0
        while i < report.records.count {
            let first = report.records[i]
            var j = i + 1
            if let layer = first.layer {
                // Extend the run while the next op is in the same layer and phase.
                while j < report.records.count, report.records[j].layer == layer, report.records[j].phase == first.phase {
                    j += 1
                }
                let span = report.records[i..<j]
                let start = span.map { nanoseconds($0.start) }.min() ?? 0
                let end = span.map { nanoseconds($0.start + $0.seconds) }.max() ?? start
                let sum = span.reduce(into: Aggregate()) { $0.add($1) }
                events.append(Event(name: "layer \(layer)", cat: "layer", ph: "X",
                                    ts: micro(start), dur: micro(end - start),
                                    args: ["layer": .int(layer), "phase": .text(first.phase.rawValue),
                                           "ops": .int(span.count), "flops": .number(sum.cost.flops),
                                           "bytes": .number(sum.cost.bytes), "intensity": .number(sum.intensity)]))
            }
            for k in i..<j { events.append(opEvent(report.records[k], rows[k])) }
            i = j
        }
        return events
    }

    static func opEvent(_ r: OpRecord, _ row: OpRow) -> Event {
        let start = nanoseconds(r.start), end = nanoseconds(r.start + r.seconds)
        return Event(name: r.name, cat: r.kind.rawValue, ph: "X", ts: micro(start), dur: micro(end - start),
                     args: ["flops": .number(row.flops), "bytes_read": .number(row.bytesRead),
                            "bytes_written": .number(row.bytesWritten), "bytes": .number(row.bytesRead + row.bytesWritten),
                            "intensity": .number(row.intensity), "bound": .text(row.bound),
                            "roof_fraction": .number(row.roofFraction), "part": .text(row.part),
                            "phase": .text(row.phase), "layer": row.layer.map { .int($0) } ?? .null,
                            "expert": row.expert.map { .int($0) } ?? .null])
    }

    /// Seconds to whole nanoseconds (the recorder's own resolution); non-finite or negative is 0.
    static func nanoseconds(_ seconds: Double) -> Int64 {
        let ns = (seconds * 1e9).rounded()
        return ns.isFinite && ns > 0 && ns < 9e18 ? Int64(ns) : 0
    }

    /// Nanoseconds as microseconds: exact to the nanosecond in JSON's decimal form.
    static func micro(_ ns: Int64) -> Double { Double(ns) / 1000 }
}
