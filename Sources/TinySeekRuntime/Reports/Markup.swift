import Foundation

/// A tiny element tree for the HTML report and its inline SVG charts: enough to build a page
/// by composition and get the escaping right in one place.
///
/// The output is also well-formed XML (every element closed, every attribute quoted and
/// escaped), so a test can check the page with an XML parser. Elements without children are
/// self-closed only where HTML allows it (void elements, SVG shapes); elsewhere `<td></td>`,
/// because `<td/>` would open an element in an HTML parser.
struct Node {
    /// nil for a text node.
    var name: String?
    var attributes: [(String, String)]
    var children: [Node]
    var text: String

    init(_ name: String, _ attributes: KeyValuePairs<String, String> = [:], _ children: [Node] = []) {
        self.name = name
        self.attributes = attributes.map { ($0.key, $0.value) }
        self.children = children
        self.text = ""
    }

    /// An element with children and no attributes.
    init(_ name: String, _ children: [Node]) {
        self.init(name, [:], children)
    }

    /// An element holding only text.
    init(_ name: String, _ attributes: KeyValuePairs<String, String> = [:], text: String) {
        self.init(name, attributes, [.text(text)])
    }

    private init(text: String) {
        name = nil
        attributes = []
        children = []
        self.text = text
    }

    static func text(_ s: String) -> Node { Node(text: s) }

    /// A copy with one more attribute (for attributes that are present only sometimes).
    func attr(_ name: String, _ value: String) -> Node {
        var n = self
        n.attributes.append((name, value))
        return n
    }

    /// A copy with `nodes` appended to the children.
    func appending(_ nodes: [Node]) -> Node {
        var n = self
        n.children += nodes
        return n
    }

    /// HTML void elements and the SVG shapes, which may be written `<x/>`.
    static let selfClosing: Set<String> = ["meta", "br", "hr", "img", "col", "rect", "circle", "line", "path",
                                           "polyline", "polygon", "ellipse", "stop"]

    func render(into out: inout String) {
        guard let name else { out += Self.escape(text); return }
        out += "<" + name
        for (key, value) in attributes { out += " \(key)=\"\(Self.escape(value, attribute: true))\"" }
        if children.isEmpty, Self.selfClosing.contains(name) { out += "/>"; return }
        out += ">"
        for child in children { child.render(into: &out) }
        out += "</\(name)>"
    }

    var rendered: String {
        var s = ""
        render(into: &s)
        return s
    }

    /// Escapes text for element content, or for a double-quoted attribute value.
    static func escape(_ s: String, attribute: Bool = false) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"" where attribute: out += "&quot;"
            case "\n" where attribute: out += "&#10;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }
}

/// A coordinate for SVG: one decimal is finer than a pixel and keeps the page small.
func px(_ x: Double) -> String {
    guard x.isFinite else { return "0" }
    let s = String(format: "%.1f", x)
    return s == "-0.0" ? "0.0" : s
}
