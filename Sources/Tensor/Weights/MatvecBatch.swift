/// Several independent batch-1 products run as one parallel job.
///
/// A decode step is hundreds of small matvecs (a 256×1024 expert matrix is ~1 MB in F32, a few
/// tens of microseconds). Handing each to the worker pool separately pays a hand-off per matrix
/// and lets the lanes idle at the start and end of each; collecting the independent ones (gate and
/// up of every selected expert, the per-head W_UK/W_UV products) into one job cuts the rows of all
/// of them into ~64 KB pieces that the lanes claim from a single queue.
///
/// Reusable: `removeAll()` keeps its storage, so a decode loop that refills it allocates nothing
/// once the largest batch has been seen.
public final class MatvecBatch: @unchecked Sendable {
    /// y = W·x (`transposed`: y = xᵀ·W, which cannot be split by rows and is one piece).
    struct Item {
        var matrix: WeightMatrix
        /// What a piece reads (`Pieces` never copies `matrix`, see `WeightView`).
        var view: WeightView
        var x: UnsafePointer<Float>
        var y: UnsafeMutablePointer<Float>
        var transposed: Bool
        /// Rows per piece (a multiple of 4) and the index of this item's first piece.
        var rowsPerPiece = 0
        var firstPiece = 0
    }

    private var items: [Item] = []
    private let pool: WorkerPool
    /// Bytes of weights per piece: big enough to amortise a claim, small enough to balance.
    public static let pieceBytes = 64 * 1024.0

    public init(pool: WorkerPool = .shared) {
        self.pool = pool
        items.reserveCapacity(64)
    }

    public var isEmpty: Bool { items.isEmpty }

    public func removeAll() { items.removeAll(keepingCapacity: true) }

    /// Adds y[W.rows] = W·x[W.cols].
    public func append(_ w: WeightMatrix, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        items.append(Item(matrix: w, view: w.view, x: x, y: y, transposed: false))
    }

    /// Adds y[W.cols] = xᵀ·W for x[W.rows] (see `WeightMatrix.applyTransposed`).
    public func appendTransposed(_ w: WeightMatrix, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        items.append(Item(matrix: w, view: w.view, x: x, y: y, transposed: true))
    }

    /// Bytes of weights the batch streams (for the cost model: each matrix once).
    public var byteCount: Double { items.reduce(0) { $0 + $1.matrix.byteCount } }

    /// Runs every product (`path: .reference` runs them one by one with the reference kernels).
    public func run(path: KernelPath = .fast) {
        guard !items.isEmpty else { return }
        if path == .reference {
            for item in items {
                if item.transposed {
                    item.matrix.applyTransposed(item.x, rows: 1, into: item.y, path: .reference)
                } else {
                    item.matrix.apply(item.x, rows: 1, into: item.y, path: .reference)
                }
            }
            return
        }
        var pieces = 0
        for i in items.indices {
            let m = items[i].matrix
            let n = items[i].transposed ? 1 : max(1, min(Int(m.byteCount / Self.pieceBytes), (m.rows + 3) / 4))
            items[i].rowsPerPiece = items[i].transposed ? m.rows : ((m.rows + n - 1) / n + 3) & ~3
            items[i].firstPiece = pieces
            pieces += items[i].transposed ? 1 : (m.rows + items[i].rowsPerPiece - 1) / max(items[i].rowsPerPiece, 1)
        }
        items.withUnsafeBufferPointer { pool.run(chunks: pieces, Pieces(items: $0)) }
    }

    /// Piece p of the batch: a row range of one item (or a whole transposed item).
    struct Pieces: PoolTask {
        let items: UnsafeBufferPointer<Item>
        func callAsFunction(_ piece: Int, _ scratch: Scratch) {
            // Items are few (tens): find this piece's item by a linear scan from the end.
            var i = items.count - 1
            while items[i].firstPiece > piece { i -= 1 }
            // Field by field: a copy of the whole item would retain its matrix's owner.
            let w = items[i].view, x = items[i].x, y = items[i].y
            if items[i].transposed {
                WeightKernels.matvecTransposed(w, x: x, y: y)
            } else {
                let lo = (piece - items[i].firstPiece) * items[i].rowsPerPiece
                let hi = min(w.rows, lo + items[i].rowsPerPiece)
                WeightKernels.matvec(w, rows: lo..<hi, x: x, y: y, scratch: scratch)
            }
        }
    }
}
