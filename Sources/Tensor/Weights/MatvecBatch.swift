import Foundation
import Synchronization

/// Several independent batch-1 products run as one parallel job.
///
/// A decode step is hundreds of small matvecs (a 256×1024 expert matrix is ~1 MB in F32, a few
/// tens of microseconds). Handing each to the worker pool separately pays a hand-off per matrix
/// and lets the lanes idle at the start and end of each; collecting the independent ones (gate and
/// up of every selected expert, the per-head W_UK/W_UV products) into one job cuts the rows of all
/// of them into ~64 KB pieces that the lanes claim from a single queue.
///
/// A gated item (`appendGated`) also does the elementwise step that would otherwise follow the
/// job on the caller alone (the other lanes idle, half the rows it reads in their caches): a
/// SwiGLU's silu(gate) ⊙ up. Gate and up are cut into row blocks of their own pieces, each a
/// plain stream of one matrix, and whichever piece completes a block's pair applies the
/// activation to that block. (Pieces holding both matrices' rows of a block, two interleaved
/// 32 KB streams, read 6 points slower at ~64 GB/s free: 90% of the probe against 96%.)
///
/// Reusable: `removeAll()` keeps its storage, so a decode loop that refills it allocates nothing
/// once the largest batch has been seen.
public final class MatvecBatch: @unchecked Sendable {
    /// One matrix product of an item: y = W·x (+ bias), for `m` rows of x (row strides `ldx` and
    /// `ldy`; m > 1 in batched decode, through the small-batch kernel). Pieces read `view`
    /// (`Pieces` never copies a product, see `WeightView`).
    struct Product {
        var view: WeightView
        var x: UnsafePointer<Float>
        var y: UnsafeMutablePointer<Float>
        var bias: UnsafePointer<Float>?
        /// The matrix when appended as one, which keeps its memory alive; nil when appended as a
        /// view, whose memory the caller keeps alive (decode's routed experts: a model's weights
        /// outlive its steps, and the appends then retain nothing).
        var matrix: WeightMatrix? = nil
        var m = 1
        var ldx = 0
        var ldy = 0

        /// y[m, rows] (+ bias) for W's rows `lo..<hi`: the matvec, or for m > 1 the small-batch
        /// kernel, `WeightKernels.smallBatch` rows of x at a time (the piece's weights come from
        /// L2 after the first pass).
        @inline(__always)
        func run(rows lo: Int, _ hi: Int, scratch: Scratch) {
            var i = 0
            while i < m {
                let n = Swift.min(WeightKernels.smallBatch, m - i)
                if n == 1 {
                    WeightKernels.matvec(view, rows: lo..<hi, x: x + i * ldx, y: y + i * ldy, scratch: scratch)
                } else {
                    WeightKernels.smallBatch(view, rows: lo..<hi, m: n, x: x + i * ldx, ldx: ldx, y: y + i * ldy, ldy: ldy)
                }
                i += n
            }
            if let bias { for r in 0..<m { Kernels.add(y + r * ldy + lo, bias + lo, count: hi - lo, out: y + r * ldy + lo) } }
        }
    }

    struct Item {
        enum Kind {
            /// y = W·x, split by rows.
            case rows
            /// y = xᵀ·W, which cannot be split by rows: one piece.
            case transposed
            /// products[0] is gate, products[1] up; gate's y ends up holding silu(gate) ⊙ up.
            /// Pieces: gate's row blocks, then up's; `blockCounters[firstBlock + b]` counts block
            /// b's finished halves.
            case gated
            /// tasks[first]: a small piece of other work (no products), run once by one lane.
            case task
        }
        var kind: Kind
        /// This item's products in `products`.
        var first: Int
        var count: Int
        /// Output rows (shared by all products of the item) and weight bytes of one such row.
        var rows: Int
        var rowBytes: Double
        /// Rows per piece and the index of this item's first piece.
        var rowsPerPiece = 0
        var firstPiece = 0
        /// Gated: row blocks per matrix, and the first of its counters.
        var blocks = 0
        var firstBlock = 0

        /// Piece `local` of this item (counted from its first): the products it runs and their
        /// rows. A gated item's pieces are gate's row blocks, then up's; a transposed item's one
        /// piece is all of it; a task's runs no product.
        func piece(_ local: Int) -> (products: Range<Int>, rows: Range<Int>) {
            switch kind {
            case .task: return (first..<first, 0..<0)
            case .transposed: return (first..<first + 1, 0..<rows)
            case .rows, .gated:
                let which = kind == .gated ? first + local / blocks : first
                let lo = (kind == .gated ? local % blocks : local) * rowsPerPiece
                return (which..<(kind == .gated ? which + 1 : first + count), lo..<min(rows, lo + rowsPerPiece))
            }
        }
    }

    private var items: [Item] = []
    private var products: [Product] = []
    private var tasks: [(work: SideTask, context: UnsafeRawPointer)] = []
    /// Pieces are laid out (`rowsPerPiece`, `firstPiece`) for the items as they are.
    private var planned = false
    private var pieceCount = 0
    /// One counter per gated row block (`blockCount` in use), grown when a batch needs more.
    private var blockCounters: UnsafeMutablePointer<Atomic<Int>>
    private var blockCapacity = 64
    private var blockCount = 0
    private let pool: WorkerPool
    /// Bytes of weights per piece: big enough to amortise a claim, small enough to balance.
    public static let pieceBytes = 64 * 1024.0

    /// Memory every lane prefetches once, before its first piece of the next `run`: data that the
    /// job after this one reads on every lane. Decode's q_b job warms the latent-cache rows that
    /// attention scores next: one lane (the one running the new row's task) had them in its L2,
    /// and the other read them from DRAM in its first head group, ~3 µs a layer longer, while the
    /// first waited for it at the job's end (per-job timelines, three interleaved pairs at ~60
    /// GB/s: q_b + attention 106 → 103 µs a layer). `removeAll` clears it.
    public var warmUp: (pointer: UnsafeRawPointer, bytes: Int)?

    public init(pool: WorkerPool = .shared) {
        self.pool = pool
        blockCounters = .allocate(capacity: blockCapacity)
        for b in 0..<blockCapacity { (blockCounters + b).initialize(to: Atomic(0)) }
        items.reserveCapacity(64)
        products.reserveCapacity(64)
    }

    deinit {
        blockCounters.deinitialize(count: blockCapacity)
        blockCounters.deallocate()
    }

    public var isEmpty: Bool { items.isEmpty }

    public func removeAll() {
        warmUp = nil
        items.removeAll(keepingCapacity: true)
        products.removeAll(keepingCapacity: true)
        tasks.removeAll(keepingCapacity: true)
        planned = false
    }

    /// Adds y[W.rows] = W·x[W.cols] (+ bias[W.rows]). A view's memory must stay valid until the
    /// batch has run: nothing keeps it alive (the `WeightMatrix` overloads do).
    public func append(_ w: WeightView, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                       bias: UnsafePointer<Float>? = nil) {
        append(w, rows: 1, x: x, ldx: 0, y: y, ldy: 0, bias: bias)
    }

    /// Adds y[W.cols] = xᵀ·W for x[W.rows] (see `WeightMatrix.applyTransposed`).
    public func appendTransposed(_ w: WeightView, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        let first = products.count
        products.append(Product(view: w, x: x, y: y))
        addItem(.transposed, from: first)
    }

    /// Adds y[m, W.rows] = x[m, W.cols]·Wᵀ for `m` rows of x (row strides `ldx`, `ldy`): the
    /// weights stream once for all of them (batched decode's experts, each with its tokens).
    public func append(_ w: WeightView, rows m: Int, x: UnsafePointer<Float>, ldx: Int,
                       y: UnsafeMutablePointer<Float>, ldy: Int, bias: UnsafePointer<Float>? = nil) {
        let first = products.count
        products.append(Product(view: w, x: x, y: y, bias: bias, m: m, ldx: ldx, ldy: ldy))
        addItem(.rows, from: first)
    }

    /// Adds out = silu(gate·x + gateBias) ⊙ (up·x + upBias), a SwiGLU's hidden activation; `upOut`
    /// receives up's rows on the way. gate and up must have the same shape (and stay valid until
    /// the batch has run, as for `append`). With `rows` m > 1, for m rows of x (stride `ldx`) into
    /// m rows of out and upOut (stride `ldo`).
    public func appendGated(gate: WeightView, up: WeightView, rows m: Int = 1, x: UnsafePointer<Float>, ldx: Int = 0,
                            out: UnsafeMutablePointer<Float>, upOut: UnsafeMutablePointer<Float>, ldo: Int = 0,
                            gateBias: UnsafePointer<Float>? = nil, upBias: UnsafePointer<Float>? = nil) {
        precondition(gate.rows == up.rows && gate.cols == up.cols, "gate [\(gate.rows), \(gate.cols)] and up [\(up.rows), \(up.cols)] differ")
        let first = products.count
        products.append(Product(view: gate, x: x, y: out, bias: gateBias, m: m, ldx: ldx, ldy: ldo))
        products.append(Product(view: up, x: x, y: upOut, bias: upBias, m: m, ldx: ldx, ldy: ldo))
        addItem(.gated, from: first)
    }

    /// `append` for a whole matrix, which the batch keeps alive until `removeAll`.
    public func append(_ w: WeightMatrix, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                       bias: UnsafePointer<Float>? = nil) {
        append(w.view, x: x, y: y, bias: bias)
        products[products.count - 1].matrix = w
    }

    /// `appendTransposed` for a whole matrix, which the batch keeps alive until `removeAll`.
    public func appendTransposed(_ w: WeightMatrix, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        appendTransposed(w.view, x: x, y: y)
        products[products.count - 1].matrix = w
    }

    /// `appendGated` for whole matrices, which the batch keeps alive until `removeAll`.
    public func appendGated(gate: WeightMatrix, up: WeightMatrix, x: UnsafePointer<Float>,
                            out: UnsafeMutablePointer<Float>, upOut: UnsafeMutablePointer<Float>,
                            gateBias: UnsafePointer<Float>? = nil, upBias: UnsafePointer<Float>? = nil) {
        appendGated(gate: gate.view, up: up.view, x: x, out: out, upOut: upOut, gateBias: gateBias, upBias: upBias)
        products[products.count - 2].matrix = gate
        products[products.count - 1].matrix = up
    }

    /// Work a task piece runs: a function with no context of its own (so storing it allocates
    /// nothing), called with the `context` it was appended with.
    public typealias SideTask = @convention(c) (UnsafeRawPointer) -> Void

    /// Adds `work(context)` as one piece of the job: a few microseconds of other work that needs
    /// this job's inputs but not its outputs, done by one lane while the others stream. `context`
    /// must stay valid until `run` returns. Placed first, so it starts with the job.
    public func appendTask(_ work: SideTask, context: UnsafeRawPointer) {
        tasks.append((work, context))
        items.insert(Item(kind: .task, first: tasks.count - 1, count: 0, rows: 1, rowBytes: 0), at: 0)
        planned = false
    }

    /// Makes products[first...] one item of `kind`.
    private func addItem(_ kind: Item.Kind, from first: Int) {
        let rows = products[first].view.rows
        var bytes = 0.0
        for p in first ..< products.count { bytes += products[p].view.byteCount }
        items.append(Item(kind: kind, first: first, count: products.count - first, rows: rows,
                          rowBytes: rows > 0 ? bytes / Double(rows) : 0))
        planned = false
    }

    /// Bytes of weights the batch streams (for the cost model: each matrix once).
    public var byteCount: Double { products.reduce(0) { $0 + $1.view.byteCount } }

    /// Runs every product (`path: .reference` runs them one by one with the reference kernels).
    /// With `next`, the job that runs after this one, lanes left without pieces pull what they
    /// read first in it into their caches (`WorkerPool.run(chunks:_:then:)`).
    public func run(path: KernelPath = .fast, then next: UpcomingJob? = nil) {
        guard !items.isEmpty else { return }
        if path == .reference {
            runReference()
            return
        }
        if !planned { plan() }
        for b in 0..<blockCount { blockCounters[b].store(0, ordering: .relaxed) }
        items.withUnsafeBufferPointer { items in
            products.withUnsafeBufferPointer { products in
                tasks.withUnsafeBufferPointer {
                    let pieces = Pieces(items: items, products: products, tasks: $0, blockCounters: blockCounters, warmUp: warmUp)
                    pool.run(chunks: pieceCount, pieces, then: next)
                }
            }
        }
    }

    /// Where lane `lane` of `lanes` starts reading weights when this batch runs: its first piece
    /// that reads any (`WorkerPool.leadingChunk`, then on past task pieces), from that piece's
    /// first row to the end of its matrix.
    public func leadingRead(lane: Int, of lanes: Int) -> UnsafeRawBufferPointer? {
        guard !items.isEmpty else { return nil }
        if !planned { plan() }
        guard var piece = WorkerPool.leadingChunk(lane: lane, of: lanes, chunks: pieceCount) else { return nil }
        var i = 0
        while piece < pieceCount {
            while i + 1 < items.count && items[i + 1].firstPiece <= piece { i += 1 }
            let (ps, rows) = items[i].piece(piece - items[i].firstPiece)
            if let p = ps.first {
                let view = products[p].view
                return view.rows(rows.lowerBound..<view.rows).values
            }
            piece += 1
        }
        return nil
    }

    /// Cuts every item into pieces (a batch run again unchanged keeps them).
    private func plan() {
        var pieces = 0, blocks = 0
        for i in items.indices {
            let rows = items[i].rows
            items[i].firstPiece = pieces
            switch items[i].kind {
            case .transposed, .task:
                items[i].rowsPerPiece = rows
                pieces += 1
            case .rows:
                // A multiple of 4 rows (the Q8_0 kernel's group).
                let n = max(1, min(Int(items[i].rowBytes * Double(rows) / Self.pieceBytes), (rows + 3) / 4))
                items[i].rowsPerPiece = ((rows + n - 1) / n + 3) & ~3
                pieces += (rows + items[i].rowsPerPiece - 1) / max(items[i].rowsPerPiece, 1)
            case .gated:
                // Blocks of one matrix's rows, a multiple of 8 (the SIMD width) so the activation
                // splits the vector where one pass over it would.
                let n = max(1, min(Int(items[i].rowBytes / 2 * Double(rows) / Self.pieceBytes), (rows + 7) / 8))
                items[i].rowsPerPiece = ((rows + n - 1) / n + 7) & ~7
                items[i].blocks = (rows + items[i].rowsPerPiece - 1) / max(items[i].rowsPerPiece, 1)
                items[i].firstBlock = blocks
                blocks += items[i].blocks
                pieces += 2 * items[i].blocks
            }
        }
        if blocks > blockCapacity {
            blockCounters.deinitialize(count: blockCapacity)
            blockCounters.deallocate()
            blockCapacity = max(blocks, 2 * blockCapacity)
            blockCounters = .allocate(capacity: blockCapacity)
            for b in 0..<blockCapacity { (blockCounters + b).initialize(to: Atomic(0)) }
        }
        blockCount = blocks
        pieceCount = pieces
        planned = true
    }

    private func runReference() {
        for item in items {
            if case .task = item.kind {
                tasks[item.first].work(tasks[item.first].context)
                continue
            }
            let ps = products[item.first ..< item.first + item.count]
            for p in ps {
                // The caller keeps the memory alive while the batch runs.
                let matrix = WeightMatrix(rows: p.view.rows, cols: p.view.cols, storage: p.view.storage, owner: nil)
                if case .transposed = item.kind {
                    matrix.applyTransposed(p.x, rows: 1, into: p.y, path: .reference)
                } else {
                    matrix.apply(p.x, rows: p.m, ldx: p.ldx, into: p.y, ldy: p.ldy, path: .reference)
                    if let b = p.bias { for r in 0..<p.m { for j in 0..<item.rows { p.y[r * p.ldy + j] += b[j] } } }
                }
            }
            switch item.kind {
            case .rows, .transposed, .task: break
            case .gated:
                let gp = ps[ps.startIndex], g = gp.y, u = ps[ps.startIndex + 1].y
                for r in 0..<gp.m {
                    for j in r * gp.ldy ..< r * gp.ldy + item.rows { g[j] = g[j] / (1 + Foundation.exp(-g[j])) * u[j] }
                }
            }
        }
    }

    /// Piece p of the batch: a row range of one item (or a whole transposed item).
    struct Pieces: PoolTask {
        let items: UnsafeBufferPointer<Item>
        let products: UnsafeBufferPointer<Product>
        let tasks: UnsafeBufferPointer<(work: SideTask, context: UnsafeRawPointer)>
        let blockCounters: UnsafeMutablePointer<Atomic<Int>>
        let warmUp: (pointer: UnsafeRawPointer, bytes: Int)?

        func callAsFunction(_ piece: Int, _ scratch: Scratch) {
            if !scratch.inJob {
                scratch.inJob = true
                if let warmUp { WeightKernels.prefetch(warmUp.pointer, bytes: warmUp.bytes) }
            }
            // Items are few (tens): find this piece's item by a linear scan from the end.
            var i = items.count - 1
            while items[i].firstPiece > piece { i -= 1 }
            let first = items[i].first
            if case .task = items[i].kind {
                tasks[first].work(tasks[first].context)
                return
            }
            if case .transposed = items[i].kind {
                WeightKernels.matvecTransposed(products[first].view, x: products[first].x, y: products[first].y)
                return
            }
            let (ps, rows) = items[i].piece(piece - items[i].firstPiece)
            let lo = rows.lowerBound, hi = rows.upperBound
            for p in ps { products[p].run(rows: lo, hi, scratch: scratch) }
            if case .gated = items[i].kind {
                // The block's second half to finish applies the activation (acquiring the other
                // half's rows, releasing its own).
                let block = (piece - items[i].firstPiece) % items[i].blocks
                let finished = blockCounters[items[i].firstBlock + block].add(1, ordering: .acquiringAndReleasing).newValue
                if finished == 2 {
                    let gate = products[first], up = products[first + 1]
                    for r in 0..<gate.m {
                        let g = gate.y + r * gate.ldy + lo
                        Kernels.siluMul(g, up.y + r * up.ldy + lo, count: hi - lo, out: g)
                    }
                }
            }
        }
    }
}
