/// Tokens routed to each expert, per MoE layer and step: the numbers behind the paper's second
/// finding. An expert's weights are read once per step however many tokens it gets, so its
/// arithmetic intensity grows with tokens per expert ≈ Γ_imb · B · n_k / n_e.
public final class ExpertLoadRecorder: @unchecked Sendable {
    public struct Step: Sendable {
        public var layer: Int
        /// Tokens (token, slot pairs) routed to each expert in this step.   (n_routed_experts)
        public var counts: [Int]

        public var pairs: Int { counts.reduce(0, +) }
        /// Experts that received at least one token: these set the weight bytes read.
        public var distinctExperts: Int { counts.filter { $0 > 0 }.count }
        /// Load-imbalance factor Γ = max / mean tokens per expert (1 = perfectly balanced).
        public var imbalance: Double {
            let mean = Double(pairs) / Double(max(counts.count, 1))
            return mean > 0 ? Double(counts.max() ?? 0) / mean : 0
        }
    }

    public private(set) var steps: [Step] = []

    public init() {}

    func record(layer: Int, experts: [Int32], expertCount: Int) {
        var counts = [Int](repeating: 0, count: expertCount)
        for e in experts { counts[Int(e)] += 1 }
        steps.append(Step(layer: layer, counts: counts))
    }

    public func removeAll() { steps.removeAll(keepingCapacity: true) }

    /// Total tokens per expert over all steps: rows = layers in order of first appearance.  (layers, experts)
    public func heatMap() -> (layers: [Int], counts: [[Int]]) { Self.heatMap(steps) }

    public static func heatMap(_ steps: [Step]) -> (layers: [Int], counts: [[Int]]) {
        var layers: [Int] = []
        var sums: [Int: [Int]] = [:]
        for s in steps {
            if sums[s.layer] == nil { layers.append(s.layer); sums[s.layer] = Array(repeating: 0, count: s.counts.count) }
            for (i, n) in s.counts.enumerated() { sums[s.layer]?[i] += n }
        }
        return (layers, layers.map { sums[$0] ?? [] })
    }
}
