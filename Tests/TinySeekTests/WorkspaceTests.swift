import Testing
import Tensor
@testable import TinySeek

/// The run state keeps what decode uses and gives back what only a long prompt needed.
@Suite struct WorkspaceTests {
    /// Floats in one `TensorStorage.mappingThreshold`.
    static let mappedFloats = TensorStorage.mappingThreshold / 4

    @Test func largeStorageIsZeroedAndWritable() {
        let n = 3 * Self.mappedFloats + 5
        let storage = TensorStorage(zeros: n)
        let all = UnsafeBufferPointer(start: storage.base, count: n)
        #expect(all.allSatisfy { $0 == 0 })
        storage.base[n - 1] = 7
        storage.base[0] = -1
        #expect(storage.base[n - 1] == 7 && storage.base[0] == -1)
        #expect(Int(bitPattern: storage.base) % 64 == 0)
    }

    @Test func prefillSizedBufferIsReleasedAfterAStepThatUsedLittleOfIt() {
        let ws = Workspace()
        _ = ws.pointer(.logits, 4 * Self.mappedFloats)            // a prefill step
        ws.beginStep()
        _ = ws.pointer(.logits, 1000)                               // decode: the old buffer is reused
        #expect(ws.floatCount >= 4 * Self.mappedFloats)
        ws.beginStep()                                              // that step used 1000 floats of it
        #expect(ws.floatCount < Self.mappedFloats)
        _ = ws.pointer(.logits, 1000)
        #expect(ws.floatCount >= 1000 && ws.floatCount < Self.mappedFloats)
    }

    @Test func bufferInUseKeepsItsMemory() {
        let ws = Workspace()
        let big = ws.pointer(.scores, 4 * Self.mappedFloats)
        ws.beginStep()
        #expect(ws.pointer(.scores, Self.mappedFloats) == big)    // exactly a quarter used
        ws.beginStep()
        #expect(ws.pointer(.scores, Self.mappedFloats) == big)
        // Small buffers are never released: they cost little and decode reuses them every step.
        let small = ws.pointer(.x, 1000)
        ws.beginStep()
        ws.beginStep()
        #expect(ws.pointer(.x, 10) == small)
    }

    /// A prebuilt job is built once, reused while its buffers stay, rebuilt when one moves: a
    /// job kept on a moved buffer would write into freed memory.
    @Test func prebuiltJobIsRebuiltWhenABufferMoves() throws {
        let ws = Workspace()
        let w = WeightMatrix(try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6]))
        let x1 = ws.pointer(.x, 3), y1 = ws.pointer(.residual, 2)
        x1.update(from: [1, 1, 1], count: 3)
        var builds = 0
        func job(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>) -> MatvecBatch {
            ws.prebuilt(.valueAbsorb(layer: 2), buffers: .init(x, y)) { batch in
                builds += 1
                batch.append(w, x: x, y: y)
            }
        }
        let first = job(x1, y1)
        first.run()
        #expect(builds == 1 && Array(UnsafeBufferPointer(start: y1, count: 2)) == [6, 15])
        #expect(job(x1, y1) === first && builds == 1)
        // Another layer's job is its own.
        _ = ws.prebuilt(.valueAbsorb(layer: 3), buffers: .init(x1, y1)) { _ in builds += 1 }
        #expect(builds == 2)
        // The output buffer moves: the job is rebuilt and writes the new one.
        let y2 = ws.pointer(.residual, 4 * Self.mappedFloats)
        #expect(y2 != y1)
        y2.update(repeating: 0, count: 2)
        job(x1, y2).run()
        #expect(builds == 3 && Array(UnsafeBufferPointer(start: y2, count: 2)) == [6, 15])
    }
}
