import CKernelSupport

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
///
/// Written with operations the standard library lowers to vector instructions (arithmetic,
/// lane comparisons, `replacing(with:where:)`, bit casts). The generic `clamped`, `rounded(.down)`
/// and `SIMD8<Int32>(n)` become per-lane calls through witness tables (~20 ns an element, which
/// made softmax and SiLU slower than the matmuls around them). n = round(x·log2 e) comes from
/// the magic-number trick: adding 1.5·2²³ leaves the rounded integer in the low mantissa bits.
@inline(__always)
func exp8(_ xIn: V8) -> V8 {
    let lo = V8(repeating: -87.3), hi = V8(repeating: 88.3)
    var x = xIn.replacing(with: lo, where: xIn .< lo)
    x = x.replacing(with: hi, where: x .> hi)
    let magic = V8(repeating: 12_582_912)   // 1.5·2²³
    let shifted = x * 1.44269504088896341 + magic
    let n = shifted - magic                 // round(x·log2 e), exactly an integer
    var r = x - n * 0.693359375
    r = r - n * -2.12194440e-4
    var p = V8(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    p = p * r * r + r + 1
    // n as an integer is the low bits of `shifted` minus those of the magic number.
    let integer = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
    let bits = (integer &+ 127) &<< 23
    return (p * unsafeBitCast(bits, to: V8.self)).replacing(with: 0, where: xIn .< lo)
}

/// Lane-wise maximum by comparison (the generic `pointwiseMax` is a call per vector).
@inline(__always)
func max8(_ a: V8, _ b: V8) -> V8 { a.replacing(with: b, where: b .> a) }

@inline(__always)
func horizontalMax(_ v: V8) -> Float { v.max() }

/// Prefetches the cache line at `p` (a hint; never faults). For streaming loops outside this
/// module, e.g. the calibration's read-bandwidth measurement.
@inlinable
public func prefetchLine(_ p: UnsafeRawPointer) { _prefetch(p) }

@usableFromInline
func _prefetch(_ p: UnsafeRawPointer) { tinyseek_prefetch(p) }
