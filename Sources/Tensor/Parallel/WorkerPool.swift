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

    /// The environment variable that sets the shared pool's lanes.
    public static let threadsVariable = "TINYSEEK_THREADS"

    /// `TINYSEEK_THREADS`, else the active processor count.
    public static var defaultLaneCount: Int {
        if let text = ProcessInfo.processInfo.environment[threadsVariable], let n = Int(text), n >= 1 { return n }
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
    public func run<Task: PoolTask>(chunks: Int, _ task: Task) { core.run(chunks: chunks, task, then: NoLeadingReads?.none) }

    /// `run`, telling the lanes what the job after this one reads first: a lane with no chunks of
    /// this job left pulls its share of `next` into its cache until the next job starts (a worker)
    /// or this one ends (the caller), so waiting for the last chunks and for the caller's serial
    /// work between the jobs becomes streaming (nil: the plain `run`). See `pullBytes`.
    @inline(__always)
    public func run<Task: PoolTask, Next: LeadingReads>(chunks: Int, _ task: Task, then next: Next?) {
        core.run(chunks: chunks, task, then: next)
    }

    /// Runs `body` with the lanes' pulls of named next jobs on (`run(chunks:_:then:)`), and waits
    /// for every lane to stop pulling before it returns. The memory a job names as the next one's
    /// must stay valid until then: a worker may still be reading it after that job's `run` has
    /// returned, while the caller prepares the next job. Outside such a scope `then` is ignored.
    /// Scopes belong to the calling thread (several threads may run models on one pool), and the
    /// end of a thread's outermost scope stops every lane's pulls, whoever named them.
    /// (A decode step is one: `Model.forward`. With one scope count for all threads, a scope
    /// ended without waiting while another thread's was open, and a lane read a model's weights
    /// after they were unmapped.)
    public func withPulls<R>(_ body: () throws -> R) rethrows -> R {
        core.beginPulls()
        defer { core.endPulls() }
        return try body()
    }

    /// Bytes the lanes have pulled so far (`run(chunks:_:then:)`), from any thread's jobs.
    public var pulledBytes: Int { core.pulledBytes }

    /// The first chunk of lane `lane`'s range in a job of `chunks` chunks on `lanes` lanes: lane r
    /// starts at r·chunks/lanes (the caller, lane 0, has the first range; see `PoolCore`).
    @inline(__always)
    public static func firstChunk(lane: Int, of lanes: Int, chunks: Int) -> Int { lane * chunks / lanes }

    /// The chunk lane `lane` runs first in a job of `chunks` chunks: the front of its range, nil
    /// if its range is empty (it then only takes chunks from the backs of the others). A job of
    /// one chunk runs on the caller.
    public static func leadingChunk(lane: Int, of lanes: Int, chunks: Int) -> Int? {
        guard chunks > 1, lanes > 1 else { return lane == 0 && chunks > 0 ? 0 : nil }
        let lo = firstChunk(lane: lane, of: lanes, chunks: chunks)
        return lo < firstChunk(lane: lane + 1, of: lanes, chunks: chunks) ? lo : nil
    }

    /// At most this many bytes of the next job a lane pulls into its cache (`run(chunks:_:then:)`):
    /// half the 1 MB L2 of a core here, so its first pieces of that job still find them there.
    /// A decode step has ~56 jobs, and a lane waits between them for the other's last piece and
    /// for the caller's serial work (norms, routing, building the next job: up to ~8 µs, 240 KB at
    /// a lane's ~30 GB/s); pulling its first bytes of the next job in that time took ~1.5% off an
    /// F32 token on the benchmark model (`tinyseek bench`, alternate steps with and without,
    /// ~25 GB/s).
    public static let pullBytes = 512 << 10

    /// Records when each lane works in every parallel job from now on (nil: stop). Set it only
    /// between jobs, from the thread that runs them.
    public var timeline: PoolTimeline? {
        get { core.timeline }
        set { core.timeline = newValue }
    }

    /// The same with a closure, for tests and cold paths: allocates the closure's context per call.
    public func run(chunks: Int, _ body: (Int, Scratch) -> Void) {
        withoutActuallyEscaping(body) { core.run(chunks: chunks, ClosureTask(body: $0), then: NoLeadingReads?.none) }
    }
}

/// The memory each lane reads first when a job runs (`WorkerPool.run(chunks:_:then:)`).
public protocol LeadingReads {
    /// The contiguous bytes lane `lane` of `lanes` reads first, or nil if not known.
    func leadingRead(lane: Int, of lanes: Int) -> UnsafeRawBufferPointer?
}

/// No next job (the plain `run`).
struct NoLeadingReads: LeadingReads {
    func leadingRead(lane: Int, of lanes: Int) -> UnsafeRawBufferPointer? { nil }
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
    /// The timeline the current job is recorded in: `timeline` as the job began (another thread
    /// may set `timeline` while this one's job runs; its record must still be completed).
    private var jobTimeline: PoolTimeline?
    /// Per lane, what it pulls once it has no chunks of the current job left: the next job's
    /// leading read. Written by the caller before it publishes a job, read by a worker that may
    /// still be pulling when the caller writes the next job's, so a seqlock: `job` is -1 while
    /// the region changes, then the job's id (see `pullNextRead`). Cleared when a scope ends.
    private let nextReads: UnsafeMutablePointer<NextRead>
    private struct NextRead: ~Copyable {
        let job = Atomic<Int>(-1)
        let start = Atomic<UInt>(0)
        let bytes = Atomic<Int>(0)
    }
    /// Keeps the pulled words observable (one cache line a lane).
    private let pullSinks: UnsafeMutablePointer<UInt64>
    /// Whether pulls are on, and how many lanes are inside `pullNextRead`. A job run inside a
    /// `WorkerPool.withPulls` scope turns them on; the end of a scope turns them off, waits for
    /// the count to reach 0 and clears every region. A lane counts itself in, then checks
    /// `pullsOn`, then rechecks its region's tag: all sequentially consistent, so either the scope
    /// sees the lane and waits, or the lane sees pulls off, or (pulls turned on again by another
    /// thread's job) it finds its region cleared. `pullLock` orders a scope's end against another
    /// thread's job turning pulls on (never held for longer than that).
    private let pullsOn = Atomic<Bool>(false)
    private let pullingLanes = Atomic<Int>(0)
    private let pullLock = Atomic<Bool>(false)
    /// The calling thread's depth of `withPulls` scopes on this pool (thread-specific: two threads
    /// may run models on the shared pool, each in its own scopes).
    private var depthKey = pthread_key_t()
    private var threadDepth: Int {
        get { Int(bitPattern: pthread_getspecific(depthKey)) }
        set { pthread_setspecific(depthKey, UnsafeRawPointer(bitPattern: newValue)) }
    }
    /// Bytes pulled so far, all lanes.
    private let pulled = Atomic<Int>(0)
    var pulledBytes: Int { pulled.load(ordering: .relaxed) }
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
        nextReads = .allocate(capacity: laneCount)
        for lane in 0..<laneCount { (nextReads + lane).initialize(to: NextRead()) }
        pullSinks = .allocate(capacity: laneCount * 8)
        pullSinks.initialize(repeating: 0, count: laneCount * 8)
        pthread_key_create(&depthKey, nil)
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
        nextReads.deinitialize(count: laneCount)
        nextReads.deallocate()
        pullSinks.deallocate()
        pthread_key_delete(depthKey)
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

    func run<Task: PoolTask, Next: LeadingReads>(chunks: Int, _ task: Task, then next: Next?) {
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
            jobTimeline = timeline
            timelineSlot = jobTimeline?.beginJob() ?? -1
            completed.store(0, ordering: .relaxed)
            // (A region left from an earlier job of the scope has that job's id: never this one's.)
            let pulls = next != nil && threadDepth > 0
            if let next, pulls {
                lockPulls()
                pullsOn.store(true, ordering: .sequentiallyConsistent)
                for lane in 0..<laneCount { publishNextRead(next.leadingRead(lane: lane, of: laneCount), lane: lane, job: id) }
                pullLock.store(false, ordering: .releasing)
            }
            // Lane r's range: chunks [r·n/L, (r+1)·n/L). The stores publish `task` and `invoke`
            // to any lane whose claim reads them.
            for r in 0..<laneCount {
                let lo = WorkerPool.firstChunk(lane: r, of: laneCount, chunks: chunks)
                let hi = WorkerPool.firstChunk(lane: r + 1, of: laneCount, chunks: chunks)
                counter(r).pointee.store(id << (2 * Self.chunkBits) | hi << Self.chunkBits | lo, ordering: .releasing)
            }
            current.store(id, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(&mutex)
                pthread_cond_broadcast(&condition)
                pthread_mutex_unlock(&mutex)
            }
            work(job: id, lane: 0)
            if pulls { pullNextRead(lane: 0, job: id) { completed.load(ordering: .acquiring) < chunks } }
            while completed.load(ordering: .acquiring) < chunks {}
            if timelineSlot >= 0 { jobTimeline?.endJob(timelineSlot) }
            jobTimeline = nil
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
            if timelineSlot >= 0 { jobTimeline?.laneFinished(timelineSlot, lane: lane) }
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
            pullNextRead(lane: lane, job: id) { current.load(ordering: .relaxed) == id }
        }
    }

    func beginPulls() { threadDepth += 1 }

    /// Ends the calling thread's scope; the outermost stops every lane's pulls (see `pullsOn`).
    func endPulls() {
        threadDepth -= 1
        guard threadDepth == 0 else { return }
        lockPulls()
        pullsOn.store(false, ordering: .sequentiallyConsistent)
        while pullingLanes.load(ordering: .sequentiallyConsistent) > 0 {}
        for lane in 0..<laneCount { publishNextRead(nil, lane: lane, job: -1) }
        pullLock.store(false, ordering: .releasing)
    }

    private func lockPulls() {
        while !pullLock.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {}
    }

    /// Sets lane's next read for job `id` (nil: none); called before the job is published.
    private func publishNextRead(_ region: UnsafeRawBufferPointer?, lane: Int, job id: Int) {
        let r = nextReads + lane
        r.pointee.job.store(-1, ordering: .relaxed)
        atomicMemoryFence(ordering: .releasing)   // -1 is seen before any of the new region
        guard let region, let start = region.baseAddress, region.count > 0 else { return }
        r.pointee.start.store(UInt(bitPattern: start), ordering: .relaxed)
        r.pointee.bytes.store(min(region.count, WorkerPool.pullBytes), ordering: .relaxed)
        r.pointee.job.store(id, ordering: .releasing)
    }

    /// Reads one word of every cache line of lane's next read for job `id` (if it has one), 4 KB
    /// at a time while `keepGoing()` and pulls are on. Loads, not prefetch hints: with prefetches
    /// (which cannot fault) the same decode gained ~1% against ~1.5%. Four independent chains, so
    /// that many lines are in flight.
    private func pullNextRead(lane: Int, job id: Int, _ keepGoing: () -> Bool) {
        let r = nextReads + lane
        guard r.pointee.job.load(ordering: .acquiring) == id else { return }
        pullingLanes.add(1, ordering: .sequentiallyConsistent)
        defer { pullingLanes.subtract(1, ordering: .releasing) }
        guard pullsOn.load(ordering: .sequentiallyConsistent) else { return }
        let start = r.pointee.start.load(ordering: .relaxed), bytes = r.pointee.bytes.load(ordering: .relaxed)
        atomicMemoryFence(ordering: .acquiring)
        guard r.pointee.job.load(ordering: .relaxed) == id, let p = UnsafeRawPointer(bitPattern: start) else { return }
        var a: UInt64 = 0, b: UInt64 = 0, c: UInt64 = 0, d: UInt64 = 0
        var page = 0
        while page < bytes && keepGoing() && pullsOn.load(ordering: .relaxed) {
            var line = page
            let end = min(page + 4096, bytes)
            while line + 256 <= end {
                a ^= p.loadUnaligned(fromByteOffset: line, as: UInt64.self)
                b ^= p.loadUnaligned(fromByteOffset: line + 64, as: UInt64.self)
                c ^= p.loadUnaligned(fromByteOffset: line + 128, as: UInt64.self)
                d ^= p.loadUnaligned(fromByteOffset: line + 192, as: UInt64.self)
                line += 256
            }
            while line + 8 <= end { a ^= p.loadUnaligned(fromByteOffset: line, as: UInt64.self); line += 64 }
            page = end
        }
        pullSinks[lane * 8] = a ^ b ^ c ^ d
        pulled.add(min(page, bytes), ordering: .relaxed)
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
