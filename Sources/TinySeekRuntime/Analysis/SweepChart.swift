import Foundation

/// A self-contained SVG (no scripts, fonts or external references): arithmetic intensity of
/// each op group against the swept batch or context, log-log, with the accelerator's ridge
/// point as a dashed horizontal line — above it an op is compute-bound, below memory-bound.
public struct SweepChart {
    public let result: Sweep.Result
    public var width = 900.0, height = 540.0

    public init(result: Sweep.Result) { self.result = result }

    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#ff7f0e", "#e377c2",
                         "#17becf", "#bcbd22", "#7f7f7f", "#000000"]

    public func svg() -> String {
        let (left, right, top, bottom) = (72.0, 220.0, 56.0, 64.0)
        let plotW = width - left - right, plotH = height - top - bottom
        let names = result.seriesNames
        let xs = result.points.map { Double($0.value) }
        let ys = result.points.flatMap { $0.groups.map(\.aggregate.intensity) }.filter { $0 > 0 } + [result.roofline.ridge]
        let xLo = log2(xs.min() ?? 1), xHi = max(log2(xs.max() ?? 2), xLo + 1)
        let yLo = floor(log10(ys.min() ?? 0.1)), yHi = max(ceil(log10(ys.max() ?? 10)), yLo + 1)
        func px(_ x: Double) -> Double { left + (log2(x) - xLo) / (xHi - xLo) * plotW }
        func py(_ y: Double) -> Double { top + plotH - (log10(y) - yLo) / (yHi - yLo) * plotH }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }

        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(f(left))" y="24" font-size="15" font-weight="bold">\(Self.escape("Arithmetic intensity vs \(result.variable.rawValue)"))</text>
        <text x="\(f(left))" y="42" fill="#444">\(Self.escape(result.title))</text>

        """
        // Grid and axes: decades on y, powers of two (or of 4, 16 when dense) on x.
        for e in stride(from: yLo, through: yHi, by: 1) {
            let y = py(pow(10, e))
            s += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(left + plotW))\" y2=\"\(f(y))\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(f(left - 8))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(Self.escape(Self.tick(pow(10, e))))</text>\n"
        }
        let span = Int(xHi.rounded(.up)) - Int(xLo.rounded(.down))
        let step = span > 24 ? 4 : (span > 12 ? 2 : 1)
        for e in stride(from: Int(xLo.rounded(.up)), through: Int(xHi.rounded(.down)), by: step) {
            let x = px(pow(2, Double(e)))
            s += "<line x1=\"\(f(x))\" y1=\"\(f(top))\" x2=\"\(f(x))\" y2=\"\(f(top + plotH))\" stroke=\"#eee\"/>\n"
            s += "<text x=\"\(f(x))\" y=\"\(f(top + plotH + 18))\" text-anchor=\"middle\">\(Int(pow(2, Double(e))))</text>\n"
        }
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#333\"/>\n"
        s += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 18))\" text-anchor=\"middle\">\(result.variable.rawValue) (log scale)</text>\n"
        s += "<text transform=\"translate(18 \(f(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">FLOP per byte (log scale)</text>\n"

        // The ridge: peak FLOP/s over bandwidth.
        let ridge = result.roofline.ridge, ry = py(ridge)
        s += "<line x1=\"\(f(left))\" y1=\"\(f(ry))\" x2=\"\(f(left + plotW))\" y2=\"\(f(ry))\" stroke=\"#555\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n"
        s += "<text x=\"\(f(left + 6))\" y=\"\(f(ry - 6))\" fill=\"#555\">\(Self.escape("ridge \(String(format: "%.3g", ridge)) FLOP/B: compute-bound above, memory-bound below"))</text>\n"

        for (i, name) in names.enumerated() {
            let color = Self.colors[i % Self.colors.count]
            let pts = result.points.compactMap { p -> (Double, Double)? in
                guard let a = p.groups.first(where: { $0.name == name })?.aggregate, a.intensity > 0 else { return nil }
                return (px(Double(p.value)), py(a.intensity))
            }
            let dash = name == "whole step" ? " stroke-dasharray=\"2 3\"" : ""
            s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash) points=\""
                + pts.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " ") + "\"/>\n"
            for (x, y) in pts { s += "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"2.5\" fill=\"\(color)\"/>\n" }
            let ly = top + 10 + Double(i) * 20
            s += "<line x1=\"\(f(left + plotW + 16))\" y1=\"\(f(ly))\" x2=\"\(f(left + plotW + 40))\" y2=\"\(f(ly))\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
            s += "<text x=\"\(f(left + plotW + 46))\" y=\"\(f(ly + 4))\">\(Self.escape(name))</text>\n"
        }
        return s + "</svg>\n"
    }

    /// 0.01, 0.1, 1, 10, 100, 1k, 10k, 1M.
    static func tick(_ v: Double) -> String {
        if v >= 1e6 { return String(format: "%gM", v / 1e6) }
        if v >= 1e3 { return String(format: "%gk", v / 1e3) }
        return String(format: "%g", (v * 1000).rounded() / 1000)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
