import Tensor
import Testing

// argmax and topK decide which token is sampled and which experts a token is routed to, so they
// must agree with the reference exactly, ties included (lower index first).

func topKBoth(_ x: [Float], k: Int) -> (fast: [Int], ref: [Int], fastValues: [Float], refValues: [Float]) {
    let fast = x.withUnsafeBufferPointer { Kernels.topK($0, k: k) }
    let ref = x.withUnsafeBufferPointer { ReferenceKernels.topK($0, k: k) }
    return (fast.map(\.index), ref.map(\.index), fast.map(\.value), ref.map(\.value))
}

extension KernelTests {
    @Test("argmax: same index as the reference, first on ties", arguments: oddSizes)
    func argmax(n: Int) {
        var rng = SplitMix64(seed: 30 &+ UInt64(n))
        for x in [rng.floats(n), rng.ties(n), [Float](repeating: -.infinity, count: n)] {
            let fast = x.withUnsafeBufferPointer { Kernels.argmax($0) }
            let ref = x.withUnsafeBufferPointer { ReferenceKernels.argmax($0) }
            #expect(fast == ref, "argmax n=\(n): \(String(describing: fast)) vs \(String(describing: ref))")
        }
    }

    @Test("argmax edge cases")
    func argmaxEdges() {
        func both(_ x: [Float]) -> [Int?] {
            [x.withUnsafeBufferPointer { Kernels.argmax($0) }, x.withUnsafeBufferPointer { ReferenceKernels.argmax($0) }]
        }
        #expect(both([]) == [nil, nil])
        #expect(both([5]) == [0, 0])
        #expect(both([1, 3, 3, 2]) == [1, 1])
        #expect(both([-.infinity, -.infinity]) == [0, 0])
        #expect(both((0..<17).map(Float.init)) == [16, 16])
        // NaN loses everywhere but at index 0, where the scan starts from it and nothing beats it.
        #expect(both([1, .nan, 3, .nan, 2]) == [2, 2])
        #expect(both([.nan, 1, 3]) == [0, 0])
        #expect(both([Float](repeating: 1, count: 40) + [.nan, 7] + [Float](repeating: 1, count: 40)) == [41, 41])
        // ±0 compare equal: the first of them wins, whichever sign the maximum lanes kept.
        #expect(both([-1, -0.0, 0.0, -0.0]) == [1, 1])
        #expect(both([Float](repeating: -1, count: 33) + [0.0, -0.0]) == [33, 33])
    }

    @Test("argmax over a vocabulary-sized row: the maximum in every position class")
    func argmaxVocabulary() {
        var rng = SplitMix64(seed: 77)
        var x = rng.floats(32000)
        // At the start, in the four SIMD8 lanes of a 32-float step, in the scalar tail, at the end.
        for at in [0, 5, 8 + 3, 16 + 7, 24, 31_968 + 1, 31_999] {
            let saved = x[at]
            x[at] = 1000
            x[31_000] = 1000   // a tie after it: the first one wins
            let fast = x.withUnsafeBufferPointer { Kernels.argmax($0) }
            let ref = x.withUnsafeBufferPointer { ReferenceKernels.argmax($0) }
            #expect(fast == ref && fast == min(at, 31_000), "argmax with the maximum at \(at): \(String(describing: fast)) vs \(String(describing: ref))")
            x[at] = saved
            x[31_000] = 0
        }
    }

    @Test("topK: same indices and values as the reference for k from 0 to beyond n", arguments: oddSizes)
    func topK(n: Int) {
        var rng = SplitMix64(seed: 31 &+ UInt64(n))
        for x in [rng.floats(n), rng.ties(n), rng.ties(n, distinct: 2)] {
            for k in Set([0, 1, 2, 8, n / 2, n, n + 5]) {
                let r = topKBoth(x, k: k)
                #expect(r.fast == r.ref, "topK n=\(n) k=\(k): indices \(r.fast.prefix(12)) vs \(r.ref.prefix(12))")
                #expect(r.fastValues == r.refValues, "topK n=\(n) k=\(k): values differ")
                #expect(r.fast.count == min(k, n))
            }
        }
    }

    @Test("topK edge cases: k = 0, k > n, ties keep the lower index first")
    func topKEdges() {
        let x: [Float] = [1, 3, 3, 2, 3]
        for (k, expected) in [(0, []), (2, [1, 2]), (4, [1, 2, 4, 3]), (9, [1, 2, 4, 3, 0]), (-1, [])] {
            let r = topKBoth(x, k: k)
            #expect(r.fast == expected, "topK k=\(k)")
            #expect(r.ref == expected, "reference topK k=\(k)")
        }
        #expect(topKBoth([], k: 3).fast.isEmpty)
        #expect(topKBoth([-.infinity, 0, -.infinity], k: 3).fast == [1, 0, 2])
    }

    @Test("topK into caller buffers: what the array version returns, nothing written past min(k, n)")
    func topKIntoBuffers() {
        var rng = SplitMix64(seed: 32)
        for n in oddSizes {
            for x in [rng.floats(n), rng.ties(n)] {
                for k in Set([0, 1, 2, 6, n, n + 2]) {
                    var indices = [Int](repeating: -7, count: k + 1), values = [Float](repeating: 99, count: k + 1)
                    let count = x.withUnsafeBufferPointer { Kernels.topK($0, k: k, indices: &indices, values: &values) }
                    let ref = x.withUnsafeBufferPointer { ReferenceKernels.topK($0, k: k) }
                    #expect(count == ref.count, "n=\(n) k=\(k)")
                    #expect(Array(indices.prefix(count)) == ref.map(\.index), "n=\(n) k=\(k)")
                    #expect(Array(values.prefix(count)) == ref.map(\.value), "n=\(n) k=\(k)")
                    #expect(indices[count...].allSatisfy { $0 == -7 } && values[count...].allSatisfy { $0 == 99 })
                }
            }
        }
    }
}
