/// Which implementation computes a product: the SIMD/BLAS kernels, or the naive reference they
/// are tested against (`ReferenceWeightKernels`).
public enum KernelPath: String, Sendable, CaseIterable {
    case fast
    case reference
}

extension WeightMatrix {
    /// y[m, rows] = x[m, cols] · Wᵀ: a linear layer applied to m rows of activations. `ldx`/`ldy`
    /// are row strides in floats (default: packed).
    ///
    /// - m = 1 (decode): the format's SIMD matvec, split over output rows across the worker pool.
    ///   Bytes: the whole matrix once at `bytesPerElement`; FLOPs 2·rows·cols.
    /// - 2 ≤ m ≤ 16, any format: each weight read (and widened) once in registers for all m rows
    ///   (`WeightKernels.smallBatch`: batched decode, and experts with a few tokens each, stay
    ///   near the matvec's memory speed instead of paying sgemm's packing per tiny call).
    /// - larger m, F32: sgemm (split over output columns across the pool, see `Kernels.gemm`).
    /// - larger m, other formats: panels of rows are decoded into a per-lane float32 tile that stays
    ///   in L2, and each tile goes through sgemm. Decoding costs ~1 op per weight against 2·m FLOPs
    ///   per weight of the product, so it disappears once m is large.
    ///
    /// With `next` (the job after this one), a batch-1 product's lanes pull what they read first
    /// in it into their caches once they are out of rows (`WorkerPool.run(chunks:_:then:)`).
    public func apply(_ x: UnsafePointer<Float>, rows m: Int, ldx: Int? = nil,
                      into y: UnsafeMutablePointer<Float>, ldy: Int? = nil, path: KernelPath = .fast,
                      then next: UpcomingJob? = nil) {
        let ldx = ldx ?? cols, ldy = ldy ?? rows
        guard m > 0, rows > 0 else { return }
        if path == .reference {
            ReferenceWeightKernels.apply(self, x, rows: m, ldx: ldx, into: y, ldy: ldy)
            return
        }
        guard cols > 0 else {
            for i in 0..<m { (y + i * ldy).update(repeating: 0, count: rows) }
            return
        }
        if m == 1 {
            matvec(x, into: y, then: next)
            return
        }
        if m <= WeightKernels.smallBatch {
            // A few rows: widen each weight once in registers for all of them (see SmallBatchKernels).
            let chunks = Swift.max(1, Self.matvecChunks(rows: rows, bytes: byteCount, lanes: WorkerPool.shared.laneCount))
            let per = ((rows + chunks - 1) / chunks + 3) & ~3
            WorkerPool.shared.run(chunks: (rows + per - 1) / per,
                                  SmallBatchRows(w: view, m: m, x: x, ldx: ldx, y: y, ldy: ldy, per: per))
            return
        }
        if case let .f32(p) = storage {
            Kernels.gemm(m: m, n: rows, k: cols, a: x, lda: ldx, b: p, ldb: cols, transposeB: true, c: y, ldc: ldy)
            return
        }
        // Panels of rows decoded to float32: ~256 KB tiles, a multiple of 16 rows.
        let panel = Swift.max(16, Swift.min(rows, (65_536 / cols) & ~15))
        WorkerPool.shared.run(chunks: (rows + panel - 1) / panel,
                              DecodedPanels(w: view, m: m, x: x, ldx: ldx, y: y, ldy: ldy, panel: panel))
    }

    /// Chunk c: output columns [c·per, (c+1)·per) of y for all m rows of x.
    struct SmallBatchRows: PoolTask {
        let w: WeightView, m: Int, x: UnsafePointer<Float>, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int, per: Int
        func callAsFunction(_ c: Int, _ scratch: Scratch) {
            WeightKernels.smallBatch(w, rows: c * per ..< Swift.min(w.rows, (c + 1) * per), m: m, x: x, ldx: ldx, y: y, ldy: ldy)
        }
    }

    /// Chunk c: rows [c·panel, (c+1)·panel) of W decoded into the lane's scratch, then one sgemm.
    struct DecodedPanels: PoolTask {
        let w: WeightView, m: Int, x: UnsafePointer<Float>, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int
        let panel: Int
        func callAsFunction(_ c: Int, _ scratch: Scratch) {
            let lo = c * panel, hi = Swift.min(w.rows, lo + panel)
            let tile = scratch.floats((hi - lo) * w.cols)
            WeightKernels.dequantize(w, rows: lo..<hi, into: tile)
            Kernels.sgemm(m: m, n: hi - lo, k: w.cols, a: x, lda: ldx, b: tile, ldb: w.cols, transposeB: true,
                          c: y + lo, ldc: ldy)
        }
    }

    /// y[rows] = W·x for one row x[cols], parallel over output rows when the matrix is large
    /// enough to pay for the hand-off (~64 KB of weights per chunk, rows in multiples of 4).
    @inline(__always)
    func matvec(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, then next: UpcomingJob? = nil) {
        // One chunk runs on the calling thread, with lane 0's scratch (Q8_0 quantises x there).
        let per = Self.matvecRowsPerChunk(rows: rows, bytes: byteCount, lanes: WorkerPool.shared.laneCount)
        WorkerPool.shared.run(chunks: (rows + per - 1) / per, MatvecRows(w: view, x: x, y: y, per: per), then: next)
    }

    /// Rows per chunk of a batch-1 matvec (a multiple of 4; all rows when it is one chunk).
    static func matvecRowsPerChunk(rows: Int, bytes: Double, lanes: Int) -> Int {
        let chunks = matvecChunks(rows: rows, bytes: bytes, lanes: lanes)
        return chunks <= 1 ? rows : ((rows + chunks - 1) / chunks + 3) & ~3
    }

    /// Chunk c: output rows [c·per, (c+1)·per).
    struct MatvecRows: PoolTask {
        let w: WeightView, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, per: Int
        func callAsFunction(_ c: Int, _ scratch: Scratch) {
            WeightKernels.matvec(w, rows: c * per ..< Swift.min(w.rows, (c + 1) * per), x: x, y: y, scratch: scratch)
        }
    }

    /// How many pieces a matvec is cut into: 1 below ~96 KB of weights (the hand-off would cost
    /// more than it saves), else one piece per ~64 KB like `MatvecBatch`, whatever the size: the
    /// last piece is what a lane can be left waiting for. (Capped at 8 a lane, the LM head's
    /// pieces were 8 MB and a lane waited ~150 µs a token for the other's last one; o_proj's
    /// 256 KB left ~5 µs a layer. Per-job timelines: 20 and 2.4 lane-µs with 64 KB pieces.)
    static func matvecChunks(rows: Int, bytes: Double, lanes: Int) -> Int {
        guard lanes > 1, bytes >= 96 * 1024, rows >= 8 else { return 1 }
        return Swift.max(2, Swift.min(Int(bytes / MatvecBatch.pieceBytes), rows / 4))
    }

    /// y[m, cols] = x[m, rows] · W: the product with W itself (used for W_UK,hᵀ·q in MLA's
    /// absorbed attention, where W is a view of one head's rows of kv_b_proj).
    public func applyTransposed(_ x: UnsafePointer<Float>, rows m: Int, ldx: Int? = nil,
                                into y: UnsafeMutablePointer<Float>, ldy: Int? = nil, path: KernelPath = .fast) {
        let ldx = ldx ?? rows, ldy = ldy ?? cols
        guard m > 0, cols > 0 else { return }
        if path == .reference {
            ReferenceWeightKernels.applyTransposed(self, x, rows: m, ldx: ldx, into: y, ldy: ldy)
            return
        }
        if case let .f32(p) = storage {
            Kernels.gemm(m: m, n: cols, k: rows, a: x, lda: ldx, b: p, ldb: cols, transposeB: false, c: y, ldc: ldy)
            return
        }
        if m == 1 {
            WeightKernels.matvecTransposed(view, x: x, y: y)
            return
        }
        // One chunk: decoded into lane 0's scratch when the pool is free.
        WorkerPool.shared.run(chunks: 1, DecodedTransposed(w: view, m: m, x: x, ldx: ldx, y: y, ldy: ldy))
    }

    struct DecodedTransposed: PoolTask {
        let w: WeightView, m: Int, x: UnsafePointer<Float>, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int
        func callAsFunction(_ c: Int, _ scratch: Scratch) {
            let tile = scratch.floats(w.rows * w.cols)
            WeightKernels.dequantize(w, rows: 0..<w.rows, into: tile)
            Kernels.sgemm(m: m, n: w.cols, k: w.rows, a: x, lda: ldx, b: tile, ldb: w.cols, transposeB: false, c: y, ldc: ldy)
        }
    }

    /// Row `i` decoded to float32 (an embedding lookup in a 16-bit or Q8_0 table).
    public func dequantizeRow(_ i: Int, into out: UnsafeMutablePointer<Float>, path: KernelPath = .fast) {
        precondition(i >= 0 && i < rows, "row \(i) of [\(rows), \(cols)]")
        switch path {
        case .fast: WeightKernels.dequantize(view, rows: i..<(i + 1), into: out)
        case .reference: ReferenceWeightKernels.dequantize(self, rows: i..<(i + 1), into: out)
        }
    }
}
