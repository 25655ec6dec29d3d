import Foundation

/// A plain-text table for the CLI: padded columns, numbers right-aligned so their digits line
/// up, and a rule under the header.
///
/// ```swift
/// var table = TerminalTable(["layer", "part", "time", "share"])
/// table.append(["0", "attention", "1.20 ms", "41%"])
/// print(table.render())
/// // layer  part       time     share
/// // -----  ---------  -------  -----
/// //     0  attention  1.20 ms    41%
/// ```
///
/// Widths count Characters (grapheme clusters), which is right for the ASCII and the few
/// symbols (µ, ·) TinySeek prints; wide CJK glyphs would need a terminal-width table.
public struct TerminalTable: Sendable {
    public enum Alignment: Sendable {
        case left, right
        /// Right if every non-empty cell of the column reads as a number ("12", "-3.5e-4",
        /// "1.20 ms", "41%", "2.50 G"), else left: the usual convention for numeric columns.
        case automatic
    }

    public var headers: [String]
    public var alignments: [Alignment]
    public private(set) var rows: [[String]] = []
    /// Spaces between columns.
    public var gap = 2

    /// A table with these column titles; `alignments` defaults to `.automatic` for every column.
    public init(_ headers: [String], alignments: [Alignment]? = nil) {
        self.headers = headers
        self.alignments = alignments ?? Array(repeating: .automatic, count: headers.count)
    }

    /// Adds a row. A short row is padded with empty cells; a long one widens the table.
    public mutating func append(_ row: [String]) { rows.append(row) }

    /// The table as lines joined by "\n" (no trailing newline); trailing spaces are trimmed.
    public func render() -> String {
        let columns = max(headers.count, rows.map(\.count).max() ?? 0)
        func cell(_ row: [String], _ c: Int) -> String { c < row.count ? row[c] : "" }
        let widths = (0..<columns).map { c in
            ([cell(headers, c)] + rows.map { cell($0, c) }).map(\.count).max() ?? 0
        }
        let right = (0..<columns).map { c -> Bool in
            switch c < alignments.count ? alignments[c] : .automatic {
            case .left: return false
            case .right: return true
            case .automatic:
                let cells = rows.map { cell($0, c) }.filter { !$0.isEmpty }
                return !cells.isEmpty && cells.allSatisfy(Self.looksNumeric)
            }
        }
        let separator = String(repeating: " ", count: gap)
        func line(_ cells: [String]) -> String {
            let padded = (0..<columns).map { c -> String in
                let text = c < cells.count ? cells[c] : ""
                let pad = String(repeating: " ", count: widths[c] - text.count)
                return right[c] ? pad + text : text + pad
            }
            var joined = padded.joined(separator: separator)
            while joined.last == " " { joined.removeLast() }
            return joined
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: separator)
        return ([line(headers), rule] + rows.map(line)).joined(separator: "\n")
    }

    /// A number, optionally signed and in exponent form, followed by at most a short unit
    /// ("ms", "%", "G", "GB/s", "FLOP/B"): how the reports format quantities.
    static func looksNumeric(_ text: String) -> Bool {
        let s = text.trimmingCharacters(in: .whitespaces)
        var i = s.startIndex
        if i < s.endIndex, s[i] == "-" || s[i] == "+" { i = s.index(after: i) }
        var digits = 0
        var sawDot = false
        while i < s.endIndex {
            let ch = s[i]
            if ch.isASCII, ch.isNumber { digits += 1 }
            else if ch == ".", !sawDot { sawDot = true }
            else { break }
            i = s.index(after: i)
        }
        guard digits > 0 else { return false }
        // Exponent: e or E, optional sign, at least one digit.
        if i < s.endIndex, s[i] == "e" || s[i] == "E" {
            var j = s.index(after: i)
            if j < s.endIndex, s[j] == "-" || s[j] == "+" { j = s.index(after: j) }
            var expDigits = 0
            while j < s.endIndex, s[j].isASCII, s[j].isNumber { expDigits += 1; j = s.index(after: j) }
            if expDigits > 0 { i = j }
        }
        let unit = s[i...].trimmingCharacters(in: .whitespaces)
        return unit.count <= 8 && !unit.contains(where: \.isNumber) && !unit.contains(" ")
    }
}
