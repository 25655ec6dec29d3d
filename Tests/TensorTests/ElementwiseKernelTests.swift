import Foundation
import Tensor
import Testing

// Elementwise kernels and RoPE against their references; tolerances are explained at the top
// of KernelTests.swift. Inputs are offset by one float in some runs so the SIMD loads are
// misaligned.

extension KernelTests {
    @Test("silu and siluMul: within 4 ulp (exp8 vs expf)", arguments: oddSizes)
    func silu(n: Int) {
        var rng = SplitMix64(seed: 20 &+ UInt64(n))
        let x = rng.floats(n, in: -12..<12), up = rng.floats(n, in: -2..<2)
        var fast = x, ref = x
        Kernels.silu(&fast, count: n)
        ReferenceKernels.silu(&ref, count: n)
        expectClose(fast, ref, tol: 4 * .ulpOfOne, "silu n=\(n)")

        var fastMul = [Float](repeating: .nan, count: n), refMul = fastMul
        Kernels.siluMul(x, up, count: n, out: &fastMul)
        ReferenceKernels.siluMul(x, up, count: n, out: &refMul)
        expectClose(fastMul, refMul, tol: 4 * .ulpOfOne, "siluMul n=\(n)")
    }

    @Test("sigmoid: within 4 ulp (exp8 vs expf), saturating to 0 and 1", arguments: oddSizes)
    func sigmoid(n: Int) {
        var rng = SplitMix64(seed: 22 &+ UInt64(n))
        let x = rng.floats(n, in: -20..<20)
        var fast = [Float](repeating: .nan, count: n), ref = fast
        Kernels.sigmoid(x, count: n, out: &fast)
        ReferenceKernels.sigmoid(x, count: n, out: &ref)
        expectClose(fast, ref, tol: 4 * .ulpOfOne, "sigmoid n=\(n)")

        let extremes: [Float] = [-1e4, -200, -100, -88, -87, -0.0, 0, 87, 88, 100, 1e4, 3e38]
        var fastX = [Float](repeating: .nan, count: extremes.count), refX = fastX
        Kernels.sigmoid(extremes, count: extremes.count, out: &fastX)  // one SIMD block and a scalar tail
        ReferenceKernels.sigmoid(extremes, count: extremes.count, out: &refX)
        expectClose(fastX, refX, tol: 4 * .ulpOfOne, atol: 1e-30, "sigmoid extremes")
    }

    @Test("silu saturates: x for large x, a vanishing negative for very negative x")
    func siluExtremes() {
        let x: [Float] = [-1e4, -200, -100, -88, -87, -20, -0.0, 0, 20, 88, 89, 100, 1e4, 3e38]
        var fast = x, ref = x
        Kernels.silu(&fast, count: x.count)  // 14 elements: one SIMD block and a scalar tail
        ReferenceKernels.silu(&ref, count: x.count)
        // Where exp(-x) overflows the reference divides by +inf (→ -0) and exp8 by 2e38 (→ ~1e-36).
        expectClose(fast, ref, tol: 4 * .ulpOfOne, atol: 1e-30, "silu extremes")
    }

    @Test("add, mul, scale: exact (one IEEE operation per element in both)", arguments: oddSizes)
    func arithmetic(n: Int) {
        var rng = SplitMix64(seed: 21 &+ UInt64(n))
        let a = rng.floats(n + 1, in: -100..<100), b = rng.floats(n + 1, in: -100..<100)
        for shift in [0, 1] {
            let x = Array(a[shift..<shift + n]), y = Array(b[shift..<shift + n])
            var f = [Float](repeating: .nan, count: n), r = f
            Kernels.add(x, y, count: n, out: &f)
            ReferenceKernels.add(x, y, count: n, out: &r)
            expectClose(f, r, tol: 0, "add n=\(n) shift=\(shift)")
            Kernels.mul(x, y, count: n, out: &f)
            ReferenceKernels.mul(x, y, count: n, out: &r)
            expectClose(f, r, tol: 0, "mul n=\(n) shift=\(shift)")
            var fs = x, rs = x
            Kernels.scale(&fs, by: -0.37, count: n)
            ReferenceKernels.scale(&rs, by: -0.37, count: n)
            expectClose(fs, rs, tol: 0, "scale n=\(n) shift=\(shift)")
        }
    }

    @Test("addScaled: y += αx, within 1.5 ulp of |y| + |αx| (FMA rounds once, the reference twice)",
          arguments: oddSizes)
    func addScaled(n: Int) {
        var rng = SplitMix64(seed: 22 &+ UInt64(n))
        let x = rng.floats(n), y = rng.floats(n)
        for alpha: Float in [1, -0.3, 7] {
            var fast = y, ref = y
            Kernels.addScaled(x, by: alpha, to: &fast, count: n)
            ReferenceKernels.addScaled(x, by: alpha, to: &ref, count: n)
            // |fl(y + fl(αx)) − fl(y + αx)| ≤ u|αx| + u|r| + u|f| ≤ 3u(|y| + |αx|), u = ulp(1)/2.
            let terms = (0..<n).map { abs(y[$0]) + abs(alpha * x[$0]) }
            expectClose(fast, ref, tol: 2 * .ulpOfOne, magnitude: terms, "addScaled n=\(n) alpha=\(alpha)")
        }
    }

    @Test("rope: both layouts agree exactly with the reference", arguments: [RopeLayout.interleaved, .halfSplit])
    func rope(layout: RopeLayout) {
        var rng = SplitMix64(seed: 23)
        for half in [0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 32, 33] {
            let angles = rng.floats(half, in: -10..<10)
            let cos = angles.map { Foundation.cos($0) }, sin = angles.map { Foundation.sin($0) }
            let x = rng.floats(2 * half)
            var fast = x, ref = x
            Kernels.rope(&fast, cos: cos, sin: sin, half: half, layout: layout)
            ReferenceKernels.rope(&ref, cos: cos, sin: sin, half: half, layout: layout)
            expectClose(fast, ref, tol: 0, "rope \(layout) half=\(half)")
        }
    }

    /// Rotating (3, 4) by 60° counter-clockwise gives (3·½ − 4·(√3/2), 4·½ + 3·(√3/2))
    /// = (1.5 − 2√3, 2 + 1.5√3); rotating (1, 2) by 90° gives (−2, 1).
    @Test("rope rotates each pair counter-clockwise by its angle, pairs chosen by the layout")
    func ropeHandComputed() {
        let r60: (Float, Float) = (1.5 - 2 * Float(3).squareRoot(), 2 + 1.5 * Float(3).squareRoot())
        // Two frequencies, θ0 = 60° and θ1 = 90°: the layouts pair different elements.
        let cos: [Float] = [0.5, Foundation.cos(Float.pi / 2)], sin: [Float] = [Float(3).squareRoot() / 2, 1]
        let cases: [(RopeLayout, [Float], [Float])] = [
            (.interleaved, [3, 4, 1, 2], [r60.0, r60.1, -2, 1]),  // pairs (x0, x1), (x2, x3)
            (.halfSplit, [3, 1, 4, 2], [r60.0, -2, r60.1, 1]),    // pairs (x0, x2), (x1, x3)
        ]
        for (layout, x, expected) in cases {
            var fast = x, ref = x
            Kernels.rope(&fast, cos: cos, sin: sin, half: 2, layout: layout)
            ReferenceKernels.rope(&ref, cos: cos, sin: sin, half: 2, layout: layout)
            expectClose(fast, expected, tol: 1e-6, atol: 1e-6, "rope \(layout) by hand")
            expectClose(ref, expected, tol: 1e-6, atol: 1e-6, "reference rope \(layout) by hand")
        }
        // The same 60° on 9 pairs, so the SIMD body (8 pairs) and the tail both run.
        let half = 9
        let c9 = [Float](repeating: 0.5, count: half), s9 = [Float](repeating: Float(3).squareRoot() / 2, count: half)
        for layout in [RopeLayout.interleaved, .halfSplit] {
            var x = [Float](repeating: 0, count: 2 * half)
            for i in 0..<half {
                let (a, b) = layout == .interleaved ? (2 * i, 2 * i + 1) : (i, i + half)
                x[a] = 3; x[b] = 4
            }
            var expected = x
            for i in 0..<2 * half { expected[i] = x[i] == 3 ? r60.0 : r60.1 }
            Kernels.rope(&x, cos: c9, sin: s9, half: half, layout: layout)
            expectClose(x, expected, tol: 1e-6, "rope \(layout) by hand, 9 pairs")
        }
    }
}
