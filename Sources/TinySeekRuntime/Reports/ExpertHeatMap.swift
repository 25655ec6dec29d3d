import Foundation

/// How many tokens each routed expert of each layer received: a layer × expert grid shaded by
/// count. The paper's expert intensity is ~Γ_imb·B·n_k/n_e: the map shows both the load per
/// expert (B·n_k/n_e on average) and the imbalance Γ_imb a batching scheduler has to live with.
///
/// `counts[l][e]` is the token count of expert e in layer l. An empty row is a layer without
/// routed experts (a dense layer, before `first_k_dense_replace`); rows may differ in length.
struct ExpertHeatMap {
    let counts: [[Int]]

    var experts: Int { counts.map(\.count).max() ?? 0 }
    var maximum: Int { counts.flatMap { $0 }.max() ?? 0 }

    // MARK: Geometry

    static let left = 64.0, top = 36.0
    /// Cells shrink for wide models (256 experts) so the map stays about a screen wide.
    var cellWidth: Double { max(3, min(30, 1000 / Double(max(experts, 1)))) }
    var cellHeight: Double { max(6, min(26, 520 / Double(max(counts.count, 1)))) }
    var plotWidth: Double { cellWidth * Double(experts) }
    var plotHeight: Double { cellHeight * Double(counts.count) }
    var width: Double { Self.left + max(plotWidth, 300) + 40 }
    var height: Double { Self.top + plotHeight + 100 }

    /// White to dark blue in proportion to count / maximum.
    static func color(_ count: Int, maximum: Int) -> String {
        let t = maximum > 0 ? min(max(Double(count) / Double(maximum), 0), 1) : 0
        let (r0, g0, b0) = (247.0, 251.0, 255.0), (r1, g1, b1) = (8.0, 48.0, 107.0)
        func mix(_ a: Double, _ b: Double) -> Int { Int((a + (b - a) * t).rounded()) }
        return String(format: "#%02x%02x%02x", mix(r0, r1), mix(g0, g1), mix(b0, b1))
    }

    func svg() -> Node {
        let maxCount = maximum
        let showNumbers = cellWidth >= 22 && cellHeight >= 16
        var nodes: [Node] = [Node("title", text: "Tokens per expert per layer")]
        nodes.append(Node("text", ["x": px(Self.left + plotWidth / 2), "y": "16", "text-anchor": "middle", "font-size": "13"],
                          text: "routed expert"))
        let labelEvery = experts > 64 ? 16 : experts > 16 ? 4 : 1
        for e in 0..<experts where e % labelEvery == 0 {
            nodes.append(Node("text", ["x": px(Self.left + (Double(e) + 0.5) * cellWidth), "y": px(Self.top - 6),
                                       "text-anchor": "middle", "font-size": "11"], text: "\(e)"))
        }
        for (l, row) in counts.enumerated() {
            let y = Self.top + Double(l) * cellHeight
            nodes.append(Node("text", ["x": px(Self.left - 8), "y": px(y + cellHeight / 2 + 4), "text-anchor": "end",
                                       "font-size": "12"], text: "\(l)"))
            if row.isEmpty {
                nodes.append(Node("text", ["x": px(Self.left + 6), "y": px(y + cellHeight / 2 + 4), "font-size": "12",
                                           "fill": ChartStyle.muted, "font-style": "italic"], text: "dense layer (no routed experts)"))
                continue
            }
            var cells: [Node] = []
            for (e, count) in row.enumerated() {
                let x = Self.left + Double(e) * cellWidth
                cells.append(Node("rect", ["class": "expert-cell", "x": px(x), "y": px(y), "width": px(cellWidth),
                                           "height": px(cellHeight), "fill": Self.color(count, maximum: maxCount),
                                           "stroke": "#ffffff", "stroke-width": cellWidth >= 8 ? "1" : "0"],
                                  [Node("title", text: "layer \(l), expert \(e): \(count) token\(count == 1 ? "" : "s")")]))
                if showNumbers {
                    let dark = maxCount > 0 && Double(count) / Double(maxCount) > 0.55
                    cells.append(Node("text", ["x": px(x + cellWidth / 2), "y": px(y + cellHeight / 2 + 4),
                                               "text-anchor": "middle", "font-size": "11",
                                               "fill": dark ? "#ffffff" : ChartStyle.ink], text: "\(count)"))
                }
            }
            nodes.append(Node("g", [:], cells))
        }
        let cy = Self.top + plotHeight / 2
        nodes.append(Node("text", ["x": "16", "y": px(cy), "text-anchor": "middle", "font-size": "13",
                                   "transform": "rotate(-90 16 \(px(cy)))"], text: "layer"))
        nodes += scale(maxCount)
        return Node("svg", ["xmlns": "http://www.w3.org/2000/svg", "class": "chart experts",
                            "viewBox": "0 0 \(Int(width)) \(Int(height))", "width": "\(Int(width))", "height": "\(Int(height))",
                            "role": "img", "font-family": ChartStyle.font, "fill": ChartStyle.ink], nodes)
    }

    /// A colour bar from 0 to the largest count, in ten steps (no gradient ids to collide on the page).
    func scale(_ maxCount: Int) -> [Node] {
        let y = Self.top + plotHeight + 30, w = 24.0
        var nodes: [Node] = [Node("text", ["x": px(Self.left), "y": px(y - 8), "font-size": "12"], text: "tokens")]
        for i in 0..<10 {
            let count = Int((Double(maxCount) * Double(i) / 9).rounded())
            nodes.append(Node("rect", ["x": px(Self.left + Double(i) * w), "y": px(y), "width": px(w), "height": "14",
                                       "fill": Self.color(count, maximum: maxCount)]))
        }
        nodes.append(Node("rect", ["x": px(Self.left), "y": px(y), "width": px(10 * w), "height": "14", "fill": "none",
                                   "stroke": ChartStyle.muted]))
        nodes.append(Node("text", ["x": px(Self.left), "y": px(y + 30), "font-size": "12"], text: "0"))
        nodes.append(Node("text", ["x": px(Self.left + 10 * w), "y": px(y + 30), "text-anchor": "end", "font-size": "12"],
                          text: "\(maxCount)"))
        return nodes
    }
}
