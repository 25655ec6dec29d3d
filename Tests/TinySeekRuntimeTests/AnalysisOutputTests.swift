import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import TinySeek
import TinySeekRuntime

@Suite("Sweeps, the SVG chart and analyze --json")
struct AnalysisOutputTests {
    let h200 = Accelerator.builtIn.first { $0.name == "H200" }!

    @Test func sweepParsing() throws {
        #expect(try Sweep.parse("batch=1,2,4,...,64").values == [1, 2, 4, 8, 16, 32, 64])
        #expect(try Sweep.parse("context=1024, 2048, ..., 16384").values == [1024, 2048, 4096, 8192, 16384])
        #expect(try Sweep.parse("context=100,200,300,...,600") == Sweep(variable: .context, values: [100, 200, 300, 400, 500, 600]))
        #expect(try Sweep.parse("batch=1,2,...,100").values == [1, 2, 4, 8, 16, 32, 64, 100])
        #expect(try Sweep.parse("batch=3,7,64").values == [3, 7, 64])
        for bad in ["batch", "heads=1,2", "batch=1,x", "batch=0,1", "batch=...,4", "batch=4,2,...,8"] {
            #expect(throws: AnalysisError.self, "\(bad)") { try Sweep.parse(bad) }
        }
    }

    func batchSweep() throws -> Sweep.Result {
        try Sweep.parse("batch=1,2,4,...,4096").run(spec: AnalysisRepo.spec("deepseek-v3"),
                                                    base: Scenario(batch: 1, context: 4096), accelerator: h200)
    }

    @Test("a batch sweep: routed experts climb toward the ridge, absorbed attention stays ~100")
    func sweepResult() throws {
        let r = try batchSweep()
        #expect(r.points.map(\.value) == (0...12).map { 1 << $0 })
        func series(_ name: String) -> [Double] {
            r.points.compactMap { p in p.groups.first { $0.name == name }?.aggregate.intensity }
        }
        let experts = series("routed experts")
        #expect(experts.count == 13 && zip(experts, experts.dropFirst()).allSatisfy { $0 < $1 })
        #expect(experts[0] < 2 && experts[12] > 100)
        #expect(series("attn_score").allSatisfy { $0 > 95 && $0 < 105 })
        #expect(series("kv_decompress").isEmpty)   // decode resolves to the absorbed order
        let csv = r.csv().split(separator: "\n")
        #expect(csv.first.map(String.init) == Sweep.Result.csvColumns.joined(separator: ","))
        #expect(csv.count == 1 + r.points.reduce(0) { $0 + $1.groups.count + $1.kinds.count })
        #expect(csv.contains { $0.hasPrefix("batch,64,\"kind:attention\",") })
    }

    @Test("the SVG is well-formed, self-contained, one line per series plus the ridge")
    func chart() throws {
        let r = try batchSweep()
        let svg = SweepChart(result: r).svg()
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(!svg.contains("href") && !svg.contains("<script") && !svg.contains("@import"))
        #expect(svg.components(separatedBy: "<polyline").count - 1 == r.seriesNames.count)
        #expect(svg.contains("stroke-dasharray=\"6 4\"") && svg.contains("ridge 206"))
        let parser = XMLParser(data: Data(svg.utf8))
        #expect(parser.parse(), "SVG is not well-formed XML: \(String(describing: parser.parserError))")
    }

    @Test("--json: the profiler's op keys, totals and system quantities; null where absent")
    func json() throws {
        let v3 = try AnalysisRepo.spec("deepseek-v3")
        let a = try Analysis(spec: v3, scenario: Scenario(batch: 64, context: 4096), accelerator: h200)
        let data = try AnalysisJSON(analysis: a, system: SystemQuantities(analysis: a), configPath: "v3.json").data()
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(object.keys) == ["model", "hardware", "scenario", "ops", "layers", "totals", "kv_cache",
                                     "decode_seconds_per_token", "time_to_first_token_seconds",
                                     "tokens_per_second_per_device", "system"])
        let ops = try #require(object["ops"] as? [[String: Any]])
        #expect(ops.count == a.ops.count)
        let attnScore = try #require(ops.first { $0["name"] as? String == "attn_score" })
        // The same keys as the profiler's rows (OpRow.columns); `expert` is null for summed rows.
        #expect(Set(attnScore.keys) == Set(OpRow.columns))
        #expect(attnScore["expert"] is NSNull)
        #expect(attnScore["seconds"] as? Double == a.roofline.minimumSeconds(a.ops.first { $0.name == "attn_score" }!.cost))
        #expect(attnScore["roof_fraction"] as? Double == 1)
        let system = try #require(object["system"] as? [String: Any])
        #expect(system["b_moe_paper"] is Double && system["max_batch"] as? Int == 0)
        #expect(object["time_to_first_token_seconds"] is NSNull)
        let kv = try #require(object["kv_cache"] as? [String: Any])
        #expect(kv["bytes_per_token"] as? Double == 70272)
        // A dense model has no B_MoE: null, not absent.
        let llama = try Analysis(spec: AnalysisRepo.spec("llama-3-70b"), scenario: Scenario(batch: 8, context: 4096), accelerator: h200)
        let dense = try #require(try JSONSerialization.jsonObject(with: AnalysisJSON(analysis: llama, system: SystemQuantities(analysis: llama),
                                                                                       configPath: nil).data()) as? [String: Any])
        #expect((dense["system"] as? [String: Any])?["b_moe_paper"] is NSNull)
    }
}
