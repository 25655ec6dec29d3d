import Foundation

/// Writes one `.safetensors` file that `SafetensorsFile` (and the reference `safetensors`
/// library) reads back.
///
/// Layout, as in `SafetensorsHeader`: an 8-byte little-endian header length N, N bytes of JSON
/// (`{"__metadata__": {...}, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}, ...}`),
/// then the data. The JSON is padded with spaces so the data starts at a multiple of 8, and the
/// tensors are laid out back to back (the reference reader refuses holes) in order of decreasing
/// element size, then name: every 4-byte tensor comes first, so each tensor starts at a multiple
/// of its own element size and F32/F16/BF16 weights can be mapped in place.
///
/// Tensors are described up front (dtype, shape) and their bytes produced one at a time while the
/// file is written, so converting a 2 GB checkpoint never holds more than one tensor in memory.
public struct SafetensorsWriter {
    /// Fills exactly the given buffer (shape × dtype size bytes) with a tensor's data.
    public typealias Producer = (UnsafeMutableRawBufferPointer) throws -> Void

    struct Entry {
        var name: String
        var dtype: DType
        var shape: [Int]
        var byteCount: Int
        var produce: Producer
    }

    /// Free-form strings stored as `__metadata__`.
    public var metadata: [String: String]
    private var entries: [Entry] = []

    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
    }

    /// Adds a tensor whose bytes `produce` writes when the file is written.
    public mutating func add(_ name: String, dtype: DType, shape: [Int], produce: @escaping Producer) {
        precondition(name != "__metadata__" && !entries.contains { $0.name == name }, "duplicate tensor name \(name)")
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        entries.append(Entry(name: name, dtype: dtype, shape: shape,
                             byteCount: shape.reduce(1, *) * dtype.byteSize, produce: produce))
    }

    /// Adds a tensor by copying `bytes` (which must stay valid until `write` returns).
    public mutating func add(_ name: String, dtype: DType, shape: [Int], copying bytes: UnsafeRawBufferPointer) {
        add(name, dtype: dtype, shape: shape) { out in
            precondition(bytes.count == out.count, "\(name): \(bytes.count) bytes for a \(out.count)-byte tensor")
            if let base = bytes.baseAddress, let target = out.baseAddress { target.copyMemory(from: base, byteCount: out.count) }
        }
    }

    public var tensorNames: [String] { entries.map(\.name) }

    /// The order tensors are stored in: larger elements first, then by name.
    private var ordered: [Entry] {
        entries.sorted { ($0.dtype.byteSize, $1.name) > ($1.dtype.byteSize, $0.name) }
    }

    /// The header JSON, padded with spaces to make 8 + its length a multiple of 8.
    func header() throws(SafetensorsError) -> Data {
        var object: [String: Any] = [:]
        if !metadata.isEmpty { object["__metadata__"] = metadata }
        var offset = 0
        for e in ordered {
            object[e.name] = ["dtype": e.dtype.rawValue, "shape": e.shape, "data_offsets": [offset, offset + e.byteCount]]
            offset += e.byteCount
        }
        var json: Data
        do {
            json = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        } catch {
            throw .invalidJSON(path: "(header being written)", reason: "\(error)")
        }
        let padding = (8 - json.count % 8) % 8
        json.append(contentsOf: [UInt8](repeating: 0x20, count: padding))
        return json
    }

    /// Writes the file (replacing any file at `url`): header, then each tensor's bytes in storage
    /// order, produced into one reused buffer.
    public func write(to url: URL) throws {
        let header = try header()
        let path = url.path
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw SafetensorsError.cannotOpen(path: path, reason: "cannot create the file")
        }
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        var length = UInt64(header.count).littleEndian
        try handle.write(contentsOf: Data(bytes: &length, count: 8))
        try handle.write(contentsOf: header)
        let largest = entries.map(\.byteCount).max() ?? 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(largest, 1), alignment: 64)
        defer { buffer.deallocate() }
        for e in ordered where e.byteCount > 0 {
            let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<e.byteCount])
            try e.produce(slice)
            try handle.write(contentsOf: Data(bytesNoCopy: slice.baseAddress!, count: e.byteCount, deallocator: .none))
        }
        try handle.synchronize()
        #if os(Linux)
        // The file's pages are now clean copies in the page cache, in the small folios buffered
        // writes make. Dropping them (a hint) means the first load reads the file back through
        // its huge-page mapping, in 2 MB folios, so decode streams it with 2 MB page entries
        // (see `WeightResidency`); otherwise it would stay cached in 4 KB pages until evicted.
        _ = posix_fadvise(handle.fileDescriptor, 0, 0, POSIX_FADV_DONTNEED)
        #endif
    }
}
