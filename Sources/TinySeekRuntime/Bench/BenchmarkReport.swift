import Foundation
import Tensor
#if canImport(Glibc)
import Glibc
#endif

/// One test's result: tokens/s over the repetitions and the fraction of the roofline reached.
public struct BenchmarkResult: Codable, Sendable {
    public enum Kind: String, Codable, Sendable { case prompt, decode }

    /// "pp512", "tg128", or "tg128@16" for 16 sequences decoded together.
    public let test: String
    public let kind: Kind
    public let tokens: Int
    public let batch: Int
    /// Tokens per second of each timed run.
    public let samples: [Double]
    public let tokensPerSecond: Double
    /// Sample standard deviation of `samples` (0 for a single run).
    public let stddev: Double
    /// From the cost model over one recorded run: FLOPs per token (the prefill roof) ...
    public let flopsPerToken: Double
    /// ... and bytes streamed from memory per token (weights touched + latent cache; the decode roof).
    public let bytesPerToken: Double?
    /// The roof measured next to each run: sgemm GFLOP/s (pp) or read GB/s (tg).
    public let roofs: [Double]
    /// The runs the fraction is over: those whose roof held steady around them (tg: the probe's
    /// bursts before and after agreed, see `Benchmark.steadyBurstRatio`), or all if none did.
    public let steadyRuns: [Int]
    /// False when no run's roof held steady, so the fraction is over runs whose roof moved while
    /// they ran: on a busy machine that can read far from what the run saw (even above 100%), and
    /// the table says so rather than print the number as if it were sound.
    public let roofHeld: Bool
    /// Where a decode test's step time goes between the worker lanes, from one more run of it,
    /// untimed, with the pool's `PoolTimeline` recording (nil for prefill).
    public internal(set) var lanes: LaneBreakdown?
    /// Mean over `steadyRuns` of each run's fraction of its roof. pp: FLOPs per token × tokens/s ÷
    /// sgemm FLOP/s. tg: bytes per token × tokens/s ÷ read bandwidth.
    public let rooflineFraction: Double
    /// Mean of the roofs of `steadyRuns` (GFLOP/s or GB/s): what the fraction was taken against,
    /// which on a shared machine can differ a lot from the other tests' (the table prints this one).
    public var meanRoof: Double {
        steadyRuns.isEmpty ? 0 : steadyRuns.reduce(0) { $0 + roofs[$1] } / Double(steadyRuns.count)
    }

    /// The table's "roof used" column: the work per token and the roof, with how many runs the
    /// fraction is over when some were left out.
    var roofUsed: String {
        switch kind {
        case .prompt:
            return String(format: "%.1f GFLOP/token of %.1f GFLOP/s sgemm", flopsPerToken / 1e9, meanRoof)
        case .decode:
            return String(format: "%.1f MB/token of %.1f GB/s read", (bytesPerToken ?? 0) / 1e6, meanRoof)
                + (!roofHeld ? ", roof moved in every run: unreliable"
                    : steadyRuns.count < samples.count ? ", \(steadyRuns.count)/\(samples.count) runs" : "")
        }
    }

    init(test: String, kind: Kind, tokens: Int, batch: Int, rates: [Double], roofs: [Double], steady: [Bool]? = nil,
         flopsPerToken: Double, bytesPerToken: Double?) {
        self.test = test
        self.kind = kind
        self.tokens = tokens
        self.batch = batch
        samples = rates
        let mean = rates.reduce(0, +) / Double(max(rates.count, 1))
        tokensPerSecond = mean
        stddev = rates.count > 1
            ? (rates.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(rates.count - 1)).squareRoot() : 0
        self.flopsPerToken = flopsPerToken
        self.bytesPerToken = bytesPerToken
        self.roofs = roofs
        let work = kind == .prompt ? flopsPerToken : (bytesPerToken ?? 0)
        let runs = Array(0..<min(rates.count, roofs.count))
        let held = runs.filter { steady?[$0] ?? true }
        steadyRuns = held.isEmpty ? runs : held
        roofHeld = !held.isEmpty
        let fractions = steadyRuns.map { roofs[$0] > 0 ? work * rates[$0] / (roofs[$0] * 1e9) : 0 }
        rooflineFraction = fractions.reduce(0, +) / Double(max(fractions.count, 1))
    }

    enum CodingKeys: String, CodingKey {
        case test, kind, tokens, batch, samples, stddev, roofs
        case steadyRuns = "steady_runs"
        case lanes
        case roofHeld = "roof_held"
        case tokensPerSecond = "tokens_per_second"
        case rooflineFraction = "roofline_fraction"
        case flopsPerToken = "flops_per_token"
        case bytesPerToken = "bytes_per_token"
    }
}

/// The roof the fractions are taken against, all measured in this run: the means of the probes
/// next to the repetitions (sgemm before each pp run, read bandwidth around each tg run), and the
/// calibration before loading, for the record.
public struct BenchmarkMachine: Codable, Sendable {
    public let gemmGFLOPS: Double
    public let bandwidthGBps: Double
    public let gemmProbes: [Double]
    public let readProbes: [Double]
    /// One lane's read GB/s over the decode tests (a slice streamed on the caller alone in every
    /// burst of the read probe; nil without decode tests): not a roof, but
    /// it says whether the lanes shared one core's bandwidth (`bandwidthGBps` about the same) or
    /// had one each (about twice), which moves how much a lane's serial work costs.
    public let oneLaneBandwidthGBps: Double?
    /// The F32 matvec kernel's read GB/s in the same bursts (every fourth slice streamed as a
    /// batch-1 matvec on the lanes; nil without decode tests), and its mean ratio to the probe's
    /// slices of the same burst: the decode kernel's own ceiling against the roof, not a roof.
    public let matvecBandwidthGBps: Double?
    public let matvecOfRoof: Double?
    public let calibration: MachineProfile
    /// Worker-pool lanes (threads) the engine ran on; OpenBLAS runs one thread per call.
    public let lanes: Int
    /// The OpenBLAS kernel family behind sgemm (`BLAS.coreDescription`): the prefill roof is its
    /// speed, ~3x apart between the generic kernels and AVX2 ones on this machine.
    public let sgemmKernels: String
    /// How the float matvecs and the read probe prefetch (`StreamPrefetch`: "line" or "page").
    public let streamPrefetch: String
    /// The widest vector instructions the kernels used (`VectorISA`: "avx2" or "avx512").
    public let vectorISA: String

    init(calibration: MachineProfile, gemmProbes: [Double], readProbes: [Double], oneLaneRead: Double? = nil,
         kernelRead: (gbps: Double, ofProbe: Double)? = nil, lanes: Int) {
        func mean(_ x: [Double], _ fallback: Double) -> Double { x.isEmpty ? fallback : x.reduce(0, +) / Double(x.count) }
        gemmGFLOPS = mean(gemmProbes, calibration.gemmGFLOPS)
        bandwidthGBps = mean(readProbes, calibration.bandwidthGBps)
        self.gemmProbes = gemmProbes
        self.readProbes = readProbes
        oneLaneBandwidthGBps = oneLaneRead
        matvecBandwidthGBps = kernelRead?.gbps
        matvecOfRoof = kernelRead?.ofProbe
        self.calibration = calibration
        self.lanes = lanes
        sgemmKernels = BLAS.coreDescription
        streamPrefetch = StreamPrefetch.current.rawValue
        vectorISA = VectorISA.current.rawValue
    }

    enum CodingKeys: String, CodingKey {
        case gemmGFLOPS = "gemm_gflops"
        case bandwidthGBps = "bandwidth_gbps"
        case gemmProbes = "gemm_probes"
        case readProbes = "read_probes"
        case oneLaneBandwidthGBps = "one_lane_bandwidth_gbps"
        case matvecBandwidthGBps = "matvec_bandwidth_gbps"
        case matvecOfRoof = "matvec_of_roof"
        case sgemmKernels = "sgemm_kernels"
        case streamPrefetch = "stream_prefetch"
        case vectorISA = "vector_isa"
        case calibration, lanes
    }
}

/// The first moments of a process, reported apart from steady state.
public struct ColdStart: Codable, Sendable {
    /// `Model.load`: parse config, map and validate the checkpoint, build the weight table.
    public let loadSeconds: Double
    /// The first prefill after loading (its pages faulted in as it runs): time to first token.
    public let firstTokenSeconds: Double
    public let promptTokens: Int
    /// Faulting in every remaining page of the weights before the timed runs.
    public let touchSeconds: Double

    enum CodingKeys: String, CodingKey {
        case loadSeconds = "load_seconds"
        case firstTokenSeconds = "first_token_seconds"
        case promptTokens = "prompt_tokens"
        case touchSeconds = "touch_seconds"
    }
}

public struct BenchmarkModel: Codable, Sendable {
    public let path: String
    public let modelType: String
    public let parameters: Int
    /// Parameters one decode step reads: all but the routed experts it does not pick, and one row
    /// of the embedding table.
    public let activeParameters: Int
    /// Formats of the linear weights, most common first ("f32", "bf16", "q8_0").
    public let weightFormats: String
    public let fileBytes: Int
    /// "mapped" (mmap, the default) or "resident" (read into memory, `--no-mmap`).
    public let residency: String
    /// Of the weight bytes resident after the warm-up, the fraction in 2 MB pages (nil where
    /// /proc/self/smaps is not readable). Streaming 4 KB pages costs decode a few percent of the
    /// read roof here; see `WeightResidency` and the README.
    public let hugePageFraction: Double?
    /// Latent cache of the longest sequence the benchmark runs.
    public let kvCacheBytes: Int

    enum CodingKeys: String, CodingKey {
        case path, parameters
        case modelType = "model_type"
        case activeParameters = "active_parameters"
        case weightFormats = "weight_formats"
        case fileBytes = "file_bytes"
        case kvCacheBytes = "kv_cache_bytes"
        case residency
        case hugePageFraction = "huge_page_fraction"
    }
}

/// Peak resident memory of the engine in each phase (mapped weight pages count once touched).
public struct BenchmarkMemory: Codable, Sendable {
    /// A fresh session decoding the tg test's tokens, weights resident: the figure to hold
    /// against the weight file plus the latent cache.
    public let decodePeakBytes: Int
    /// A fresh session prefilling the pp prompt (activation buffers for all its tokens).
    public let prefillPeakBytes: Int

    enum CodingKeys: String, CodingKey {
        case decodePeakBytes = "decode_peak_resident_bytes"
        case prefillPeakBytes = "prefill_peak_resident_bytes"
    }
}

/// Resident memory of this process from /proc/self/status (Linux; nil elsewhere).
enum ProcessMemory {
    /// VmHWM after `body`, with the high-water mark reset just before it; nil where the kernel
    /// does not offer the reset (then no figure is better than a misleading one). Memory freed
    /// earlier (the timed session's buffers, the probes) is first handed back to the system:
    /// glibc keeps freed heap pages resident otherwise, and they would count against `body`.
    static func peak(_ body: () throws -> Void) rethrows -> Int? {
        trimHeap()
        let reset = resetPeak()
        try body()
        return reset ? field("VmHWM") : nil
    }

    /// glibc's malloc_trim(0), looked up at run time (Swift's Glibc module does not export it).
    static func trimHeap() {
        #if canImport(Glibc)
        typealias Trim = @convention(c) (Int) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") {
            _ = unsafeBitCast(symbol, to: Trim.self)(0)
        }
        #endif
    }

    /// Resident bytes of the address ranges `ranges`, and how many of them are mapped with 2 MB
    /// pages (file PMD mappings or anonymous huge pages), from /proc/self/smaps; nil elsewhere.
    static func hugePages(in ranges: [UnsafeRawBufferPointer]) -> (resident: Int, huge: Int)? {
        // Read to the end through a handle: procfs files report size 0.
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/smaps"),
              let data = try? handle.readToEnd() else { return nil }
        try? handle.close()
        let text = String(decoding: data, as: UTF8.self)
        let spans = ranges.compactMap { r in r.baseAddress.map { (UInt(bitPattern: $0), UInt(bitPattern: $0) + UInt(r.count)) } }
        var resident = 0, huge = 0, inside = false
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.contains("-"), !first.hasSuffix(":") {
                // A mapping's header: "start-end perms offset dev inode path".
                let bounds = first.split(separator: "-").compactMap { UInt($0, radix: 16) }
                inside = bounds.count == 2 && spans.contains { bounds[0] < $0.1 && $0.0 < bounds[1] }
                continue
            }
            guard inside, fields.count >= 2, let kb = Int(fields[1]) else { continue }
            switch first {
            case "Rss:": resident += kb * 1024
            case "FilePmdMapped:", "AnonHugePages:": huge += kb * 1024
            default: break
            }
        }
        return (resident, huge)
    }

    static func field(_ key: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return nil }
        return line.split(separator: " ").compactMap { Int($0) }.first.map { $0 * 1024 }
    }

    /// Resets VmHWM to the current resident set ("5" into /proc/self/clear_refs, Linux ≥ 4.0).
    static func resetPeak() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        do { try handle.write(contentsOf: Data("5".utf8)) } catch { return false }
        return true
    }
}

/// Everything `tinyseek bench` prints: `{"results": [...], "machine": {...}, ...}`.
public struct BenchmarkReport: Codable, Sendable {
    public let results: [BenchmarkResult]
    public let machine: BenchmarkMachine
    public let coldStart: ColdStart
    public let model: BenchmarkModel
    public let memory: BenchmarkMemory?

    enum CodingKeys: String, CodingKey {
        case results, machine, model, memory
        case coldStart = "cold_start"
    }

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self) + Data("\n".utf8)
    }

    /// A llama-bench style table with the roof of each test, and the cold start and memory apart.
    public func table() -> String {
        let m = model
        var lines = [
            "model    \(m.path) (\(m.modelType), \(Format.si(Double(m.parameters))) params, "
                + "\(Format.si(Double(m.activeParameters))) active per token), weights \(m.weightFormats), "
                + "file \(Format.si(Double(m.fileBytes), unit: "B")), \(m.residency)"
                + (m.hugePageFraction.map { String(format: ", %.0f%% in 2 MB pages", $0 * 100) } ?? ""),
        ]
        if m.residency == WeightResidency.mapped.rawValue, m.fileBytes >= 64 << 20, let f = m.hugePageFraction, f < 0.5 {
            lines.append("note     the file is cached in 4 KB pages (it was read or written before this mapping asked "
                         + "for 2 MB ones); `dd if=FILE iflag=nocache count=0` on each .safetensors evicts it, and the "
                         + "next load maps it in 2 MB pages (a few % faster decode), or use --no-mmap")
        }
        lines += [
            String(format: "machine  sgemm %.1f GFLOP/s (OpenBLAS ", machine.gemmGFLOPS) + machine.sgemmKernels
                + String(format: " kernels, best of 3 before each pp run), read %.1f GB/s (streamed before and after each decode run, prefetching ",
                         machine.bandwidthGBps)
                + (machine.streamPrefetch == StreamPrefetch.everyLine.rawValue ? "every line" : "a page ahead")
                + " as the matvecs do; each test's own mean in its row)"
                + (machine.oneLaneBandwidthGBps.map { String(format: ", %.1f GB/s on one lane alone", $0) } ?? "")
                + (machine.matvecBandwidthGBps.map { gbps in
                    String(format: ", %.1f GB/s through the F32 matvec kernel in the same bursts (%.1f%% of the probe beside it)",
                           gbps, 100 * (machine.matvecOfRoof ?? 0)) } ?? "")
                + String(format: "; calibration before loading: %.1f GFLOP/s, %.1f GB/s; %d lanes",
                         machine.calibration.gemmGFLOPS, machine.calibration.bandwidthGBps, machine.lanes)
                + "; vector kernels \(machine.vectorISA) (\(VectorISA.variable))",
            "",
            "| test        |                t/s | roofline | roof used                                   |",
            "| ----------- | -----------------: | -------: | ------------------------------------------- |",
        ]
        for r in results {
            let rate = String(format: "%.2f ± %.2f", r.tokensPerSecond, r.stddev)
            lines.append("| \(r.test.padding(toLength: 11, withPad: " ", startingAt: 0)) | "
                         + "\(String(repeating: " ", count: max(0, 18 - rate.count)))\(rate) | "
                         + String(format: "%7.1f%%", r.rooflineFraction * 100) + " | "
                         + r.roofUsed.padding(toLength: 43, withPad: " ", startingAt: 0) + " |")
        }
        let withLanes = results.filter { $0.lanes != nil }
        if !withLanes.isEmpty { lines.append("") }
        for r in withLanes { if let l = r.lanes { lines.append(Self.lanesLine(l, test: r.test, batch: r.batch)) } }
        let batched = results.filter { $0.kind == .decode }
        if batched.count > 1 {
            // Where decode crosses from memory- to compute-bound: the step's FLOP per byte (cost model)
            // against this run's ridge, sgemm FLOP/s over read bandwidth.
            let ridge = machine.gemmGFLOPS / max(machine.bandwidthGBps, 1e-9)
            lines.append("")
            lines.append(String(format: "decode intensity vs the ridge (%.1f FLOP/B here): ", ridge) + batched.map { r in
                let intensity = r.flopsPerToken / max(r.bytesPerToken ?? 1, 1)
                return String(format: "B=%d %.2f FLOP/B %@", r.batch, intensity, (intensity < ridge ? "memory-bound" : "compute-bound") as NSString)
            }.joined(separator: ", "))
        }
        lines.append("")
        lines.append(String(format: "cold     load %.3f s, first token %.3f s (%d-token prompt, pages faulted as needed); "
                            + "touching all weight pages %.3f s", coldStart.loadSeconds, coldStart.firstTokenSeconds,
                            coldStart.promptTokens, coldStart.touchSeconds))
        if let memory {
            let budget = Double(max(m.fileBytes + m.kvCacheBytes, 1))
            lines.append(String(format: "memory   peak RSS decoding %.3f GB = %.3f × (weights file %.3f GB + KV cache %.4f GB); "
                                + "prefilling %.3f GB = %.3f ×",
                                Double(memory.decodePeakBytes) / 1e9, Double(memory.decodePeakBytes) / budget,
                                Double(m.fileBytes) / 1e9, Double(m.kvCacheBytes) / 1e9,
                                Double(memory.prefillPeakBytes) / 1e9, Double(memory.prefillPeakBytes) / budget))
        }
        return lines.joined(separator: "\n")
    }

    /// "lanes    tg128: …": how much of a decode step the lanes spend idle, and where.
    static func lanesLine(_ l: LaneBreakdown, test: String, batch: Int = 1) -> String {
        let step = max(l.stepSeconds, 1e-12)
        let unit = batch == 1 ? "a token" : "a step of \(batch) tokens"
        return String(format: "lanes    %@ (an extra untimed run of %d steps): %.1f parallel jobs %@ on %d lanes; of %.3f ms %@, "
                      + "%.3f ms (%.1f%%) outside any job (the caller's serial work: argmax, norms, RoPE, routing, "
                      + "setting up the next job) and %.3f lane-ms waiting for the last chunks of jobs: "
                      + "%.1f%% of the lanes' time idle",
                      test as NSString, l.steps, l.jobsPerStep, unit as NSString, l.lanes, l.stepSeconds * 1e3, unit as NSString,
                      l.outsideJobsSeconds * 1e3, l.outsideJobsSeconds / step * 100, l.laneWaitingSeconds * 1e3,
                      l.idleShare * 100)
            + (l.pulledBytesPerStep.map {
                String(format: "; while waiting, lanes pulled %.2f MB %@ of the next jobs' first bytes into their caches", $0 / 1e6, unit as NSString)
            } ?? "")
    }
}
