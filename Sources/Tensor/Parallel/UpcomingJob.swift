/// The job that runs after the current one, named by what its lanes read first, so that lanes
/// left without work in the current job can pull that into their caches while they wait (see
/// `WorkerPool.run(chunks:_:then:)`). A decode step's jobs follow each other in an order known
/// in advance except where the experts depend on routing, so each job can name the next.
public enum UpcomingJob: LeadingReads {
    /// A `MatvecBatch`'s run.
    case batch(MatvecBatch)
    /// A batch-1 `WeightMatrix.apply` of this matrix (its rows split as `WeightMatrix.matvec` does).
    case matvec(WeightView)
    /// `LatentAttention.attend` with a query projection (`absorb`): its groups of heads first
    /// read their rows of `weights`, `weightRowsPerHead` rows a head.
    case attention(heads: Int, positions: Int, rank: Int, ropeDims: Int, weights: WeightView, weightRowsPerHead: Int)

    /// A job laid out like `layout`, of which only `known`'s weights are known yet (`layout` has
    /// placeholders of the same shapes for the rest): a lane whose first piece reads `known` is
    /// named it, the others nothing. (The MoE's experts' job before routing: the shared experts'
    /// down is known, the routed experts are not.)
    case partly(layout: MatvecBatch, known: WeightView)

    public func leadingRead(lane: Int, of lanes: Int) -> UnsafeRawBufferPointer? {
        switch self {
        case let .batch(batch):
            return batch.leadingRead(lane: lane, of: lanes)
        case let .partly(layout, known):
            guard let read = layout.leadingRead(lane: lane, of: lanes), let start = read.baseAddress,
                  let k = known.values.baseAddress, start >= k, start < k + known.values.count else { return nil }
            return read
        case let .matvec(w):
            let per = WeightMatrix.matvecRowsPerChunk(rows: w.rows, bytes: w.byteCount, lanes: lanes)
            guard let chunk = WorkerPool.leadingChunk(lane: lane, of: lanes, chunks: (w.rows + per - 1) / per) else { return nil }
            return w.rows(chunk * per ..< w.rows).values
        case let .attention(heads, positions, rank, ropeDims, w, k):
            let per = LatentAttention.headsPerGroup(rows: heads, positions: positions, rank: rank, ropeDims: ropeDims, lanes: lanes)
            guard let group = WorkerPool.leadingChunk(lane: lane, of: lanes, chunks: (heads + per - 1) / per) else { return nil }
            return w.rows(group * per * k ..< w.rows).values
        }
    }
}
