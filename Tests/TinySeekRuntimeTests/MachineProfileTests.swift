import Foundation
import Testing
import TinySeekRuntime

/// A fresh directory under the system temporary directory, removed by the caller.
func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("tinyseek-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite("MachineProfile: JSON, persistence, calibration")
struct MachineProfileTests {
    let profile = MachineProfile(gemmGFLOPS: 200, bandwidthGBps: 25, triadGBps: 20, threads: 2,
                                 cpu: "Test CPU", measuredAt: "2026-01-31T12:00:00Z")

    @Test("JSON has exactly the snake_case keys and round-trips")
    func jsonRoundTrip() throws {
        let data = try profile.jsonData()
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(object.keys) == ["gemm_gflops", "bandwidth_gbps", "triad_gbps", "ridge_flops_per_byte",
                                     "threads", "cpu", "measured_at"])
        #expect(object["ridge_flops_per_byte"] as? Double == 8)
        #expect(object["measured_at"] as? String == "2026-01-31T12:00:00Z")
        #expect(try JSONDecoder().decode(MachineProfile.self, from: data) == profile)
    }

    @Test("save creates the directory; load reads back the same profile")
    func saveAndLoad() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("nested/deeper/machine.json")
        try profile.save(to: url)
        #expect(try MachineProfile.load(from: url) == profile)
    }

    @Test("a missing file is .notFound naming the path")
    func missing() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("machine.json")
        #expect(throws: MachineProfileError.notFound(path: url.path)) { try MachineProfile.load(from: url) }
        #expect(MachineProfileError.notFound(path: url.path).description.contains(url.path))
    }

    @Test("corrupt or invalid files are .malformed naming the path and the problem",
          arguments: [
              ("{\"gemm_gflops\": 1", "not valid JSON"),
              ("[]", "expected a JSON object"),
              ("{\"gemm_gflops\": 100, \"bandwidth_gbps\": 10, \"triad_gbps\": 8, \"cpu\": \"x\", \"measured_at\": \"t\"}",
               "missing key 'threads'"),
              ("{\"gemm_gflops\": 100, \"bandwidth_gbps\": 10, \"triad_gbps\": 8, \"threads\": \"two\", \"cpu\": \"x\", \"measured_at\": \"t\"}",
               "'threads' is not of type Int"),
              ("{\"gemm_gflops\": -1, \"bandwidth_gbps\": 10, \"triad_gbps\": 8, \"threads\": 2, \"cpu\": \"x\", \"measured_at\": \"t\"}",
               "'gemm_gflops' must be a positive finite number"),
              ("{\"gemm_gflops\": 100, \"bandwidth_gbps\": 10, \"triad_gbps\": 8, \"ridge_flops_per_byte\": 3, \"threads\": 2, \"cpu\": \"x\", \"measured_at\": \"t\"}",
               "'ridge_flops_per_byte' 3.0 disagrees"),
          ])
    func corrupt(contents: String, problem: String) throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("machine.json")
        try Data(contents.utf8).write(to: url)
        do {
            _ = try MachineProfile.load(from: url)
            Issue.record("loaded a corrupt profile: \(contents)")
        } catch {
            guard case let .malformed(path, reason) = error else {
                Issue.record("expected .malformed, got \(error)")
                return
            }
            #expect(path == url.path)
            #expect(reason.contains(problem), "reason: \(reason)")
            #expect(error.description.contains(url.path) && error.description.contains(reason))
        }
    }

    @Test("a directory in the way is .unreadable on load and .unwritable on save")
    func unusablePaths() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: MachineProfileError.unreadable(path: dir.path, reason: "Is a directory")) {
            try MachineProfile.load(from: dir)
        }
        // A regular file where a directory must be: fails even for root.
        let file = dir.appendingPathComponent("file")
        try Data().write(to: file)
        let url = file.appendingPathComponent("machine.json")
        let notADirectory = MachineProfileError.unwritable(path: url.path, reason: "\(file.path) is not a directory")
        #expect(throws: notADirectory) { try profile.save(to: url) }
        #expect(throws: notADirectory) { try MachineProfile.checkWritable(url) }
        let deeper = file.appendingPathComponent("sub/machine.json")
        #expect(throws: MachineProfileError.unwritable(path: deeper.path, reason: "Not a directory")) {
            try profile.save(to: deeper)
        }
        #expect(throws: MachineProfileError.unwritable(path: dir.path, reason: "it is a directory")) {
            try MachineProfile.checkWritable(dir)
        }
        try MachineProfile.checkWritable(dir.appendingPathComponent("new/machine.json"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("new").path).isEmpty,
                "the probe file is removed")
    }

    @Test("defaultURL: $TINYSEEK_MACHINE, then $XDG_CACHE_HOME, then ~/.cache")
    func defaultURL() {
        #expect(MachineProfile.defaultURL(environment: ["TINYSEEK_MACHINE": "/x/m.json", "XDG_CACHE_HOME": "/c", "HOME": "/h"])
            .path == "/x/m.json")
        #expect(MachineProfile.defaultURL(environment: ["XDG_CACHE_HOME": "/c", "HOME": "/h"]).path == "/c/tinyseek/machine.json")
        #expect(MachineProfile.defaultURL(environment: ["XDG_CACHE_HOME": "relative", "HOME": "/h"]).path
            == "/h/.cache/tinyseek/machine.json", "a relative XDG_CACHE_HOME is ignored, as the XDG spec says")
        #expect(MachineProfile.defaultURL(environment: ["TINYSEEK_MACHINE": "", "HOME": "/h"]).path
            == "/h/.cache/tinyseek/machine.json")
    }

    /// Runs every measurement on tiny sizes; checks the numbers are sane, not how fast they are.
    @Test("a quick calibration returns positive finite rates and a consistent ridge")
    func quickMeasure() throws {
        var lines: [String] = []
        let measured = Calibration.measure(options: CalibrationOptions(gemmSize: 64, bufferBytes: 1 << 20, repetitions: 2)) {
            lines.append($0)
        }
        for rate in [measured.gemmGFLOPS, measured.bandwidthGBps, measured.triadGBps, measured.ridgeFlopsPerByte] {
            #expect(rate.isFinite && rate > 0)
        }
        #expect(measured.ridgeFlopsPerByte == measured.gemmGFLOPS / measured.bandwidthGBps)
        #expect(measured.threads == ProcessInfo.processInfo.activeProcessorCount)
        #expect(!measured.cpu.isEmpty)
        #expect(lines.contains { $0.hasPrefix("gemm 64x64: run 2/2") }, "progress: \(lines)")
        #expect(!lines.contains { $0.hasPrefix("warning") }, "progress: \(lines)")
        // What it measured survives the JSON round trip.
        #expect(try JSONDecoder().decode(MachineProfile.self, from: measured.jsonData()) == measured)
    }
}
