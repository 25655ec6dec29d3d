import AllocationCounter
import Foundation
import Tensor
import Testing
@testable import TinySeek

#if DEBUG
private let optimizedBuild = false
#else
private let optimizedBuild = true
#endif

/// The decode loop allocates nothing once its buffers have grown (issue 7: "no allocation in the
/// decode loop"): counted with `AllocationCounter`, which replaces malloc in the test binary and
/// counts per thread. The thread that steps the session runs everything a step does except the
/// worker lanes' chunks, and its own share of those.
///
/// Optimised builds only (`swift test -c release --filter DecodeAllocationTests`, which `.ci/run`
/// runs after the suite): unoptimised code allocates where the optimiser removes it (generic code
/// not specialised boxes its values, a generic job's closure gets a context), ~70 allocations a
/// step in a debug build of the same code, none in release.
@Suite(.enabled(if: optimizedBuild, "counts allocations of optimised code: swift test -c release"))
struct DecodeAllocationTests {
    /// Allocations per decode step on this thread: the fewest over three windows of 32 steps (the toy models hold 128 positions), after
    /// a prompt and eight warm-up steps. The fewest, because while other tests run in parallel a
    /// job can find the worker pool busy and run inline with a scratch buffer of its own; a
    /// regression that allocates in every step shows in every window. Nil without the counter.
    static func allocationsPerStep(_ model: Model) throws -> Double? {
        guard tinyseek_thread_allocations() >= 0 else { return nil }
        let session = model.makeSession(capacity: 8 + 8 + 3 * 32)
        var logits = try session.forward([1, 2, 3, 4, 5, 6, 7, 8])
        func step() throws { logits = try session.forward(token: Kernels.argmax(UnsafeBufferPointer(logits.buffer)) ?? 0) }
        for _ in 0..<8 { try step() }
        var fewest = Int.max
        for _ in 0..<3 {
            let before = tinyseek_thread_allocations()
            for _ in 0..<32 { try step() }
            fewest = min(fewest, tinyseek_thread_allocations() - before)
        }
        return Double(fewest) / 32
    }

    /// Below one allocation in four steps: the score buffer grows by half when the context outgrows
    /// it, a few times over 100 positions; anything per step is at least one per step.
    @Test("decode steps allocate nothing", arguments: ["deepseek-v3-tiny", "deepseek-v2-lite-tiny"])
    func decodeDoesNotAllocate(model name: String) throws {
        guard let perStep = try Self.allocationsPerStep(try Models.load(name)) else { return }
        print("\(name) f32: \(perStep) allocations per decode step")
        #expect(perStep < 0.25, "\(perStep) allocations per decode step")
    }

    @Test("Q8_0 decode steps allocate nothing")
    func q8DecodeDoesNotAllocate() throws {
        let (model, dir) = try QuantizeTests.quantized("deepseek-v3-tiny", .q8_0)
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let perStep = try Self.allocationsPerStep(model) else { return }
        print("deepseek-v3-tiny q8_0: \(perStep) allocations per decode step")
        #expect(perStep < 0.25, "\(perStep) allocations per decode step")
    }
}
