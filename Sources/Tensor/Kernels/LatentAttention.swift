import CKernelSupport

/// Decode-time scores of absorbed MLA: query rows against the rows of a latent cache.
///
/// A cache row is [c_t (r floats) | k_pe,t (dr floats)]; a query row is q̃ = W_UK,hᵀ q_nope,h (r
/// floats) with its rotated q_pe,h (dr floats) kept elsewhere:
///
///   scores[i·S + t] = scale · (q̃_i · c_t + q_pe,i · k_pe,t)
///
/// This is sgemm's job for prefill, but a decode step has only H rows (16 here) against S cache
/// rows: sgemm packs every cache row it reads into a buffer, which for 16 rows costs about what
/// the arithmetic does, and split over columns each lane's call repeats that. Here each lane
/// takes a range of positions and reads its cache rows in place, once: for each pair of
/// positions, every group of four query rows in a 4 × 2 register tile (eight accumulators,
/// `tinyseek_hsum8x8` for the eight sums). The context Σ p·c stays with sgemm (as fast here).
///
/// `ReferenceKernels.latentScores` is the definition it is tested against.
public enum LatentAttention {
    /// scores[i·positions + t] for i < rows, t < positions. q̃ rows are `latentStride` floats
    /// apart, q_pe rows `ropeStride`, cache rows `rank + ropeDims`.
    public static func scores(rows: Int, rank: Int, ropeDims: Int, positions: Int,
                              qLatent: UnsafePointer<Float>, latentStride: Int, qRope: UnsafePointer<Float>, ropeStride: Int,
                              cache: UnsafePointer<Float>, scale: Float, into scores: UnsafeMutablePointer<Float>,
                              pool: WorkerPool = .shared) {
        guard rows > 0, positions > 0 else { return }
        // Chunks of at least 32 positions (a few microseconds of work), up to 4 per lane.
        let chunks = max(1, min(positions / 32, 4 * pool.laneCount))
        let per = (positions + chunks - 1) / chunks
        let task = Scores(rows: rows, r: rank, dr: ropeDims, positions: positions, per: (per + 1) & ~1,
                          q: qLatent, ldq: latentStride, e: qRope, lde: ropeStride, cache: cache, scale: scale, out: scores)
        pool.run(chunks: (positions + task.per - 1) / task.per, task)
    }

    /// Longest cache `attend` splits by heads: each lane reads every cached row, which for up to
    /// 256 rows (295 KB for DeepSeek-V3's 576-float rows) stays in its L2.
    public static let headSplitPositions = 256

    /// One query token's whole attention over the latent cache, as one parallel job over groups of
    /// query rows (heads): for each group, its scores against every cached row, their softmax, and
    /// ctx = P · C, the probabilities times the cached latent rows (r floats each).
    ///
    /// Decode with a short cache was three steps on the caller between W_UK's and W_UV's jobs:
    /// scores (split by positions only from 64 positions on), the softmax, and the context (split
    /// only from ~49). Each lane now runs all three for its heads, so no lane waits in between.
    /// Longer caches keep the position-split `scores` and sgemm context, which read the cache once.
    ///
    /// The first `valid` positions are attended (the rest get probability 0, as in a causal
    /// prefill block); `scores` is scratch of rows × positions floats; `context` receives rows ×
    /// rank floats. With `rotate`, each group first applies RoPE to its rows' q_pe in place (the
    /// rows' rotation then costs no step of its own between two jobs). With `absorb`, each group
    /// first forms its rows of qLatent (MLA's W_UK,hᵀ·q_nope,h per head), and with `project` it
    /// then applies its rows' output projection to their context (W_UV per head): each would
    /// otherwise be a job of its own, before and after this one. With `next`, lanes out of groups
    /// pull what they read first in the job after this one (`WorkerPool.run(chunks:_:then:)`).
    public static func attend(rows: Int, rank: Int, ropeDims: Int, positions: Int, valid: Int,
                              qLatent: UnsafePointer<Float>, latentStride: Int, qRope: UnsafeMutablePointer<Float>, ropeStride: Int,
                              rotate: QueryRotation? = nil,
                              cache: UnsafePointer<Float>, scale: Float, scores: UnsafeMutablePointer<Float>,
                              context: UnsafeMutablePointer<Float>, absorb: InputProjection? = nil, project: OutputProjection? = nil,
                              then next: UpcomingJob? = nil, pool: WorkerPool = .shared) {
        guard rows > 0, positions > 0 else { return }
        if let absorb {
            let shapeOK = absorb.transposed ? absorb.weights.rows % rows == 0 && absorb.weights.cols == rank
                                            : absorb.weights.rows == rows * rank
            precondition(shapeOK && UnsafePointer(absorb.out) == qLatent && latentStride == rank,
                         "query projection [\(absorb.weights.rows), \(absorb.weights.cols)]\(absorb.transposed ? " (transposed)" : "") for \(rows) rows of \(rank) into qLatent")
        }
        if let project {
            precondition(project.weights.rows == rows * project.outputsPerRow && project.weights.cols == rank,
                         "output projection [\(project.weights.rows), \(project.weights.cols)] for \(rows) rows of \(rank)")
        }
        let per = headsPerGroup(rows: rows, positions: positions, rank: rank, ropeDims: ropeDims, lanes: pool.laneCount)
        let task = Heads(rows: rows, per: per, r: rank, dr: ropeDims, positions: positions, valid: valid,
                         q: qLatent, ldq: latentStride, e: qRope, lde: ropeStride, rotate: rotate, cache: cache, scale: scale,
                         scores: scores, context: context,
                         absorb: absorb.map { ($0.weights.view, $0.transposed, $0.input, $0.inputStride, $0.out) },
                         project: project.map { ($0.weights.view, $0.outputsPerRow, $0.out) })
        pool.run(chunks: (rows + per - 1) / per, task, then: next)
    }

    /// Query rows per group of `attend`'s job (its chunks): groups of four rows (the score
    /// kernel's tile), at most two groups per lane; one group, run on the caller, below ~32K
    /// multiply-adds (a microsecond: less than a hand-off).
    static func headsPerGroup(rows: Int, positions: Int, rank: Int, ropeDims: Int, lanes: Int) -> Int {
        let work = rows * positions * (2 * rank + ropeDims)
        let groups = work < 1 << 15 ? 1 : max(1, min((rows + 3) / 4, 2 * lanes))
        return (rows + groups - 1) / groups
    }

    /// The rotary angles of the query's position, for `attend` to rotate q_pe rows with.
    public struct QueryRotation {
        public var cos: UnsafePointer<Float>
        public var sin: UnsafePointer<Float>
        public var layout: RopeLayout

        public init(cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, layout: RopeLayout) {
            self.cos = cos
            self.sin = sin
            self.layout = layout
        }
    }

    /// Row i's query q̃_i = W[i·rank ..< (i+1)·rank, :] · x_i, x_i = input + i·inputStride (W:
    /// rows·rank × the input's width), written to `out`, which must be attend's qLatent. With
    /// `transposed`, W is rows·width × rank and q̃_i = W[i·width ..< (i+1)·width, :]ᵀ · x_i: for
    /// MLA's W_UK in a format whose blocks run along its rows (Q8_0), which cannot be transposed
    /// at load without re-quantising.
    public struct InputProjection {
        public var weights: WeightMatrix
        public var transposed: Bool
        public var input: UnsafePointer<Float>
        public var inputStride: Int
        public var out: UnsafeMutablePointer<Float>

        public init(weights: WeightMatrix, transposed: Bool = false, input: UnsafePointer<Float>, inputStride: Int,
                    out: UnsafeMutablePointer<Float>) {
            self.weights = weights
            self.transposed = transposed
            self.input = input
            self.inputStride = inputStride
            self.out = out
        }
    }

    /// Row i's output y[i·k ..< (i+1)·k] = W[i·k ..< (i+1)·k, :] · context_i, for k =
    /// `outputsPerRow` (W: rows·k × rank).
    public struct OutputProjection {
        public var weights: WeightMatrix
        public var outputsPerRow: Int
        public var out: UnsafeMutablePointer<Float>

        public init(weights: WeightMatrix, outputsPerRow: Int, out: UnsafeMutablePointer<Float>) {
            self.weights = weights
            self.outputsPerRow = outputsPerRow
            self.out = out
        }
    }

    /// At most this much latent cache is prefetched ahead of attention: by every lane in q_b's job
    /// (`MatvecBatch.warmUp`), by a group of `attend` while it forms its q̃, or by MLA before a
    /// step's absorbed attention over all its sequences (a quarter of a Zen 4 core's L2; longer
    /// caches stream through the caches anyway).
    public static let cachePrefetchBytes = 256 * 1024

    /// Chunk c: query rows [c·per, (c+1)·per): their q̃ (with `absorb`), RoPE on their q_pe (with
    /// `rotate`), scores, softmax, context, and the output projection of each (with `project`).
    struct Heads: PoolTask {
        let rows: Int, per: Int, r: Int, dr: Int, positions: Int, valid: Int
        let q: UnsafePointer<Float>, ldq: Int, e: UnsafeMutablePointer<Float>, lde: Int
        let rotate: QueryRotation?
        let cache: UnsafePointer<Float>, scale: Float
        let scores: UnsafeMutablePointer<Float>, context: UnsafeMutablePointer<Float>
        let absorb: (w: WeightView, transposed: Bool, input: UnsafePointer<Float>, inputStride: Int, out: UnsafeMutablePointer<Float>)?
        let project: (w: WeightView, outputsPerRow: Int, out: UnsafeMutablePointer<Float>)?

        func callAsFunction(_ c: Int, _ scratch: Scratch) {
            let lo = c * per, n = min(rows, lo + per) - lo, S = positions
            guard n > 0 else { return }
            if let absorb {
                // The cache rows this group will score are in DRAM (the step's weight stream has
                // pushed them out), and the score loop alone reads them latency-bound: ~10 µs for
                // 75 KB at ~65 GB/s free, against ~2.5 µs from L2. So each head's W_UK stream
                // carries a share of their prefetches, which arrive while it streams.
                let cacheBytes = min(S * (r + dr) * 4, LatentAttention.cachePrefetchBytes), share = (cacheBytes / n + 63) & ~63
                for i in lo ..< lo + n {
                    let o = (i - lo) * share
                    if o < cacheBytes { WeightKernels.prefetch(UnsafeRawPointer(cache) + o, bytes: min(share, cacheBytes - o)) }
                    let x = absorb.input + i * absorb.inputStride
                    if absorb.transposed {
                        let k = absorb.w.rows / rows
                        WeightKernels.matvecTransposed(absorb.w.rows(i * k ..< (i + 1) * k), x: x, y: absorb.out + i * r)
                    } else {
                        WeightKernels.matvec(absorb.w, rows: i * r ..< (i + 1) * r, x: x, y: absorb.out, scratch: scratch)
                    }
                }
            }
            if let rotate {
                for i in lo ..< lo + n { Kernels.rope(e + i * lde, cos: rotate.cos, sin: rotate.sin, half: dr / 2, layout: rotate.layout) }
            }
            let p = scores + lo * S
            Scores(rows: n, r: r, dr: dr, positions: S, per: S, q: q + lo * ldq, ldq: ldq, e: e + lo * lde, lde: lde,
                   cache: cache, scale: scale, out: p)(0, scratch)
            for i in 0..<n { Kernels.softmax(p + i * S, count: S, valid: valid) }
            Kernels.sgemm(m: n, n: r, k: S, a: p, lda: S, b: cache, ldb: r + dr, transposeB: false,
                          c: context + lo * r, ldc: r)
            if let project {
                let k = project.outputsPerRow
                for i in lo ..< lo + n {
                    WeightKernels.matvec(project.w, rows: i * k ..< (i + 1) * k, x: context + i * r, y: project.out, scratch: scratch)
                }
            }
        }
    }

    /// Chunk c: positions [c·per, (c+1)·per) for every query row.
    struct Scores: PoolTask {
        /// Cache rows read ahead of the pair being scored (4 rows: ~4.6 KB of DeepSeek-V3's).
        static let prefetchRows = 4

        let rows: Int, r: Int, dr: Int, positions: Int, per: Int
        let q: UnsafePointer<Float>, ldq: Int, e: UnsafePointer<Float>, lde: Int
        let cache: UnsafePointer<Float>, scale: Float, out: UnsafeMutablePointer<Float>

        func callAsFunction(_ c: Int, _ scratch: Scratch) {
            let lo = c * per, hi = min(positions, lo + per), w = r + dr, S = positions
            let r8 = r & ~7, dr8 = dr & ~7
            // Σ over the columns past the last multiple of 8, for query row i and position t.
            @inline(__always) func tail(_ i: Int, _ t: Int) -> Float {
                let qi = q + i * ldq, ei = e + i * lde, ct = cache + t * w
                var s: Float = 0
                for k in r8..<r { s += qi[k] * ct[k] }
                for k in dr8..<dr { s += ei[k] * ct[r + k] }
                return s
            }
            let ragged = r8 < r || dr8 < dr
            // Rows `prefetchRows` ahead are prefetched as the loop goes (the first ones up front):
            // rows not already in cache then stream instead of arriving one miss at a time.
            let end = cache + hi * w
            WeightKernels.prefetch(UnsafeRawPointer(cache + lo * w), bytes: 4 * (min(hi, lo + Self.prefetchRows) - lo) * w)
            var t = lo
            while t < hi {
                let two = t + 1 < hi
                let c0 = cache + t * w, c1 = two ? c0 + w : c0
                let ahead = c0 + Self.prefetchRows * w
                if ahead < end { WeightKernels.prefetch(UnsafeRawPointer(ahead), bytes: 4 * min(2 * w, end - ahead)) }
                var i = 0
                while i + 4 <= rows {
                    let q0 = q + i * ldq, q1 = q0 + ldq, q2 = q1 + ldq, q3 = q2 + ldq
                    let e0 = e + i * lde, e1 = e0 + lde, e2 = e1 + lde, e3 = e2 + lde
                    var a00 = V8(), a10 = V8(), a20 = V8(), a30 = V8(), a01 = V8(), a11 = V8(), a21 = V8(), a31 = V8()
                    var k = 0
                    while k < r8 {
                        let x0 = load8(c0 + k), x1 = load8(c1 + k)
                        let y0 = load8(q0 + k), y1 = load8(q1 + k), y2 = load8(q2 + k), y3 = load8(q3 + k)
                        a00.addProduct(y0, x0); a10.addProduct(y1, x0); a20.addProduct(y2, x0); a30.addProduct(y3, x0)
                        a01.addProduct(y0, x1); a11.addProduct(y1, x1); a21.addProduct(y2, x1); a31.addProduct(y3, x1)
                        k += 8
                    }
                    k = 0
                    while k < dr8 {
                        let x0 = load8(c0 + r + k), x1 = load8(c1 + r + k)
                        let y0 = load8(e0 + k), y1 = load8(e1 + k), y2 = load8(e2 + k), y3 = load8(e3 + k)
                        a00.addProduct(y0, x0); a10.addProduct(y1, x0); a20.addProduct(y2, x0); a30.addProduct(y3, x0)
                        a01.addProduct(y0, x1); a11.addProduct(y1, x1); a21.addProduct(y2, x1); a31.addProduct(y3, x1)
                        k += 8
                    }
                    var v = tinyseek_hsum8x8(a00, a10, a20, a30, a01, a11, a21, a31)
                    if ragged {
                        for h in 0..<4 {
                            v[h] += tail(i + h, t)
                            if two { v[4 + h] += tail(i + h, t + 1) }
                        }
                    }
                    v *= scale
                    out[i * S + t] = v[0]; out[(i + 1) * S + t] = v[1]; out[(i + 2) * S + t] = v[2]; out[(i + 3) * S + t] = v[3]
                    if two {
                        out[i * S + t + 1] = v[4]; out[(i + 1) * S + t + 1] = v[5]
                        out[(i + 2) * S + t + 1] = v[6]; out[(i + 3) * S + t + 1] = v[7]
                    }
                    i += 4
                }
                // Rows past the last group of four: one dot product at a time.
                while i < rows {
                    for u in t..<(two ? t + 2 : t + 1) {
                        let cu = cache + u * w
                        out[i * S + u] = scale * (Kernels.dot(q + i * ldq, cu, count: r) + Kernels.dot(e + i * lde, cu + r, count: dr))
                    }
                    i += 1
                }
                t += two ? 2 : 1
            }
        }
    }
}
