import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import TinySeek
@testable import TinySeekRuntime

/// Real profiles of the shipped toy model: 8 prompt tokens, then 4 decode steps.
enum ReportFixture {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let modelName = "deepseek-v3-tiny"
    /// The roofline the tests judge against (not this machine's): ridge at 5 FLOP/B.
    static let roofline = Roofline(peakFlops: 100e9, bandwidth: 20e9)
    static let prompt = [3, 14, 15, 92, 65, 35, 89, 79]
    static let decodeSteps = 4

    /// Runs the prompt and a few greedy-free decode steps (fixed next tokens) with a recorder.
    static func profile(_ order: AttentionOrder = .auto, roofline: Roofline = roofline) throws -> ProfileReport {
        let model = try Model.load(from: root.appendingPathComponent("Models/\(modelName)", isDirectory: true))
        let session = model.makeSession(capacity: 32)
        session.options.attention = order
        let recorder = OpRecorder()
        session.recorder = recorder
        try session.forward(prompt)
        for step in 0..<decodeSteps { try session.forward([(7 * step + 11) % model.config.vocabSize]) }
        return ProfileReport(records: recorder.records, roofline: roofline,
                             tokens: [.prefill: prompt.count, .decode: decodeSteps])
    }

    /// When `TINYSEEK_REPORT_DIR` is set, tests leave their sample reports there to look at
    /// (e.g. with Tools/check_html_report.sh); otherwise nothing is written.
    static func keep(_ data: Data, as name: String) {
        guard let dir = ProcessInfo.processInfo.environment["TINYSEEK_REPORT_DIR"], !dir.isEmpty else { return }
        try? ReportFile.write(data, to: URL(fileURLWithPath: dir).appendingPathComponent(name))
    }
}

/// Splits RFC 4180 CSV into rows of cells (quoted cells may hold commas, quotes and newlines).
func parseCSV(_ text: String) -> [[String]] {
    var rows: [[String]] = [], row: [String] = [], cell = ""
    var quoted = false, afterQuote = false
    var chars = Array(text)[...]
    while let ch = chars.popFirst() {
        if quoted {
            if ch == "\"" {
                if chars.first == "\"" { cell.append("\""); chars.removeFirst() } else { quoted = false; afterQuote = true }
            } else {
                cell.append(ch)
            }
            continue
        }
        switch ch {
        case "\"" where cell.isEmpty && !afterQuote: quoted = true
        case ",": row.append(cell); cell = ""; afterQuote = false
        case "\n": row.append(cell); rows.append(row); row = []; cell = ""; afterQuote = false
        default: cell.append(ch)
        }
    }
    if !cell.isEmpty || !row.isEmpty { row.append(cell); rows.append(row) }
    return rows
}

/// Number of contiguous runs of records of the same layer and phase (the trace's layer slices).
func layerRuns(_ records: [OpRecord]) -> Int {
    var runs = 0
    var previous: (Int, Phase)?
    for r in records {
        guard let l = r.layer else { previous = nil; continue }
        if previous.map({ $0 != (l, r.phase) }) ?? true { runs += 1 }
        previous = (l, r.phase)
    }
    return runs
}

@Suite("Reports: CSV, JSON, trace, HTML, terminal tables")
struct ReportTests {
    // MARK: CSV

    @Test("CSV: OpRow.columns header, one line per record, parses back to the rows' cells")
    func csv() throws {
        let report = try ReportFixture.profile()
        let text = CSVReport.render(report)
        ReportFixture.keep(Data(text.utf8), as: "profile.csv")
        #expect(text.hasSuffix("\n"))
        #expect(text.split(separator: "\n", omittingEmptySubsequences: false).count == report.records.count + 2)
        let parsed = parseCSV(text)
        #expect(parsed.first == OpRow.columns)
        #expect(parsed.count == report.records.count + 1)
        #expect(Array(parsed.dropFirst()) == report.rows().map(\.csvCells))
        let lmHead = try #require(parsed.first { $0.first == "lm_head" })
        #expect(lmHead[2] == "", "layer of lm_head is an empty (null) cell")
    }

    @Test("CSV quoting follows RFC 4180 and round-trips",
          arguments: ["plain", "a,b", "say \"hi\"", "two\nlines", "cr\rhere", "", "\"", ",\","])
    func csvQuoting(cell: String) {
        let line = CSVReport.line(["x", cell, "y"])
        let needsQuotes = cell.contains(",") || cell.contains("\"") || cell.contains("\n") || cell.contains("\r")
        #expect(CSVReport.field(cell).hasPrefix("\"") == needsQuotes)
        // CR inside a cell survives because it is quoted; the parser keeps it verbatim.
        #expect(parseCSV(line) == [["x", cell, "y"]])
    }

    // MARK: JSON

    @Test("JSON: model, machine, tokens, per-phase summary and one op object per record")
    func json() throws {
        let report = try ReportFixture.profile()
        let data = try JSONReport.render(report, model: ReportFixture.modelName)
        ReportFixture.keep(data, as: "profile.json")
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(object.keys) == ["model", "machine", "tokens", "summary", "ops"])
        #expect(object["model"] as? String == ReportFixture.modelName)
        let machine = try #require(object["machine"] as? [String: Double])
        #expect(machine == ["gemm_gflops": 100, "bandwidth_gbps": 20, "ridge_flops_per_byte": 5])
        #expect(object["tokens"] as? [String: Int] == ["prefill": 8, "decode": 4])

        let summary = try #require(object["summary"] as? [String: [String: Any]])
        #expect(Set(summary.keys) == ["prefill", "decode"])
        for (phase, s) in summary {
            for key in ["seconds", "flops", "bytes", "tokens_per_second", "bandwidth_utilisation", "flop_utilisation"] {
                #expect(s[key] is Double || s[key] is Int, "summary.\(phase).\(key)")
            }
            let parts = try #require(s["by_part"] as? [String: [String: Any]])
            #expect(parts["attention"]?["seconds"] is Double)
            #expect(parts["moe_experts"] != nil)
        }

        let ops = try #require(object["ops"] as? [[String: Any]])
        #expect(ops.count == report.records.count)
        let required = Set(OpRow.columns)
        let incomplete = ops.filter { Set($0.keys) != required }
        let missing = required.subtracting(incomplete.first?.keys.map { $0 } ?? []).sorted()
        #expect(incomplete.isEmpty, "\(incomplete.count) ops lack keys, e.g. \(incomplete.first?["name"] ?? "") lacks \(missing)")
        let lmHead = try #require(ops.first { $0["name"] as? String == "lm_head" })
        #expect(lmHead["layer"] is NSNull)
        #expect(lmHead["expert"] is NSNull)
        let expertOp = try #require(ops.first { $0["name"] as? String == "expert_gate_up" })
        #expect(expertOp["expert"] is Int)
        #expect(expertOp["layer"] is Int)
    }

    /// Regression: OpRow's synthesized encoder used `encodeIfPresent`, so JSON rows outside
    /// the layers had no "layer" (and rows of no expert no "expert") key at all, although
    /// the schema documents them as null and the CSV always has the columns.
    @Test("OpRow encodes an absent layer and expert as null, not as a missing key")
    func opRowNulls() throws {
        let row = try #require(try ReportFixture.profile().rows().first { $0.name == "embedding" })
        let object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(row)) as? [String: Any])
        #expect(object["layer"] is NSNull)
        #expect(object["expert"] is NSNull)
        #expect(try JSONDecoder().decode(OpRow.self, from: JSONEncoder().encode(row)) == row)
    }

    @Test("JSON stays valid when a degenerate roofline makes ratios non-finite (they become 0)")
    func jsonNonFinite() throws {
        let report = try ReportFixture.profile(roofline: Roofline(peakFlops: 0, bandwidth: 0))
        #expect(report.rows().contains { !$0.roofFraction.isFinite })
        let data = try JSONReport.render(report, model: "degenerate")
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let ops = try #require(object["ops"] as? [[String: Any]])
        #expect(ops.allSatisfy { ($0["roof_fraction"] as? Double) == 0 })
        #expect((object["machine"] as? [String: Double])?["ridge_flops_per_byte"] == 0)
        _ = try TraceReport.render(report, model: "degenerate")
    }

    // MARK: Trace

    @Test("Trace: one X event per op, layer slices that contain their ops, metadata names")
    func trace() throws {
        let report = try ReportFixture.profile()
        let data = try TraceReport.render(report, model: ReportFixture.modelName)
        ReportFixture.keep(data, as: "profile.trace.json")
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["displayTimeUnit"] as? String == "ms")
        let events = try #require(object["traceEvents"] as? [[String: Any]])

        let metadata = events.filter { $0["ph"] as? String == "M" }
        let process = try #require(metadata.first { $0["name"] as? String == "process_name" })
        #expect((process["args"] as? [String: String])?["name"] == "tinyseek \(ReportFixture.modelName)")
        #expect(metadata.contains { $0["name"] as? String == "thread_name" })

        struct Slice { var name: String; var start: Int64; var end: Int64; var args: [String: Any] }
        func slice(_ e: [String: Any]) -> Slice {
            // Integer nanoseconds: the writer emits whole ns as microseconds.
            let ts = e["ts"] as? Double ?? 0, dur = e["dur"] as? Double ?? 0
            let start = Int64((ts * 1000).rounded())
            return Slice(name: e["name"] as? String ?? "", start: start, end: start + Int64((dur * 1000).rounded()),
                         args: e["args"] as? [String: Any] ?? [:])
        }
        let complete = events.filter { $0["ph"] as? String == "X" }
        #expect(complete.allSatisfy { $0["pid"] as? Int == 1 && $0["tid"] as? Int == 1 })
        #expect(complete.allSatisfy { $0["ts"] is Double && $0["dur"] is Double })
        let layers = complete.filter { $0["cat"] as? String == "layer" }.map(slice)
        let ops = complete.filter { $0["cat"] as? String != "layer" }.map(slice)
        #expect(ops.count == report.records.count)
        #expect(layers.count == layerRuns(report.records))
        #expect(ops.map(\.name) == report.records.map(\.name))

        for (op, record) in zip(ops, report.records) {
            for key in ["flops", "bytes", "intensity", "bound", "expert"] { #expect(op.args[key] != nil, "args.\(key)") }
            let enclosing = layers.filter { $0.start <= op.start && op.end <= $0.end }
            if let layer = record.layer {
                #expect(enclosing.count == 1, "\(record.name) in layer \(layer) lies in exactly one layer slice")
                #expect(enclosing.first?.name == "layer \(layer)")
            } else {
                #expect(enclosing.isEmpty || op.end == op.start, "\(record.name) is top-level")
            }
        }
    }

    // MARK: HTML

    /// The page comparing naive and absorbed MLA on the same prompt, with an expert map.
    static func comparisonPage() throws -> (html: String, runs: [HTMLReport.Run]) {
        let runs = [HTMLReport.Run(label: "naive", report: try ReportFixture.profile(.naive)),
                    HTMLReport.Run(label: "absorbed", report: try ReportFixture.profile(.absorbed))]
        let experts = [[], [5, 0, 3, 9, 1, 2, 4, 0], [2, 2, 7, 1, 0, 6, 3, 3]]
        let html = HTMLReport.render(runs: runs, title: "tinyseek profile: \(ReportFixture.modelName) <naive & absorbed>",
                                     expertTokens: experts)
        ReportFixture.keep(Data(html.utf8), as: "profile.html")
        return (html, runs)
    }

    /// The opening tags with `class="<cls>"`, each as a dictionary of its data-* attributes.
    static func elements(_ html: String, class cls: String) -> [[String: String]] {
        html.components(separatedBy: "<").filter { $0.contains("class=\"\(cls)\"") }.map { tag in
            var attrs: [String: String] = [:]
            for part in tag.components(separatedBy: " data-").dropFirst() {
                let kv = part.components(separatedBy: "=\"")
                if kv.count >= 2 { attrs[kv[0]] = kv[1].components(separatedBy: "\"")[0] }
            }
            return attrs
        }
    }

    @Test("HTML: exactly one op-point per (kind, phase, label) and the attention ops of each order")
    func htmlPoints() throws {
        let (html, runs) = try Self.comparisonPage()
        let points = Self.elements(html, class: "op-point")
        var expected: Set<[String]> = []
        for run in runs {
            for phase in run.report.phases {
                for (kind, _) in run.report.byKind(phase) { expected.insert([kind.rawValue, phase.rawValue, run.label]) }
            }
        }
        let found = points.map { [$0["kind"] ?? "", $0["phase"] ?? "", $0["label"] ?? ""] }
        #expect(found.count == expected.count)
        #expect(Set(found) == expected)

        let attention = Self.elements(html, class: "attn-point")
        func names(_ label: String, _ phase: String) -> Set<String> {
            Set(attention.filter { $0["label"] == label && $0["phase"] == phase }.compactMap { $0["name"] })
        }
        #expect(names("naive", "decode") == ["kv_decompress", "attn_score", "attn_context"])
        #expect(names("absorbed", "decode") == ["q_absorb", "attn_score", "attn_context", "v_absorb"])
        #expect(html.contains("<title>"))
        #expect(Self.elements(html, class: "expert-cell").count == 16)
        #expect(Self.elements(html, class: "layer-segment").allSatisfy { $0["part"].flatMap(ModelPart.init(rawValue:)) != nil })
    }

    @Test("HTML is self-contained and parses as XML once the doctype is removed")
    func htmlWellFormed() throws {
        let (html, _) = try Self.comparisonPage()
        #expect(html.hasPrefix("<!DOCTYPE html>\n"))
        let body = String(html.dropFirst("<!DOCTYPE html>\n".count))
        let parser = XMLParser(data: Data(body.utf8))
        let ok = parser.parse()
        #expect(ok, "XML parse error: \(parser.parserError.map { "\($0)" } ?? "none") at line \(parser.lineNumber)")
        // The title's '<' and '&' were escaped, not emitted raw.
        #expect(html.contains("&lt;naive &amp; absorbed&gt;"))
        // No scripts, stylesheets, fonts or images from anywhere; the only URL is the SVG namespace.
        #expect(!html.contains("<script"))
        #expect(!html.contains("<link"))
        #expect(!html.contains("url("))
        let svgNamespace = "http://www.w3.org/2000/svg"
        let urls = html.components(separatedBy: "http").count - 1
        #expect(urls == html.components(separatedBy: svgNamespace).count - 1)
        #expect(!html.contains("https"))
    }

    @Test("HTML for one unlabelled run, without an expert map, and for no records")
    func htmlSingleRun() throws {
        let report = try ReportFixture.profile()
        let html = HTMLReport.render(report, title: "tinyseek profile: \(ReportFixture.modelName)")
        ReportFixture.keep(Data(html.utf8), as: "profile-single.html")
        #expect(!html.contains("expert-cell"))
        #expect(Self.elements(html, class: "op-point").count
                == report.phases.map { report.byKind($0).count }.reduce(0, +))
        let empty = HTMLReport.render(ProfileReport(records: [], roofline: ReportFixture.roofline, tokens: [:]), title: "empty")
        #expect(empty.contains("No operators were recorded."))
        #expect(XMLParser(data: Data(empty.dropFirst("<!DOCTYPE html>\n".count).utf8)).parse())
    }

    // MARK: Files

    @Test("write(to:) creates the directory, and names the path when it cannot write")
    func writeFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tinyseek-reports-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let report = try ReportFixture.profile()
        let csv = dir.appendingPathComponent("nested/profile.csv")
        try CSVReport.write(report, to: csv)
        #expect(try String(contentsOf: csv, encoding: .utf8) == CSVReport.render(report))
        try HTMLReport.write(report, title: "t", to: dir.appendingPathComponent("profile.html"))
        try JSONReport.write(report, model: "m", to: dir.appendingPathComponent("profile.json"))
        try TraceReport.write(report, model: "m", to: dir.appendingPathComponent("trace.json"))

        // A regular file where the directory should be.
        let blocked = csv.appendingPathComponent("inside.json")
        let error = #expect(throws: ReportError.self) { try JSONReport.write(report, model: "m", to: blocked) }
        #expect(error == .unwritable(path: blocked.path, reason: "\(csv.path) is not a directory"))
        #expect(error?.description.contains(blocked.path) == true)
        #expect(throws: ReportError.unwritable(path: dir.path, reason: "it is a directory")) {
            try CSVReport.write(report, to: dir)
        }
    }

    // MARK: Terminal tables

    @Test("TerminalTable pads columns, right-aligns numbers, rules the header")
    func terminalTable() {
        var table = TerminalTable(["layer", "part", "time", "share"])
        table.append(["0", "attention", "1.20 ms", "41%"])
        table.append(["12", "MoE experts", "13.5 ms", "100%"])
        table.append(["outside", "LM head"])
        #expect(table.render() == """
            layer    part            time  share
            -------  -----------  -------  -----
            0        attention    1.20 ms    41%
            12       MoE experts  13.5 ms   100%
            outside  LM head
            """)
        var numbers = TerminalTable(["op", "GFLOP/s"], alignments: [.right, .left])
        numbers.append(["gemm", "3.5"])
        #expect(numbers.render() == "  op  GFLOP/s\n----  -------\ngemm  3.5")
    }

    @Test("numeric cells are recognised with units and exponents",
          arguments: [("12", true), ("-3.5e-4", true), ("1.20 ms", true), ("41%", true), ("2.50 G", true),
                      ("1.5 GB/s", true), ("layer 3", false), ("attention", false), ("", false), ("-", false),
                      ("3 2", false)])
    func numericCells(text: String, numeric: Bool) {
        #expect(TerminalTable.looksNumeric(text) == numeric)
    }
}
