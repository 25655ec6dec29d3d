/// A linear layer's weight, W stored [rows = out features, cols = in features] (PyTorch layout),
/// in any `WeightFormat`, read in place.
///
/// F32, BF16 and F16 weights are pointers straight into the memory-mapped checkpoint: nothing is
/// converted at load, and the kernels widen 16-bit weights to float32 in registers as they stream
/// them (`apply`), so a BF16 model reads half the bytes of an F32 one per token. Q8_0 weights
/// (`WeightFormat.q8_0`) are two arrays, int8 values and half-precision block scales.
///
/// A matrix is a cheap value (pointers, two sizes, and a reference that keeps the memory alive);
/// `rows(_:)` is a view of consecutive rows, which is how MLA takes one head's W_UK or W_UV out
/// of kv_b_proj without copying it.
public struct WeightMatrix: @unchecked Sendable {
    /// Where the elements are. Every pointer addresses row 0 of this view; rows are `cols`
    /// elements apart (Q8_0 scales: `Q8_0.blocks(cols)` apart).
    public enum Storage: @unchecked Sendable {
        case f32(UnsafePointer<Float>)                                // (rows, cols)
        case bf16(UnsafePointer<UInt16>)                              // (rows, cols)
        case f16(UnsafePointer<UInt16>)                               // (rows, cols)
        case q8_0(values: UnsafePointer<Int8>, scales: UnsafePointer<UInt16>)  // (rows, cols), (rows, ⌈cols/32⌉)

        public var format: WeightFormat {
            switch self {
            case .f32: return .f32
            case .bf16: return .bf16
            case .f16: return .f16
            case .q8_0: return .q8_0
            }
        }
    }

    /// Output features: the length of y = W·x.
    public let rows: Int
    /// Input features: the length of x.
    public let cols: Int
    public let storage: Storage
    /// Keeps the memory alive: a mapped file, a `TensorStorage`, or an `OwnedBytes`.
    private let owner: AnyObject?

    /// Wraps storage that `owner` keeps alive. Pointers must be aligned for their element type.
    public init(rows: Int, cols: Int, storage: Storage, owner: AnyObject?) {
        precondition(rows >= 0 && cols >= 0, "negative weight shape [\(rows), \(cols)]")
        self.rows = rows
        self.cols = cols
        self.storage = storage
        self.owner = owner
    }

    /// An F32 matrix viewing a rank-2 tensor (zero-copy; a checkpoint tensor stays in the mapping).
    public init(_ tensor: Tensor) {
        precondition(tensor.rank == 2, "a weight matrix needs a rank-2 tensor, got \(tensor.shape)")
        self.init(rows: tensor.shape[0], cols: tensor.shape[1], storage: .f32(UnsafePointer(tensor.pointer)),
                  owner: tensor.storage)
    }

    /// A matrix over raw stored bytes in `format` (the F16 scales of Q8_0 follow at `scales`).
    /// Zero-copy when the bytes are aligned for their element type; a misaligned tensor (possible
    /// in a hand-written safetensors file) is copied into aligned memory first.
    public init(format: WeightFormat, rows: Int, cols: Int, bytes: UnsafeRawPointer,
                scales: UnsafeRawPointer? = nil, owner: AnyObject) {
        func aligned(_ p: UnsafeRawPointer, _ alignment: Int, byteCount: Int) -> (UnsafeRawPointer, AnyObject) {
            if Int(bitPattern: p) % alignment == 0 { return (p, owner) }
            let copy = OwnedBytes(byteCount: byteCount)
            copy.pointer.copyMemory(from: p, byteCount: byteCount)
            return (UnsafeRawPointer(copy.pointer), copy)
        }
        let n = rows * cols
        switch format {
        case .f32:
            let (p, o) = aligned(bytes, 4, byteCount: n * 4)
            self.init(rows: rows, cols: cols, storage: .f32(p.assumingMemoryBound(to: Float.self)), owner: o)
        case .bf16:
            let (p, o) = aligned(bytes, 2, byteCount: n * 2)
            self.init(rows: rows, cols: cols, storage: .bf16(p.assumingMemoryBound(to: UInt16.self)), owner: o)
        case .f16:
            let (p, o) = aligned(bytes, 2, byteCount: n * 2)
            self.init(rows: rows, cols: cols, storage: .f16(p.assumingMemoryBound(to: UInt16.self)), owner: o)
        case .q8_0:
            precondition(scales != nil, "Q8_0 needs its scales")
            let (s, o) = aligned(scales.unsafelyUnwrapped, 2, byteCount: rows * Q8_0.blocks(cols) * 2)
            // Values are bytes: any address is aligned. Both owners must stay alive.
            let both: AnyObject = o === owner ? owner : Owners(owner, o)
            self.init(rows: rows, cols: cols,
                      storage: .q8_0(values: bytes.assumingMemoryBound(to: Int8.self),
                                     scales: s.assumingMemoryBound(to: UInt16.self)), owner: both)
        }
    }

    public var format: WeightFormat { storage.format }

    /// What the kernels read: pointers and sizes, without the reference that keeps them alive.
    public var view: WeightView { WeightView(rows: rows, cols: cols, storage: storage) }

    /// Bytes streamed per element (4, 2, 2, 34/32): what the cost model charges a matvec.
    public var bytesPerElement: Double { format.bytesPerElement }
    public var count: Int { rows * cols }
    /// Bytes a matvec streams: the whole matrix, once.
    public var byteCount: Double { view.byteCount }
    /// True when the elements live in memory this matrix did not allocate (a mapped checkpoint or
    /// a tensor), i.e. loading did not copy them.
    public var isBorrowed: Bool {
        !(owner is OwnedBytes) && !(owner is WeightArena) && !((owner as? TensorStorage)?.isOwned ?? false)
            && !((owner as? Owners)?.hasOwnedBytes ?? false)
    }

    /// Address of element (0, 0) (the values, for Q8_0).
    public var baseAddress: UnsafeRawPointer {
        switch storage {
        case let .f32(p): return UnsafeRawPointer(p)
        case let .bf16(p), let .f16(p): return UnsafeRawPointer(p)
        case let .q8_0(v, _): return UnsafeRawPointer(v)
        }
    }

    /// True when both are views of the same elements (a tied LM head and embedding).
    public func sharesStorage(with other: WeightMatrix) -> Bool {
        baseAddress == other.baseAddress && format == other.format
    }

    /// Rows `range` as a view (no copy).
    public func rows(_ range: Range<Int>) -> WeightMatrix {
        WeightMatrix(rows: range.count, cols: cols, storage: view.rows(range).storage, owner: owner)
    }

    /// W[i, j] as float32, decoded one element at a time by the reference conversions: the
    /// definition every fast kernel is tested against.
    public func element(_ i: Int, _ j: Int) -> Float {
        precondition(i >= 0 && i < rows && j >= 0 && j < cols, "element (\(i), \(j)) of [\(rows), \(cols)]")
        switch storage {
        case let .f32(p): return p[i * cols + j]
        case let .bf16(p): return ReferenceKernels.bf16ToF32(p[i * cols + j])
        case let .f16(p): return ReferenceKernels.f16ToF32(p[i * cols + j])
        case let .q8_0(v, s):
            let d = ReferenceKernels.f16ToF32(s[i * Q8_0.blocks(cols) + j / Q8_0.blockSize])
            return d * Float(v[i * cols + j])
        }
    }

    /// The whole matrix as a new float32 tensor (rows, cols), decoded by the fast kernels.
    public func dequantized() -> Tensor {
        let t = Tensor(zeros: [rows, cols])
        WeightKernels.dequantize(view, rows: 0..<rows, into: t.pointer)
        return t
    }

    /// A copy in `format`, in memory this matrix owns: how `tinyseek quantize` and the tests make
    /// BF16/F16/Q8_0 weights from float32 ones. Conversion to BF16 and F16 rounds to nearest even.
    public static func converting(_ source: WeightMatrix, to format: WeightFormat) -> WeightMatrix {
        let rows = source.rows, cols = source.cols
        let f = source.dequantized()
        switch format {
        case .f32:
            return WeightMatrix(f)
        case .bf16, .f16:
            let bytes = OwnedBytes(byteCount: max(rows * cols, 1) * 2)
            let out = bytes.pointer.bindMemory(to: UInt16.self, capacity: max(rows * cols, 1))
            for i in 0..<rows * cols {
                out[i] = format == .bf16 ? bf16Bits(f.pointer[i]) : Float16(f.pointer[i]).bitPattern
            }
            return WeightMatrix(rows: rows, cols: cols, storage: format == .bf16 ? .bf16(UnsafePointer(out)) : .f16(UnsafePointer(out)),
                                owner: bytes)
        case .q8_0:
            let blocks = Q8_0.blocks(cols)
            let (values, scales, owner) = q8Memory(rows: rows, cols: cols, nil)
            for i in 0..<rows {
                Q8_0.quantize(row: f.pointer + i * cols, count: cols, values: values + i * cols, scales: scales + i * blocks)
            }
            return WeightMatrix(rows: rows, cols: cols, storage: .q8_0(values: UnsafePointer(values), scales: UnsafePointer(scales)),
                                owner: owner)
        }
    }

    /// For `blocks` blocks of `rowsPerBlock` rows starting every `blockStride` rows, each block
    /// transposed: block b of the result is (cols, rowsPerBlock) with element [i, k] = self[b·stride + k, i].
    /// A copy in the same format, exact (elements are moved, not converted); nil for Q8_0, whose
    /// blocks of 32 run along the rows and cannot be transposed without re-quantising.
    public func transposingBlocks(_ blocks: Int, rowsPerBlock: Int, blockStride: Int, in arena: WeightArena? = nil) -> WeightMatrix? {
        precondition(blocks >= 0 && rowsPerBlock >= 0 && (blocks == 0 || (blocks - 1) * blockStride + rowsPerBlock <= rows),
                     "\(blocks) blocks of \(rowsPerBlock) rows every \(blockStride) of [\(rows), \(cols)]")
        func transpose<T>(_ p: UnsafePointer<T>, _ wrap: (UnsafePointer<T>) -> Storage) -> WeightMatrix {
            let n = blocks * cols * rowsPerBlock
            let (raw, owner) = Self.copyMemory(max(n, 1) * MemoryLayout<T>.stride, arena)
            let out = raw.bindMemory(to: T.self, capacity: max(n, 1))
            for b in 0..<blocks {
                let src = p + b * blockStride * cols, dst = out + b * cols * rowsPerBlock
                for k in 0..<rowsPerBlock {
                    for i in 0..<cols { (dst + i * rowsPerBlock + k).initialize(to: src[k * cols + i]) }
                }
            }
            return WeightMatrix(rows: blocks * cols, cols: rowsPerBlock, storage: wrap(UnsafePointer(out)), owner: owner)
        }
        switch storage {
        case let .f32(p): return transpose(p) { .f32($0) }
        case let .bf16(p): return transpose(p) { .bf16($0) }
        case let .f16(p): return transpose(p) { .f16($0) }
        case .q8_0: return nil
        }
    }

    /// Rows [first + b·blockStride, first + b·blockStride + rowsPerBlock) for b < `blocks`, one
    /// after the other: (blocks·rowsPerBlock, cols). A copy in the same format, exact for every
    /// format (whole rows move, Q8_0 rows with their scales).
    public func gatheringBlocks(_ blocks: Int, rowsPerBlock: Int, blockStride: Int, firstRow: Int,
                                in arena: WeightArena? = nil) -> WeightMatrix {
        precondition(blocks >= 0 && rowsPerBlock >= 0 && firstRow >= 0
                     && (blocks == 0 || firstRow + (blocks - 1) * blockStride + rowsPerBlock <= rows),
                     "\(blocks) blocks of \(rowsPerBlock) rows every \(blockStride) from \(firstRow) of [\(rows), \(cols)]")
        let n = blocks * rowsPerBlock
        func gather<T>(_ p: UnsafePointer<T>, rowLength: Int, into out: UnsafeMutablePointer<T>) {
            for b in 0..<blocks {
                (out + b * rowsPerBlock * rowLength).initialize(from: p + (firstRow + b * blockStride) * rowLength,
                                                                 count: rowsPerBlock * rowLength)
            }
        }
        func copy<T>(_ p: UnsafePointer<T>, _ wrap: (UnsafePointer<T>) -> Storage) -> WeightMatrix {
            let (raw, owner) = Self.copyMemory(max(n * cols, 1) * MemoryLayout<T>.stride, arena)
            let out = raw.bindMemory(to: T.self, capacity: max(n * cols, 1))
            gather(p, rowLength: cols, into: out)
            return WeightMatrix(rows: n, cols: cols, storage: wrap(UnsafePointer(out)), owner: owner)
        }
        switch storage {
        case let .f32(p): return copy(p) { .f32($0) }
        case let .bf16(p): return copy(p) { .bf16($0) }
        case let .f16(p): return copy(p) { .f16($0) }
        case let .q8_0(v, sc):
            let (values, scales, owner) = Self.q8Memory(rows: n, cols: cols, arena)
            gather(sc, rowLength: Q8_0.blocks(cols), into: scales)
            gather(v, rowLength: cols, into: values)
            return WeightMatrix(rows: n, cols: cols, storage: .q8_0(values: UnsafePointer(values), scales: UnsafePointer(scales)),
                                owner: owner)
        }
    }

    /// Memory for a Q8_0 matrix of (rows, cols): the scales first (2-byte aligned at offset 0),
    /// then the values, from `arena` or in their own allocation.
    private static func q8Memory(rows: Int, cols: Int, _ arena: WeightArena?)
        -> (values: UnsafeMutablePointer<Int8>, scales: UnsafeMutablePointer<UInt16>, owner: AnyObject) {
        let blocks = Q8_0.blocks(cols)
        let (raw, owner) = copyMemory(max(rows * blocks * 2 + rows * cols, 2), arena)
        let scales = raw.bindMemory(to: UInt16.self, capacity: max(rows * blocks, 1))
        let values = (raw + rows * blocks * 2).bindMemory(to: Int8.self, capacity: max(rows * cols, 1))
        return (values, scales, owner)
    }

    /// `count` bytes for a copy, from `arena` (which then owns them) or in their own allocation.
    private static func copyMemory(_ count: Int, _ arena: WeightArena?) -> (UnsafeMutableRawPointer, AnyObject) {
        if let arena { return (arena.allocate(count), arena) }
        let bytes = OwnedBytes(byteCount: count)
        return (bytes.pointer, bytes)
    }

    /// float32 → bfloat16 bits, round to nearest even (NaN stays a quiet NaN).
    public static func bf16Bits(_ x: Float) -> UInt16 {
        let b = x.bitPattern
        if x.isNaN { return UInt16(b >> 16) | 0x40 }
        let rounded = b &+ 0x7FFF &+ ((b >> 16) & 1)
        return UInt16(rounded >> 16)
    }
}

/// Raw memory a converted or misaligned weight owns, freed with it.
public final class OwnedBytes: @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer
    public let byteCount: Int

    public init(byteCount: Int) {
        self.byteCount = byteCount
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
    }

    deinit { pointer.deallocate() }
}

/// Two owners kept alive together (Q8_0 values in the mapping, scales copied for alignment).
private final class Owners: @unchecked Sendable {
    let first: AnyObject, second: AnyObject
    init(_ first: AnyObject, _ second: AnyObject) { self.first = first; self.second = second }
    var hasOwnedBytes: Bool { first is OwnedBytes || second is OwnedBytes }
}

/// The part of a `WeightMatrix` the kernels read: its shape and where its elements are, with no
/// reference to the memory's owner, so copying one retains nothing.
///
/// Parallel jobs carry views, not matrices. A chunk that copied a `WeightMatrix` retained and
/// released its owner (the mapped checkpoint, shared by every matrix of the model), and with two
/// lanes doing that for every 64 KB piece the owner's reference count bounced between the cores:
/// `swift_retain`/`swift_release` took ~1.4% of each lane's samples in F32 decode. The caller of
/// a job holds the matrix, so the view stays valid until the job returns.
public struct WeightView: Sendable {
    public let rows: Int
    public let cols: Int
    public let storage: WeightMatrix.Storage

    /// Rows `range` (no copy).
    public func rows(_ range: Range<Int>) -> WeightView {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "rows \(range) of [\(rows), \(cols)]")
        let r = range.lowerBound
        let s: WeightMatrix.Storage
        switch storage {
        case let .f32(p): s = .f32(p + r * cols)
        case let .bf16(p): s = .bf16(p + r * cols)
        case let .f16(p): s = .f16(p + r * cols)
        case let .q8_0(v, sc): s = .q8_0(values: v + r * cols, scales: sc + r * Q8_0.blocks(cols))
        }
        return WeightView(rows: range.count, cols: cols, storage: s)
    }

    /// The view's weights as one run of bytes (Q8_0: its values; the scales, 1/16 as many bytes,
    /// are a run of their own).
    public var values: UnsafeRawBufferPointer {
        switch storage {
        case let .f32(p): return UnsafeRawBufferPointer(start: p, count: rows * cols * 4)
        case let .bf16(p), let .f16(p): return UnsafeRawBufferPointer(start: p, count: rows * cols * 2)
        case let .q8_0(v, _): return UnsafeRawBufferPointer(start: v, count: rows * cols)
        }
    }

    /// Bytes a matvec streams: the whole view, once (Q8_0: values and scales).
    public var byteCount: Double { Double(rows * cols) * storage.format.bytesPerElement }
}
