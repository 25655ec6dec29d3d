import Foundation
@testable import Tensor
import Testing

// The few-rows product (`WeightKernels.smallBatch`) in each instruction set this CPU runs, against
// ReferenceWeightKernels on the same stored weights: every m from 2 to 16 (the kernels' passes of 6
// (AVX2) or 8 (AVX-512) rows and their remainders), row ranges with odd ends (its pairs of W rows and the
// lone last row), widths off the 16-column step (masked tails) and Q8_0's short last block, and
// padded strides whose padding must stay untouched.

/// The instruction sets the kernels can run here: AVX2 always, AVX-512 when the CPU has it.
let runnableISAs: [VectorISA] = VectorISA.hardwareHasAVX512 ? [.avx2, .avx512] : [.avx2]

@Suite("The few-rows product agrees with the reference in every instruction set")
struct SmallBatchKernelTests {
    @Test("y = x·Wᵀ over row ranges for m = 2...16; nothing outside the range is written",
          arguments: WeightFormat.allCases)
    func smallBatch(format: WeightFormat) {
        var rng = SplitMix64(seed: 300)
        for isa in runnableISAs {
            var worst: Float = 0
            for (rows, cols, range) in [(5, 33, 0..<5), (37, 31, 3..<36), (64, 256, 1..<64), (130, 515, 17..<104),
                                        (13, 2900, 0..<13), (6, 16, 2..<3)] {
                let w = randomMatrix(format, rows: rows, cols: cols, rng: &rng)
                let magnitudeW = absoluteMatrix(w)
                for m in 2...16 {   // its domain: one row is the matvec's (whose Q8_0 reference quantises x)
                    let ldx = cols + 3, ldy = rows + 2
                    var x = [Float](repeating: .nan, count: m * ldx)
                    for i in 0..<m { for k in 0..<cols { x[i * ldx + k] = rng.float() } }
                    var fast = [Float](repeating: 777, count: m * ldy), ref = fast, mag = fast
                    x.withUnsafeBufferPointer { xp in
                        fast.withUnsafeMutableBufferPointer { yp in
                            WeightKernels.smallBatch(w.view, rows: range, m: m, x: xp.baseAddress!, ldx: ldx,
                                                     y: yp.baseAddress!, ldy: ldy, isa: isa)
                        }
                    }
                    w.apply(x, rows: m, ldx: ldx, into: &ref, ldy: ldy, path: .reference)
                    magnitudeW.apply(x.map(abs), rows: m, ldx: ldx, into: &mag, ldy: ldy, path: .reference)
                    // Outside the range (other rows, the padding) y keeps its 777s.
                    for i in 0..<m {
                        for j in 0..<ldy where !range.contains(j) { ref[i * ldy + j] = 777; mag[i * ldy + j] = 0 }
                    }
                    expectClose(fast, ref, tol: 1e-5, magnitude: mag, "\(isa) \(format) [\(rows), \(cols)] rows \(range) m=\(m)")
                    worst = max(worst, zip(fast, ref).map { abs($0 - $1) }.max() ?? 0)
                }
            }
            print("smallBatch \(isa) \(format): max |kernel − reference| = \(worst)")
        }
    }

    @Test("AVX-512 and AVX2 kernels agree on a batched-decode shape (16 rows, 1024 columns)",
          .enabled(if: VectorISA.hardwareHasAVX512, "this CPU has no AVX-512"), arguments: WeightFormat.allCases)
    func isasAgree(format: WeightFormat) {
        var rng = SplitMix64(seed: 301)
        let (rows, cols, m) = (96, 1024, 16)
        let w = randomMatrix(format, rows: rows, cols: cols, rng: &rng)
        let x = rng.floats(m * cols)
        func product(_ isa: VectorISA) -> [Float] {
            var y = [Float](repeating: .nan, count: m * rows)
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    WeightKernels.smallBatch(w.view, rows: 0..<rows, m: m, x: xp.baseAddress!, ldx: cols,
                                             y: yp.baseAddress!, ldy: rows, isa: isa)
                }
            }
            return y
        }
        let wide = product(.avx512), narrow = product(.avx2)
        let diff = zip(wide, narrow).map { abs($0 - $1) / (1 + abs($1)) }.max() ?? .nan
        #expect(diff <= 1e-5, "\(format): max |avx512 − avx2| / (1 + |avx2|) = \(diff)")
    }
}
