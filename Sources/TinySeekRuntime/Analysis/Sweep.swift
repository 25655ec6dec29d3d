import Foundation
import TinySeek

/// `--sweep batch=1,2,4,...,4096` or `--sweep context=1024,...,131072`: the same scenario
/// evaluated at each value, summarised per op group (intensity, time) for CSV and the chart.
public struct Sweep: Sendable, Equatable {
    public enum Variable: String, Sendable {
        case batch, context
    }

    public var variable: Variable
    public var values: [Int]

    public init(variable: Variable, values: [Int]) {
        self.variable = variable
        self.values = values
    }

    /// Parses "batch=1,2,4,...,64" or "context=1024,2048,4096". A literal "..." continues the
    /// progression of the values before it up to (and including) the value after it: arithmetic
    /// when the last three are evenly spaced ("100,200,300,...,600"), else geometric when the
    /// last two have a whole ratio ("1,2,...,64"), else arithmetic.
    public static func parse(_ text: String) throws(AnalysisError) -> Sweep {
        let parts = text.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, let variable = Variable(rawValue: parts[0].lowercased()) else {
            throw .invalidArgument(name: "--sweep", reason: "expected batch=... or context=..., got '\(text)'")
        }
        let items = parts[1].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        var values: [Int] = []
        var i = 0
        while i < items.count {
            let item = items[i]
            if item == "..." {
                guard values.count >= 2, i + 1 < items.count, let end = Int(items[i + 1]) else {
                    throw .invalidArgument(name: "--sweep", reason: "'...' needs two values before it and one after it")
                }
                let (a, b) = (values[values.count - 2], values[values.count - 1])
                let evenlySpaced = values.count >= 3 && b - a == a - values[values.count - 3]
                let geometric = !evenlySpaced && a > 0 && b > a && b % a == 0
                var next = geometric ? b * (b / a) : b + (b - a)
                guard next > b else { throw .invalidArgument(name: "--sweep", reason: "'...' needs an increasing progression") }
                while next < end && values.count < 10_000 {
                    values.append(next)
                    next = geometric ? next * (b / a) : next + (b - a)
                }
                i += 1
                continue
            }
            guard let v = Int(item) else { throw .invalidArgument(name: "--sweep", reason: "'\(item)' is not an integer") }
            guard v >= 1 else { throw .invalidArgument(name: "--sweep", reason: "values must be at least 1, got \(v)") }
            values.append(v)
            i += 1
        }
        guard !values.isEmpty else { throw .invalidArgument(name: "--sweep", reason: "no values in '\(text)'") }
        return Sweep(variable: variable, values: values)
    }

    /// Op groups shown per point (table, chart, CSV): the paper's operators, then the whole
    /// step. The CSV also has one row per `OpKind` ("kind:gemm", ...).
    public static let series: [(name: String, includes: @Sendable (ModelledOp) -> Bool)] = [
        ("attn_score", { $0.name == "attn_score" }),
        ("attn_context", { $0.name == "attn_context" }),
        ("kv_decompress", { $0.name == "kv_decompress" }),
        ("q_absorb", { $0.name == "q_absorb" }),
        ("v_absorb", { $0.name == "v_absorb" }),
        ("attention projections", { ["q_a_proj", "q_b_proj", "q_proj", "k_proj", "v_proj", "kv_a_proj", "o_proj"].contains($0.name) }),
        ("routed experts", { $0.name == "expert_gate_up" || $0.name == "expert_down" }),
        ("shared experts", { $0.name == "shared_gate_up" || $0.name == "shared_down" }),
        ("dense FFN", { ["ffn_gate_up", "ffn_up", "ffn_down"].contains($0.name) }),
        ("lm_head", { $0.name == "lm_head" }),
        ("whole step", { _ in true }),
    ]

    public struct Point: Sendable {
        public var value: Int
        /// Series name -> summed cost and roofline time (only groups with ops).
        public var groups: [(name: String, aggregate: Aggregate)]
        /// The same by `OpKind` (gemm, gemv, attention, elementwise, routing): CSV rows "kind:gemm", ...
        public var kinds: [(kind: OpKind, aggregate: Aggregate)]
        public var stepSeconds: Double
        public var tokensPerSecondPerDevice: Double
    }

    public struct Result: Sendable {
        public var variable: Variable
        public var points: [Point]
        public var roofline: Roofline
        public var title: String

        /// Series present in at least one point, in `Sweep.series` order.
        public var seriesNames: [String] {
            Sweep.series.map(\.name).filter { name in points.contains { $0.groups.contains { $0.name == name } } }
        }

        public static let csvColumns = ["variable", "value", "series", "flops", "bytes", "intensity", "seconds", "bound",
                                        "ridge", "step_seconds", "tokens_per_second_per_device"]

        public func csv() -> String {
            var lines = [Self.csvColumns.joined(separator: ",")]
            for p in points {
                for (name, a) in p.groups + p.kinds.map({ ("kind:\($0.kind.rawValue)", $0.aggregate) }) {
                    lines.append([variable.rawValue, "\(p.value)", "\"\(name)\"", "\(a.cost.flops)", "\(a.cost.bytes)",
                                  "\(a.intensity)", "\(a.seconds)", a.bound(roofline).rawValue, "\(roofline.ridge)",
                                  "\(p.stepSeconds)", "\(p.tokensPerSecondPerDevice)"].joined(separator: ","))
                }
            }
            return lines.joined(separator: "\n") + "\n"
        }
    }

    /// Evaluates `base` with `variable` set to each value.
    public func run(spec: ArchitectureSpec, base: Scenario, accelerator: Accelerator) throws(AnalysisError) -> Result {
        var points: [Point] = []
        var roofline = Roofline(peakFlops: 1, bandwidth: 1)
        for v in values {
            var s = base
            switch variable {
            case .batch: s.batch = v
            case .context: s.context = v
            }
            let a = try Analysis(spec: spec, scenario: s, accelerator: accelerator)
            roofline = a.roofline
            let groups = Self.series.compactMap { name, includes -> (name: String, aggregate: Aggregate)? in
                let g = a.aggregate(where: includes)
                return g.count > 0 ? (name, g) : nil
            }
            let kinds = OpKind.allCases.compactMap { kind -> (kind: OpKind, aggregate: Aggregate)? in
                let g = a.aggregate { $0.kind == kind }
                return g.count > 0 ? (kind, g) : nil
            }
            points.append(Point(value: v, groups: groups, kinds: kinds, stepSeconds: a.stepSeconds,
                                tokensPerSecondPerDevice: a.tokensPerSecondPerDevice))
        }
        let fixed = variable == .batch ? "context \(base.context)" : "batch \(base.batch)"
        let p = base.parallelism
        let pool = p.devices > 1 ? " x \(p.devices) (dp \(p.dp), tp \(p.tp), ep \(p.ep)), per device" : ""
        let title = "\(spec.modelType) \(base.phase.rawValue), \(fixed), \(base.dtype.rawValue) on \(accelerator.name)\(pool)"
        return Result(variable: variable, points: points, roofline: roofline, title: title)
    }
}
