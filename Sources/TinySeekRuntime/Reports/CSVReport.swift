import Foundation

/// The profile as one CSV row per executed op, for pandas, spreadsheets and `sort | uniq`.
///
/// Columns are `OpRow.columns`, the same keys as the JSON report's `ops`, so a script can read
/// either. Cells are quoted as RFC 4180 says: a cell holding a comma, a double quote, CR or LF is
/// wrapped in double quotes with inner quotes doubled. Lines end in LF (not RFC 4180's CRLF),
/// which Python's csv module, pandas and every spreadsheet read, and which keeps `cut`/`awk`
/// usable. An empty cell is a null (a layer outside the decoder, an op of no expert).
public enum CSVReport {
    /// Header plus one line per record of `report`, in execution order, ending with a newline.
    public static func render(_ report: ProfileReport) -> String {
        var out = line(OpRow.columns)
        for row in report.rows() { out += line(row.csvCells) }
        return out
    }

    /// Writes `render(report)` as UTF-8 to `url` (atomically, creating the directory).
    public static func write(_ report: ProfileReport, to url: URL) throws(ReportError) {
        try ReportFile.write(Data(render(report).utf8), to: url)
    }

    /// One CSV line with its newline.
    static func line(_ cells: [String]) -> String {
        cells.map(field).joined(separator: ",") + "\n"
    }

    /// A cell, quoted if RFC 4180 requires it.
    static func field(_ cell: String) -> String {
        let special = cell.unicodeScalars.contains { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }
        guard special else { return cell }
        return "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
