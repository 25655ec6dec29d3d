import Foundation
import Testing
@testable import Tensor

/// `PoolTimeline`: what the pool records per job, and the per-step breakdown `tinyseek bench`
/// prints (time outside any job, lane-time waiting inside jobs).
@Suite struct PoolTimelineTests {
    @Test("a 2-lane pool records every parallel job, each lane's finish inside it")
    func recordsJobs() {
        let pool = WorkerPool(lanes: 2)
        let timeline = PoolTimeline(capacity: 16, lanes: 2)
        pool.timeline = timeline
        let sums = UnsafeMutablePointer<Double>.allocate(capacity: 64)
        defer { sums.deallocate() }
        timeline.beginStep()
        for _ in 0..<3 {
            pool.run(chunks: 64) { c, _ in
                var s = 0.0
                for i in 0..<20_000 { s += Double(i ^ c) }
                sums[c] = s
            }
            pool.run(chunks: 1) { c, _ in sums[c] = 1 }   // one chunk: inline, not a parallel job
        }
        timeline.endStep()
        pool.timeline = nil
        pool.run(chunks: 8) { c, _ in sums[c] = 0 }       // not recorded once detached

        #expect(timeline.count == 3 && timeline.dropped == 0)
        for i in 0..<timeline.count {
            let job = timeline.job(i)
            #expect(job.ended >= job.submitted)
            // The caller always runs chunks of its own range; a finish lies inside the job.
            #expect(job.laneDone[0] != nil)
            for done in job.laneDone.compactMap({ $0 }) {
                #expect(done >= job.submitted && done <= job.ended, "job \(i): lane done \(done) outside [\(job.submitted), \(job.ended)]")
            }
        }
        let b = timeline.breakdown()
        #expect(b?.steps == 1 && b?.jobsPerStep == 3 && b?.lanes == 2)
        #expect((b?.outsideJobsSeconds ?? -1) >= 0 && (b?.outsideJobsSeconds ?? 1) < (b?.stepSeconds ?? 0))
    }

    @Test("breakdown skips a job whose record was never completed (the pool stopped recording mid-job)")
    func incompleteRecord() throws {
        let t = PoolTimeline(capacity: 8, lanes: 2)
        t.markStep(start: 0, end: 1000)
        t.record(submitted: 100, laneDone: [350, 400], ended: 400)
        t.record(submitted: 500, laneDone: [600, 0], ended: 0)         // never ended
        let b = try #require(t.breakdown())
        #expect(b.jobsPerStep == 1)
        #expect(abs(b.outsideJobsSeconds - 700e-9) < 1e-15)
    }

    @Test("breakdown: time outside jobs and lane-time waiting, per step, from given times")
    func breakdownArithmetic() throws {
        let t = PoolTimeline(capacity: 8, lanes: 2)
        t.markStep(start: 0, end: 1000)
        t.record(submitted: 100, laneDone: [350, 400], ended: 400)   // lane 0 waits 50
        t.record(submitted: 500, laneDone: [900, 0], ended: 900)     // lane 1 ran nothing: waits 400
        t.markStep(start: 2000, end: 2600)
        t.record(submitted: 2100, laneDone: [2200, 2250], ended: 2300)  // lane 0 waits 100, lane 1 50
        t.record(submitted: 3000, laneDone: [3100, 3100], ended: 3100)  // after every step: not counted
        let b = try #require(t.breakdown())
        #expect(b.steps == 2 && b.jobsPerStep == 1.5)
        #expect(abs(b.stepSeconds - 800e-9) < 1e-15)
        // Outside jobs: (1000 − 300 − 400) + (600 − 200) = 700 ns over 2 steps.
        #expect(abs(b.outsideJobsSeconds - 350e-9) < 1e-15)
        // Waiting: 50 + 400 + 100 + 50 = 600 lane-ns over 2 steps.
        #expect(abs(b.laneWaitingSeconds - 300e-9) < 1e-15)
        // Idle: (1 lane × 350 + 300) of 2 lanes × 800.
        #expect(abs(b.idleShare - 650.0 / 1600) < 1e-12)
    }

    @Test("a full timeline keeps the first jobs and counts the rest")
    func fullTimeline() {
        let pool = WorkerPool(lanes: 2)
        let timeline = PoolTimeline(capacity: 2, lanes: 2)
        pool.timeline = timeline
        for _ in 0..<5 { pool.run(chunks: 4) { _, _ in } }
        pool.timeline = nil
        #expect(timeline.count == 2 && timeline.dropped == 3)
        #expect(timeline.breakdown() == nil)   // no step marked
    }

    @Test("a timeline made for fewer lanes than the pool records the lanes it has room for")
    func fewerLanes() {
        let pool = WorkerPool(lanes: 3)
        let timeline = PoolTimeline(capacity: 4, lanes: 1)
        pool.timeline = timeline
        // A lane is recorded only if it ran a chunk, and on 2 cores the workers can take every
        // chunk of a job while the caller is descheduled: so several jobs of chunks long enough
        // (~10 µs) that the caller runs some of its own in at least one of them.
        for _ in 0..<4 {
            pool.run(chunks: 64) { _, _ in
                let start = DispatchTime.now().uptimeNanoseconds
                while DispatchTime.now().uptimeNanoseconds - start < 10_000 {}
            }
        }
        pool.timeline = nil
        #expect(timeline.count == 4)
        let jobs = (0..<timeline.count).map { timeline.job($0) }
        #expect(jobs.allSatisfy { $0.laneDone.count == 1 })
        #expect(jobs.contains { $0.laneDone[0] != nil })
        for job in jobs {
            if let done = job.laneDone[0] { #expect(done >= job.submitted && done <= job.ended) }
        }
    }
}
