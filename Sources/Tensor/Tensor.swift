import Foundation

/// Memory that a tensor's elements live in.
///
/// Either owned (allocated and freed here) or borrowed from something that outlives
/// every view of it, such as a memory-mapped safetensors file (`owner` keeps it alive).
/// Weights are never copied at load: an F32 tensor in a checkpoint is a borrowed storage.
public final class TensorStorage: @unchecked Sendable {
    public let base: UnsafeMutablePointer<Float>
    public let count: Int
    private let owner: AnyObject?
    /// Bytes mapped for this storage (0 when it came from malloc).
    private let mappedBytes: Int

    /// Storages of at least this many bytes are their own anonymous mapping.
    ///
    /// The kernel zero-fills such pages when first touched, so a large buffer (a KV cache, a
    /// prefill-sized activation) costs resident memory only for the part that is used, and its
    /// pages go back to the system when it is freed. malloc would keep a freed block of a size it
    /// has seen freed before in its heap (glibc raises its mmap threshold up to 32 MB), so the
    /// process would stay as large as its largest prompt.
    public static let mappingThreshold = 1 << 20

    /// Allocates `count` zeroed floats, 64-byte aligned (one cache line, a whole AVX-512 vector).
    public init(zeros count: Int) {
        let bytes = max(count, 1) * 4
        if bytes >= Self.mappingThreshold, let mapped = AnonymousMemory.map(bytes, hugePages: false) {
            self.base = mapped.bindMemory(to: Float.self, capacity: max(count, 1))
            self.mappedBytes = bytes
        } else {
            let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            raw.initializeMemory(as: Float.self, repeating: 0, count: max(count, 1))
            self.base = raw.assumingMemoryBound(to: Float.self)
            self.mappedBytes = 0
        }
        self.count = count
        self.owner = nil
    }

    /// Borrows `count` floats at `base`; `owner` is retained for as long as this storage lives.
    public init(borrowing base: UnsafeMutablePointer<Float>, count: Int, owner: AnyObject) {
        self.base = base
        self.count = count
        self.owner = owner
        self.mappedBytes = 0
    }

    public var isOwned: Bool { owner == nil }

    deinit {
        if mappedBytes > 0 {
            AnonymousMemory.unmap(UnsafeMutableRawPointer(base), mappedBytes)
        } else if owner == nil {
            UnsafeMutableRawPointer(base).deallocate()
        }
    }
}

/// A row-major, contiguous Float32 tensor: a shape over a window of a `TensorStorage`.
///
/// Views (`rows(_:)`, `row(_:)`, `reshaped(_:)`) share storage and copy nothing, so a
/// tensor is a cheap value to pass around; writing through one view is visible in the others,
/// exactly like the run-state buffers of llama2.c.
public struct Tensor: @unchecked Sendable {
    public let storage: TensorStorage
    /// Element offset of this view into `storage`.
    public let offset: Int
    public let shape: [Int]

    public init(storage: TensorStorage, offset: Int = 0, shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(offset >= 0 && offset + shape.reduce(1, *) <= storage.count,
                     "view \(shape) at \(offset) outside storage of \(storage.count)")
        self.storage = storage
        self.offset = offset
        self.shape = shape
    }

    /// A new zero-filled tensor.
    public init(zeros shape: [Int]) {
        self.init(storage: TensorStorage(zeros: shape.reduce(1, *)), shape: shape)
    }

    /// A new tensor holding `scalars` (row-major); the count must match the shape.
    public init(shape: [Int], scalars: [Float]) throws(TensorError) {
        let count = shape.reduce(1, *)
        guard shape.allSatisfy({ $0 >= 0 }), count == scalars.count else {
            throw .shapeMismatch(expected: shape, got: [scalars.count])
        }
        self.init(zeros: shape)
        scalars.withUnsafeBufferPointer { src in
            if let s = src.baseAddress { pointer.update(from: s, count: count) }
        }
    }

    public var rank: Int { shape.count }
    public var count: Int { shape.reduce(1, *) }

    /// Size of dimension 0 (1 for a scalar).
    public var rowCount: Int { shape.first ?? 1 }
    /// Elements per index of dimension 0.
    public var rowLength: Int { shape.dropFirst().reduce(1, *) }

    /// Pointer to the first element of this view.
    public var pointer: UnsafeMutablePointer<Float> { storage.base + offset }

    public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: pointer, count: count)
    }

    /// The elements as an array (a copy).
    public var scalars: [Float] { Array(buffer) }

    /// Rows `range` of dimension 0, as a view.
    public func rows(_ range: Range<Int>) -> Tensor {
        precondition(range.lowerBound >= 0 && range.upperBound <= rowCount, "rows \(range) of \(shape)")
        var s = shape
        if s.isEmpty { s = [1] }
        s[0] = range.count
        return Tensor(storage: storage, offset: offset + range.lowerBound * rowLength, shape: s)
    }

    /// Row `i` of dimension 0, with that dimension dropped, as a view.
    public func row(_ i: Int) -> Tensor {
        precondition(i >= 0 && i < rowCount, "row \(i) of \(shape)")
        return Tensor(storage: storage, offset: offset + i * rowLength, shape: Array(shape.dropFirst()))
    }

    /// The same elements under another shape with the same element count, as a view.
    public func reshaped(_ newShape: [Int]) throws(TensorError) -> Tensor {
        guard newShape.allSatisfy({ $0 >= 0 }), newShape.reduce(1, *) == count else {
            throw .shapeMismatch(expected: newShape, got: shape)
        }
        return Tensor(storage: storage, offset: offset, shape: newShape)
    }

    /// A copy with its own storage.
    public func copy() -> Tensor {
        let t = Tensor(zeros: shape)
        t.pointer.update(from: pointer, count: count)
        return t
    }

    /// Sets every element to zero.
    public func zero() { pointer.update(repeating: 0, count: count) }

    public subscript(_ i: Int) -> Float {
        get { precondition(i >= 0 && i < count); return pointer[i] }
        nonmutating set { precondition(i >= 0 && i < count); pointer[i] = newValue }
    }

    public subscript(_ i: Int, _ j: Int) -> Float {
        get { precondition(rank == 2 && i < shape[0] && j < shape[1]); return pointer[i * shape[1] + j] }
        nonmutating set { precondition(rank == 2 && i < shape[0] && j < shape[1]); pointer[i * shape[1] + j] = newValue }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = scalars.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor\(shape)[\(head)\(count > 8 ? ", ..." : "")]"
    }
}

/// Errors from building or reshaping tensors from data.
public enum TensorError: Error, Equatable, CustomStringConvertible {
    case shapeMismatch(expected: [Int], got: [Int])

    public var description: String {
        switch self {
        case let .shapeMismatch(expected, got):
            return "shape mismatch: expected \(expected), got \(got)"
        }
    }
}
