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
}
