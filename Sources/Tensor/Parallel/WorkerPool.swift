import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A persistent pool of worker threads for the hundreds of small parallel sections a decode step
/// runs (one per matvec): the caller works too, and idle workers spin briefly before parking.
///
/// Why not `DispatchQueue.concurrentPerform`: it costs microseconds a call (queue hand-off,
/// semaphore), and a 256×1024 expert matvec is only tens of microseconds of work. Here a waiting
/// worker sees a new job within a few hundred nanoseconds by polling one atomic, and parks on a
/// condition variable only after `spinSeconds` without work, so an idle process burns no CPU.
///
/// Work is split into chunks, one contiguous range of them per lane, claimed dynamically (see
/// `PoolCore`): a lane whose core is busy with another process has the tail of its range taken
/// by the others, and the caller never waits for a worker that has not started, only for chunks
/// already claimed.
///
/// Measured against `DispatchQueue.concurrentPerform` doing the same chunking (bench model,
/// interleaved runs): decode 190-229 vs 148-163 tokens/s (Q8_0), 68-69 vs 61 (F32). The cost of
/// spinning: on an oversubscribed machine (another process busy on one of the two cores) a lane
/// descheduled while holding a chunk stalls the whole job, and decode measured 37-42 tokens/s on
/// two lanes against 52-57 on one (`TINYSEEK_THREADS=1`). A fallback to one lane after a long
/// wait was tried and lost ~15% on a quiet machine (long chunks and worker wake-ups looked like
/// stalls), so it is not in.
///
/// One job at a time: a caller that finds the pool busy (another thread's job, or a nested call
/// from inside a chunk) runs its chunks inline, serially, with a private scratch buffer.
///
/// A job is a `PoolTask` value, which the workers call through a pointer to the caller's copy:
/// nothing is allocated per job, so the decode loop can hand out hundreds a token. (A Swift
/// closure would have to be stored for the workers, and storing a non-escaping closure, even via
/// `withoutActuallyEscaping`, allocates its context; the closure form of `run` is kept for tests
/// and cold paths.)
public final class WorkerPool: @unchecked Sendable {
    /// The pool every kernel uses: `TINYSEEK_THREADS` lanes if set, else one per active core.
    /// Creating it also puts OpenBLAS on one thread per call (see `BLAS.useCallerThreadOnly`).
    public static let shared: WorkerPool = {
        BLAS.useCallerThreadOnly()
        return WorkerPool(lanes: defaultLaneCount)
    }()

    /// `TINYSEEK_THREADS`, else the active processor count.
    public static var defaultLaneCount: Int {
        if let text = ProcessInfo.processInfo.environment["TINYSEEK_THREADS"], let n = Int(text), n >= 1 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    private let core: PoolCore

    /// Threads that run chunks, the calling thread included (1 = everything runs inline).
    public var laneCount: Int { core.laneCount }
    /// How long an idle worker polls before it parks.
    public var spinSeconds: Double { core.spinSeconds }

    /// Starts `lanes − 1` worker threads; they end when the pool is released.
    public init(lanes: Int, spinSeconds: Double = 2e-4) {
        core = PoolCore(lanes: lanes, spinSeconds: spinSeconds)
    }

    deinit { core.stop() }

    /// Runs `task(chunk, scratch)` for every chunk in 0..<chunks across the lanes and returns when
    /// all are done. `scratch` belongs to the lane running the chunk (reuse it freely inside the
    /// chunk). Chunks must be independent: they run in any order, concurrently. Allocation-free.
    @inline(__always)
    public func run<Task: PoolTask>(chunks: Int, _ task: Task) { core.run(chunks: chunks, task) }

    /// Records when each lane works in every parallel job from now on (nil: stop). Set it only
    /// between jobs, from the thread that runs them.
    public var timeline: PoolTimeline? {
        get { core.timeline }
        set { core.timeline = newValue }
    }

    /// The same with a closure, for tests and cold paths: allocates the closure's context per call.
    public func run(chunks: Int, _ body: (Int, Scratch) -> Void) {
        withoutActuallyEscaping(body) { core.run(chunks: chunks, ClosureTask(body: $0)) }
    }
}

/// One parallel job: chunk `chunk` of it, run on a lane with that lane's `scratch`.
public protocol PoolTask {
    func callAsFunction(_ chunk: Int, _ scratch: Scratch)
}

struct ClosureTask: PoolTask {
    let body: (Int, Scratch) -> Void
    func callAsFunction(_ chunk: Int, _ scratch: Scratch) { body(chunk, scratch) }
}

/// The shared state of a pool and its worker threads (which keep it alive until `stop`).
///
/// How chunks are handed out: a job's chunks 0..<n are cut into one contiguous range per lane,
/// in order (the caller, lane 0, has the first). A lane claims the front of its own range, chunk
/// after chunk, and only when that is empty takes chunks from the *back* of the other ranges.
/// Chunks are consecutive pieces of memory (rows of a matrix, the matrices of a `MatvecBatch`),
/// so each lane streams one long run of addresses that the hardware prefetcher follows, as a
/// single thread would, instead of jumping every piece. With one shared counter the lanes took
/// alternate 64 KB pieces; at 50 GB/s of free bandwidth a decode step then reached 73% of the
/// read roof against 95–100% for one big matvec, each jump restarting the prefetcher's stream.
/// Stealing from the back keeps the owner's run intact while a lane whose core is busy with
/// another process is relieved of its tail.
final class PoolCore: @unchecked Sendable {
    let laneCount: Int
    let spinSeconds: Double

    /// The current job's id: a new id is what wakes the workers.
    private let current = Atomic<Int>(0)
    /// One claim counter per lane's range, a cache line apart (`counterStride` Ints):
    /// job id << 40 | end << 20 | next. A claim is a compare-exchange that checks the id, so a
    /// worker that wakes late cannot claim a chunk of a job that is over.
    private let counters: UnsafeMutablePointer<Atomic<Int>>
    private static let counterStride = 8
    private let completed = Atomic<Int>(0)
    private let owned = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private var jobID = 0
    /// The running job: the caller's task value and a function that runs one of its chunks.
    /// Valid while a chunk of it is claimed and not yet completed.
    private var task: UnsafeRawPointer?
    private var invoke: ((UnsafeRawPointer, Int, Scratch) -> Void)?
    /// One scratch buffer per lane, grown on demand and kept (no allocation in steady state).
    private let scratch: [Scratch]
    /// Lane timing, when recording (see `PoolTimeline`), and the current job's slot in it (-1:
    /// not recorded). Both are written before a job is published and read by lanes after a claim.
    var timeline: PoolTimeline?
    private var timelineSlot = -1
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()

    static let chunkBits = 20
    static let maxChunks = (1 << chunkBits) - 1
    private static let idMask = (1 << 23) - 1

    init(lanes: Int, spinSeconds: Double) {
        laneCount = max(1, lanes)
        self.spinSeconds = spinSeconds
        scratch = (0..<max(1, lanes)).map { _ in Scratch() }
        counters = .allocate(capacity: laneCount * Self.counterStride)
        for i in 0..<laneCount * Self.counterStride { (counters + i).initialize(to: Atomic<Int>(0)) }
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
        for lane in 1..<laneCount {
            // Each worker keeps the core alive until `stop()`.
            let thread = Thread { self.workerLoop(lane: lane) }
            thread.name = "tinyseek-worker-\(lane)"
            thread.start()
        }
    }

    // The workers hold the core until `stop()`, so this runs only once they have all ended.
    deinit {
        counters.deinitialize(count: laneCount * Self.counterStride)
        counters.deallocate()
    }

    /// Ends the workers: a new job id with no chunks and the stop flag, which they check on waking.
    func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        jobID = (jobID + 1) & Self.idMask
        current.store(jobID, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(&mutex)
        pthread_cond_broadcast(&condition)
        pthread_mutex_unlock(&mutex)
    }

    func run<Task: PoolTask>(chunks: Int, _ task: Task) {
        guard chunks > 0 else { return }
        guard owned.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            runInline(chunks: chunks, task)
            return
        }
        guard laneCount > 1, chunks > 1, chunks <= Self.maxChunks else {
            // Nothing to share: run here, but with lane 0's scratch (no allocation).
            scratch[0].startJob()
            for chunk in 0..<chunks { task(chunk, scratch[0]) }
            owned.store(false, ordering: .releasing)
            return
        }
        withUnsafePointer(to: task) { pointer in
            self.task = UnsafeRawPointer(pointer)
            // Captures nothing once specialised for a concrete Task: a thin function, no context.
            invoke = { raw, chunk, scratch in raw.assumingMemoryBound(to: Task.self).pointee(chunk, scratch) }
            jobID = (jobID + 1) & Self.idMask
            let id = jobID
            timelineSlot = timeline?.beginJob() ?? -1
            completed.store(0, ordering: .relaxed)
            // Lane r's range: chunks [r·n/L, (r+1)·n/L). The stores publish `task` and `invoke`
            // to any lane whose claim reads them.
            for r in 0..<laneCount {
                let lo = r * chunks / laneCount, hi = (r + 1) * chunks / laneCount
                counter(r).pointee.store(id << (2 * Self.chunkBits) | hi << Self.chunkBits | lo, ordering: .releasing)
            }
            current.store(id, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(&mutex)
                pthread_cond_broadcast(&condition)
                pthread_mutex_unlock(&mutex)
            }
            work(job: id, lane: 0)
            while completed.load(ordering: .acquiring) < chunks {}
            if timelineSlot >= 0 { timeline?.endJob(timelineSlot) }
            self.task = nil
        }
        owned.store(false, ordering: .releasing)
    }

    /// The chunks on the calling thread, in order, with a scratch buffer of their own: for a pool
    /// busy with another thread's job or a nested call from inside a chunk.
    private func runInline<Task: PoolTask>(chunks: Int, _ task: Task) {
        let own = Scratch()
        for chunk in 0..<chunks { task(chunk, own) }
    }

    @inline(__always)
    private func counter(_ range: Int) -> UnsafeMutablePointer<Atomic<Int>> { counters + range * Self.counterStride }

    /// Claims and runs chunks of job `id` until none are left (or the job is over): the front of
    /// this lane's own range first, then the backs of the others'.
    ///
    /// The lane reports its chunks done once, at the end: `completed` is the one cache line all
    /// lanes write, and an atomic add per 64 KB piece had it bouncing between the cores.
    private func work(job id: Int, lane: Int) {
        scratch[lane].startJob()
        var done = 0
        while let chunk = claimFront(job: id, range: lane) { runChunk(chunk, lane: lane); done += 1 }
        for step in 1..<laneCount {
            let r = (lane + step) % laneCount
            while let chunk = claimBack(job: id, range: r) { runChunk(chunk, lane: lane); done += 1 }
        }
        if done > 0 {
            if timelineSlot >= 0 { timeline?.laneFinished(timelineSlot, lane: lane) }
            completed.add(done, ordering: .releasing)
        }
    }

    @inline(__always)
    private func runChunk(_ chunk: Int, lane: Int) {
        if let task, let invoke { invoke(task, chunk, scratch[lane]) }
    }

    /// The next chunk at the front of `range` (next += 1), or nil when it is empty or the job over.
    private func claimFront(job id: Int, range r: Int) -> Int? {
        claim(job: id, range: r) { next, _ in (next, 1) }
    }

    /// The last chunk of `range` (end −= 1), or nil when it is empty or the job over.
    private func claimBack(job id: Int, range r: Int) -> Int? {
        claim(job: id, range: r) { _, end in (end - 1, -(1 << Self.chunkBits)) }
    }

    /// A compare-exchange on the range's counter: `pick(next, end)` gives the chunk and the change.
    @inline(__always)
    private func claim(job id: Int, range r: Int, _ pick: (Int, Int) -> (chunk: Int, delta: Int)) -> Int? {
        let mask = (1 << Self.chunkBits) - 1
        let c = counter(r)
        var t = c.pointee.load(ordering: .acquiring)
        while true {
            let next = t & mask, end = (t >> Self.chunkBits) & mask
            guard t >> (2 * Self.chunkBits) == id, next < end else { return nil }
            let (chunk, delta) = pick(next, end)
            let (exchanged, original) = c.pointee.compareExchange(expected: t, desired: t + delta,
                                                                  ordering: .acquiringAndReleasing)
            if exchanged { return chunk }
            t = original
        }
    }

    private func workerLoop(lane: Int) {
        var seen = 0
        while true {
            var id = current.load(ordering: .acquiring)
            if id == seen {
                let start = DispatchTime.now().uptimeNanoseconds
                let limit = UInt64(spinSeconds * 1e9)
                var polls = 0
                while id == seen {
                    polls += 1
                    if polls & 1023 == 0, DispatchTime.now().uptimeNanoseconds - start > limit {
                        park(whileJob: seen)
                        polls = 0
                    }
                    id = current.load(ordering: .acquiring)
                }
            }
            seen = id
            if stopping.load(ordering: .sequentiallyConsistent) { return }
            work(job: id, lane: lane)
        }
    }

    /// Sleeps until a job other than `seen` is current. Paired with the check of `sleepers` in
    /// `run` (both sequentially consistent): either the submitter sees this sleeper and signals,
    /// or this worker sees the new job before waiting.
    private func park(whileJob seen: Int) {
        pthread_mutex_lock(&mutex)
        sleepers.add(1, ordering: .sequentiallyConsistent)
        while current.load(ordering: .sequentiallyConsistent) == seen {
            pthread_cond_wait(&condition, &mutex)
        }
        sleepers.subtract(1, ordering: .sequentiallyConsistent)
        pthread_mutex_unlock(&mutex)
    }
}

/// A lane's reusable float buffer (dequantised weight tiles, per-lane activations).
public final class Scratch: @unchecked Sendable {
    private var base: UnsafeMutablePointer<Float>?
    private var capacity = 0

    public init() {}

    deinit {
        base?.deallocate()
        quantizedValues?.deallocate()
        quantizedScales?.deallocate()
    }

    /// Q8_0 activations (see `WeightKernels.matvecQ8`): the last x this lane quantised in the
    /// current job. A job's inputs do not change while it runs, so the lane's pieces of one product
    /// (or of several that read the same x, like an expert's gate and up) quantise x once; the
    /// pool calls `startJob()` before the lane runs another job's chunks.
    private var quantizedX: (x: UnsafePointer<Float>, blocks: Int)?
    private var quantizedValues: UnsafeMutablePointer<Int16>?
    private var quantizedScales: UnsafeMutablePointer<Float>?
    private var quantizedCapacity = 0

    /// Forgets the quantised activations of the previous job.
    func startJob() {
        quantizedX = nil
        inJob = false
    }

    /// Whether this lane has run a chunk of the current job: `MatvecBatch` warms a lane's cache
    /// before its first piece (`MatvecBatch.warmUp`).
    var inJob = false

    /// x's first `blocks` blocks of 32 as int16 values and one scale per block, computed at the
    /// first request of the job and reused for the same x after that.
    func quantized(_ x: UnsafePointer<Float>, blocks: Int) -> (values: UnsafePointer<Int16>, scales: UnsafePointer<Float>) {
        if blocks > quantizedCapacity || quantizedValues == nil {
            quantizedValues?.deallocate()
            quantizedScales?.deallocate()
            quantizedCapacity = max(blocks, 32)
            quantizedValues = .allocate(capacity: quantizedCapacity * Q8_0.blockSize)
            quantizedScales = .allocate(capacity: quantizedCapacity)
            quantizedX = nil
        }
        let values = quantizedValues.unsafelyUnwrapped, scales = quantizedScales.unsafelyUnwrapped
        if let key = quantizedX, key.x == x, key.blocks == blocks { return (UnsafePointer(values), UnsafePointer(scales)) }
        WeightKernels.quantizeActivations(x, blocks: blocks, values: values, scales: scales)
        quantizedX = (x, blocks)
        return (UnsafePointer(values), UnsafePointer(scales))
    }

    /// At least `count` floats, 64-byte aligned; contents unspecified. Valid until the next call.
    public func floats(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity || base == nil {
            base?.deallocate()
            capacity = max(count, 16)
            base = UnsafeMutableRawPointer.allocate(byteCount: capacity * 4, alignment: 64)
                .bindMemory(to: Float.self, capacity: capacity)
        }
        return base.unsafelyUnwrapped
    }
}
