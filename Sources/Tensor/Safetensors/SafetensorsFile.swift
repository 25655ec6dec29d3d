import Foundation

/// One memory-mapped `.safetensors` file: its metadata, the validated table of its tensors,
/// and `Tensor` views or conversions of them.
///
/// Opening maps the file and validates the whole header (see `SafetensorsHeader`), so every
/// later call is cheap and can only fail for a missing name or an unusable dtype. An F32 tensor
/// whose bytes are 4-byte aligned (always so for files written by the `safetensors` library,
/// which pads the header to 8 bytes) is returned as a zero-copy view that keeps this object
/// alive; F16 and BF16 are converted once into a new F32 tensor. Data is read as little-endian,
/// which the format specifies and which every target this engine builds for is.
///
/// Sendable because nothing changes after `init`: the mapping is private and only read (a
/// caller writing through a zero-copy view only touches its own copy-on-write pages).
public final class SafetensorsFile: @unchecked Sendable {
    public let url: URL
    /// The header's free-form `__metadata__` (PyTorch writes `{"format": "pt"}`); empty if absent.
    public let metadata: [String: String]
    /// Every tensor name in file order, i.e. by data offset.
    public let tensorNames: [String]

    private let mapping: MappedFile
    private let infos: [String: TensorInfo]

    /// Maps (or, `.resident`, reads) the file at `url` and validates its header.
    public init(contentsOf url: URL, residency: WeightResidency = .mapped) throws(SafetensorsError) {
        guard url.isFileURL else {
            throw .cannotOpen(path: url.absoluteString, reason: "not a file URL")
        }
        self.url = url
        mapping = try MappedFile(path: url.path, residency: residency)
        let header = try SafetensorsHeader(parsing: mapping.bytes, path: url.path)
        metadata = header.metadata
        tensorNames = header.tensors.map(\.name)
        infos = Dictionary(header.tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    public func contains(_ name: String) -> Bool { infos[name] != nil }

    /// Size of the file in bytes (header and data).
    public var fileSize: Int { mapping.size }

    /// The file's bytes in this process (the mapping, or the memory it was read into).
    public var memory: UnsafeRawBufferPointer { mapping.bytes }

    /// Faults every page of the mapping in (see `SafetensorsCheckpoint.touchPages`).
    public func touchPages() -> Int { mapping.touchPages() }

    /// Where `name` lives and how it is stored.
    public func info(_ name: String) throws(SafetensorsError) -> TensorInfo {
        guard let info = infos[name] else { throw .tensorNotFound(path: url.path, name: name) }
        return info
    }

    /// The tensor's stored bytes, in its own dtype, straight from the mapping.
    ///
    /// For kernels that read F16/BF16 weights directly instead of converting them. The buffer
    /// is valid only while this `SafetensorsFile` is alive; keep a reference to it.
    public func rawBytes(_ name: String) throws(SafetensorsError) -> UnsafeRawBufferPointer {
        try bytes(info(name))
    }

    /// The tensor as Float32, with its stored shape.
    ///
    /// F32: a view into the mapping (no copy) when aligned, else a copy. F16/BF16: converted
    /// into new owned storage. Other dtypes throw `.unsupportedDType`.
    public func tensor(_ name: String) throws(SafetensorsError) -> Tensor {
        let info = try info(name)
        switch info.dtype {
        case .f32:
            return float32Tensor(info)
        case .f16:
            return convertedTensor(info, with: Kernels.f16ToF32)
        case .bf16:
            return convertedTensor(info, with: Kernels.bf16ToF32)
        default:
            throw .unsupportedDType(path: url.path, tensor: name, dtype: info.dtype)
        }
    }

    private func float32Tensor(_ info: TensorInfo) -> Tensor {
        let count = info.elementCount
        if let base = mapping.mutableBase, count > 0 {
            let start = base + info.byteOffset
            if Int(bitPattern: start) % MemoryLayout<Float>.alignment == 0 {
                let floats = start.assumingMemoryBound(to: Float.self)
                return Tensor(storage: TensorStorage(borrowing: floats, count: count, owner: self), shape: info.shape)
            }
        }
        // Misaligned (a hand-written file) or empty: a typed Float pointer must be aligned, so copy.
        let tensor = Tensor(zeros: info.shape)
        let source = bytes(info)
        if count > 0, let start = source.baseAddress {
            UnsafeMutableRawPointer(tensor.pointer).copyMemory(from: start, byteCount: source.count)
        }
        return tensor
    }

    /// Converts 16-bit floats into a new F32 tensor. The kernels take `UnsafePointer<UInt16>`,
    /// which must be 2-byte aligned, so an odd offset is first copied into an aligned buffer.
    private func convertedTensor(
        _ info: TensorInfo,
        with convert: (UnsafePointer<UInt16>, Int, UnsafeMutablePointer<Float>) -> Void
    ) -> Tensor {
        let tensor = Tensor(zeros: info.shape)
        let count = info.elementCount
        let source = bytes(info)
        guard count > 0, let start = source.baseAddress else { return tensor }
        if Int(bitPattern: start) % MemoryLayout<UInt16>.alignment == 0 {
            convert(start.assumingMemoryBound(to: UInt16.self), count, tensor.pointer)
        } else {
            var halves = [UInt16](repeating: 0, count: count)
            halves.withUnsafeMutableBytes { $0.copyMemory(from: source) }
            halves.withUnsafeBufferPointer { aligned in
                if let halves = aligned.baseAddress { convert(halves, count, tensor.pointer) }
            }
        }
        return tensor
    }

    private func bytes(_ info: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: mapping.bytes[info.byteOffset..<(info.byteOffset + info.byteCount)])
    }
}
