import Foundation

/// When each lane of a `WorkerPool` was busy: per job, when it was handed out, when each lane ran
/// out of chunks, and when the caller saw it complete; plus the caller's step boundaries. It
/// answers where a memory-bound decode step loses the roof: time outside any job (serial work on
/// the caller while the other lanes wait), and time inside a job with a lane already done (the
/// job's tail). `tinyseek bench` prints the breakdown for its decode test.
///
/// Attach it with `WorkerPool.timeline` between jobs; recording costs four clock reads a job.
/// Storage is allocated up front: once `capacity` jobs are recorded, later jobs are counted in
/// `dropped` and not stored.
public final class PoolTimeline: @unchecked Sendable {
    public let capacity: Int
    public let lanes: Int
    /// Jobs recorded (at most `capacity`).
    public private(set) var count = 0
    /// Jobs not recorded because the timeline was full.
    public private(set) var dropped = 0
    /// Nanoseconds (`DispatchTime` uptime) of the hand-out and the completion of job i.
    private let submitted: UnsafeMutablePointer<UInt64>
    private let ended: UnsafeMutablePointer<UInt64>
    /// When lane r ran out of chunks in job i, at [i·lanes + r]; 0 if it ran none.
    private let laneDone: UnsafeMutablePointer<UInt64>
    /// Caller-marked steps: [start, end) in nanoseconds.
    public private(set) var steps: [(start: UInt64, end: UInt64)] = []

    public init(capacity: Int, lanes: Int) {
        self.capacity = max(capacity, 0)
        self.lanes = max(lanes, 1)
        submitted = .allocate(capacity: max(self.capacity, 1))
        ended = .allocate(capacity: max(self.capacity, 1))
        laneDone = .allocate(capacity: max(self.capacity * self.lanes, 1))
        laneDone.initialize(repeating: 0, count: max(self.capacity * self.lanes, 1))
    }

    deinit {
        submitted.deallocate()
        ended.deallocate()
        laneDone.deallocate()
    }

    @inline(__always)
    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// Starts a record for a job handed out now: its slot, or -1 when full.
    func beginJob() -> Int {
        guard count < capacity else { dropped += 1; return -1 }
        submitted[count] = Self.now()
        ended[count] = 0
        for r in 0..<lanes { laneDone[count * lanes + r] = 0 }
        count += 1
        return count - 1
    }

    /// Lane `lane` ran its last chunk of job `slot` (each lane writes only its own entry; lanes
    /// past `lanes`, of a pool larger than the timeline was made for, are not recorded).
    @inline(__always)
    func laneFinished(_ slot: Int, lane: Int) {
        guard lane < lanes else { return }
        laneDone[slot * lanes + lane] = Self.now()
    }

    func endJob(_ slot: Int) { ended[slot] = Self.now() }

    /// Records a job from given times (for tests of the breakdown).
    func record(submitted s: UInt64, laneDone done: [UInt64], ended e: UInt64) {
        guard count < capacity else { dropped += 1; return }
        submitted[count] = s
        ended[count] = e
        for r in 0..<lanes { laneDone[count * lanes + r] = r < done.count ? done[r] : 0 }
        count += 1
    }

    /// Marks the start and the end of one step (a decode step) on the caller's thread.
    public func beginStep() { steps.append((Self.now(), 0)) }
    public func endStep() { if !steps.isEmpty { steps[steps.count - 1].end = Self.now() } }
    /// The same with given times (for tests).
    func markStep(start: UInt64, end: UInt64) { steps.append((start, end)) }

    /// Job i: hand-out, completion, and when each lane ran out of chunks (nil if it ran none).
    public func job(_ i: Int) -> (submitted: UInt64, ended: UInt64, laneDone: [UInt64?]) {
        precondition(i >= 0 && i < count, "job \(i) of \(count)")
        return (submitted[i], ended[i], (0..<lanes).map { laneDone[i * lanes + $0] == 0 ? nil : laneDone[i * lanes + $0] })
    }

    /// Where the marked steps' time went, averaged per step; nil with no complete step.
    public func breakdown() -> LaneBreakdown? {
        let complete = steps.filter { $0.end > $0.start }
        guard !complete.isEmpty else { return nil }
        var stepNs = 0.0, jobs = 0, inJobs = 0.0, waiting = 0.0
        var i = 0
        for step in complete {
            stepNs += Double(step.end - step.start)
            while i < count && submitted[i] < step.start { i += 1 }
            while i < count && ended[i] <= step.end {
                let (s, e) = (submitted[i], ended[i])
                // A record never completed (0: its pool stopped recording mid-job) counts as no job.
                guard e >= s else { i += 1; continue }
                jobs += 1
                inJobs += Double(e - s)
                // Lane-time inside the job after a lane ran out (a lane that ran nothing waited all of it).
                for r in 0..<lanes {
                    let done = laneDone[i * lanes + r]
                    waiting += Double(e - (done == 0 ? s : min(max(done, s), e)))
                }
                i += 1
            }
        }
        let n = Double(complete.count)
        return LaneBreakdown(steps: complete.count, lanes: lanes, jobsPerStep: Double(jobs) / n,
                             stepSeconds: stepNs / n / 1e9, outsideJobsSeconds: (stepNs - inJobs) / n / 1e9,
                             laneWaitingSeconds: waiting / n / 1e9)
    }
}

/// Per step: how long it took, how much of it no parallel job was running (the caller alone, the
/// other lanes idle), and how much lane-time went to waiting inside jobs for the last chunks.
public struct LaneBreakdown: Codable, Sendable, Equatable {
    public let steps: Int
    public let lanes: Int
    public let jobsPerStep: Double
    public let stepSeconds: Double
    /// Time between jobs: the caller's serial work (norms, RoPE, routing, attention's own small
    /// jobs' hand-offs), during which lanes − 1 lanes are idle.
    public let outsideJobsSeconds: Double
    /// Lane-seconds inside jobs after a lane ran out of chunks, summed over lanes.
    public let laneWaitingSeconds: Double
    /// Bytes the lanes pulled into their caches per step, the next jobs' first bytes, while they
    /// waited (`WorkerPool.run(chunks:_:then:)`; the timeline does not see them: set by its user).
    public var pulledBytesPerStep: Double?

    /// Share of the lanes' time (lanes × step) idle: lanes − 1 of them outside jobs, plus the waits.
    public var idleShare: Double {
        let capacity = Double(lanes) * stepSeconds
        return capacity > 0 ? (Double(lanes - 1) * outsideJobsSeconds + laneWaitingSeconds) / capacity : 0
    }

    enum CodingKeys: String, CodingKey {
        case steps, lanes
        case jobsPerStep = "jobs_per_step"
        case stepSeconds = "step_seconds"
        case outsideJobsSeconds = "outside_jobs_seconds"
        case laneWaitingSeconds = "lane_waiting_seconds"
        case pulledBytesPerStep = "pulled_bytes_per_step"
    }
}
