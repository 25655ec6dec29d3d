import Foundation
import Tensor
import Testing

// Every fast kernel in `Kernels` against its twin in `ReferenceKernels`, on seeded random inputs
// of lengths that are not multiples of the SIMD width, so both the vector body and the scalar
// tail run. Tolerances, and why:
// - Reductions (gemm, matvec, dot, the sums inside rmsNorm and softmax) add in a different order
//   (SIMD lanes, BLAS blocking, FMA), so they agree to a relative 1e-5 of the size of the summed
//   terms, Σ|xᵢ·yᵢ|: the textbook error bound scales with that, not with a cancelled result.
// - Elementwise kernels that do the same IEEE operations per element (add, mul, scale, rope) must
//   agree exactly; Swift does not contract a·b + c into an FMA behind our back.
// - addScaled uses an FMA (one rounding) where the reference rounds twice: ≤ 1.5 ulp of |y| + |αx|.
// - silu and siluMul use the polynomial `exp8` instead of libm's expf: a few ulp.

/// A gemm implementation: `Kernels.gemm` or `ReferenceKernels.gemm`.
typealias Gemm = @Sendable (Int, Int, Int, UnsafePointer<Float>, Int, UnsafePointer<Float>, Int, Bool,
                  UnsafeMutablePointer<Float>, Int, Float, Float) -> Void

let fastGemm: Gemm = { Kernels.gemm(m: $0, n: $1, k: $2, a: $3, lda: $4, b: $5, ldb: $6, transposeB: $7,
                                    c: $8, ldc: $9, alpha: $10, beta: $11) }
let referenceGemm: Gemm = { ReferenceKernels.gemm(m: $0, n: $1, k: $2, a: $3, lda: $4, b: $5, ldb: $6,
                                                  transposeB: $7, c: $8, ldc: $9, alpha: $10, beta: $11) }

/// One gemm problem with strided operands: every row is `pad` floats longer than it needs to be,
/// and the padding of A and B is NaN, so a kernel that reads past a row poisons its result.
/// The padding of C holds a sentinel that must survive. With beta = 0, C starts as NaN too:
/// BLAS semantics say C is then not read.
struct GemmProblem: CustomStringConvertible {
    let m, n, k: Int
    let transposeB: Bool
    let alpha, beta: Float
    let pad: Int
    var lda: Int { k + pad }
    var ldb: Int { (transposeB ? k : n) + pad }
    var ldc: Int { n + pad }
    let a, b, c: [Float]  // a: (m, lda), b: (n, ldb) if transposeB else (k, ldb), c: (m, ldc)

    init(m: Int, n: Int, k: Int, transposeB: Bool, alpha: Float = 1, beta: Float = 0, pad: Int = 3,
         rng: inout SplitMix64) {
        (self.m, self.n, self.k, self.transposeB, self.alpha, self.beta, self.pad) = (m, n, k, transposeB, alpha, beta, pad)
        func strided(rows: Int, length: Int, stride: Int, padding: Float, rng: inout SplitMix64) -> [Float] {
            var out = [Float](repeating: padding, count: rows * stride)
            for r in 0..<rows { for j in 0..<length { out[r * stride + j] = rng.float() } }
            return out
        }
        a = strided(rows: m, length: k, stride: k + pad, padding: .nan, rng: &rng)
        b = transposeB ? strided(rows: n, length: k, stride: k + pad, padding: .nan, rng: &rng)
                       : strided(rows: k, length: n, stride: n + pad, padding: .nan, rng: &rng)
        var c = strided(rows: m, length: n, stride: n + pad, padding: 777, rng: &rng)
        if beta == 0 { for i in 0..<m { for j in 0..<n { c[i * (n + pad) + j] = .nan } } }
        self.c = c
    }

    /// C after `gemm`, the whole strided buffer including padding.
    func run(_ gemm: Gemm, absolute: Bool = false) -> [Float] {
        let (a, b) = absolute ? (self.a.map(abs), self.b.map(abs)) : (self.a, self.b)
        var c = absolute ? self.c.map(abs) : self.c
        gemm(m, n, k, a, lda, b, ldb, transposeB, &c, ldc, absolute ? abs(alpha) : alpha, absolute ? abs(beta) : beta)
        return c
    }

    var description: String {
        "gemm m=\(m) n=\(n) k=\(k) transposeB=\(transposeB) alpha=\(alpha) beta=\(beta) lda=\(lda) ldb=\(ldb) ldc=\(ldc)"
    }
}

func checkGemm(_ p: GemmProblem, sourceLocation: SourceLocation = #_sourceLocation) {
    // Σ|a|·|b|·|alpha| + |beta|·|c|: the reference run on absolute values.
    let magnitude = p.run(referenceGemm, absolute: true)
    expectClose(p.run(fastGemm), p.run(referenceGemm), tol: 1e-5, magnitude: magnitude, "\(p)",
                sourceLocation: sourceLocation)
}

@Suite("Kernels agree with ReferenceKernels")
struct KernelTests {
    static let scalings: [(alpha: Float, beta: Float)] = [(1, 0), (0.5, 0), (1, 1), (-2, 0.25)]

    @Test("gemm, m = 1: the SIMD matvec path (transposeB, alpha 1, beta 0) and every sgemm variant",
          arguments: [true, false])
    func gemmSingleRow(transposeB: Bool) {
        var rng = SplitMix64(seed: 1)
        for (alpha, beta) in Self.scalings {
            for n in oddSizes { for k in oddSizes {
                checkGemm(GemmProblem(m: 1, n: n, k: k, transposeB: transposeB, alpha: alpha, beta: beta, rng: &rng))
            } }
        }
    }

    @Test("gemm, m > 1: OpenBLAS sgemm with strided operands", arguments: [true, false])
    func gemmBatch(transposeB: Bool) {
        var rng = SplitMix64(seed: 2)
        let sizes = oddSizes.filter { $0 <= 100 }
        for (alpha, beta) in Self.scalings {
            for m in [2, 5, 17] { for n in sizes { for k in sizes {
                checkGemm(GemmProblem(m: m, n: n, k: k, transposeB: transposeB, alpha: alpha, beta: beta, rng: &rng))
            } } }
        }
        for (m, n, k) in [(33, 100, 1000), (100, 33, 17), (9, 1000, 31)] {
            checkGemm(GemmProblem(m: m, n: n, k: k, transposeB: transposeB, alpha: 1, beta: 0, rng: &rng))
        }
    }

    @Test("gemm with an empty dimension writes nothing (m or n = 0) or beta·C (k = 0)")
    func gemmEmpty() {
        var rng = SplitMix64(seed: 3)
        for (m, n, k) in [(0, 5, 5), (5, 0, 5), (5, 5, 0), (1, 5, 0), (0, 0, 0)] {
            for (alpha, beta) in Self.scalings { for t in [true, false] {
                checkGemm(GemmProblem(m: m, n: n, k: k, transposeB: t, alpha: alpha, beta: beta, rng: &rng))
            } }
        }
    }

    @Test("matvec against a one-row reference gemm, weight rows strided and NaN-padded")
    func matvec() {
        var rng = SplitMix64(seed: 4)
        for rows in oddSizes { for cols in oddSizes {
            let p = GemmProblem(m: 1, n: rows, k: cols, transposeB: true, rng: &rng)
            var y = [Float](repeating: .nan, count: rows)
            Kernels.matvec(weight: p.b, ldw: p.ldb, rows: rows, cols: cols, x: p.a, y: &y)
            let expected = Array(p.run(referenceGemm).prefix(rows))
            let magnitude = Array(p.run(referenceGemm, absolute: true).prefix(rows))
            expectClose(y, expected, tol: 1e-5, magnitude: magnitude, "matvec rows=\(rows) cols=\(cols)")
        } }
    }

    @Test("dot, aligned and misaligned", arguments: oddSizes + [4097])
    func dot(n: Int) {
        var rng = SplitMix64(seed: 5 &+ UInt64(n))
        let a = rng.floats(n + 1), b = rng.floats(n + 1)
        for shift in [0, 1] {
            let fast = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
                Kernels.dot(pa.baseAddress! + shift, pb.baseAddress! + shift, count: n) } }
            let ref = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
                ReferenceKernels.dot(pa.baseAddress! + shift, pb.baseAddress! + shift, count: n) } }
            let terms = ReferenceKernels.dot(a.dropFirst(shift).map(abs), b.dropFirst(shift).map(abs), count: n)
            expectClose([fast], [ref], tol: 1e-5, magnitude: [terms], "dot n=\(n) shift=\(shift)")
        }
    }

    /// MLA decode scores: query rows in groups of four and a remainder, positions in pairs and
    /// an odd last one, split into chunks over the pool (≥ 32 positions each), with widths that
    /// are and are not multiples of 8, strided query rows and NaN padding after each row.
    @Test("latent scores against the reference: rows, positions, ragged widths, strides",
          arguments: [(16, 256, 32), (5, 64, 8), (7, 20, 4), (1, 8, 0)])
    func latentScores(rows: Int, rank: Int, ropeDims: Int) {
        var rng = SplitMix64(seed: 31)
        let (ldq, lde) = (rank + 3, ropeDims + 5)
        for positions in [1, 2, 3, 31, 64, 65, 200] {
            var q = rng.floats(rows * ldq), e = rng.floats(rows * lde)
            for i in 0..<rows {
                for k in rank..<ldq { q[i * ldq + k] = .nan }
                for k in ropeDims..<lde { e[i * lde + k] = .nan }
            }
            let cache = rng.floats(positions * (rank + ropeDims))
            var fast = [Float](repeating: .nan, count: rows * positions), ref = fast, mag = fast
            LatentAttention.scores(rows: rows, rank: rank, ropeDims: ropeDims, positions: positions, qLatent: q, latentStride: ldq,
                                   qRope: e, ropeStride: lde, cache: cache, scale: 0.125, into: &fast, pool: WorkerPool(lanes: 2))
            ReferenceKernels.latentScores(rows: rows, rank: rank, ropeDims: ropeDims, positions: positions, qLatent: q,
                                          latentStride: ldq, qRope: e, ropeStride: lde, cache: cache, scale: 0.125, into: &ref)
            ReferenceKernels.latentScores(rows: rows, rank: rank, ropeDims: ropeDims, positions: positions,
                                          qLatent: q.map { $0.isNaN ? $0 : abs($0) }, latentStride: ldq,
                                          qRope: e.map { $0.isNaN ? $0 : abs($0) }, ropeStride: lde,
                                          cache: cache.map(abs), scale: 0.125, into: &mag)
            expectClose(fast, ref, tol: 1e-5, magnitude: mag, "\(rows) rows, r \(rank), dr \(ropeDims), \(positions) positions")
        }
    }

    /// One query token's whole latent attention in one job over head groups: scores, softmax over
    /// the first `valid` positions, context Σ p·c, against the reference step by step.
    @Test("latent attend (scores, softmax, context by head groups) against the reference",
          arguments: [(16, 256, 32), (5, 64, 8), (7, 20, 4)])
    func latentAttend(rows: Int, rank: Int, ropeDims: Int) {
        var rng = SplitMix64(seed: 37)
        let (ldq, lde, w) = (rank + 3, ropeDims + 5, rank + ropeDims)
        for (positions, valid) in [(1, 1), (2, 2), (33, 33), (64, 40), (256, 256)] {
            let q = rng.floats(rows * ldq), cache = rng.floats(positions * w)
            var e = rng.floats(rows * lde)
            var scores = [Float](repeating: .nan, count: rows * positions)
            var fast = [Float](repeating: .nan, count: rows * rank)
            // Every other case passes q_pe unrotated with the angles: attend rotates it in place
            // first, and the reference gets it rotated beforehand.
            let rotating = valid % 2 == 0
            let half = ropeDims / 2, cos = rng.floats(half), sin = rng.floats(half)
            var unrotated = e
            if rotating {
                for i in 0..<rows { ReferenceKernels.rope(&e[i * lde], cos: cos, sin: sin, half: half, layout: .interleaved) }
            }
            // The same cases also apply a per-row output projection (3 outputs a row) to the context.
            let perRow = 3, wOut = randomMatrix(.f32, rows: rows * perRow, cols: rank, rng: &rng)
            var projected = [Float](repeating: .nan, count: rows * perRow)
            cos.withUnsafeBufferPointer { c in sin.withUnsafeBufferPointer { sn in
                let rotation = rotating ? LatentAttention.QueryRotation(cos: c.baseAddress!, sin: sn.baseAddress!, layout: .interleaved) : nil
                if !rotating { unrotated = e }
                unrotated.withUnsafeMutableBufferPointer { qRope in
                    projected.withUnsafeMutableBufferPointer { out in
                        LatentAttention.attend(rows: rows, rank: rank, ropeDims: ropeDims, positions: positions, valid: valid, qLatent: q,
                                               latentStride: ldq, qRope: qRope.baseAddress!, ropeStride: lde, rotate: rotation,
                                               cache: cache, scale: 0.125, scores: &scores, context: &fast,
                                               project: rotating ? .init(weights: wOut, outputsPerRow: perRow, out: out.baseAddress!) : nil,
                                               pool: WorkerPool(lanes: 2))
                    }
                }
            } }
            if rotating {
                // Against the projection of the kernel's own context (the context is checked below).
                var expected = [Float](repeating: 0, count: rows * perRow), mag = expected
                for i in 0..<rows {
                    let head = wOut.rows(i * perRow ..< (i + 1) * perRow)
                    var y = [Float](repeating: 0, count: perRow), m = y
                    head.apply(Array(fast[i * rank ..< (i + 1) * rank]), rows: 1, into: &y, path: .reference)
                    absoluteMatrix(head).apply(fast[i * rank ..< (i + 1) * rank].map(abs), rows: 1, into: &m, path: .reference)
                    for j in 0..<perRow { expected[i * perRow + j] = y[j]; mag[i * perRow + j] = m[j] }
                }
                expectClose(projected, expected, tol: 1e-5, magnitude: mag, "\(rows) rows, \(positions) positions: projected context")
            }
            if rotating {
                expectClose(unrotated, e, tol: 1e-6, atol: 1e-6, "\(rows) rows, \(positions) positions: q_pe rotated in place")
            }
            var p = [Float](repeating: 0, count: rows * positions)
            ReferenceKernels.latentScores(rows: rows, rank: rank, ropeDims: ropeDims, positions: positions, qLatent: q,
                                          latentStride: ldq, qRope: e, ropeStride: lde, cache: cache, scale: 0.125, into: &p)
            var ref = [Float](repeating: 0, count: rows * rank), mag = ref
            for i in 0..<rows {
                var row = Array(p[i * positions ..< (i + 1) * positions])
                ReferenceKernels.softmax(&row, count: positions, valid: valid)
                for k in 0..<rank {
                    for t in 0..<positions {
                        ref[i * rank + k] += row[t] * cache[t * w + k]
                        mag[i * rank + k] += abs(row[t] * cache[t * w + k])
                    }
                }
            }
            expectClose(fast, ref, tol: 1e-5, magnitude: mag, "\(rows) rows, r \(rank), \(positions) positions, \(valid) valid")
        }
    }

    @Test("latent attend forming q̃ itself (per-row products, or transposed ones as for Q8_0's W_UK,h) equals attend given q̃",
          arguments: [(WeightFormat.f32, false), (.bf16, false), (.f16, false), (.q8_0, true), (.f32, true)])
    func latentAttendAbsorb(format: WeightFormat, transposed: Bool) {
        var rng = SplitMix64(seed: transposed ? 39 : 38)
        let (rows, rank, ropeDims, inWidth, stride) = (6, 48, 8, 20, 28)   // x_i: the first 20 of every 28 floats
        let positions = 80, w = rank + ropeDims   // above attend's one-group size: two groups, two lanes
        // W: rows·rank × inWidth, q̃_i = W[i·rank ..< (i+1)·rank]·x_i; transposed, rows·inWidth × rank,
        // q̃_i = W[i·inWidth ..< (i+1)·inWidth]ᵀ·x_i.
        let wIn = transposed ? randomMatrix(format, rows: rows * inWidth, cols: rank, rng: &rng)
                             : randomMatrix(format, rows: rows * rank, cols: inWidth, rng: &rng)
        let x = rng.floats(rows * stride), e = rng.floats(rows * ropeDims), cache = rng.floats(positions * w)
        // q̃ by the reference kernels, then attend as before.
        var qRef = [Float](repeating: 0, count: rows * rank)
        x.withUnsafeBufferPointer { xp in
            qRef.withUnsafeMutableBufferPointer { q in
                for i in 0..<rows {
                    let xi = xp.baseAddress! + i * stride, qi = q.baseAddress! + i * rank
                    if transposed {
                        wIn.rows(i * inWidth ..< (i + 1) * inWidth).applyTransposed(xi, rows: 1, into: qi, path: .reference)
                    } else {
                        wIn.rows(i * rank ..< (i + 1) * rank).apply(xi, rows: 1, into: qi, path: .reference)
                    }
                }
            }
        }
        var e1 = e, e2 = e
        var scores = [Float](repeating: .nan, count: rows * positions)
        var expected = [Float](repeating: .nan, count: rows * rank), fused = expected
        var qFused = [Float](repeating: .nan, count: rows * rank)
        LatentAttention.attend(rows: rows, rank: rank, ropeDims: ropeDims, positions: positions, valid: positions, qLatent: qRef,
                               latentStride: rank, qRope: &e1, ropeStride: ropeDims, cache: cache, scale: 0.2,
                               scores: &scores, context: &expected, pool: WorkerPool(lanes: 2))
        qFused.withUnsafeMutableBufferPointer { qf in
            LatentAttention.attend(rows: rows, rank: rank, ropeDims: ropeDims, positions: positions, valid: positions,
                                   qLatent: qf.baseAddress!, latentStride: rank, qRope: &e2, ropeStride: ropeDims, cache: cache,
                                   scale: 0.2, scores: &scores, context: &fused,
                                   absorb: .init(weights: wIn, transposed: transposed, input: x, inputStride: stride,
                                                 out: qf.baseAddress!),
                                   pool: WorkerPool(lanes: 2))
        }
        let how = transposed ? "transposed products" : "products"
        expectClose(qFused, qRef, tol: 1e-4, atol: 1e-4, "\(format): q̃ formed inside attend by \(how)")
        expectClose(fused, expected, tol: 1e-4, atol: 1e-4, "\(format): context with q̃ formed inside attend by \(how)")
    }

    @Test("rmsNorm", arguments: oddSizes)
    func rmsNorm(n: Int) {
        var rng = SplitMix64(seed: 6 &+ UInt64(n))
        let x = rng.floats(n, in: -3..<3), w = rng.floats(n, in: 0.5..<1.5)
        // A sum of squares has no cancellation, so relative to each output is honest here.
        var fast = [Float](repeating: .nan, count: n), ref = fast
        Kernels.rmsNorm(x, weight: w, eps: 1e-6, count: n, out: &fast)
        ReferenceKernels.rmsNorm(x, weight: w, eps: 1e-6, count: n, out: &ref)
        expectClose(fast, ref, tol: 1e-5, "rmsNorm n=\(n)")
        // An all-zero row stays zero (1/sqrt(eps) times 0), not NaN.
        var zero = [Float](repeating: .nan, count: n)
        Kernels.rmsNorm([Float](repeating: 0, count: n), weight: w, eps: 1e-6, count: n, out: &zero)
        expectClose(zero, [Float](repeating: 0, count: n), tol: 0, "rmsNorm of zeros n=\(n)")
    }
}

// MARK: - softmax

/// Softmax of `row` over its first `valid` entries with both kernels.
func softmaxBoth(_ row: [Float], valid: Int) -> (fast: [Float], ref: [Float]) {
    var fast = row, ref = row
    Kernels.softmax(&fast, count: row.count, valid: valid)
    ReferenceKernels.softmax(&ref, count: row.count, valid: valid)
    return (fast, ref)
}

/// The properties any softmax output must have: masked entries exactly 0, the rest a
/// probability distribution (non-negative, sum 1 — summed in Double so only the kernel's own
/// rounding shows).
func checkDistribution(_ p: [Float], valid: Int, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let v = min(max(valid, 0), p.count)
    #expect(p[v...].allSatisfy { $0 == 0 }, "\(what): masked entries not zero", sourceLocation: sourceLocation)
    guard v > 0 else { return }
    #expect(p[..<v].allSatisfy { $0 >= 0 && $0 <= 1 }, "\(what): entry outside [0, 1]", sourceLocation: sourceLocation)
    let sum = p[..<v].reduce(0.0) { $0 + Double($1) }
    #expect(abs(sum - 1) <= 1e-5, "\(what): sums to \(sum)", sourceLocation: sourceLocation)
}

extension KernelTests {
    @Test("softmaxRows: each (token, head) row as softmax alone, causal, on the calling thread and split over the pool",
          arguments: [(3, 5, 7), (16, 1, 2000), (6, 4, 900)])
    func softmaxRows(heads: Int, tokens: Int, positions: Int) {
        var rng = SplitMix64(seed: 77)
        let scores = rng.floats(heads * tokens * positions, in: -8..<8)
        var rows = scores, alone = scores
        let first = positions - tokens + 1   // the last `tokens` positions are the new tokens
        Kernels.softmaxRows(&rows, rows: heads * tokens, count: positions, firstValid: first, rowsPerStep: heads,
                            pool: WorkerPool(lanes: 2))
        alone.withUnsafeMutableBufferPointer { p in
            for t in 0..<tokens {
                for h in 0..<heads { Kernels.softmax(p.baseAddress! + (t * heads + h) * positions, count: positions, valid: first + t) }
            }
        }
        #expect(rows == alone, "\(heads) heads × \(tokens) tokens × \(positions) positions")
        checkDistribution(Array(rows[0..<positions]), valid: first, "first row")
    }

    @Test("softmax over the first `valid` of n entries, valid from 0 to beyond n", arguments: oddSizes)
    func softmax(n: Int) {
        var rng = SplitMix64(seed: 7 &+ UInt64(n))
        let row = rng.floats(n, in: -8..<8)
        for valid in Set([-1, 0, 1, n / 2, n - 1, n, n + 3]) {
            let (fast, ref) = softmaxBoth(row, valid: valid)
            // exp8 is within ~2 ulp of expf; the sums differ in order: relative 1e-5 per entry.
            expectClose(fast, ref, tol: 1e-5, "softmax n=\(n) valid=\(valid)")
            checkDistribution(fast, valid: valid, "softmax n=\(n) valid=\(valid)")
        }
    }

    @Test("softmax rows of a causal score matrix: row t keeps t + 1 entries, each sums to 1")
    func softmaxCausalRows() {
        var rng = SplitMix64(seed: 8)
        let n = 37
        for t in 0..<n {
            let (fast, ref) = softmaxBoth(rng.floats(n, in: -20..<20), valid: t + 1)
            expectClose(fast, ref, tol: 1e-5, "causal softmax row \(t)")
            checkDistribution(fast, valid: t + 1, "causal softmax row \(t)")
        }
    }

    /// Regression: `exp8` clamped its input at -87.3 and so returned 1.2e-38 for exp(-inf);
    /// a -inf (masked) score got a tiny non-zero probability instead of exactly 0.
    @Test("softmax is stable for scores of magnitude 1e4 and -inf entries", arguments: [8, 9, 17, 100, 1000])
    func softmaxExtremes(n: Int) {
        var rng = SplitMix64(seed: 9 &+ UInt64(n))
        var row = rng.floats(n, in: -1e4..<1e4)
        let masked = Set((0..<n / 3).map { _ in rng.int(in: 1..<n) })  // index 0 stays finite
        for i in masked { row[i] = -.infinity }
        let (fast, ref) = softmaxBoth(row, valid: n)
        // exp8 flushes results below e^-87.3 ≈ 1.2e-38 to 0 where expf returns them (subnormal).
        expectClose(fast, ref, tol: 1e-5, atol: 2 * Float.leastNormalMagnitude, "softmax 1e4 n=\(n)")
        checkDistribution(fast, valid: n, "softmax 1e4 n=\(n)")
        #expect(masked.allSatisfy { fast[$0] == 0 }, "exp(-inf) must give exactly 0 (n=\(n))")

        // Nearly equal large scores: the max subtraction keeps exp in range.
        let flat = (0..<n).map { Float(1e4) + Float($0 % 3) }
        let (f2, r2) = softmaxBoth(flat, valid: n)
        expectClose(f2, r2, tol: 1e-5, "softmax near 1e4 n=\(n)")
        checkDistribution(f2, valid: n, "softmax near 1e4 n=\(n)")
    }
}
