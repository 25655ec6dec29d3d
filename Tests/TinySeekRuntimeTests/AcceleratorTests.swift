import Foundation
import Testing
import TinySeek
import TinySeekRuntime

@Suite("Accelerator table, hardware files and this-machine")
struct AcceleratorTests {
    /// DESIGN.md's reference points (BF16 TFLOPS / GB/s / GB), and TPU v5p's datasheet.
    @Test(arguments: [
        ("V100", 125.0, 900.0, 32.0), ("A100", 312, 2039, 80), ("H100 SXM", 989.5, 3350, 80),
        ("H200", 989.5, 4800, 141), ("B200", 2250, 8000, 192), ("MI325X", 1307.4, 6000, 256), ("TPU v5p", 459, 2765, 95),
    ])
    func builtInTable(name: String, bf16: Double, bandwidth: Double, memory: Double) throws {
        let a = try Accelerator.named(name, in: Accelerator.builtIn)
        #expect(a.peakTFLOPS["bf16"] == bf16 && a.memoryBandwidthGBps == bandwidth && a.memoryGB == memory)
        #expect(a.interconnectGBps != nil)
    }

    @Test func namesAndFallbacks() throws {
        #expect(try Accelerator.named("h100", in: Accelerator.builtIn).name == "H100 SXM")
        #expect(try Accelerator.named("h100-sxm", in: Accelerator.builtIn).name == "H100 SXM")
        #expect(try Accelerator.named("tpu_v5p", in: Accelerator.builtIn).name == "TPU v5p")
        do {
            _ = try Accelerator.named("Z80", in: Accelerator.builtIn)
            Issue.record("Z80 resolved")
        } catch let error as AnalysisError {
            #expect(error.description.contains("unknown hardware 'Z80'") && error.description.contains("H200")
                    && error.description.contains("this-machine"))
        }
        // FP8 weights on an A100 run at its BF16 peak; H100 has an FP8 peak.
        let a100 = try Accelerator.named("A100", in: Accelerator.builtIn)
        #expect(a100.peakFlops(for: .fp8)?.dtype == "bf16")
        #expect(try Accelerator.named("H100", in: Accelerator.builtIn).peakFlops(for: .fp8)?.flops == 1979e12)
        #expect(throws: AnalysisError.noPeak(hardware: "TPU v5p", dtype: "fp32")) {
            try Accelerator.named("TPU v5p", in: Accelerator.builtIn).roofline(for: .fp32)
        }
    }

    @Test func hardwareFileAddsAndReplaces() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("hw.json")
        try Data("""
        {"accelerators": [
          {"name": "h200", "peak_tflops": {"bf16": 1000}, "memory_bandwidth_gbps": 5000, "memory_gb": 141},
          {"name": "MyChip", "aliases": ["mine"], "peak_tflops": {"bf16": 100, "fp8": 200}, "memory_bandwidth_gbps": 1000,
           "memory_gb": 64, "interconnect_gbps": 100, "interconnect_latency_us": 5}
        ]}
        """.utf8).write(to: url)
        let table = try Accelerator.table(overrides: url)
        #expect(table.count == Accelerator.builtIn.count + 1)
        #expect(try Accelerator.named("H200", in: table).memoryBandwidthGBps == 5000)
        #expect(try Accelerator.named("mine", in: table).roofline(for: .fp8).ridge == 200)

        try Data(#"[{"name": "Bad", "peak_tflops": {"bf16": 1}, "memory_bandwidth_gbps": -1}]"#.utf8).write(to: url)
        do {
            _ = try Accelerator.table(overrides: url)
            Issue.record("a negative bandwidth was accepted")
        } catch {
            #expect(error.description.contains(url.path) && error.description.contains("memory_bandwidth_gbps"))
        }
        #expect(throws: AnalysisError.invalidHardwareFile(path: dir.appendingPathComponent("none.json").path, reason: "cannot read it")) {
            try Accelerator.table(overrides: dir.appendingPathComponent("none.json"))
        }
    }

    @Test("this-machine: the calibrated FP32 roofline; a missing profile says to calibrate")
    func thisMachine() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("machine.json")
        try MachineProfile(gemmGFLOPS: 100, bandwidthGBps: 20, triadGBps: 15, threads: 2, cpu: "Test CPU",
                           measuredAt: "2026-01-31T12:00:00Z").save(to: url)
        let local = try Accelerator.named("this-machine", in: Accelerator.builtIn, machineProfile: url)
        let roof = try local.roofline(for: .fp32)
        #expect(roof.peakFlops == 100e9 && roof.bandwidth == 20e9 && roof.ridge == 5)
        #expect(local.peakFlops(for: .bf16)?.dtype == "fp32")
        #expect(throws: MachineProfileError.notFound(path: dir.appendingPathComponent("none.json").path)) {
            try Accelerator.named("this-machine", in: Accelerator.builtIn, machineProfile: dir.appendingPathComponent("none.json"))
        }
        // The toy model's fp32 decode on this machine: a batch-1 matvec does 0.5 FLOP/B.
        let spec = try ArchitectureSpec.load(from: AnalysisRepo.model("deepseek-v3-tiny"))
        let a = try Analysis(spec: spec, scenario: Scenario(batch: 1, context: 8, dtype: .fp32), accelerator: local)
        let ffn = a.aggregate { $0.name == "ffn_down" }
        expectRelative(ffn.intensity, 0.5 * 96 * 64 / (96 * 64 + 96 + 64), within: 1e-12, "fp32 matvec")
    }
}
