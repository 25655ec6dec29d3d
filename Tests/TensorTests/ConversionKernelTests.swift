import Tensor
import Testing

// F16 and BF16 to F32 over all 65,536 bit patterns, through the SIMD body (one long call) and
// through the scalar tail (calls of 7). Every finite or infinite half maps to exactly one float,
// so the results must be bit-identical; a NaN must stay a NaN (F16C may quiet a signalling NaN,
// so the payload is not compared).

let allHalfPatterns: [UInt16] = (0...UInt16.max).map { $0 }

/// Runs a conversion kernel over all patterns, once in one call and once in calls of 7 elements.
func convertAll(_ kernel: (UnsafePointer<UInt16>, Int, UnsafeMutablePointer<Float>) -> Void) -> [[Float]] {
    let n = allHalfPatterns.count
    var whole = [Float](repeating: 0, count: n), chunked = whole
    allHalfPatterns.withUnsafeBufferPointer { src in
        kernel(src.baseAddress!, n, &whole)
        chunked.withUnsafeMutableBufferPointer { out in
            for start in stride(from: 0, to: n, by: 7) {
                kernel(src.baseAddress! + start, min(7, n - start), out.baseAddress! + start)
            }
        }
    }
    return [whole, chunked]
}

/// Bitwise comparison against the reference; reports the first mismatch and how many there are.
func expectBitwise(_ got: [Float], reference: (UInt16) -> Float, nanPayload: Bool, _ what: String,
                   sourceLocation: SourceLocation = #_sourceLocation) {
    var mismatches = 0, first: UInt16?
    for h in allHalfPatterns {
        let g = got[Int(h)], r = reference(h)
        let ok = r.isNaN && !nanPayload ? g.isNaN : g.bitPattern == r.bitPattern
        if !ok { mismatches += 1; if first == nil { first = h } }
    }
    if let h = first {
        let g = got[Int(h)], r = reference(h)
        Issue.record("""
            \(what): \(mismatches) mismatches; first at 0x\(String(h, radix: 16)): \
            got \(g) (0x\(String(g.bitPattern, radix: 16))), expected \(r) (0x\(String(r.bitPattern, radix: 16)))
            """, sourceLocation: sourceLocation)
    }
}

extension KernelTests {
    @Test("f16 → f32: all 65,536 patterns bit-exact, NaN stays NaN")
    func f16() {
        for (got, path) in zip(convertAll { Kernels.f16ToF32($0, count: $1, out: $2) }, ["SIMD", "tail"]) {
            expectBitwise(got, reference: ReferenceKernels.f16ToF32, nanPayload: false, "f16 \(path)")
        }
    }

    /// Pins the reference itself to values from the IEEE 754 binary16 definition.
    @Test("f16 reference: known values, subnormals, infinities, signed zero, NaN")
    func f16Reference() {
        let known: [(UInt16, Float)] = [
            (0x0000, 0), (0x3C00, 1), (0xC000, -2), (0x3555, 0.333251953125), (0x7BFF, 65504),
            (0x0400, 0x1p-14), (0x0001, 0x1p-24), (0x03FF, 1023 * 0x1p-24), (0x8001, -0x1p-24),
            (0x7C00, .infinity), (0xFC00, -.infinity),
        ]
        for (h, value) in known {
            #expect(ReferenceKernels.f16ToF32(h).bitPattern == value.bitPattern, "f16 0x\(String(h, radix: 16))")
        }
        #expect(ReferenceKernels.f16ToF32(0x8000).bitPattern == (-Float.zero).bitPattern)
        #expect(ReferenceKernels.f16ToF32(0x7E00).isNaN && ReferenceKernels.f16ToF32(0xFC01).isNaN)
    }

    @Test("bf16 → f32: all 65,536 patterns bit-exact, NaN payloads included")
    func bf16() {
        for (got, path) in zip(convertAll { Kernels.bf16ToF32($0, count: $1, out: $2) }, ["SIMD", "tail"]) {
            expectBitwise(got, reference: ReferenceKernels.bf16ToF32, nanPayload: true, "bf16 \(path)")
        }
        #expect(ReferenceKernels.bf16ToF32(0x3F80) == 1 && ReferenceKernels.bf16ToF32(0xC040) == -3)
    }
}
