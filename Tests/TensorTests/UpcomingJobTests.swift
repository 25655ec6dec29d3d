import Foundation
@testable import Tensor
import Testing

// A job can name the one after it (`UpcomingJob`), so that lanes left waiting pull what they read
// first in it into their caches (`WorkerPool.run(chunks:_:then:)`). These check that the named
// bytes are where each lane really starts, and that pulls happen only inside `withPulls` and have
// stopped when it returns.

/// A [rows, cols] F32 matrix of zeros (the tests look at addresses, not values).
private func zeros(rows: Int, cols: Int) -> WeightMatrix {
    WeightMatrix(Tensor(zeros: [rows, cols]))
}

/// The address of row `row` of an F32 matrix.
private func address(_ w: WeightMatrix, row: Int) -> UnsafeRawPointer {
    UnsafeRawPointer(w.view.values.baseAddress! + row * w.cols * 4)
}

/// A 2-lane batch of `matrices` (each y = W·x, never run: these tests look at where its lanes start).
private func batch(of matrices: [WeightMatrix]) -> MatvecBatch {
    let batch = MatvecBatch(pool: WorkerPool(lanes: 2))
    var row = 0
    for w in matrices {
        batch.append(w, x: scratchX.pointer, y: scratchY.pointer + row)
        row += w.rows
    }
    return batch
}

/// Inputs and outputs for `batch(of:)` (1024 columns, up to 1024 rows in all).
private let scratchX = Tensor(zeros: [1024]), scratchY = Tensor(zeros: [1024])

@Suite("UpcomingJob")
struct UpcomingJobTests {
    @Test("a MatvecBatch names each lane's first piece that reads weights, to the end of its matrix")
    func batchLeadingReads() {
        // Two 64×1024 F32 matrices (256 KB: four pieces of 16 rows each) after a task piece: nine
        // pieces, lane 0 of two has pieces 0..<4 (the task first), lane 1 pieces 4..<9.
        let a = zeros(rows: 64, cols: 1024), b = zeros(rows: 64, cols: 1024)
        let batch = batch(of: [a, b])
        let noop: MatvecBatch.SideTask = { _ in }
        batch.appendTask(noop, context: UnsafeRawPointer(scratchX.pointer))

        let lane0 = batch.leadingRead(lane: 0, of: 2), lane1 = batch.leadingRead(lane: 1, of: 2)
        #expect(lane0?.baseAddress == address(a, row: 0) && lane0?.count == 64 * 4096)
        #expect(lane1?.baseAddress == address(a, row: 48) && lane1?.count == 16 * 4096)
        // One lane: all of it, from the first matrix.
        #expect(batch.leadingRead(lane: 0, of: 1)?.baseAddress == address(a, row: 0))

        // A gated item's pieces are gate's blocks, then up's: lane 1 of two starts with up's first.
        let gate = zeros(rows: 64, cols: 1024), up = zeros(rows: 64, cols: 1024)
        let g = Tensor(zeros: [64]), u = Tensor(zeros: [64])
        batch.removeAll()
        batch.appendGated(gate: gate, up: up, x: scratchX.pointer, out: g.pointer, upOut: u.pointer)
        #expect(batch.leadingRead(lane: 0, of: 2)?.baseAddress == address(gate, row: 0))
        #expect(batch.leadingRead(lane: 1, of: 2)?.baseAddress == address(up, row: 0))
        #expect(batch.leadingRead(lane: 1, of: 2)?.count == 64 * 4096)
    }

    @Test("a partly known job names only the lanes whose first piece reads the known matrix")
    func partlyKnownLeadingReads() {
        // Placeholder, known, placeholder, each 64 × 1024 F32 (four pieces): twelve pieces, lane 1
        // of two starts at piece 6, the known matrix's third piece (row 32); lane 0 on a placeholder.
        let placeholder = zeros(rows: 64, cols: 1024), known = zeros(rows: 64, cols: 1024)
        let job = UpcomingJob.partly(layout: batch(of: [placeholder, known, placeholder]), known: known.view)
        #expect(job.leadingRead(lane: 0, of: 2) == nil)
        #expect(job.leadingRead(lane: 1, of: 2)?.baseAddress == address(known, row: 32))
        #expect(job.leadingRead(lane: 1, of: 2)?.count == 32 * 4096)
    }

    @Test("a matvec names the rows WeightMatrix.apply gives each lane first; a lane with none, nothing")
    func matvecLeadingReads() {
        // 256 × 1024 F32 (1 MB): 16 chunks of 16 rows, lane 1 of two from chunk 8 (row 128).
        let w = zeros(rows: 256, cols: 1024)
        let job = UpcomingJob.matvec(w.view)
        #expect(job.leadingRead(lane: 0, of: 2)?.baseAddress == address(w, row: 0))
        #expect(job.leadingRead(lane: 1, of: 2)?.baseAddress == address(w, row: 128))
        #expect(job.leadingRead(lane: 1, of: 2)?.count == 128 * 4096)
        // 16 × 1024 (64 KB) is one chunk, run on the caller.
        let small = UpcomingJob.matvec(zeros(rows: 16, cols: 1024).view)
        #expect(small.leadingRead(lane: 0, of: 2)?.count == 16 * 4096)
        #expect(small.leadingRead(lane: 1, of: 2) == nil)
    }

    @Test("attention names each lane's first group of heads' rows of its query projection")
    func attentionLeadingReads() {
        // 16 heads of rank 256 over 100 positions: four groups of four heads, lane 1 of two from
        // group 2 (head 8); W_UK,hᵀ has 256 rows a head.
        let w = zeros(rows: 16 * 256, cols: 64)
        let job = UpcomingJob.attention(heads: 16, positions: 100, rank: 256, ropeDims: 32, weights: w.view, weightRowsPerHead: 256)
        #expect(job.leadingRead(lane: 0, of: 2)?.baseAddress == UnsafeRawPointer(w.view.values.baseAddress!))
        #expect(job.leadingRead(lane: 1, of: 2)?.baseAddress == UnsafeRawPointer(w.view.values.baseAddress! + 8 * 256 * 64 * 4))
    }

    /// Names `region` for lane 1 only.
    struct SecondLane: LeadingReads {
        let region: UnsafeRawBufferPointer
        func leadingRead(lane: Int, of lanes: Int) -> UnsafeRawBufferPointer? { lane == 1 ? region : nil }
    }

    /// Polls `condition` for up to `seconds`.
    private func eventually(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while !condition() && Date() < end { usleep(200) }
        return condition()
    }

    @Test("a worker pulls the named bytes (at most pullBytes) only inside withPulls, and has stopped when it returns")
    func pulls() {
        let pool = WorkerPool(lanes: 2)
        let bytes = 256 * 1024, big = 4 * WorkerPool.pullBytes
        let memory = UnsafeMutableRawPointer.allocate(byteCount: big, alignment: 64)
        memory.initializeMemory(as: UInt8.self, repeating: 1, count: big)
        defer { memory.deallocate() }
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: 4)
        defer { counts.deallocate() }
        struct Count: PoolTask {
            let counts: UnsafeMutablePointer<Int>
            func callAsFunction(_ chunk: Int, _ scratch: Scratch) { counts[chunk] += 1 }
        }

        // Outside withPulls, `then` is ignored.
        counts.initialize(repeating: 0, count: 4)
        pool.run(chunks: 4, Count(counts: counts), then: SecondLane(region: UnsafeRawBufferPointer(start: memory, count: bytes)))
        usleep(20_000)
        #expect(pool.pulledBytes == 0)
        #expect((0..<4).allSatisfy { counts[$0] == 1 })

        // Inside: the worker pulls all 256 KB while the caller waits, then nothing more.
        counts.update(repeating: 0, count: 4)
        pool.withPulls {
            pool.run(chunks: 4, Count(counts: counts), then: SecondLane(region: UnsafeRawBufferPointer(start: memory, count: bytes)))
            #expect(eventually { pool.pulledBytes == bytes }, "pulled \(pool.pulledBytes) of \(bytes) bytes")
        }
        #expect((0..<4).allSatisfy { counts[$0] == 1 })

        // A region larger than pullBytes: the worker stops at pullBytes.
        pool.withPulls {
            pool.run(chunks: 4, Count(counts: counts), then: SecondLane(region: UnsafeRawBufferPointer(start: memory, count: big)))
            #expect(eventually { pool.pulledBytes == bytes + WorkerPool.pullBytes }, "pulled \(pool.pulledBytes - bytes) bytes")
            usleep(20_000)
        }
        #expect(pool.pulledBytes == bytes + WorkerPool.pullBytes)

        // A pull cut short: withPulls returns only once the worker has stopped, after which it
        // reads nothing more (the memory could be freed).
        for _ in 0..<50 {
            pool.withPulls {
                pool.run(chunks: 4, Count(counts: counts), then: SecondLane(region: UnsafeRawBufferPointer(start: memory, count: big)))
            }
            let after = pool.pulledBytes
            usleep(1_000)
            #expect(pool.pulledBytes == after)
        }
    }

    @Test("threads sharing a pool, each naming memory it frees when its scope ends: no lane reads it after")
    func scopesOnManyThreads() async {
        // Each round maps fresh memory, names it in a scope and unmaps it right after: a lane
        // still pulling it then would crash the test. Three threads, so scopes end while other
        // threads' jobs turn pulls on again.
        let pool = WorkerPool(lanes: 2)
        struct Nothing: PoolTask { func callAsFunction(_ chunk: Int, _ scratch: Scratch) {} }
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<3 {
                group.addTask {
                    for _ in 0..<300 {
                        let bytes = 2 * WorkerPool.pullBytes
                        guard let m = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), m != MAP_FAILED else { continue }
                        let region = UnsafeRawBufferPointer(start: m, count: bytes)
                        pool.withPulls {
                            pool.run(chunks: 2, Nothing(), then: SecondLane(region: region))
                            // Time for the worker to pull (so the test cannot pass without any
                            // pull, as it could on a busy machine when the scope ended at once).
                            usleep(200)
                            pool.run(chunks: 2, Nothing(), then: SecondLane(region: region))
                        }
                        munmap(m, bytes)
                    }
                }
            }
        }
        #expect(pool.pulledBytes > 0, "no lane pulled: the scopes' ends were never raced")
    }
}
