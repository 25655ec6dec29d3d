import Dispatch
import Foundation
import Tensor

/// Sizes and run counts for `Calibration.measure`.
public struct CalibrationOptions: Sendable, Equatable {
    /// Side n of the square sgemm C(n, n) = A(n, n) · B(n, n): 2n³ FLOPs a run.
    public var gemmSize: Int
    /// Bytes of each streamed array. Far larger than the last-level cache, or the figure is
    /// cache bandwidth, not memory bandwidth.
    public var bufferBytes: Int
    /// Timed runs of each measurement at least, after one untimed warm-up; the fastest counts.
    public var repetitions: Int
    /// Seconds each measurement keeps running at least (more runs than `repetitions` if they
    /// are quick). The best of many runs is what survives other processes and clock ramps.
    public var minimumSeconds: Double

    public init(gemmSize: Int, bufferBytes: Int, repetitions: Int, minimumSeconds: Double = 0) {
        self.gemmSize = max(gemmSize, 1)
        self.bufferBytes = max(bufferBytes, 4)
        self.repetitions = max(repetitions, 1)
        self.minimumSeconds = max(minimumSeconds, 0)
    }

    /// The full calibration, about 10 s: a 2048³ sgemm (large enough for OpenBLAS's sustained
    /// rate, 17 GFLOP a run) and arrays of max(256 MiB, 8 × last-level cache), 3 s each.
    public static var `default`: CalibrationOptions {
        CalibrationOptions(gemmSize: 2048, bufferBytes: max(256 << 20, 8 * (Calibration.lastLevelCacheBytes ?? 0)),
                           repetitions: 5, minimumSeconds: 3)
    }

    /// A rougher calibration in about a second: a 1024³ sgemm, arrays of max(64 MiB, 4 × LLC).
    public static var quick: CalibrationOptions {
        CalibrationOptions(gemmSize: 1024, bufferBytes: max(64 << 20, 4 * (Calibration.lastLevelCacheBytes ?? 0)),
                           repetitions: 3, minimumSeconds: 0.2)
    }
}

/// Measures this machine's roofline: FP32 GEMM throughput (the roof) and streaming memory
/// bandwidth (the slope), both on all cores, as the engine itself would use them.
///
/// Memory is measured before GEMM: OpenBLAS's worker threads busy-wait for a while after each
/// call and would steal cores from the streaming threads.
public enum Calibration {
    /// Runs every measurement and returns the profile. `progress` receives one line per step.
    public static func measure(options: CalibrationOptions = .default, progress: (String) -> Void) -> MachineProfile {
        let threads = ProcessInfo.processInfo.activeProcessorCount
        let cpu = cpuModelName ?? "unknown"
        let llc = lastLevelCacheBytes
        let llcText = llc.map { " with a \(mebibytes($0)) last-level cache" } ?? ""
        let lanes = WorkerPool.shared.laneCount
        progress("\(cpu), \(threads) threads\(llcText); sgemm: OpenBLAS \(BLAS.coreDescription) kernels, one thread per call, "
                 + "split over \(lanes) worker-pool lanes; streams prefetch "
                 + (StreamPrefetch.current == .everyLine ? "every line" : "a page ahead") + " (\(StreamPrefetch.variable)); "
                 + "vector kernels \(VectorISA.current.rawValue) (\(VectorISA.variable))")
        if lanes < threads {
            progress("note: the worker pool has \(lanes) of \(threads) cores (TINYSEEK_THREADS?); GEMM is not all-core")
        }
        if let llc, options.bufferBytes < 4 * llc {
            progress("note: \(mebibytes(options.bufferBytes)) arrays are < 4 × the last-level cache; bandwidth includes cache hits")
        }
        let (read, triad) = measureMemory(threads: threads, options: options, progress: progress)
        let gemm = measureGEMM(n: options.gemmSize, options: options, progress: progress)
        return MachineProfile(gemmGFLOPS: gemm, bandwidthGBps: read, triadGBps: triad, threads: threads,
                              cpu: cpu, measuredAt: Date().ISO8601Format())
    }

    // MARK: GEMM

    /// Best GFLOP/s of C = A · B for square n × n FP32 matrices through `Kernels.gemm`, i.e.
    /// OpenBLAS sgemm split over the worker pool's lanes, as the engine runs it. FLOPs: 2n³ (one
    /// multiply and one add per term of each of the n² dot products of length n).
    static func measureGEMM(n: Int, options: CalibrationOptions, progress: (String) -> Void) -> Double {
        let a = Tensor(zeros: [n, n]), b = Tensor(zeros: [n, n]), c = Tensor(zeros: [n, n])
        // Values in [-1, 1): no denormals, no overflow, nothing for the FPU to shortcut.
        for i in 0..<n * n {
            a.pointer[i] = Float(i % 17) / 8.5 - 1
            b.pointer[i] = Float(i % 13) / 6.5 - 1
        }
        let flops = 2 * Double(n) * Double(n) * Double(n)
        let best = bestTime(options, report: { run, runs, best in
            progress("gemm \(n)x\(n): run \(run)/\(runs), best \(format(flops / best / 1e9)) GFLOP/s")
        }) {
            Kernels.gemm(m: n, n: n, k: n, a: a.pointer, lda: n, b: b.pointer, ldb: n, transposeB: false,
                         c: c.pointer, ldc: n)
        }
        return flops / best / 1e9
    }

    // MARK: Memory

    /// Best streaming read and triad bandwidth, GB/s, over arrays of `options.bufferBytes` each,
    /// split evenly across `threads` threads.
    static func measureMemory(threads: Int, options: CalibrationOptions,
                              progress: (String) -> Void) -> (read: Double, triad: Double) {
        let count = options.bufferBytes / MemoryLayout<Float>.stride
        let a = Tensor(zeros: [count]), b = Tensor(zeros: [count]), c = Tensor(zeros: [count])
        let partials = Tensor(zeros: [threads * 16])  // one cache line per thread: no false sharing
        // Every page written before it is timed: a large tensor is fresh zero-filled pages, which
        // would be faulted in during the first run (and an unwritten page reads from the shared
        // zero page, from cache).
        parallel(threads: threads, count: count) { range, _ in
            (a.pointer + range.lowerBound).update(repeating: 0, count: range.count)
            (b.pointer + range.lowerBound).update(repeating: 1, count: range.count)
            (c.pointer + range.lowerBound).update(repeating: 2, count: range.count)
        }
        let size = "\(mebibytes(count * 4)) x \(threads) threads"

        // Read: sum every element. The sum is checked against the known answer below, so the
        // compiler cannot drop the loads. Bytes: 4 per element.
        let readBytes = Double(count * 4)
        let readTime = bestTime(options, report: { run, runs, best in
            progress("read \(size): run \(run)/\(runs), best \(format(readBytes / best / 1e9)) GB/s")
        }) {
            parallel(threads: threads, count: count) { range, t in
                partials.pointer[t * 16] = Kernels.streamSum(b.pointer, range)
            }
        }
        let sum = (0..<threads).reduce(0.0) { $0 + Double(partials.pointer[$1 * 16]) }
        if abs(sum - Double(count)) > 1e-6 * Double(count) {
            progress("warning: read checksum \(sum), expected \(count); the read figure is suspect")
        }

        // Triad (STREAM): a = b + s·c. Bytes counted as 3 arrays (read b, read c, write a), the
        // STREAM convention, so the figure compares with published STREAM results. Where a plain
        // store first reads a's line into cache (write-allocate), DRAM moves 4 arrays and the
        // hardware's rate is 4/3 of this figure; whether it does depends on the CPU.
        let triadBytes = Double(3 * count * 4)
        let triadTime = bestTime(options, report: { run, runs, best in
            progress("triad \(size): run \(run)/\(runs), best \(format(triadBytes / best / 1e9)) GB/s")
        }) {
            parallel(threads: threads, count: count) { range, _ in
                triad(a.pointer, b.pointer, c.pointer, scalar: 3, range)
            }
        }
        if count > 0, [0, count / 2, count - 1].contains(where: { a.pointer[$0] != 7 }) {
            progress("warning: triad wrote wrong values; the triad figure is suspect")
        }
        return (readBytes / readTime / 1e9, triadBytes / triadTime / 1e9)
    }

    /// a[i] = b[i] + s·c[i] over `range`, 16 floats a step.
    @inline(never)
    static func triad(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafePointer<Float>,
                      scalar s: Float, _ range: Range<Int>) {
        let sv = SIMD8<Float>(repeating: s)
        var i = range.lowerBound
        let end = range.upperBound
        while i + 16 <= end {
            store8(load8(b + i) + sv * load8(c + i), a + i)
            store8(load8(b + i + 8) + sv * load8(c + i + 8), a + i + 8)
            i += 16
        }
        while i < end { a[i] = b[i] + s * c[i]; i += 1 }
    }

    // MARK: Helpers

    /// Runs `body(range, thread)` on `threads` threads over contiguous slices of 0..<count whose
    /// bounds are multiples of 16 floats (64-byte cache lines); the last slice takes the rest.
    static func parallel(threads: Int, count: Int, _ body: @Sendable (Range<Int>, Int) -> Void) {
        let slice = (count / threads) & ~15
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            body(t * slice ..< (t == threads - 1 ? count : (t + 1) * slice), t)
        }
    }

    /// Fastest time of `body` in seconds. One untimed warm-up (it faults pages in, wakes the
    /// thread pools and estimates a run's length) decides the number of timed runs: at least
    /// `repetitions`, and enough to fill `minimumSeconds`. `report(run, runs, best)` follows the
    /// first and last run and at most every half second in between.
    static func bestTime(_ options: CalibrationOptions, report: (Int, Int, Double) -> Void,
                         _ body: () -> Void) -> Double {
        let warmUp = seconds(body)
        let runs = max(options.repetitions, Int(min(options.minimumSeconds / max(warmUp, 1e-6), 10_000)))
        var best = Double.infinity, sinceReport = 0.0
        for run in 1...runs {
            let t = seconds(body)
            best = min(best, t)
            sinceReport += t
            if run == 1 || run == runs || sinceReport >= 0.5 {
                report(run, runs, best)
                sinceReport = 0
            }
        }
        return best
    }

    static func seconds(_ body: () -> Void) -> Double {
        let elapsed = ContinuousClock().measure(body)
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }

    /// The CPU's model name from /proc/cpuinfo ("AMD EPYC 9654 96-Core Processor"), if readable.
    static var cpuModelName: String? {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        for line in info.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }

    /// Size of the highest-level cache of CPU 0, from sysfs ("32768K"), if readable.
    static var lastLevelCacheBytes: Int? {
        let root = "/sys/devices/system/cpu/cpu0/cache"
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: root) else { return nil }
        var best: (level: Int, bytes: Int)?
        for entry in entries where entry.hasPrefix("index") {
            func read(_ name: String) -> String? {
                (try? String(contentsOfFile: "\(root)/\(entry)/\(name)", encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            guard let level = read("level").flatMap({ Int($0) }), let size = read("size"),
                  let bytes = parseSize(size) else { continue }
            if level > best?.level ?? .min { best = (level, bytes) }
        }
        return best?.bytes
    }

    /// "32768K" → 33554432; sysfs uses K, M or G suffixes for powers of 1024.
    static func parseSize(_ text: String) -> Int? {
        let shift: Int
        switch text.last {
        case "K": shift = 10
        case "M": shift = 20
        case "G": shift = 30
        default: return Int(text)
        }
        return Int(text.dropLast()).map { $0 << shift }
    }

    static func mebibytes(_ bytes: Int) -> String {
        bytes >= 1 << 20 ? "\(bytes >> 20) MiB" : "\(bytes >> 10) KiB"
    }

    static func format(_ x: Double) -> String { String(format: "%.1f", x) }
}

@inline(__always)
private func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}
