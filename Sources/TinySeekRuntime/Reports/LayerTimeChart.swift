import Foundation
import TinySeek

/// Where one phase of one run spends its time, layer by layer: a bar per decoder layer (and one
/// for the ops outside the layers: embedding, final norm, LM head), stacked by model part.
/// It answers the first profiling question, "which layer, and which part of it?", before the
/// roofline answers "and why".
struct LayerTimeChart {
    struct Bar {
        /// nil for the ops outside the decoder layers.
        var layer: Int?
        var parts: [(part: ModelPart, sum: Aggregate)]
        var seconds: Double { parts.reduce(0) { $0 + $1.sum.seconds } }
        var title: String { layer.map { "\($0)" } ?? "outside" }
    }

    let label: String
    let phase: Phase
    let tokens: Int
    let bars: [Bar]

    init(label: String, report: ProfileReport, phase: Phase) {
        self.label = label
        self.phase = phase
        tokens = report.tokens[phase] ?? 0
        var sums: [Int?: [ModelPart: Aggregate]] = [:]
        for r in report.records(phase) { sums[r.layer, default: [:]][ModelPart(opName: r.name), default: Aggregate()].add(r) }
        let layers = sums.keys.compactMap { $0 }.sorted().map { Optional($0) } + (sums[nil] == nil ? [] : [nil])
        bars = layers.map { layer in
            let parts = sums[layer] ?? [:]
            return Bar(layer: layer, parts: ModelPart.allCases.compactMap { p in parts[p].map { (p, $0) } })
        }
    }

    var partsPresent: [ModelPart] { ModelPart.allCases.filter { p in bars.contains { $0.parts.contains { $0.part == p } } } }

    // MARK: Geometry

    static let left = 70.0, top = 44.0, plotHeight = 260.0, legendWidth = 170.0
    /// Bars are ~38 px wide when few, narrower (down to ~4 px) for a many-layer model.
    var slot: Double { max(6, min(54, 720 / Double(max(bars.count, 1)))) }
    var plotWidth: Double { max(240, slot * Double(bars.count)) }
    var width: Double { Self.left + plotWidth + 24 + Self.legendWidth }
    var height: Double { Self.top + Self.plotHeight + 56 }
    var bottom: Double { Self.top + Self.plotHeight }

    // MARK: SVG

    func svg() -> Node {
        let total = bars.reduce(0) { $0 + $1.seconds }
        let ys = LinearScale(maximum: (bars.map(\.seconds).max() ?? 0) * 1e3, ticks: 5, from: bottom, to: Self.top)
        var nodes: [Node] = []
        let heading = [label, phase.rawValue].filter { !$0.isEmpty }.joined(separator: " · ")
        let detail = "\(tokens) token\(tokens == 1 ? "" : "s"), \(Format.seconds(total)) in all"
        nodes.append(Node("title", text: "Time per layer, \(heading)"))
        nodes.append(Node("text", ["x": px(Self.left), "y": "20", "font-size": "15", "font-weight": "600"],
                          [.text(heading), Node("tspan", ["font-weight": "400", "fill": ChartStyle.muted], text: "  \(detail)")]))
        // Horizontal grid and y tick labels (ms).
        var grid: [Node] = [], ticks: [Node] = []
        for v in ys.ticks {
            let y = ys(v)
            grid.append(Node("line", ["x1": px(Self.left), "y1": px(y), "x2": px(Self.left + plotWidth), "y2": px(y)]))
            ticks.append(Node("text", ["x": px(Self.left - 8), "y": px(y + 4), "text-anchor": "end"], text: ys.label(v)))
        }
        nodes.append(Node("g", ["stroke": ChartStyle.grid], grid))
        nodes.append(Node("g", ["font-size": "12", "fill": ChartStyle.ink], ticks))
        // Bars.
        let barWidth = slot * 0.7
        let labelEvery = bars.count > 24 ? 5 : 1
        for (i, bar) in bars.enumerated() {
            let x = Self.left + slot * (Double(i) + 0.15)
            var base = 0.0
            var segments: [Node] = []
            for (part, sum) in bar.parts {
                let ms = sum.seconds * 1e3
                let y0 = ys(base), y1 = ys(base + ms)
                base += ms
                let share = bar.seconds > 0 ? sum.seconds / bar.seconds : 0
                let tip = ["layer \(bar.title) · \(part.title)",
                           "\(Format.seconds(sum.seconds)) (\(Format.percent(share)) of this bar)",
                           "\(sum.count) ops, intensity \(Format.number(sum.intensity)) FLOP/B"].joined(separator: "\n")
                segments.append(Node("rect", ["class": "layer-segment", "data-layer": bar.title, "data-part": part.rawValue,
                                              "x": px(x), "y": px(y1), "width": px(barWidth), "height": px(max(0, y0 - y1)),
                                              "fill": ChartStyle.partColor(part)],
                                     [Node("title", text: tip)]))
            }
            nodes.append(Node("g", ["class": "layer-bar"], segments))
            if i % labelEvery == 0 || i == bars.count - 1 {
                nodes.append(Node("text", ["x": px(x + barWidth / 2), "y": px(bottom + 18), "text-anchor": "middle",
                                           "font-size": "12"], text: bar.title))
            }
        }
        nodes.append(Node("line", ["x1": px(Self.left), "y1": px(bottom), "x2": px(Self.left + plotWidth), "y2": px(bottom),
                                   "stroke": ChartStyle.muted]))
        nodes.append(Node("line", ["x1": px(Self.left), "y1": px(Self.top), "x2": px(Self.left), "y2": px(bottom),
                                   "stroke": ChartStyle.muted]))
        // Axis titles.
        nodes.append(Node("text", ["x": px(Self.left + plotWidth / 2), "y": px(bottom + 42), "text-anchor": "middle",
                                   "font-size": "13"], text: "decoder layer (outside = embedding, final norm, LM head)"))
        let cy = Self.top + Self.plotHeight / 2
        nodes.append(Node("text", ["x": "16", "y": px(cy), "text-anchor": "middle", "font-size": "13",
                                   "transform": "rotate(-90 16 \(px(cy)))"], text: "time in phase (ms)"))
        nodes.append(legend())
        return Node("svg", ["xmlns": "http://www.w3.org/2000/svg", "class": "chart layers",
                            "viewBox": "0 0 \(Int(width)) \(Int(height))", "width": "\(Int(width))", "height": "\(Int(height))",
                            "role": "img", "font-family": ChartStyle.font, "fill": ChartStyle.ink], nodes)
    }

    /// Model parts present, top to bottom in stacking order reversed (as the bars read).
    func legend() -> Node {
        var rows: [Node] = [Node("text", ["x": "0", "y": "0", "font-size": "13", "font-weight": "600"], text: "model part")]
        for (i, part) in partsPresent.reversed().enumerated() {
            let y = 20 + Double(i) * 20
            rows.append(Node("rect", ["x": "0", "y": px(y - 11), "width": "14", "height": "14", "fill": ChartStyle.partColor(part)]))
            rows.append(Node("text", ["x": "22", "y": px(y), "font-size": "13"], text: part.title))
        }
        return Node("g", ["class": "legend", "transform": "translate(\(px(Self.left + plotWidth + 24)) \(px(Self.top + 4)))"], rows)
    }
}
