import Foundation
import TinySeek

/// The log-log roofline of the HTML report: x = arithmetic intensity (FLOP/byte), y = achieved
/// GFLOP/s, under the machine's two roofs (bandwidth × intensity, then the compute ceiling).
///
/// Each point is a sum of records of one run and phase: one per op kind (a circle, labelled),
/// plus one per attention op (a shape per op name). The attention ops are what tell the orders
/// apart: naive MLA decompresses K/V (kv_decompress) and attends per head, absorbed MLA folds
/// W_UK/W_UV into q_absorb/v_absorb and scores against the latent once for all heads, which
/// moves attn_score right by ~the head count (the paper's Fig. 3). Colour is the run, fill the
/// phase (filled decode, hollow prefill).
struct RooflineChart {
    /// One plotted aggregate.
    struct Point {
        enum Group: Equatable {
            case kind(OpKind)
            case attention(String)
        }
        var run: Int
        var label: String
        var phase: Phase
        var group: Group
        var aggregate: Aggregate

        var x: Double { aggregate.intensity }
        var y: Double { aggregate.gflops }
        var groupName: String {
            switch group {
            case let .kind(k): return k.rawValue
            case let .attention(name): return name
            }
        }
    }

    /// The attention ops plotted individually, in forward order (naive, then absorbed only).
    static let attentionOps = ["kv_decompress", "q_absorb", "attn_score", "attn_context", "v_absorb"]

    let runs: [HTMLReport.Run]
    let points: [Point]

    init(runs: [HTMLReport.Run]) {
        self.runs = runs
        var points: [Point] = []
        for (i, run) in runs.enumerated() {
            for phase in run.report.phases {
                for (kind, agg) in run.report.byKind(phase) {
                    points.append(Point(run: i, label: run.label, phase: phase, group: .kind(kind), aggregate: agg))
                }
                let byName = run.report.byName(phase)
                for name in Self.attentionOps {
                    if let agg = byName.first(where: { $0.key == name })?.value {
                        points.append(Point(run: i, label: run.label, phase: phase, group: .attention(name), aggregate: agg))
                    }
                }
            }
        }
        self.points = points
    }

    // MARK: Geometry

    static let width = 940.0, height = 600.0
    static let left = 84.0, top = 24.0, plotWidth = 600.0, plotHeight = 500.0
    var right: Double { Self.left + Self.plotWidth }
    var bottom: Double { Self.top + Self.plotHeight }

    /// The distinct roofs of the runs (usually one machine), with the labels that use each.
    var roofs: [(roof: Roofline, labels: [String])] {
        var out: [(roof: Roofline, labels: [String])] = []
        for run in runs {
            if let i = out.firstIndex(where: { $0.roof == run.report.roofline }) { out[i].labels.append(run.label) }
            else { out.append((run.report.roofline, [run.label])) }
        }
        return out
    }

    var xScale: LogScale {
        let ridges = roofs.map(\.roof.ridge)
        return LogScale(covering: points.map(\.x) + ridges + ridges.map { $0 * 10 }, minDecades: 3,
                        from: Self.left, to: right)
    }

    var yScale: LogScale {
        let peaks = roofs.map { $0.roof.peakFlops / 1e9 }
        return LogScale(covering: points.map(\.y) + peaks.map { $0 * 1.5 }, minDecades: 3, from: bottom, to: Self.top)
    }

    // MARK: SVG

    func svg() -> Node {
        let xs = xScale, ys = yScale
        var nodes: [Node] = [Node("title", text: "Roofline: achieved GFLOP/s against arithmetic intensity")]
        nodes += axes(xs, ys)
        for (k, r) in roofs.enumerated() { nodes += roofLines(r.roof, labels: roofs.count > 1 ? r.labels : [], index: k, xs, ys) }
        // Attention shapes first, so the labelled kind circles stay on top.
        for p in points { if case .attention = p.group { nodes.append(marker(p, xs, ys)) } }
        let circles = points.filter { if case .kind = $0.group { return true } else { return false } }
        nodes += circles.map { marker($0, xs, ys) }
        nodes.append(Node("g", ["class": "point-labels", "font-size": "12", "paint-order": "stroke",
                                "stroke": "#ffffff", "stroke-width": "3", "stroke-linejoin": "round"],
                          kindLabels(circles, xs, ys)))
        nodes.append(legend())
        return Node("svg", ["xmlns": "http://www.w3.org/2000/svg", "class": "chart roofline",
                            "viewBox": "0 0 \(Int(Self.width)) \(Int(Self.height))",
                            "width": "\(Int(Self.width))", "height": "\(Int(Self.height))",
                            "role": "img", "font-family": ChartStyle.font], nodes)
    }

    /// Frame, decade grid lines, minor ticks, tick labels and axis titles.
    func axes(_ xs: LogScale, _ ys: LogScale) -> [Node] {
        var grid: [Node] = [], ticks: [Node] = []
        for k in xs.decades {
            let x = xs(pow(10, Double(k)))
            grid.append(Node("line", ["x1": px(x), "y1": px(Self.top), "x2": px(x), "y2": px(bottom)]))
            ticks.append(Node("text", ["x": px(x), "y": px(bottom + 20), "text-anchor": "middle"],
                              text: LogScale.label(decade: k)))
        }
        for k in ys.decades {
            let y = ys(pow(10, Double(k)))
            grid.append(Node("line", ["x1": px(Self.left), "y1": px(y), "x2": px(right), "y2": px(y)]))
            ticks.append(Node("text", ["x": px(Self.left - 8), "y": px(y + 4), "text-anchor": "end"],
                              text: LogScale.label(decade: k)))
        }
        var minor: [Node] = []
        for v in xs.minorTicks {
            let x = xs(v)
            minor.append(Node("line", ["x1": px(x), "y1": px(bottom), "x2": px(x), "y2": px(bottom - 5)]))
        }
        for v in ys.minorTicks {
            let y = ys(v)
            minor.append(Node("line", ["x1": px(Self.left), "y1": px(y), "x2": px(Self.left + 5), "y2": px(y)]))
        }
        return [
            Node("g", ["stroke": ChartStyle.grid, "stroke-width": "1"], grid),
            Node("g", ["stroke": ChartStyle.muted, "stroke-width": "1"], minor),
            Node("rect", ["x": px(Self.left), "y": px(Self.top), "width": px(Self.plotWidth), "height": px(Self.plotHeight),
                          "fill": "none", "stroke": ChartStyle.muted]),
            Node("g", ["font-size": "13", "fill": ChartStyle.ink], ticks),
            Node("text", ["x": px(Self.left + Self.plotWidth / 2), "y": px(bottom + 44), "text-anchor": "middle",
                          "font-size": "14", "fill": ChartStyle.ink], text: "arithmetic intensity (FLOP/byte, log scale)"),
            Node("text", ["x": "18", "y": px(Self.top + Self.plotHeight / 2), "text-anchor": "middle", "font-size": "14",
                          "fill": ChartStyle.ink, "transform": "rotate(-90 18 \(px(Self.top + Self.plotHeight / 2)))"],
                 text: "achieved GFLOP/s (log scale)"),
        ]
    }

    /// The bandwidth slope up to the ridge, the compute ceiling after it, faint continuations
    /// of both, the ridge point and the labels with the machine's numbers.
    func roofLines(_ roof: Roofline, labels: [String], index: Int, _ xs: LogScale, _ ys: LogScale) -> [Node] {
        let bw = roof.bandwidth / 1e9, peak = roof.peakFlops / 1e9, ridge = roof.ridge
        guard bw > 0, peak > 0, ridge.isFinite else { return [] }
        let dash = index == 0 ? "none" : "6 4"
        // Where the slope y = bw·x enters and leaves the plotted box.
        let x0 = max(xs.lo, ys.lo / bw), x1 = min(ridge, xs.hi, ys.hi / bw)
        let xEnd = min(xs.hi, ys.hi / bw)
        var nodes: [Node] = []
        if xEnd > ridge {
            nodes.append(Node("line", ["x1": px(xs(ridge)), "y1": px(ys(peak)), "x2": px(xs(xEnd)), "y2": px(ys(bw * xEnd)),
                                       "stroke": ChartStyle.roof, "stroke-opacity": "0.3", "stroke-dasharray": "3 4",
                                       "stroke-width": "1.5"]))
        }
        nodes.append(Node("line", ["x1": px(xs(xs.lo)), "y1": px(ys(peak)), "x2": px(xs(ridge)), "y2": px(ys(peak)),
                                   "stroke": ChartStyle.roof, "stroke-opacity": "0.3", "stroke-dasharray": "3 4",
                                   "stroke-width": "1.5"]))
        if x1 > x0 {
            nodes.append(Node("line", ["x1": px(xs(x0)), "y1": px(ys(bw * x0)), "x2": px(xs(x1)), "y2": px(ys(bw * x1)),
                                       "stroke": ChartStyle.roof, "stroke-width": "2.5", "stroke-dasharray": dash]))
        }
        nodes.append(Node("line", ["x1": px(xs(ridge)), "y1": px(ys(peak)), "x2": px(right), "y2": px(ys(peak)),
                                   "stroke": ChartStyle.roof, "stroke-width": "2.5", "stroke-dasharray": dash]))
        let suffix = labels.isEmpty ? "" : " (" + labels.joined(separator: ", ") + ")"
        // The slope label sits along the line, a third of the way from its start to the ridge.
        let (ax, ay) = (xs(x0), ys(bw * x0)), (bx, by) = (xs(max(x1, x0)), ys(bw * max(x1, x0)))
        let angle = atan2(by - ay, bx - ax) * 180 / .pi
        let (lx, ly) = (ax + (bx - ax) * 0.35, ay + (by - ay) * 0.35 - 8)
        nodes.append(Node("text", ["x": px(lx), "y": px(ly), "font-size": "13", "fill": ChartStyle.roof,
                                   "transform": "rotate(\(px(angle)) \(px(lx)) \(px(ly)))"],
                          text: "memory \(Format.number(bw)) GB/s\(suffix)"))
        nodes.append(Node("text", ["x": px(right - 6), "y": px(ys(peak) - 8 - Double(index) * 16), "text-anchor": "end",
                                   "font-size": "13", "fill": ChartStyle.roof],
                          text: "compute \(Format.number(peak)) GFLOP/s\(suffix)"))
        nodes.append(Node("circle", ["cx": px(xs(ridge)), "cy": px(ys(peak)), "r": "5", "fill": "#ffffff",
                                     "stroke": ChartStyle.roof, "stroke-width": "2"],
                          [Node("title", text: "ridge point: \(Format.number(ridge)) FLOP/byte")]))
        nodes.append(Node("text", ["x": px(xs(ridge) + 8), "y": px(ys(peak) + 18), "font-size": "13",
                                   "fill": ChartStyle.roof], text: "ridge \(Format.number(ridge)) FLOP/B"))
        return nodes
    }

    /// A point's marker with its data attributes and tooltip. Points with no FLOPs or no time
    /// cannot sit on log axes: they are drawn dashed at the axis edge and say so.
    func marker(_ p: Point, _ xs: LogScale, _ ys: LogScale) -> Node {
        let color = ChartStyle.runColor(p.run)
        let onScale = p.x > 0 && p.y > 0 && p.x.isFinite && p.y.isFinite
        let shape: Marker
        let cls: String
        switch p.group {
        case .kind: (shape, cls) = (.circle, "op-point")
        case let .attention(name): (shape, cls) = (Marker.attention(name), "attn-point")
        }
        var node = shape.node(x: xs(p.x), y: ys(p.y), r: 7).attr("class", cls)
        switch p.group {
        case let .kind(k): node = node.attr("data-kind", k.rawValue)
        case let .attention(name): node = node.attr("data-name", name)
        }
        node = node.attr("data-phase", p.phase.rawValue).attr("data-label", p.label)
            .attr("fill", p.phase == .decode ? color : "#ffffff").attr("fill-opacity", p.phase == .decode ? "0.85" : "1")
            .attr("stroke", color).attr("stroke-width", "2.5")
        if !onScale { node = node.attr("stroke-dasharray", "2 2") }
        return node.appending([Node("title", text: tooltip(p, onScale: onScale))])
    }

    func tooltip(_ p: Point, onScale: Bool) -> String {
        let a = p.aggregate, roof = runs[p.run].report.roofline
        var lines = [[p.label, p.phase.rawValue, p.groupName].filter { !$0.isEmpty }.joined(separator: " · "),
                     "\(a.count) ops, \(Format.seconds(a.seconds))",
                     "intensity \(Format.number(a.intensity)) FLOP/B, \(Format.number(a.gflops)) GFLOP/s",
                     "\(a.bound(roof).rawValue)-bound, \(Format.percent(a.roofFraction(roof))) of roof"]
        if !onScale { lines.append("(no FLOPs or no time: drawn at the axis edge)") }
        return lines.joined(separator: "\n")
    }

    /// Each op kind's name beside its circle, nudged up or down (or to the left) where it would
    /// cover an earlier label: tiny models put several kinds at nearly the same spot.
    func kindLabels(_ circles: [Point], _ xs: LogScale, _ ys: LogScale) -> [Node] {
        var placed: [(x0: Double, y0: Double, x1: Double, y1: Double)] = []
        var nodes: [Node] = []
        for p in circles {
            let (cx, cy) = (xs(p.x), ys(p.y))
            let w = 6.6 * Double(p.groupName.count), h = 13.0
            // Candidate baselines: right of the point, then shifted, then left of it.
            let candidates: [(Double, Double, String)] = [0, -12, 12, -24, 24, -36, 36].map { (cx + 10, cy + 4 + $0, "start") }
                + [0, -12, 12].map { (cx - 10, cy + 4 + $0, "end") }
            let free = candidates.first { c in
                let x0 = c.2 == "start" ? c.0 : c.0 - w
                guard x0 >= Self.left + 2, x0 + w <= right - 2, c.1 - h >= Self.top, c.1 <= bottom - 2 else { return false }
                return !placed.contains { $0.x0 < x0 + w && x0 < $0.x1 && $0.y0 < c.1 && c.1 - h < $0.y1 }
            } ?? candidates[0]
            let x0 = free.2 == "start" ? free.0 : free.0 - w
            placed.append((x0, free.1 - h, x0 + w, free.1))
            if abs(free.1 - (cy + 4)) > 1 {
                // A moved label gets a leader line back to its point.
                let side = free.2 == "start" ? 1.0 : -1.0
                nodes.append(Node("line", ["x1": px(cx + side * 7), "y1": px(cy), "x2": px(free.0 - side * 1),
                                           "y2": px(free.1 - 4), "stroke": ChartStyle.runColor(p.run),
                                           "stroke-width": "0.8", "stroke-opacity": "0.7"]))
            }
            nodes.append(Node("text", ["x": px(free.0), "y": px(free.1), "text-anchor": free.2,
                                       "fill": ChartStyle.runColor(p.run)], text: p.groupName))
        }
        return nodes
    }

    /// Runs (colour), phases (fill) and markers (what a point sums), at the right of the plot.
    func legend() -> Node {
        var rows: [Node] = []
        var y = Self.top + 8
        func heading(_ s: String) {
            rows.append(Node("text", ["x": "0", "y": px(y), "font-weight": "600", "font-size": "13"], text: s))
            y += 20
        }
        func entry(_ marker: Marker, fill: String, stroke: String, _ s: String) {
            rows.append(marker.node(x: 8, y: y - 4, r: 6).attr("fill", fill).attr("stroke", stroke).attr("stroke-width", "2"))
            rows.append(Node("text", ["x": "22", "y": px(y), "font-size": "13"], text: s))
            y += 20
        }
        if runs.count > 1 || runs.contains(where: { !$0.label.isEmpty }) {
            heading("run")
            for (i, run) in runs.enumerated() {
                rows.append(Node("rect", ["x": "2", "y": px(y - 11), "width": "12", "height": "12", "fill": ChartStyle.runColor(i)]))
                rows.append(Node("text", ["x": "22", "y": px(y), "font-size": "13"], text: run.label.isEmpty ? "run \(i + 1)" : run.label))
                y += 20
            }
            y += 8
        }
        let phases = Set(points.map(\.phase))
        heading("phase")
        if phases.contains(.prefill) { entry(.circle, fill: "#ffffff", stroke: ChartStyle.muted, "prefill (hollow)") }
        if phases.contains(.decode) { entry(.circle, fill: ChartStyle.muted, stroke: ChartStyle.muted, "decode (filled)") }
        y += 8
        heading("point")
        entry(.circle, fill: "#ffffff", stroke: ChartStyle.muted, "all ops of a kind")
        let names = Self.attentionOps.filter { n in points.contains { $0.group == .attention(n) } }
        for name in names { entry(Marker.attention(name), fill: "#ffffff", stroke: ChartStyle.muted, name) }
        y += 8
        rows.append(Node("line", ["x1": "0", "y1": px(y - 4), "x2": "16", "y2": px(y - 4), "stroke": ChartStyle.roof, "stroke-width": "2.5"]))
        rows.append(Node("text", ["x": "22", "y": px(y), "font-size": "13"], text: "roofline"))
        return Node("g", ["class": "legend", "transform": "translate(\(px(right + 28)) 0)", "fill": ChartStyle.ink], rows)
    }

    // MARK: Table

    /// The plotted points as a table, for exact numbers and for points hidden by overlap.
    func table() -> Node {
        let header = Node("tr", ["run", "phase", "point", "ops", "intensity (FLOP/B)", "GFLOP/s", "time", "bound", "of roof"]
            .map { Node("th", text: $0) })
        let rows = points.map { p -> Node in
            let a = p.aggregate, roof = runs[p.run].report.roofline
            let cells: [(String, Bool)] = [
                (p.label, false), (p.phase.rawValue, false), (p.groupName, false), ("\(a.count)", true),
                (Format.number(a.intensity), true), (Format.number(a.gflops), true), (Format.seconds(a.seconds), true),
                (a.bound(roof).rawValue, false), (Format.percent(a.roofFraction(roof)), true),
            ]
            return Node("tr", cells.map { Node("td", $0.1 ? ["class": "num"] : [:], text: $0.0) })
        }
        return Node("table", ["class": "data"], [Node("thead", [header]), Node("tbody", rows)])
    }
}
