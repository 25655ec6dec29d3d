import Tensor

/// The run state: every activation buffer a forward pass needs, grown when a longer batch or
/// context arrives and kept while steps use it, so the per-token loop never allocates; a large
/// buffer that steps stop using (a prompt's, once decode starts) is given back (`beginStep`).
public final class Workspace: @unchecked Sendable {
    /// Named scratch buffers; each is a flat float array, grown on demand.
    public enum Slot: Int, CaseIterable, Sendable {
        case x, normed, residual            // (T, hidden)
        case qA                             // (T, q_lora_rank)
        case q                              // (T, H·(dn+dr))
        case kvA                            // (T, r + dr)
        case ropeCos, ropeSin               // (T, dr/2)
        case keysValues                     // naive: (S, H·(dn+dv)) decompressed from the latent
        case qLatent                        // absorbed: (T, H·(r+dr)) = [W_UKᵀ q_nope, q_pe] per head
        case scores                         // (T, S) one head at a time
        case context                        // absorbed: (T, H·r)
        case attnOut                        // (T, H·dv)
        case mlpOut                         // (T, hidden)
        case gate, up                       // (rows, intermediate)
        case routerLogits                   // (T, n_routed_experts)
        case gathered                       // (rows routed to one expert, hidden)
        case expertOut                      // (rows routed to one expert, hidden)
        case logits                         // (T, vocab)
    }

    private var buffers: [TensorStorage]
    private var views: [Tensor?]
    /// The most floats each slot was asked for since `beginStep`.
    private var asked: [Int]
    /// Independent batch-1 products of one step run as one parallel job (a token's experts, or
    /// whole linear layers with their biases: see the `Linear` extension of `MatvecBatch`).
    public let matvecs = MatvecBatch()
    /// A second batch, for the job after `matvecs`' when it is built before that one runs (so
    /// that the first can name it: `UpcomingJob`).
    public let nextMatvecs = MatvecBatch()
    /// The step's sequences and the runs of rows that take the absorbed MLA order, rebuilt each
    /// step in place (capacity kept), so planning a decode step allocates nothing.
    var slices: [SequenceSlice] = []
    var absorbedRuns: [Range<Int>] = []

    public init() {
        buffers = Slot.allCases.map { _ in TensorStorage(zeros: 0) }
        views = Slot.allCases.map { _ in nil }
        asked = Slot.allCases.map { _ in 0 }
    }

    /// Starts a forward step. A buffer that the previous step used less than a quarter of, and
    /// that holds at least `TensorStorage.mappingThreshold` bytes, is freed (its pages go back to
    /// the system) and grows again when a step needs it. So a long prompt's activations are not
    /// kept resident through the decode that follows it: decode needs a few rows, prefill
    /// hundreds. A buffer in use keeps its memory (decode's score buffer, growing one position a
    /// step, grows by half at a time and never falls below a quarter used).
    public func beginStep() {
        for i in buffers.indices {
            let held = buffers[i].count
            if held * 4 >= TensorStorage.mappingThreshold && asked[i] * 4 < held {
                buffers[i] = TensorStorage(zeros: 0)
                views[i] = nil
            }
            asked[i] = 0
        }
    }

    /// A buffer of at least `count` floats for `slot` (contents unspecified). A buffer that must
    /// grow grows by at least half its size, so decode, whose score buffer needs one more position
    /// every step, reallocates a few times per context rather than every step.
    @inline(__always)
    public func pointer(_ slot: Slot, _ count: Int) -> UnsafeMutablePointer<Float> {
        let held = buffers[slot.rawValue].count
        asked[slot.rawValue] = max(asked[slot.rawValue], count)
        if held < count {
            buffers[slot.rawValue] = TensorStorage(zeros: max(count, held + held / 2))
        }
        return buffers[slot.rawValue].base
    }

    /// A (rows, cols) view of `slot`'s buffer, reused while the shape and buffer stay the same (a
    /// new shape array is an allocation, and decode asks for the same logits view every step).
    public func matrix(_ slot: Slot, rows: Int, cols: Int) -> Tensor {
        _ = pointer(slot, rows * cols)
        if let view = views[slot.rawValue], view.storage === buffers[slot.rawValue],
           view.shape[0] == rows, view.shape[1] == cols {
            return view
        }
        let view = Tensor(storage: buffers[slot.rawValue], shape: [rows, cols])
        views[slot.rawValue] = view
        return view
    }

    /// A tensor view of `shape` over `slot`'s buffer.
    public func tensor(_ slot: Slot, _ shape: [Int]) -> Tensor {
        let count = shape.reduce(1, *)
        _ = pointer(slot, count)
        return Tensor(storage: buffers[slot.rawValue], shape: shape)
    }

    /// Decode's one-row jobs whose items are the same every token: the same matrices on the same
    /// buffers.
    enum PrebuiltJob {
        case attentionInput(layer: Int)   // q_a_proj and kv_a_proj
        case queryAbsorb(layer: Int)      // W_UK,h per head
        case valueAbsorb(layer: Int)      // W_UV,h per head
        case moeInput(layer: Int)         // the router and the shared experts' gate and up
        case queryUp(layer: Int)          // q_b_proj, with the new latent-cache row as a task
        case expertsLayout(layer: Int)    // the experts' job laid out before routing (never run)
        case denseInput(layer: Int)       // a dense FFN's gate and up with their activation

        var index: Int {
            switch self {
            case let .attentionInput(l): return 7 * l
            case let .queryAbsorb(l): return 7 * l + 1
            case let .valueAbsorb(l): return 7 * l + 2
            case let .moeInput(l): return 7 * l + 3
            case let .queryUp(l): return 7 * l + 4
            case let .expertsLayout(l): return 7 * l + 5
            case let .denseInput(l): return 7 * l + 6
            }
        }
    }

    /// Memory for the context of a prebuilt job's task (`MatvecBatch.appendTask`), at a fixed
    /// address so the job can be built once: the step writes the token's values into it.
    func taskContext<T>(_ type: T.Type) -> UnsafeMutablePointer<T> {
        precondition(MemoryLayout<T>.size <= Self.taskContextBytes && MemoryLayout<T>.alignment <= 64 && _isPOD(T.self),
                     "a task context must be plain data of at most \(Self.taskContextBytes) bytes")
        return taskContextMemory.bindMemory(to: T.self, capacity: 1)
    }

    private static let taskContextBytes = 256
    private let taskContextMemory = UnsafeMutableRawPointer.allocate(byteCount: taskContextBytes, alignment: 64)

    deinit { taskContextMemory.deallocate() }

    /// The buffers a prebuilt job reads and writes (up to four addresses; no array, so checking
    /// them allocates nothing).
    struct JobBuffers: Equatable {
        private let addresses: SIMD4<UInt>

        init(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ c: UnsafeRawPointer? = nil, _ d: UnsafeRawPointer? = nil) {
            addresses = SIMD4(UInt(bitPattern: a), UInt(bitPattern: b), UInt(bitPattern: c), UInt(bitPattern: d))
        }
    }

    /// The batch of `job`, built by `build` on first use and again only if one of its `buffers`
    /// moved (a workspace serves one model: its `BatchExecutor`'s). Filling a job's items every
    /// token cost microseconds between two jobs (16 items for the per-head jobs), nearly all of it
    /// cache misses on memory the step's weight stream had pushed out.
    func prebuilt(_ job: PrebuiltJob, buffers: JobBuffers, build: (MatvecBatch) -> Void) -> MatvecBatch {
        let i = job.index
        if i >= prebuiltBatches.count { prebuiltBatches += Array(repeating: nil, count: i + 1 - prebuiltBatches.count) }
        if let entry = prebuiltBatches[i], entry.buffers == buffers { return entry.batch }
        let batch = prebuiltBatches[i]?.batch ?? MatvecBatch()
        batch.removeAll()
        build(batch)
        prebuiltBatches[i] = (batch, buffers)
        return batch
    }

    /// Prebuilt job `job` as a step last built it, if one has: for naming it as the job after
    /// another (`UpcomingJob`), which needs only its weights, the same whatever its buffers.
    func builtJob(_ job: PrebuiltJob) -> MatvecBatch? {
        let i = job.index
        return i < prebuiltBatches.count ? prebuiltBatches[i]?.batch : nil
    }

    private var prebuiltBatches: [(batch: MatvecBatch, buffers: JobBuffers)?] = []

    /// Total floats currently held, for memory reports.
    public var floatCount: Int { buffers.reduce(0) { $0 + $1.count } }
}
