import Testing

/// SplitMix64 (Steele, Lea & Flood 2014): a 64-bit state advanced by a Weyl constant and
/// scrambled by two multiply-xorshift rounds. Tiny, fast and fully deterministic, so a failing
/// test can be rerun with exactly the same inputs.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [lo, hi): the top 24 bits give every float in [0, 1) with spacing 2⁻²⁴.
    mutating func float(in range: Range<Float> = -1..<1) -> Float {
        let u = Float(next() >> 40) * 0x1p-24
        return range.lowerBound + (range.upperBound - range.lowerBound) * u
    }

    mutating func floats(_ n: Int, in range: Range<Float> = -1..<1) -> [Float] {
        (0..<n).map { _ in float(in: range) }
    }

    /// Small integers as floats, so equal values (ties) are common.
    mutating func ties(_ n: Int, distinct: Int = 4) -> [Float] {
        (0..<n).map { _ in Float(next() % UInt64(distinct)) }
    }

    mutating func int(in range: Range<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }
}

/// Lengths that straddle the SIMD widths (8 and the 16-wide unrolled dot), plus empty and one.
let oddSizes = [0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1000]

/// Requires `a` (fast kernel) to match `b` (reference) element by element:
/// |a − b| ≤ tol · max(|b|, magnitude) + atol.
///
/// `magnitude` is the size of the terms a reduction summed (Σ|xᵢ·yᵢ| for a dot product);
/// rounding error grows with it, not with the possibly cancelled result, so it is the honest
/// scale for a relative tolerance. Leave it nil for elementwise results. `tol: 0` demands bitwise
/// equality (up to ±0). NaN must meet NaN and an infinity the same infinity.
/// A failure records one Issue naming the worst element and the largest absolute difference.
func expectClose(
    _ a: [Float], _ b: [Float], tol: Float, magnitude: [Float]? = nil, atol: Float = 0,
    _ what: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation
) {
    guard a.count == b.count else {
        Issue.record("\(what()): \(a.count) elements, expected \(b.count)", sourceLocation: sourceLocation)
        return
    }
    var maxDiff: Float = 0, maxAt = 0
    var failures = 0, worstAt = 0, worstExcess: Float = 0  // excess = diff / bound of the worst element
    for i in a.indices {
        let x = a[i], y = b[i]
        let excess: Float
        if x.isFinite && y.isFinite {
            let diff = abs(x - y)
            if diff > maxDiff { maxDiff = diff; maxAt = i }
            let bound = tol * max(abs(y), magnitude?[i] ?? 0) + atol
            excess = diff <= bound ? 0 : (bound > 0 ? diff / bound : .infinity)
        } else {
            excess = (x.isNaN && y.isNaN) || x == y ? 0 : .infinity
        }
        if excess > 0 {
            failures += 1
            if excess > worstExcess { worstExcess = excess; worstAt = i }
        }
    }
    guard failures > 0 else { return }
    let w = worstAt
    Issue.record("""
        \(what()): \(failures) of \(a.count) elements out of tolerance (tol \(tol), atol \(atol)); \
        max abs diff \(maxDiff) at index \(maxAt); worst at index \(w): got \(a[w]), expected \(b[w])
        """, sourceLocation: sourceLocation)
}
