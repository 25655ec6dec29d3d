import Foundation

/// The parsed and fully validated header of one safetensors file.
///
/// Layout of a file (all integers little-endian):
///
///     [0, 8)          u64 N, the header length
///     [8, 8+N)        JSON: { "<tensor>": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]},
///                             ..., "__metadata__": {"<key>": "<string>"} }   (metadata optional)
///     [8+N, end)      the data section; a tensor's bytes are [8+N+b, 8+N+e)
///
/// The header comes from outside the program, so every field is checked here, once, before any
/// tensor is handed out: after this, reading a tensor's bytes cannot leave the file or meet
/// another tensor. Checks run in a fixed order (names sorted) so a file with several problems
/// always reports the same one.
struct SafetensorsHeader {
    /// A header longer than this is refused before parsing it: real headers are a few hundred
    /// KB even for a thousand-tensor shard, and a hostile length must not make us parse 4 GB.
    static let maxHeaderLength: UInt64 = 100_000_000

    let metadata: [String: String]
    /// Every tensor, in file order (by data offset, then name).
    let tensors: [TensorInfo]

    init(parsing file: UnsafeRawBufferPointer, path: String) throws(SafetensorsError) {
        guard file.count >= 8 else { throw .fileTooSmall(path: path, size: file.count) }
        let headerLength = UInt64(littleEndian: file.loadUnaligned(as: UInt64.self))
        guard headerLength <= Self.maxHeaderLength, headerLength <= UInt64(file.count - 8) else {
            throw .headerTooLarge(path: path, headerLength: headerLength, fileSize: file.count)
        }
        let dataStart = 8 + Int(headerLength)
        let dataSize = file.count - dataStart

        let json = try Self.parseJSON(UnsafeRawBufferPointer(rebasing: file[8..<dataStart]), path: path)
        var metadata: [String: String] = [:]
        var tensors: [TensorInfo] = []
        for (key, value) in json.sorted(by: { $0.key < $1.key }) {
            if key == "__metadata__" {
                metadata = try Self.parseMetadata(value, path: path)
            } else {
                let entry = try HeaderEntry(parsing: value, tensor: key, path: path)
                tensors.append(try entry.validated(name: key, dataStart: dataStart, dataSize: dataSize, path: path))
            }
        }
        tensors.sort { ($0.byteOffset, $0.byteCount, $0.name) < ($1.byteOffset, $1.byteCount, $1.name) }
        try Self.checkNoOverlap(tensors, path: path)
        self.metadata = metadata
        self.tensors = tensors
    }

    private static func parseJSON(_ bytes: UnsafeRawBufferPointer, path: String) throws(SafetensorsError) -> [String: Any] {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(bytes))
        } catch {
            throw .invalidJSON(path: path, reason: jsonErrorReason(error))
        }
        guard let dictionary = object as? [String: Any] else {
            throw .invalidJSON(path: path, reason: "the top level is \(jsonKind(object)), not an object")
        }
        return dictionary
    }

    /// `__metadata__` is free-form string -> string (PyTorch writes {"format": "pt"}); `null`
    /// is accepted as absent, as the reference implementation does.
    private static func parseMetadata(_ value: Any, path: String) throws(SafetensorsError) -> [String: String] {
        if value is NSNull { return [:] }
        guard let object = value as? [String: Any] else {
            throw .invalidHeaderEntry(path: path, tensor: "__metadata__",
                                      reason: "expected an object of strings, found \(jsonKind(value))")
        }
        var metadata: [String: String] = [:]
        for (key, item) in object {
            guard let string = item as? String else {
                throw .invalidHeaderEntry(path: path, tensor: "__metadata__",
                                          reason: "value of \"\(key)\" is \(jsonKind(item)), expected a string")
            }
            metadata[key] = string
        }
        return metadata
    }

    /// Tensors may leave gaps (alignment padding) but must not share bytes. Sorted by offset,
    /// non-overlapping tensors each start at or after the end of the one before, so comparing
    /// neighbours is enough. Empty tensors own no bytes and cannot overlap anything.
    private static func checkNoOverlap(_ tensors: [TensorInfo], path: String) throws(SafetensorsError) {
        var previous: TensorInfo?
        for tensor in tensors where tensor.byteCount > 0 {
            if let previous, tensor.byteOffset < previous.byteOffset + previous.byteCount {
                throw .overlappingTensors(path: path, first: previous.name, second: tensor.name)
            }
            previous = tensor
        }
    }
}

/// One tensor's entry as written in the header, with only its JSON types checked.
private struct HeaderEntry {
    let dtype: DType
    let shape: [Int]
    let begin: Int
    let end: Int

    init(parsing value: Any, tensor: String, path: String) throws(SafetensorsError) {
        func invalid(_ reason: String) -> SafetensorsError {
            .invalidHeaderEntry(path: path, tensor: tensor, reason: reason)
        }
        guard let entry = value as? [String: Any] else {
            throw invalid("expected an object with dtype, shape and data_offsets, found \(jsonKind(value))")
        }
        guard let dtypeName = entry["dtype"] as? String else {
            throw invalid("\"dtype\" is missing or not a string")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw .unknownDType(path: path, tensor: tensor, dtype: dtypeName)
        }
        guard let shapeItems = entry["shape"] as? [Any] else {
            throw invalid("\"shape\" is missing or not an array")
        }
        var shape: [Int] = []
        for item in shapeItems {
            guard let dimension = jsonInteger(item) else {
                throw invalid("\"shape\" holds \(jsonKind(item)), expected non-negative integers")
            }
            guard dimension >= 0 else { throw invalid("\"shape\" has negative dimension \(dimension)") }
            shape.append(dimension)
        }
        guard let offsets = entry["data_offsets"] as? [Any], offsets.count == 2,
              let begin = jsonInteger(offsets[0]), let end = jsonInteger(offsets[1]),
              begin >= 0, end >= 0 else {
            throw invalid("\"data_offsets\" is missing or not two non-negative integers [begin, end]")
        }
        guard begin <= end else {
            throw invalid("\"data_offsets\" [\(begin), \(end)] begins after it ends")
        }
        self.dtype = dtype
        self.shape = shape
        self.begin = begin
        self.end = end
    }

    /// Checks the entry against the file: the shape's byte count must be representable, the
    /// range must lie inside the data section, and the range must hold exactly that many bytes.
    func validated(name: String, dataStart: Int, dataSize: Int, path: String) throws(SafetensorsError) -> TensorInfo {
        var elements = 1
        for dimension in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw .shapeOverflow(path: path, tensor: name) }
            elements = product
        }
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else { throw .shapeOverflow(path: path, tensor: name) }
        guard end <= dataSize else {
            throw .offsetsOutOfRange(path: path, tensor: name, end: end, dataSize: dataSize)
        }
        guard bytes == end - begin else {
            throw .sizeMismatch(path: path, tensor: name, expectedBytes: bytes, actualBytes: end - begin)
        }
        // dataStart + end <= file size, so this cannot overflow.
        return TensorInfo(name: name, dtype: dtype, shape: shape, byteOffset: dataStart + begin, byteCount: bytes)
    }
}

/// The JSON integer `value` as an `Int`, or nil if it is not an integer literal that fits.
///
/// JSONSerialization hands numbers back as NSNumber, and NSNumber bridges loosely: `true`
/// becomes 1 and `3.0` becomes 3 under `as? Int`. The literal's kind is recovered from
/// `objCType` instead, so a boolean or a fractional/exponent literal is rejected like the
/// reference implementation rejects it, and `as? Int` then refuses anything out of range.
func jsonInteger(_ value: Any) -> Int? {
    guard let number = value as? NSNumber, !(number is NSDecimalNumber) else { return nil }
    switch String(cString: number.objCType) {
    case "c", "C", "B", "f", "d": return nil  // bool, float, double
    default: return number as? Int
    }
}

/// What JSONSerialization found wrong, e.g. "Invalid value around character 8". Foundation
/// keeps that in the debug description; the localized description only says "not in the
/// correct format".
func jsonErrorReason(_ error: any Error) -> String {
    guard let reason = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String else { return "\(error)" }
    return reason.hasSuffix(".") ? String(reason.dropLast()) : reason
}

/// A short name for a JSON value's type, for error messages.
func jsonKind(_ value: Any) -> String {
    switch value {
    case is NSNull: return "null"
    case is String: return "a string"
    case is [Any]: return "an array"
    case is [String: Any]: return "an object"
    case let number as NSNumber:
        switch String(cString: number.objCType) {
        case "c", "C", "B": return "a boolean"
        default: return "the number \(number)"
        }
    default: return "\(type(of: value))"
    }
}
