/// Vector helpers shared by the fast kernels: unaligned SIMD loads/stores and a vectorised
/// exp accurate to ~1 ulp, so softmax and SiLU agree with `Foundation.exp` to float rounding.
typealias V8 = SIMD8<Float>

@inline(__always)
func load8(_ p: UnsafePointer<Float>) -> V8 {
    UnsafeRawPointer(p).loadUnaligned(as: V8.self)
}

@inline(__always)
func store8(_ v: V8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: V8.self)
}

/// exp(x) for 8 lanes (Cephes expf): x = n·ln2 + r with |r| ≤ ln2/2, e^r by a degree-6
/// polynomial, 2^n assembled in the exponent bits. Inputs are clamped to the normal float range,
/// and below it (e^-87.3 ≈ 1.2e-38) the result is flushed to 0, so exp(-inf) = 0 as softmax
/// masking needs (the clamp alone gave 1.2e-38).
@inline(__always)
func exp8(_ xIn: V8) -> V8 {
    let x = xIn.clamped(lowerBound: V8(repeating: -87.3), upperBound: V8(repeating: 88.3))
    let n = (x * 1.44269504088896341 + 0.5).rounded(.down)
    var r = x - n * 0.693359375
    r = r - n * -2.12194440e-4
    var p = V8(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    p = p * r * r + r + 1
    let bits = (SIMD8<Int32>(truncatingIfNeeded: SIMD8<Int32>(n)) &+ 127) &<< 23
    return (p * unsafeBitCast(bits, to: V8.self)).replacing(with: 0, where: xIn .< -87.3)
}

@inline(__always)
func horizontalMax(_ v: V8) -> Float { v.max() }
