import Foundation
import Testing
@testable import TinySeekRuntime
import TinySeek

/// `tinyseek bench` end to end on a toy model with tiny tests: the report has the issue's JSON
/// shape and consistent numbers, batched decode included. Nothing here times anything against a bound (speed claims come
/// from running the benchmark itself).
@Suite struct BenchmarkTests {
    static let model = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Models/deepseek-v3-tiny", isDirectory: true)

    static var options: BenchmarkOptions {
        var o = BenchmarkOptions()
        o.promptTokens = 8
        o.decodeTokens = 4
        o.repetitions = 2
        o.calibration = CalibrationOptions(gemmSize: 64, bufferBytes: 1 << 20, repetitions: 1)
        return o
    }

    @Test func reportHasTheIssuesJSONShape() throws {
        let report = try Benchmark.run(modelDirectory: Self.model, options: Self.options)
        let json = try JSONSerialization.jsonObject(with: report.jsonData()) as? [String: Any]
        let results = json?["results"] as? [[String: Any]] ?? []
        #expect(results.compactMap { $0["test"] as? String } == ["pp8", "tg4"])
        for r in results {
            for key in ["tokens_per_second", "stddev", "roofline_fraction"] {
                #expect((r[key] as? Double).map { $0.isFinite && $0 >= 0 } == true, "\(key) in \(r["test"] ?? "?")")
            }
            #expect((r["samples"] as? [Double])?.count == 2)
        }
        let machine = json?["machine"] as? [String: Any]
        #expect((machine?["gemm_gflops"] as? Double ?? 0) > 0 && (machine?["bandwidth_gbps"] as? Double ?? 0) > 0)
        // Every burst of the probe streams one slice on one lane too.
        #expect((machine?["one_lane_bandwidth_gbps"] as? Double ?? 0) > 0)
        #expect(report.table().contains("GB/s on one lane alone"))
        // ...and every fourth slice through the F32 matvec kernel.
        #expect((machine?["matvec_bandwidth_gbps"] as? Double ?? 0) > 0 && (machine?["matvec_of_roof"] as? Double ?? 0) > 0)
        #expect(report.table().contains("through the F32 matvec kernel in the same bursts"))
        // tg bytes per token come from the cost model: at least every weight a token touches once.
        let tg = report.results[1]
        #expect(tg.bytesPerToken ?? 0 > 0 && tg.tokensPerSecond > 0)
        #expect(!tg.steadyRuns.isEmpty && abs(tg.rooflineFraction - tg.steadyRuns.map { tg.samples[$0] * tg.bytesPerToken! / (tg.roofs[$0] * 1e9) }
            .reduce(0, +) / Double(tg.steadyRuns.count)) < 1e-9)
        #expect(report.model.parameters > report.model.activeParameters)
        // Where the tg steps' time went between the lanes: one record per decode step.
        let lanes = results[1]["lanes"] as? [String: Any]
        #expect(lanes?["steps"] as? Int == 4 && results[0]["lanes"] == nil)
        let breakdown = try #require(report.results[1].lanes)
        #expect(breakdown.stepSeconds > 0 && breakdown.outsideJobsSeconds >= 0
                && breakdown.outsideJobsSeconds <= breakdown.stepSeconds + 1e-12)
        #expect(report.table().contains("lanes    tg4 (an extra untimed run of 4 steps)"))
        // ...and how much the lanes pulled of the next jobs while waiting (the toy model's jobs
        // are mostly one piece, and other tests share the pool: only its presence is checked).
        #expect((lanes?["pulled_bytes_per_step"] as? Double).map { $0 >= 0 } == true)
        #expect(report.table().contains("lanes pulled"))
    }

    /// `--batch 1,2`: a tgN@B result for B sequences decoded together, with the same fields.
    @Test func batchedDecodeAddsTgAtB() throws {
        var o = Self.options
        o.promptTokens = 0
        o.batchSizes = [1, 2]
        let report = try Benchmark.run(modelDirectory: Self.model, options: o)
        #expect(report.results.map(\.test) == ["tg4", "tg4@2"])
        #expect(report.results.allSatisfy { $0.tokensPerSecond > 0 && $0.rooflineFraction > 0 })
        #expect(report.results.last?.batch == 2)
        // Every decode test says where its steps' time went between the lanes, batched ones too.
        let batched = try #require(report.results.last?.lanes)
        #expect(batched.steps == 4 && batched.stepSeconds > 0 && batched.jobsPerStep >= 0)   // the toy model's jobs may all run inline
        #expect(report.table().contains("lanes    tg4@2 (an extra untimed run of 4 steps)")
                && report.table().contains("jobs a step of 2 tokens"))
        // Each row shows the roof its own runs were measured against, not the run-wide mean.
        let table = report.table()
        for r in report.results {
            let row = table.split(separator: "\n").first { $0.hasPrefix("| \(r.test) ") }
            #expect(row?.contains(String(format: "of %.1f GB/s read", r.meanRoof)) == true, "\(row ?? "no row for \(r.test)")")
        }
    }

    /// Each timed repetition sits between two bursts of the read probe, and its roof is their mean.
    @Test func repetitionsAreBracketedByProbeBursts() {
        let probe = RooflineProbe()
        var calls = 0
        let runs = Benchmark.bracketed(3, by: probe) { calls += 1; return Double(calls) }
        #expect(calls == 3 && runs.map(\.seconds) == [1, 2, 3])
        #expect(runs.allSatisfy { $0.roof > 0 && $0.roof.isFinite }, "roofs \(runs.map(\.roof))")
        // Four bursts: each one-lane slice went to its own window, every two-lane slice to a burst,
        // and each burst's matvec slices to a (GB/s, ratio to the burst's summed slices) pair.
        #expect((probe.takeOneLaneReadGBps() ?? 0) > 0)
        #expect(probe.takeReadGBps() == 0)
        let kernel = probe.takeKernelRead()
        #expect((kernel?.gbps ?? 0) > 0 && (kernel?.ofProbe ?? 0) > 0, "\(String(describing: kernel))")
        #expect(probe.takeKernelRead() == nil)
    }

    /// A matvec slice reads a whole slice as rows of 1024 floats through the decode's matvec: each
    /// row of y sums its 1024 ones, the first and the last.
    @Test func matvecSliceReadsTheWholeSlice() {
        let probe = RooflineProbe()
        let (seconds, floats) = probe.matvecNextSlice()
        #expect(seconds > 0 && floats * 4 == probe.sliceBytes)
        #expect(probe.kernelChecksum == (Float(RooflineProbe.kernelColumns), Float(RooflineProbe.kernelColumns)))
        #expect(probe.takeReadGBps() == 0, "a matvec slice is not a summed one")
    }

    /// The fraction and the roof it is taken against are over the runs whose roof held steady
    /// around them (all of them if none did, and then the table says the fraction is unreliable);
    /// tokens/s is over every run.
    @Test func fractionLeavesOutRunsThatStraddledASwitch() {
        let r = BenchmarkResult(test: "tg8", kind: .decode, tokens: 8, batch: 1, rates: [10, 10, 10], roofs: [1, 2, 1],
                                steady: [true, false, true], flopsPerToken: 0, bytesPerToken: 1e8)
        #expect(r.steadyRuns == [0, 2] && abs(r.rooflineFraction - 1) < 1e-12 && r.meanRoof == 1 && r.tokensPerSecond == 10)
        let none = BenchmarkResult(test: "tg8", kind: .decode, tokens: 8, batch: 1, rates: [10, 10], roofs: [1, 2],
                                   steady: [false, false], flopsPerToken: 0, bytesPerToken: 1e8)
        #expect(none.steadyRuns == [0, 1] && abs(none.rooflineFraction - 0.75) < 1e-12 && none.meanRoof == 1.5)
        #expect(r.roofHeld && !none.roofHeld)
        #expect(r.roofUsed == "100.0 MB/token of 1.0 GB/s read, 2/3 runs", "\(r.roofUsed)")
        #expect(none.roofUsed == "100.0 MB/token of 1.5 GB/s read, roof moved in every run: unreliable", "\(none.roofUsed)")
    }

    /// The decode roof: every slice of the probe's buffer is read in full, round-robin, and a
    /// window's rate is over the slices since the last one taken.
    @Test func readProbeStreamsWholeSlicesRoundRobin() {
        let probe = RooflineProbe()
        #expect(probe.byteCount >= 256 << 20)
        let slices = (probe.byteCount + probe.sliceBytes - 1) / probe.sliceBytes
        var floats = 0
        for _ in 0..<slices {
            probe.readSlice()
            floats += probe.lastSliceCount
            #expect(probe.checksum == Float(probe.lastSliceCount))
        }
        #expect(floats * 4 == probe.byteCount)
        probe.readSlice()  // wraps around to the first slice
        #expect(probe.lastSliceCount * 4 == probe.sliceBytes)
        #expect(probe.takeReadGBps() > 0)
        #expect(probe.takeReadGBps() == 0)
        // One lane: the next slice in full, in a window of its own.
        #expect(probe.takeOneLaneReadGBps() == nil)
        probe.readSliceOnOneLane()
        #expect(probe.checksum == Float(probe.lastSliceCount) && probe.lastSliceCount * 4 == probe.sliceBytes)
        #expect((probe.takeOneLaneReadGBps() ?? 0) > 0 && probe.takeOneLaneReadGBps() == nil)
        #expect(probe.takeReadGBps() == 0)
    }

    /// The 2 MB-page count comes from /proc/self/smaps for exactly the weights' address ranges:
    /// a model read into memory (every page faulted at load) is resident in full there.
    @Test func hugePageCountCoversTheWeights() throws {
        let model = try Model.load(from: Self.model, residency: .resident)
        guard let pages = ProcessMemory.hugePages(in: model.weightMemory) else { return }  // no procfs
        #expect(pages.resident >= model.fileBytes)
        #expect(pages.huge >= 0 && pages.huge <= pages.resident)
        #expect(ProcessMemory.hugePages(in: [])?.resident == 0)
    }
}
