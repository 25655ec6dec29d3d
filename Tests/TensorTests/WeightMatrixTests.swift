import Foundation
@testable import Tensor
import Testing

// WeightMatrix's fast kernels (SIMD matvec per format, decoded tiles + sgemm, the transposed
// product, row decoding) against ReferenceWeightKernels, which decodes every element with the
// reference conversions. Both sides see the *same stored weights* (already rounded to BF16/F16 or
// quantised), so the only difference is summation order: relative 1e-5 of Σ|x·w|, as for gemm.
// Decoding itself must be bit-exact. Shapes straddle the SIMD width (8), the 4-row blocking, the
// Q8_0 block (32, with a short last block) and the parallel split (≥ 96 KB of weights).

/// A random [rows, cols] matrix in `format`, from uniform floats in [-1, 1).
func randomMatrix(_ format: WeightFormat, rows: Int, cols: Int, rng: inout SplitMix64) -> WeightMatrix {
    let t = try! Tensor(shape: [rows, cols], scalars: rng.floats(rows * cols))
    return WeightMatrix.converting(WeightMatrix(t), to: format)
}

/// A fresh allocation holding `v` (a stable address for a `MatvecBatch`); the caller deallocates.
func pointer(_ v: [Float]) -> UnsafeMutablePointer<Float> {
    let p = UnsafeMutablePointer<Float>.allocate(capacity: max(v.count, 1))
    p.initialize(from: v, count: v.count)
    return p
}

/// The first `n` floats at `p`.
func array(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> [Float] { Array(UnsafeBufferPointer(start: p, count: n)) }

/// The same matrix with every weight replaced by its absolute value, in F32: Σ|x|·|w| bounds the
/// rounding error of a product, so it scales the tolerance.
func absoluteMatrix(_ w: WeightMatrix) -> WeightMatrix {
    let t = Tensor(zeros: [w.rows, w.cols])
    for i in 0..<w.rows { for j in 0..<w.cols { t[i, j] = abs(w.element(i, j)) } }
    return WeightMatrix(t)
}

let weightShapes: [(rows: Int, cols: Int)] = [
    (1, 1), (3, 7), (4, 8), (5, 33), (16, 64), (9, 100), (37, 31), (64, 256), (130, 515), (512, 1024),
    (13, 2900),   // Q8_0: 90 whole blocks (its row scales are converted 64 blocks at a time) + a short one
]

@Suite("WeightMatrix kernels agree with ReferenceWeightKernels")
struct WeightMatrixTests {
    @Test("x · Wᵀ for m = 1 (matvec) and m > 1 (decoded tiles + sgemm)", arguments: WeightFormat.allCases)
    func apply(format: WeightFormat) {
        var rng = SplitMix64(seed: 100)
        var worst: Float = 0
        for (rows, cols) in weightShapes {
            let w = randomMatrix(format, rows: rows, cols: cols, rng: &rng)
            let magnitudeW = absoluteMatrix(w)
            // m = 1 matvec, 2...16 the small-batch kernel (tails of 4 and of 2 rows), 17+ decoded tiles.
            for m in rows * cols > 100_000 ? [1, 3, 16] : [1, 2, 5, 16, 17, 33] {
                let ldx = cols + 3, ldy = rows + 2
                var x = [Float](repeating: .nan, count: m * ldx)
                for i in 0..<m { for k in 0..<cols { x[i * ldx + k] = rng.float() } }
                var fast = [Float](repeating: 777, count: m * ldy), ref = fast, mag = fast
                w.apply(x, rows: m, ldx: ldx, into: &fast, ldy: ldy)
                w.apply(x, rows: m, ldx: ldx, into: &ref, ldy: ldy, path: .reference)
                magnitudeW.apply(x.map(abs), rows: m, ldx: ldx, into: &mag, ldy: ldy, path: .reference)
                expectClose(fast, ref, tol: 1e-5, magnitude: mag, "\(format) [\(rows), \(cols)] m=\(m)")
                worst = max(worst, zip(fast, ref).map { abs($0 - $1) }.max() ?? 0)
            }
        }
        print("WeightMatrix.apply \(format): max |fast − reference| = \(worst)")
    }

    @Test("a matvec row's value does not depend on how the rows are split (groups of 8 or alone)",
          arguments: WeightFormat.allCases)
    func matvecSplitInvariant(format: WeightFormat) {
        var rng = SplitMix64(seed: 7)
        // 64 and 256 columns take the eight-row reduction; 100 does not (not a multiple of 8).
        for (rows, cols) in [(37, 64), (29, 256), (19, 100)] {
            let w = randomMatrix(format, rows: rows, cols: cols, rng: &rng)
            let x = rng.floats(cols)
            var whole = [Float](repeating: .nan, count: rows)
            w.apply(x, rows: 1, into: &whole)
            var alone = [Float](repeating: .nan, count: rows)
            for j in 0..<rows {
                var one: [Float] = [.nan]
                w.rows(j..<(j + 1)).apply(x, rows: 1, into: &one)
                alone[j] = one[0]
            }
            let diff = zip(whole, alone).map { abs($0 - $1) }.max() ?? .nan
            #expect(whole == alone, "\(format) [\(rows), \(cols)]: max |whole − row by row| = \(diff)")
        }
    }

    @Test("x · W (transposed product) for m = 1 and m > 1, on row views", arguments: WeightFormat.allCases)
    func applyTransposed(format: WeightFormat) {
        var rng = SplitMix64(seed: 101)
        var worst: Float = 0
        for (rows, cols) in weightShapes where rows * cols < 100_000 {
            let whole = randomMatrix(format, rows: rows + 6, cols: cols, rng: &rng)
            let w = whole.rows(3..<(3 + rows))  // a view, as MLA takes one head's W_UK
            for m in [1, 2, 7] {
                let x = rng.floats(m * rows)
                var fast = [Float](repeating: .nan, count: m * cols), ref = fast, mag = fast
                w.applyTransposed(x, rows: m, into: &fast)
                w.applyTransposed(x, rows: m, into: &ref, path: .reference)
                absoluteMatrix(w).applyTransposed(x.map(abs), rows: m, into: &mag, path: .reference)
                expectClose(fast, ref, tol: 1e-5, magnitude: mag, "\(format) transposed [\(rows), \(cols)] m=\(m)")
                worst = max(worst, zip(fast, ref).map { abs($0 - $1) }.max() ?? 0)
            }
        }
        print("WeightMatrix.applyTransposed \(format): max |fast − reference| = \(worst)")
    }

    @Test("row decoding and whole-matrix decoding are bit-exact", arguments: WeightFormat.allCases)
    func decode(format: WeightFormat) {
        var rng = SplitMix64(seed: 102)
        for (rows, cols) in weightShapes where rows * cols < 100_000 {
            let w = randomMatrix(format, rows: rows, cols: cols, rng: &rng)
            let all = w.dequantized()
            for i in [0, rows / 2, rows - 1] {
                var fast = [Float](repeating: .nan, count: cols), ref = fast
                w.dequantizeRow(i, into: &fast)
                w.dequantizeRow(i, into: &ref, path: .reference)
                expectClose(fast, ref, tol: 0, "\(format) row \(i) of [\(rows), \(cols)]")
                expectClose(all.row(i).scalars, ref, tol: 0, "\(format) dequantized() row \(i)")
            }
        }
    }

    @Test("a row view reads the same weights as the matrix it came from", arguments: WeightFormat.allCases)
    func rowView(format: WeightFormat) {
        var rng = SplitMix64(seed: 103)
        let w = randomMatrix(format, rows: 20, cols: 45, rng: &rng)
        let v = w.rows(7..<13)
        #expect(v.rows == 6 && v.cols == 45 && v.format == format)
        for i in 0..<6 { for j in 0..<45 { #expect(v.element(i, j) == w.element(i + 7, j)) } }
    }

    /// MLA's W_UK,hᵀ copy: blocks of rows (one head's W_UK, every dn+dv rows of kv_b_proj)
    /// transposed exactly, in the same format; Q8_0 has no exact transpose.
    @Test("transposing row blocks moves elements exactly, in the same format", arguments: WeightFormat.allCases)
    func transposingBlocks(format: WeightFormat) {
        var rng = SplitMix64(seed: 107)
        let (blocks, rowsPerBlock, stride, cols) = (3, 4, 6, 40)
        let w = randomMatrix(format, rows: blocks * stride, cols: cols, rng: &rng)
        guard let t = w.transposingBlocks(blocks, rowsPerBlock: rowsPerBlock, blockStride: stride) else {
            #expect(format == .q8_0)
            return
        }
        #expect(format != .q8_0 && t.format == format && t.rows == blocks * cols && t.cols == rowsPerBlock)
        for b in 0..<blocks {
            for i in 0..<cols {
                for k in 0..<rowsPerBlock { #expect(t.element(b * cols + i, k) == w.element(b * stride + k, i)) }
            }
        }
    }

    /// The Q8_0 matvec quantises x to int16 once per lane per job and keeps it in the lane's
    /// scratch: the next job must not reuse it, even for the same buffer with new contents.
    @Test("Q8_0 matvec: x rewritten in place between jobs is quantised again; non-finite x gives NaN")
    func q8ActivationsPerJob() {
        var rng = SplitMix64(seed: 108)
        let (rows, cols) = (96, 256)   // 3 pieces over 2 lanes, 8 full blocks a row
        let w = randomMatrix(.q8_0, rows: rows, cols: cols, rng: &rng)
        let batch = MatvecBatch(pool: WorkerPool(lanes: 2))
        let x = UnsafeMutablePointer<Float>.allocate(capacity: cols), y = UnsafeMutablePointer<Float>.allocate(capacity: rows)
        defer { x.deallocate(); y.deallocate() }
        for round in 0..<3 {
            x.update(from: rng.floats(cols, in: Float(-1 - round) ..< Float(1 + round)), count: cols)
            batch.removeAll()
            batch.append(w, x: x, y: y)
            batch.run()
            var ref = [Float](repeating: 0, count: rows)
            ReferenceWeightKernels.apply(w, x, rows: 1, ldx: cols, into: &ref, ldy: rows)
            let fast = Array(UnsafeBufferPointer(start: y, count: rows))
            let diff = zip(fast, ref).map { abs($0 - $1) }.max() ?? .nan
            #expect(diff <= 1e-4, "round \(round): max |fast − reference| = \(diff)")
        }
        // A NaN or an infinity in a block is not rounded away: every row's result is NaN.
        for bad in [Float.nan, .infinity] {
            x[37] = bad
            w.apply(x, rows: 1, into: y)
            #expect((0..<rows).allSatisfy { y[$0].isNaN }, "x[37] = \(bad)")
        }
    }

    /// MLA's gathered W_UK / W_UV: every dn+dv rows of kv_b_proj, a block of rows copied out
    /// exactly, in the same format (Q8_0 with its scales, so its products are unchanged too).
    @Test("gathering row blocks copies rows exactly, in the same format", arguments: WeightFormat.allCases)
    func gatheringBlocks(format: WeightFormat) {
        var rng = SplitMix64(seed: 109)
        let (blocks, rowsPerBlock, stride, first, cols) = (3, 4, 7, 2, 70)   // a short last Q8_0 block
        let w = randomMatrix(format, rows: blocks * stride, cols: cols, rng: &rng)
        let g = w.gatheringBlocks(blocks, rowsPerBlock: rowsPerBlock, blockStride: stride, firstRow: first)
        #expect(g.format == format && g.rows == blocks * rowsPerBlock && g.cols == cols)
        for b in 0..<blocks {
            for k in 0..<rowsPerBlock {
                for i in 0..<cols { #expect(g.element(b * rowsPerBlock + k, i) == w.element(first + b * stride + k, i)) }
            }
        }
        let x = rng.floats(cols)
        var fromCopy = [Float](repeating: .nan, count: rowsPerBlock), fromView = fromCopy
        g.rows(rowsPerBlock ..< 2 * rowsPerBlock).apply(x, rows: 1, into: &fromCopy)
        w.rows(first + stride ..< first + stride + rowsPerBlock).apply(x, rows: 1, into: &fromView)
        #expect(fromCopy == fromView, "\(format): a gathered block's product differs from the view's")
    }

    @Test("a MatvecBatch of mixed formats, sizes and transposed items equals each product done alone")
    func batch() {
        var rng = SplitMix64(seed: 105)
        let batch = MatvecBatch(pool: WorkerPool(lanes: 3))
        for round in 0..<3 {
            batch.removeAll()
            var expected: [[Float]] = [], outputs: [UnsafeMutablePointer<Float>] = [], magnitudes: [[Float]] = []
            var inputs: [UnsafeMutablePointer<Float>] = []   // stable addresses for the batch
            for (i, (rows, cols)) in weightShapes.enumerated() where rows * cols < 200_000 {
                let format = WeightFormat.allCases[(i + round) % 4]
                let w = randomMatrix(format, rows: rows, cols: cols, rng: &rng)
                let transposed = (i + round) % 3 == 0
                let x = rng.floats(transposed ? rows : cols)
                let xp = UnsafeMutablePointer<Float>.allocate(capacity: x.count)
                xp.initialize(from: x, count: x.count)
                inputs.append(xp)
                let n = transposed ? cols : rows
                let y = UnsafeMutablePointer<Float>.allocate(capacity: n)
                y.initialize(repeating: .nan, count: n)
                var ref = [Float](repeating: 0, count: n), mag = ref
                if transposed {
                    w.applyTransposed(x, rows: 1, into: &ref, path: .reference)
                    absoluteMatrix(w).applyTransposed(x.map(abs), rows: 1, into: &mag, path: .reference)
                    batch.appendTransposed(w, x: xp, y: y)
                } else {
                    w.apply(x, rows: 1, into: &ref, path: .reference)
                    absoluteMatrix(w).apply(x.map(abs), rows: 1, into: &mag, path: .reference)
                    batch.append(w, x: xp, y: y)
                }
                expected.append(ref); magnitudes.append(mag); outputs.append(y)
            }
            batch.run()
            for (i, y) in outputs.enumerated() {
                expectClose(Array(UnsafeBufferPointer(start: y, count: expected[i].count)), expected[i], tol: 1e-5,
                            magnitude: magnitudes[i], "batch round \(round) item \(i)")
                y.deallocate()
            }
            for x in inputs { x.deallocate() }
        }
    }

    @Test("a MatvecBatch gated item: the reference values, and bit for bit what the unfused steps give",
          arguments: WeightFormat.allCases)
    func fusedItems(format: WeightFormat) {
        var rng = SplitMix64(seed: 106)
        let batch = MatvecBatch(pool: WorkerPool(lanes: 2))
        // (rows, cols): one piece, several pieces of a multiple of 8 rows, and a short last piece.
        for (rows, cols) in [(9, 40), (256, 1024), (130, 515)] {
            // Gated: silu(gate·x + bg) ⊙ (up·x + bu).
            let gate = randomMatrix(format, rows: rows, cols: cols, rng: &rng), up = randomMatrix(format, rows: rows, cols: cols, rng: &rng)
            let x = pointer(rng.floats(cols)), bg = pointer(rng.floats(rows)), bu = pointer(rng.floats(rows))
            let out = pointer([Float](repeating: .nan, count: rows)), upOut = pointer([Float](repeating: .nan, count: rows))
            batch.removeAll()
            batch.appendGated(gate: gate, up: up, x: x, out: out, upOut: upOut, gateBias: bg, upBias: bu)
            batch.run()
            var gRef = [Float](repeating: 0, count: rows), uRef = gRef, mag = gRef
            gate.apply(x, rows: 1, into: &gRef, path: .reference)
            up.apply(x, rows: 1, into: &uRef, path: .reference)
            absoluteMatrix(up).apply(UnsafePointer(pointer(array(x, cols).map(abs))), rows: 1, into: &mag, path: .reference)
            for j in 0..<rows { gRef[j] += bg[j]; uRef[j] += bu[j] }
            expectClose(array(upOut, rows), uRef, tol: 1e-5, magnitude: mag.map { $0 + 1 }, "\(format) \(rows)×\(cols): up's rows")
            let actRef = (0..<rows).map { gRef[$0] / (1 + Foundation.exp(-gRef[$0])) * uRef[$0] }
            expectClose(array(out, rows), actRef, tol: 1e-4, atol: 1e-4, "\(format) \(rows)×\(cols): silu(gate) ⊙ up")
            // The same products unfused: gate, up, bias adds, then one siluMul over the vector.
            let g2 = pointer([Float](repeating: .nan, count: rows)), u2 = pointer([Float](repeating: .nan, count: rows))
            batch.removeAll()
            batch.append(gate, x: x, y: g2)
            batch.append(up, x: x, y: u2)
            batch.run()
            Kernels.add(g2, bg, count: rows, out: g2)
            Kernels.add(u2, bu, count: rows, out: u2)
            Kernels.siluMul(g2, u2, count: rows, out: g2)
            #expect(array(out, rows) == array(g2, rows), "\(format) \(rows)×\(cols): the gated item differs from the unfused steps")
            // The batch's reference path computes the same item.
            let g3 = pointer([Float](repeating: .nan, count: rows)), u3 = pointer([Float](repeating: .nan, count: rows))
            batch.removeAll()
            batch.appendGated(gate: gate, up: up, x: x, out: g3, upOut: u3, gateBias: bg, upBias: bu)
            batch.run(path: .reference)
            expectClose(array(g3, rows), actRef, tol: 1e-4, atol: 1e-4, "\(format) \(rows)×\(cols): the reference path's gated item")
            for p in [x, bg, bu, out, upOut, g2, u2, g3, u3] { p.deallocate() }
        }
    }

    @Test("MatvecBatch items of m rows (batched decode): bit for bit the product applied to the m rows alone, gated too",
          arguments: WeightFormat.allCases)
    func multiRowItems(format: WeightFormat) {
        var rng = SplitMix64(seed: 108)
        let batch = MatvecBatch(pool: WorkerPool(lanes: 2))
        // m = 1, a few, the small-batch kernel's largest, and more (run 16 rows at a time); padded strides.
        for (rows, cols, m) in [(64, 256, 1), (130, 515, 3), (256, 1024, 16), (40, 96, 21)] {
            let ldx = cols + 5, ldo = rows + 3
            let w = randomMatrix(format, rows: rows, cols: cols, rng: &rng)
            let gate = randomMatrix(format, rows: rows, cols: cols, rng: &rng), up = randomMatrix(format, rows: rows, cols: cols, rng: &rng)
            let x = pointer(rng.floats(m * ldx)), bias = pointer(rng.floats(rows)), bg = pointer(rng.floats(rows))
            let nan = [Float](repeating: .nan, count: m * ldo)
            let y = pointer(nan), g = pointer(nan), u = pointer(nan)
            batch.removeAll()
            batch.append(w.view, rows: m, x: x, ldx: ldx, y: y, ldy: ldo, bias: bias)
            batch.appendGated(gate: gate.view, up: up.view, rows: m, x: x, ldx: ldx, out: g, upOut: u, ldo: ldo, gateBias: bg)
            batch.run()
            // Alone: the product over the m rows (the small-batch kernel, or the matvec for one row),
            // in groups of at most 16 rows, then the bias and the activation.
            let y2 = pointer(nan), g2 = pointer(nan), u2 = pointer(nan)
            let scratch = Scratch()
            for i in stride(from: 0, to: m, by: 16) {
                let n = min(16, m - i)
                for (matrix, out) in [(w, y2), (gate, g2), (up, u2)] {
                    if n == 1 {
                        WeightKernels.matvec(matrix.view, rows: 0..<rows, x: x + i * ldx, y: out + i * ldo, scratch: scratch)
                    } else {
                        WeightKernels.smallBatch(matrix.view, rows: 0..<rows, m: n, x: x + i * ldx, ldx: ldx, y: out + i * ldo, ldy: ldo)
                    }
                }
            }
            for r in 0..<m {
                Kernels.add(y2 + r * ldo, bias, count: rows, out: y2 + r * ldo)
                Kernels.add(g2 + r * ldo, bg, count: rows, out: g2 + r * ldo)
                Kernels.siluMul(g2 + r * ldo, u2 + r * ldo, count: rows, out: g2 + r * ldo)
            }
            for r in 0..<m {
                let (o, o2) = (r * ldo, r * ldo + rows)
                #expect(array(y, m * ldo)[o..<o2] == array(y2, m * ldo)[o..<o2], "\(format) [\(rows), \(cols)] m=\(m) row \(r): product")
                #expect(array(g, m * ldo)[o..<o2] == array(g2, m * ldo)[o..<o2], "\(format) [\(rows), \(cols)] m=\(m) row \(r): gated")
                #expect(array(u, m * ldo)[o..<o2] == array(u2, m * ldo)[o..<o2], "\(format) [\(rows), \(cols)] m=\(m) row \(r): up")
            }
            // And the batch's reference path agrees with the reference kernels to rounding.
            let y3 = pointer(nan), g3 = pointer(nan), u3 = pointer(nan)
            batch.removeAll()
            batch.append(w.view, rows: m, x: x, ldx: ldx, y: y3, ldy: ldo, bias: bias)
            batch.appendGated(gate: gate.view, up: up.view, rows: m, x: x, ldx: ldx, out: g3, upOut: u3, ldo: ldo, gateBias: bg)
            batch.run(path: .reference)
            // Rounding of sums of up to 1024 products of ~±1: bounded by 1e-5 of Σ|x|·|w| for the
            // products (y, up), and for out = silu(gate)·up also by silu(gate) times up's bound,
            // which dominates where up cancels to near 0 (out's error relative to itself is then large).
            let absX = (0..<(m * ldx)).map { abs(x[$0]) }
            var magW = [Float](repeating: 0, count: m * ldo), magUp = magW
            absoluteMatrix(w).apply(absX, rows: m, ldx: ldx, into: &magW, ldy: ldo, path: .reference)
            absoluteMatrix(up).apply(absX, rows: m, ldx: ldx, into: &magUp, ldy: ldo, path: .reference)
            var worst: Float = 0   // the largest error as a fraction of its bound
            for r in 0..<m {
                for j in r * ldo ..< r * ldo + rows {
                    let silu = u[j] == 0 ? 0 : abs(g[j] / u[j])
                    worst = max(worst, abs(y3[j] - y[j]) / (1e-5 * (1 + magW[j] + abs(bias[j - r * ldo]))),
                                abs(u3[j] - u[j]) / (1e-5 * (1 + magUp[j])),
                                abs(g3[j] - g[j]) / (1e-4 * (1 + abs(g[j])) + silu * 1e-5 * (1 + magUp[j])))
                }
            }
            #expect(worst <= 1, "\(format) [\(rows), \(cols)] m=\(m): max |reference − fast| is \(worst) of its rounding bound")
            for p in [x, bias, bg, y, g, u, y2, g2, u2, y3, g3, u3] { p.deallocate() }
        }
    }

    @Test("a MatvecBatch task runs once per run, with its context, beside the products (and in the reference path)")
    func taskItem() {
        var rng = SplitMix64(seed: 107)
        let batch = MatvecBatch(pool: WorkerPool(lanes: 2))
        let w = randomMatrix(.f32, rows: 300, cols: 256, rng: &rng)
        let x = rng.floats(256)
        var expected = [Float](repeating: 0, count: 300)
        w.apply(x, rows: 1, into: &expected, path: .reference)
        let runs = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        runs.initialize(to: 0)
        defer { runs.deallocate() }
        let count: MatvecBatch.SideTask = { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Int.self)).pointee += 1 }
        x.withUnsafeBufferPointer { xp in
            var y = [Float](repeating: .nan, count: 300)
            y.withUnsafeMutableBufferPointer { yp in
                batch.append(w, x: xp.baseAddress!, y: yp.baseAddress!)
                batch.appendTask(count, context: runs)
                batch.run()
                batch.run()
                batch.run(path: .reference)
            }
            expectClose(y, expected, tol: 1e-5, magnitude: expected.map { abs($0) + 16 }, "the products beside the task")
        }
        #expect(runs.pointee == 3, "the task ran \(runs.pointee) times in three runs")
    }

    @Test("a MatvecBatch warm-up region leaves the products bit for bit as they were; removeAll clears it")
    func warmUpRegion() {
        var rng = SplitMix64(seed: 109)
        let batch = MatvecBatch(pool: WorkerPool(lanes: 2))
        let w = randomMatrix(.bf16, rows: 512, cols: 384, rng: &rng)
        let x = rng.floats(384), region = rng.floats(40_000)
        x.withUnsafeBufferPointer { xp in
            region.withUnsafeBytes { rp in
                var plain = [Float](repeating: .nan, count: 512), warmed = plain
                plain.withUnsafeMutableBufferPointer { batch.append(w, x: xp.baseAddress!, y: $0.baseAddress!); batch.run() }
                batch.removeAll()
                warmed.withUnsafeMutableBufferPointer { yp in
                    batch.append(w, x: xp.baseAddress!, y: yp.baseAddress!)
                    batch.warmUp = (rp.baseAddress!, rp.count)
                    batch.run()
                    batch.run()
                }
                #expect(plain.map(\.bitPattern) == warmed.map(\.bitPattern) && !plain.contains { $0.isNaN })
                batch.removeAll()
                #expect(batch.warmUp == nil)
            }
        }
    }

    @Test("the float matvec gives the same bits whichever way it prefetches, on whole matrices and row ranges; AVX-512 near the reference",
          arguments: [WeightFormat.f32, .bf16, .f16])
    func matvecPrefetchPolicies(format: WeightFormat) {
        var rng = SplitMix64(seed: 31)
        let scratch = Scratch()
        for (rows, cols) in [(16, 64), (64, 256), (130, 515), (512, 1024), (40, 2816)] {
            let w = randomMatrix(format, rows: rows, cols: cols, rng: &rng)
            let x = rng.floats(cols)
            var ref = [Float](repeating: 0, count: rows)
            w.apply(x, rows: 1, ldx: cols, into: &ref, ldy: rows, path: .reference)
            // The whole matrix, and rows in the middle (the line prefetches stop at the matrix's end).
            for range in [0..<rows, rows / 4 ..< rows / 2 + 1] {
                func product(_ policy: StreamPrefetch, _ isa: VectorISA) -> [Float] {
                    var y = [Float](repeating: .nan, count: rows)
                    x.withUnsafeBufferPointer { xp in
                        y.withUnsafeMutableBufferPointer { yp in
                            WeightKernels.matvec(w.view, rows: range, x: xp.baseAddress!, y: yp.baseAddress!,
                                                 scratch: scratch, prefetch: policy, isa: isa)
                        }
                    }
                    #expect(y.indices.filter { !range.contains($0) }.allSatisfy { y[$0].isNaN }, "only rows \(range) written")
                    return Array(y[range])
                }
                // The AVX2 kernels: the same bits under both policies.
                let outs = StreamPrefetch.allCases.map { product($0, .avx2) }
                #expect(outs[0].map(\.bitPattern) == outs[1].map(\.bitPattern), "\(format) [\(rows), \(cols)] rows \(range)")
                // And every kernel this CPU runs (F32 with AVX-512 has its own) near the reference.
                for (isa, out) in [(VectorISA.avx2, outs[1])] + (VectorISA.hardwareHasAVX512 ? [(.avx512, product(.everyLine, .avx512))] : []) {
                    let diff = zip(out, ref[range]).map { abs($0 - $1) }.max() ?? .nan
                    #expect(diff <= 1e-4 * Float(cols).squareRoot(), "\(isa) \(format) [\(rows), \(cols)]: max |fast − reference| = \(diff)")
                }
            }
        }
    }

    @Test("the read probes' stream sums exactly what a plain loop sums, whichever way it prefetches")
    func streamSumPolicies() {
        let n = 1 << 20
        let values = (0..<n).map { Float($0 % 17) }   // small integers: every order of summation is exact
        let expected = values.reduce(0, +)
        values.withUnsafeBufferPointer { p in
            for policy in StreamPrefetch.allCases {
                #expect(Kernels.streamSum(p.baseAddress!, 0..<n, prefetch: policy) == expected, "\(policy)")
                #expect(Kernels.streamSum(p.baseAddress!, 5..<(n - 3), prefetch: policy)
                        == values[5..<(n - 3)].reduce(0, +), "\(policy), an unaligned range")
            }
        }
    }

    @Test("TINYSEEK_PREFETCH chooses the prefetch policy; by default every line on Intel, a page ahead elsewhere")
    func prefetchPolicyChoice() {
        #expect(StreamPrefetch.choose(environment: [:], intel: true) == .everyLine)
        #expect(StreamPrefetch.choose(environment: [:], intel: false) == .pageAhead)
        #expect(StreamPrefetch.choose(environment: ["TINYSEEK_PREFETCH": "page"], intel: true) == .pageAhead)
        #expect(StreamPrefetch.choose(environment: ["TINYSEEK_PREFETCH": "line"], intel: false) == .everyLine)
        #expect(StreamPrefetch.choose(environment: ["TINYSEEK_PREFETCH": "sometimes"], intel: false) == .pageAhead)
    }

    @Test("the float matvec prefetches once per page of its stream, whatever the row length")
    func pagePrefetches() {
        /// The page boundaries the kernel prefetches ahead of, over `rows` rows of `rowBytes`
        /// starting `offset` bytes into a page, below `limit` bytes from the page.
        func boundaries(rows: Int, rowBytes: UInt, offset: UInt, limit: UInt) -> [UInt] {
            let base: UInt = 1 << 20
            var seen: [UInt] = []
            for j in 0..<UInt(rows) {
                WeightKernels.forEachPageBoundary(from: base + offset + j * rowBytes, bytes: rowBytes,
                                                  below: base + limit) { seen.append($0 - base) }
            }
            return seen
        }
        // 64 rows of 1 KB (a 64 KB piece of the experts' down in F32): one a page, not one a row.
        #expect(boundaries(rows: 64, rowBytes: 1024, offset: 0, limit: 1 << 30) == (0..<16).map { UInt($0) * 4096 })
        #expect(boundaries(rows: 64, rowBytes: 1024, offset: 512, limit: 1 << 30) == (1...16).map { UInt($0) * 4096 })
        // 4 KB rows, not page-aligned (a tensor's offset in its file): one a row.
        #expect(boundaries(rows: 4, rowBytes: 4096, offset: 100, limit: 1 << 30) == [4096, 8192, 12288, 16384])
        // 16 KB rows: four a row; none at or past the limit.
        #expect(boundaries(rows: 2, rowBytes: 16384, offset: 0, limit: 20000) == [0, 4096, 8192, 12288, 16384])
    }

    @Test("a matvec is cut into ~64 KB pieces at any size (the LM head too), none below ~96 KB")
    func matvecPieces() {
        // The LM head of the bench model: 32000 × 1024 F32, 131 MB.
        let lmHead = WeightMatrix.matvecChunks(rows: 32000, bytes: 32000 * 1024 * 4, lanes: 2)
        #expect(lmHead == 2000, "\(lmHead) pieces: \(32000 * 1024 * 4 / max(lmHead, 1)) bytes each")
        #expect(WeightMatrix.matvecChunks(rows: 1024, bytes: 1024 * 1024 * 4, lanes: 2) == 64)
        #expect(WeightMatrix.matvecChunks(rows: 16, bytes: 16 * 1024 * 4, lanes: 2) == 1, "64 KB: one piece")
        #expect(WeightMatrix.matvecChunks(rows: 32000, bytes: 32000 * 1024 * 4, lanes: 1) == 1, "one lane")
        #expect(WeightMatrix.matvecChunks(rows: 32, bytes: 32 * 65536 * 4, lanes: 2) == 8, "at least 4 rows a piece")
    }

    @Test("bytes per element: 4, 2, 2 and 34/32")
    func bytesPerElement() {
        #expect(WeightFormat.f32.bytesPerElement == 4)
        #expect(WeightFormat.bf16.bytesPerElement == 2)
        #expect(WeightFormat.f16.bytesPerElement == 2)
        #expect(WeightFormat.q8_0.bytesPerElement == 34.0 / 32.0)
    }

    @Test("16-bit conversions round to nearest even, and a matrix stays in its format")
    func conversions() {
        // 1 + 2^-8 is halfway between two bfloat16 values: ties go to the even one (1.0).
        #expect(WeightMatrix.bf16Bits(1 + 0x1p-8) == 0x3F80)
        #expect(WeightMatrix.bf16Bits(1 + 3 * 0x1p-8) == 0x3F82)
        #expect(WeightMatrix.bf16Bits(-2) == 0xC000)
        #expect(ReferenceKernels.bf16ToF32(WeightMatrix.bf16Bits(.nan)).isNaN)
        let t = try! Tensor(shape: [1, 3], scalars: [1, 0.1, -3.5])
        for format in WeightFormat.allCases {
            let w = WeightMatrix.converting(WeightMatrix(t), to: format)
            #expect(w.format == format)
            // 1 and -3.5 are exact in both 16-bit formats; Q8_0 is within half a step d/2 = 3.5/254
            // (plus the half rounding of d, ≤ 2⁻¹¹ relative, times 127).
            let tolerance: Float = format == .q8_0 ? 3.5 / 254 + 3.5 * 0x1p-11 : 0
            #expect(abs(w.element(0, 2) + 3.5) <= tolerance, "\(format)")
            #expect(abs(w.element(0, 0) - 1) <= tolerance, "\(format)")
        }
    }
}

@Suite("Q8_0 quantisation")
struct Q8_0Tests {
    @Test("each weight is within half a step of its block's scale; the max maps to ±127")
    func roundTrip() {
        var rng = SplitMix64(seed: 104)
        for cols in [1, 31, 32, 33, 100, 256] {
            let w = rng.floats(cols, in: -3..<3)
            var q = [Int8](repeating: 0, count: cols)
            var s = [UInt16](repeating: 0, count: Q8_0.blocks(cols))
            Q8_0.quantize(row: w, count: cols, values: &q, scales: &s)
            for b in 0..<Q8_0.blocks(cols) {
                let lo = b * 32, hi = min(lo + 32, cols)
                let d = ReferenceKernels.f16ToF32(s[b])
                let amax = w[lo..<hi].map(abs).max() ?? 0
                #expect(abs(d - amax / 127) <= amax / 127 * 0x1p-10, "scale of block \(b), cols \(cols)")
                #expect(q[lo..<hi].map { abs(Int($0)) }.max() == 127 || amax == 0, "block \(b) uses the full range")
                for j in lo..<hi {
                    // d/2 from rounding q, plus what rounding d to half moved the grid (≤ 127·|Δd|).
                    #expect(abs(w[j] - d * Float(q[j])) <= d / 2 + 127 * abs(d - amax / 127) + 1e-7,
                            "weight \(j) of \(cols): \(w[j]) vs \(d * Float(q[j]))")
                }
            }
        }
    }

    @Test("an all-zero block has scale 0 and values 0; -127 is the most negative value")
    func zerosAndRange() {
        var w = [Float](repeating: 0, count: 64)
        w[40] = -1; w[41] = 1
        var q = [Int8](repeating: 5, count: 64), s = [UInt16](repeating: 5, count: 2)
        Q8_0.quantize(row: w, count: 64, values: &q, scales: &s)
        #expect(s[0] == 0 && q[0..<32].allSatisfy { $0 == 0 })
        #expect(q[40] == -127 && q[41] == 127)
    }
}

@Suite("WorkerPool")
struct WorkerPoolTests {
    @Test("every chunk runs exactly once, also when called from many threads at once and nested")
    func chunksRunOnce() async {
        let pool = WorkerPool(lanes: 3)
        await withTaskGroup(of: Bool.self) { group in
            for t in 0..<4 {
                group.addTask {
                    var ok = true
                    for round in 0..<200 {
                        let n = 1 + (round * 7 + t) % 40
                        let counts = UnsafeMutablePointer<Int>.allocate(capacity: n)
                        counts.initialize(repeating: 0, count: n)
                        let nested = UnsafeMutablePointer<Int>.allocate(capacity: 1)
                        nested.initialize(to: 0)
                        pool.run(chunks: n) { c, _ in
                            counts[c] += 1
                            if c == 0 { pool.run(chunks: 3) { _, _ in nested.pointee += 1 } }
                        }
                        ok = ok && (0..<n).allSatisfy { counts[$0] == 1 } && nested.pointee == 3
                        counts.deallocate(); nested.deallocate()
                    }
                    return ok
                }
            }
            for await ok in group { #expect(ok) }
        }
    }

    @Test("a lane's scratch buffer holds what its chunk wrote")
    func scratch() {
        let pool = WorkerPool(lanes: 2)
        let sums = UnsafeMutablePointer<Float>.allocate(capacity: 64)
        pool.run(chunks: 64) { c, scratch in
            let buffer = scratch.floats(1000 + c)
            for i in 0..<(1000 + c) { buffer[i] = Float(c) }
            var s: Float = 0
            for i in 0..<(1000 + c) { s += buffer[i] }
            sums[c] = s
        }
        #expect((0..<64).allSatisfy { sums[$0] == Float(($0) * (1000 + $0)) })
        sums.deallocate()
    }
}
