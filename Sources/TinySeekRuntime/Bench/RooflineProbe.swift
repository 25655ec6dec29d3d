import Foundation
import Tensor

/// Measurements of the roof taken next to the timed runs.
///
/// On a shared machine the bandwidth other tenants leave over changes from one second to the
/// next (this one has measured anywhere from 25 to 65 GB/s minutes apart), so a roof measured
/// once, before or after the tests, says little about the conditions a given run saw. So:
///
/// - **Read bandwidth (the decode roof)** is streamed in a *burst right before and right after
///   every decode repetition*: `burstSlices` slices of 64 MiB of its buffer (1 GiB, ~20-40 ms),
///   summed on the engine's own worker lanes (no other threads competing with them), and a
///   repetition's roof is the mean of the two bursts around it. The buffer, max(256 MiB, 8 × the
///   last-level cache), is read round-robin, so a slice is not in cache when its turn comes
///   again (a back-to-back best-of-three over a 4 × LLC buffer, as this probe did first, read
///   40–50 GB/s here while sustained streaming managed 31–34: part of the buffer stayed in L3).
///
///   Why not slices between the steps, as bench did before: the probe slowed the decode around
///   it. In interleaved repetitions with and without it, a slice after every second or fourth
///   step made Q8_0 decode 4-8% slower (BF16 2-6%, F32 not measurably), and the step right after a
///   slice was 1-2% slower than one after a step; with a slice only every 8th step the decode was
///   undisturbed but 16 slices a run were too few: a run's roof then moved ±8% while its
///   tokens/s moved ±2%, and F32 measured up to 120% of it.
/// - **sgemm (the prefill roof)** is the best of three 1024³ products through `Kernels.gemm`
///   just before each pp run.
/// - **The F32 matvec kernel's own read rate**: every fourth slice of a burst is also streamed as
///   an F32 matrix of 1024 columns times a vector, through `WeightMatrix.apply`: the decode's
///   batch-1 path (64 KB pieces over the lanes). Not a roof either: it says how close a pure
///   stream of the decode's kernel comes to the probe in the same moment, so a decode's
///   fraction can be read as kernel ceiling × what the step's structure (serial work between
///   jobs, attention's arithmetic, tails) keeps. (In bench runs on the F32 benchmark model:
///   100-103% of the probe at ~33 GB/s and 99.7-109% at ~55-62, where the decode reached 84-92%;
///   a C loop of the kernel against the same sum, interleaved rounds: 1.00 and 0.97-0.98.)
/// - **One lane's read bandwidth**: each burst also streams one slice on the calling thread
///   alone, first. Not a roof, a diagnosis: on this 2-vCPU VM one lane reads 30-34 GB/s at any
///   moment, and both lanes together read either about the same (the two sharing one core's
///   bandwidth) or twice it. When the two probes are close, one lane could saturate memory while
///   the other did serial work; when both lanes read twice one, every moment a lane is not
///   streaming costs its half of the roof.
final class RooflineProbe {
    /// Streamed round-robin, `sliceFloats` at a time: anonymous memory in 2 MB pages where the
    /// kernel gives them, like the weights (a mapping in 2 MB pages streamed up to 40% faster
    /// here than the 4 KB pages of a plain allocation, so a 4 KB-page probe understated the roof
    /// and mapped weights in 2 MB pages measured 137% of it).
    private let base: UnsafeMutablePointer<Float>
    private let count: Int
    private let mapping: UnsafeMutableRawPointer
    private let mappingBytes: Int
    private let sliceFloats = 16 << 20
    /// One cache line per chunk for the partial sums (no false sharing); read by `checksum`.
    private let partials: Tensor
    private var nextSlice = 0
    /// Floats in the slice read last.
    private(set) var lastSliceCount = 0
    private var window = (bytes: 0.0, seconds: 0.0)
    /// Two-lane slices in a burst (`readBurst`).
    static let burstSlices = 16
    /// Chunks the last slice was summed in (the partial sums `checksum` adds).
    private var lastChunks = 16
    private var oneLaneWindow = (bytes: 0.0, seconds: 0.0)
    /// The matvec slices' GB/s and its ratio to the probe's slices, one pair per burst.
    private var kernelBursts: [(gbps: Double, ofProbe: Double)] = []
    /// Columns of the matrix a matvec slice reads the buffer as (a DeepSeek hidden size's row: 4 KB).
    static let kernelColumns = 1024
    /// Every `kernelEvery`-th slice of a burst is followed by a matvec slice.
    static let kernelEvery = 4
    /// The matvec's x (all ones) and y: each y row is then the sum of its 1024 ones.
    private let kernelX: Tensor
    private let kernelY: Tensor

    init() {
        let bytes = max(256 << 20, 8 * (Calibration.lastLevelCacheBytes ?? 0))
        count = bytes / 4
        let memory = Self.allocateHugePages(bytes: bytes)
        (mapping, mappingBytes) = (memory.mapping, memory.bytes)
        base = memory.aligned.bindMemory(to: Float.self, capacity: bytes / 4)
        // Written once so every page is backed by its own memory (an untouched page reads as the
        // kernel's shared zero page, from cache).
        base.update(repeating: 1, count: count)
        partials = Tensor(zeros: [16 * 16])
        kernelX = Tensor(zeros: [Self.kernelColumns])
        kernelX.pointer.update(repeating: 1, count: Self.kernelColumns)
        kernelY = Tensor(zeros: [sliceFloats / Self.kernelColumns])
    }

    deinit {
        #if os(Linux)
        if mappingBytes > count * 4 { munmap(mapping, mappingBytes); return }  // see allocateHugePages
        #endif
        mapping.deallocate()
    }

    /// Anonymous memory with a 2 MB-aligned start inside it, `MADV_HUGEPAGE` on Linux; returns
    /// the whole mapping (to free) and the aligned start.
    private static func allocateHugePages(bytes: Int) -> (mapping: UnsafeMutableRawPointer, bytes: Int, aligned: UnsafeMutableRawPointer) {
        #if os(Linux)
        let huge = 2 << 20, total = bytes + huge
        if let m = mmap(nil, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), m != MAP_FAILED {
            let aligned = UnsafeMutableRawPointer(bitPattern: (Int(bitPattern: m) + huge - 1) & ~(huge - 1))!
            _ = madvise(aligned, bytes, MADV_HUGEPAGE)
            return (m, total, aligned)
        }
        #endif
        let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        return (p, bytes, p)
    }

    /// Bytes held by the probe (not part of the engine's memory).
    var byteCount: Int { count * 4 }
    var sliceBytes: Int { min(sliceFloats, count) * 4 }

    /// One slice on one lane, then `burstSlices` slices on all lanes with a matvec slice after
    /// every `kernelEvery`-th: the GB/s of the summed slices (the one-lane and matvec slices go to
    /// windows of their own). The one-lane slice comes first because the workers park while the
    /// caller streams alone (~2 ms, past their 200 µs of spinning); the two-lane slices wake them
    /// before the next decode step.
    func readBurst() -> Double {
        readSliceOnOneLane()
        _ = takeReadGBps()
        var kernel = (bytes: 0.0, seconds: 0.0)
        for i in 0..<Self.burstSlices {
            readSlice()
            if i % Self.kernelEvery == Self.kernelEvery - 1 {
                let (seconds, n) = matvecNextSlice()
                kernel.seconds += seconds
                kernel.bytes += Double(n * 4)
            }
        }
        let gbps = takeReadGBps()
        if kernel.seconds > 0, gbps > 0 {
            let kernelGBps = kernel.bytes / kernel.seconds / 1e9
            kernelBursts.append((kernelGBps, kernelGBps / gbps))
        }
        return gbps
    }

    /// Streams the next slice as y = W·x for W its rows of `kernelColumns` floats, on the pool
    /// like a decode step's matvec; its seconds and the floats read. Each y row is the sum of its
    /// row (the buffer holds ones), which `kernelChecksum` checks.
    func matvecNextSlice() -> (seconds: Double, floats: Int) {
        let (start, n) = takeNextSlice()
        let rows = n / Self.kernelColumns
        lastSliceCount = rows * Self.kernelColumns
        let w = WeightMatrix(rows: rows, cols: Self.kernelColumns, storage: .f32(UnsafePointer(base + start)), owner: nil)
        var clock = Stopwatch()
        w.apply(kernelX.pointer, rows: 1, into: kernelY.pointer)
        return (clock.lap(), lastSliceCount)
    }

    /// The first and last y rows of the last matvec slice (each `kernelColumns` when all was read).
    var kernelChecksum: (first: Float, last: Float) {
        (kernelY.pointer[0], kernelY.pointer[lastSliceCount / Self.kernelColumns - 1])
    }

    /// The matvec slices' mean GB/s and mean ratio to the summed slices of the same burst, over
    /// the bursts since the last call (nil if none), and starts over.
    func takeKernelRead() -> (gbps: Double, ofProbe: Double)? {
        defer { kernelBursts.removeAll() }
        guard !kernelBursts.isEmpty else { return nil }
        let n = Double(kernelBursts.count)
        return (kernelBursts.reduce(0) { $0 + $1.gbps } / n, kernelBursts.reduce(0) { $0 + $1.ofProbe } / n)
    }

    /// Streams the next slice of the buffer across the worker lanes and adds it to the window.
    func readSlice() {
        let (seconds, n) = streamNextSlice(chunks: 16)   // claimed dynamically like matvec pieces
        window.seconds += seconds
        window.bytes += Double(n * 4)
    }

    /// Streams the next slice on this thread alone (the same round robin) into one lane's window.
    func readSliceOnOneLane() {
        let (seconds, n) = streamNextSlice(chunks: 1)   // one chunk: the pool runs it on the caller
        oneLaneWindow.seconds += seconds
        oneLaneWindow.bytes += Double(n * 4)
    }

    /// Sums the next slice in `chunks` pool chunks; its seconds and floats.
    private func streamNextSlice(chunks: Int) -> (seconds: Double, floats: Int) {
        let (start, n) = takeNextSlice()
        lastSliceCount = n
        lastChunks = chunks
        let task = SumChunks(base: base + start, count: n, chunks: chunks, partials: partials.pointer)
        var clock = Stopwatch()
        WorkerPool.shared.run(chunks: task.chunks, task)
        return (clock.lap(), n)
    }

    /// The next slice of the round robin (its first float and length), and moves past it.
    private func takeNextSlice() -> (start: Int, floats: Int) {
        let start = nextSlice * sliceFloats
        let n = min(sliceFloats, count - start)
        nextSlice = start + n >= count ? 0 : nextSlice + 1
        return (start, n)
    }

    /// One lane's GB/s over its slices since the last call (nil if none), and starts a new window.
    func takeOneLaneReadGBps() -> Double? {
        defer { oneLaneWindow = (0, 0) }
        return oneLaneWindow.seconds > 0 ? oneLaneWindow.bytes / oneLaneWindow.seconds / 1e9 : nil
    }

    /// GB/s over the slices read since the last call (0 if none), and starts a new window.
    func takeReadGBps() -> Double {
        defer { window = (0, 0) }
        return window.seconds > 0 ? window.bytes / window.seconds / 1e9 : 0
    }

    /// Σ of the last slice (every element is 1, so it equals `lastSliceCount` when all was read).
    var checksum: Float { (0..<lastChunks).reduce(0) { $0 + partials.pointer[$1 * 16] } }

    /// sgemm GFLOP/s: the best of `runs` 1024³ products through `Kernels.gemm`.
    func gemmGFLOPS(runs: Int = 3) -> Double {
        let options = CalibrationOptions(gemmSize: 1024, bufferBytes: 4, repetitions: runs, minimumSeconds: 0)
        return Calibration.measureGEMM(n: 1024, options: options) { _ in }
    }

    /// Chunk c sums its 1/chunks of the slice with the calibration's read kernel.
    private struct SumChunks: PoolTask {
        let base: UnsafePointer<Float>, count: Int, chunks: Int, partials: UnsafeMutablePointer<Float>
        func callAsFunction(_ c: Int, _ scratch: Scratch) {
            let per = (count / chunks) & ~15
            let range = c * per ..< (c == chunks - 1 ? count : (c + 1) * per)
            partials[c * 16] = Kernels.streamSum(base, range)
        }
    }
}
