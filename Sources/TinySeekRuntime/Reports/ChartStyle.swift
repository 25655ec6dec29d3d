import Foundation

/// Colours and marker shapes shared by the HTML report's charts. The colours are distinct for
/// common colour-vision deficiencies (Okabe–Ito order) and dark enough on a white page.
enum ChartStyle {
    /// One hue per run (label): run i gets `runColors[i % count]`.
    static let runColors = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#56b4e9", "#e69f00", "#000000"]

    static func runColor(_ index: Int) -> String { runColors[index % runColors.count] }

    /// One colour per model part, in `ModelPart.allCases` order, for the stacked time bars.
    static func partColor(_ part: ModelPart) -> String {
        switch part {
        case .attention: return "#0072b2"
        case .moeExperts: return "#e69f00"
        case .sharedExperts: return "#d55e00"
        case .router: return "#cc79a7"
        case .denseFFN: return "#009e73"
        case .lmHead: return "#56b4e9"
        case .other: return "#999999"
        }
    }

    static let ink = "#1a202c"
    static let muted = "#4a5568"
    static let grid = "#e2e8f0"
    static let roof = "#2d3748"
    static let font = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', Arial, sans-serif"
}

/// A point marker: circles for op-kind aggregates, a distinct shape per attention op, so naive
/// (kv_decompress) and absorbed (q_absorb, v_absorb) attention read apart even in one colour.
enum Marker: CaseIterable {
    case circle, square, diamond, triangleUp, triangleDown, cross

    /// The marker of one attention op on the roofline chart.
    static func attention(_ name: String) -> Marker {
        switch name {
        case "attn_score": return .square
        case "attn_context": return .diamond
        case "kv_decompress": return .triangleUp
        case "q_absorb": return .triangleDown
        default: return .cross   // v_absorb
        }
    }

    /// The shape centred at (x, y) with "radius" r; fill and stroke are the caller's attributes.
    func node(x: Double, y: Double, r: Double) -> Node {
        func polygon(_ pts: [(Double, Double)]) -> Node {
            Node("polygon", ["points": pts.map { "\(px(x + $0.0 * r)),\(px(y + $0.1 * r))" }.joined(separator: " ")])
        }
        switch self {
        case .circle:
            return Node("circle", ["cx": px(x), "cy": px(y), "r": px(r)])
        case .square:
            return Node("rect", ["x": px(x - 0.85 * r), "y": px(y - 0.85 * r), "width": px(1.7 * r), "height": px(1.7 * r)])
        case .diamond:
            return polygon([(0, -1.25), (1.1, 0), (0, 1.25), (-1.1, 0)])
        case .triangleUp:
            return polygon([(0, -1.3), (1.15, 0.8), (-1.15, 0.8)])
        case .triangleDown:
            return polygon([(0, 1.3), (1.15, -0.8), (-1.15, -0.8)])
        case .cross:
            let a = 0.4, b = 1.2
            return polygon([(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a), (a, b), (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a)])
        }
    }
}
