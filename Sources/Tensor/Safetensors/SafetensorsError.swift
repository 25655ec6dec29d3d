/// Why a safetensors file or checkpoint folder could not be read.
///
/// Weight files come from outside the program, so every way a header can be wrong is a case
/// here rather than a trap: the reader validates all of a file's header when it opens it, and
/// afterwards a tensor can only be missing or of a type the caller cannot use. Every case carries
/// the path it is about, and `description` is one sentence naming that file, what was found and
/// what was expected, ready for the CLI to print.
public enum SafetensorsError: Error, Equatable, CustomStringConvertible {
    /// The file or folder could not be opened, examined or mapped (`reason` is the OS's word).
    case cannotOpen(path: String, reason: String)
    /// The file is shorter than the 8-byte header length that starts every safetensors file.
    case fileTooSmall(path: String, size: Int)
    /// The header length runs past the end of the file or exceeds the 100 MB sanity limit.
    case headerTooLarge(path: String, headerLength: UInt64, fileSize: Int)
    /// The header is not UTF-8 JSON, or its top level is not an object.
    case invalidJSON(path: String, reason: String)
    /// A tensor's entry (or `__metadata__`) lacks a field or has one of the wrong type or value.
    case invalidHeaderEntry(path: String, tensor: String, reason: String)
    /// A tensor's `dtype` is not one of `DType`'s spellings.
    case unknownDType(path: String, tensor: String, dtype: String)
    /// A tensor's data ends past the end of the data section.
    case offsetsOutOfRange(path: String, tensor: String, end: Int, dataSize: Int)
    /// A tensor's byte range does not hold exactly shape × dtype size bytes.
    case sizeMismatch(path: String, tensor: String, expectedBytes: Int, actualBytes: Int)
    /// Two tensors claim some of the same bytes.
    case overlappingTensors(path: String, first: String, second: String)
    /// The element count or byte count of a tensor's shape does not fit in an `Int`.
    case shapeOverflow(path: String, tensor: String)
    /// No tensor of that name in the file or checkpoint.
    case tensorNotFound(path: String, name: String)
    /// The tensor exists but the requested conversion does not support its dtype.
    case unsupportedDType(path: String, tensor: String, dtype: DType)
    /// `model.safetensors.index.json` names a shard file that is not in the folder.
    case missingShard(path: String, shard: String)
    /// `model.safetensors.index.json` is not JSON or has no usable `weight_map`.
    case invalidIndex(path: String, reason: String)
    /// Two files of an unindexed checkpoint both hold a tensor of this name.
    case duplicateTensor(name: String, firstPath: String, secondPath: String)
    /// The folder holds neither an index nor any `*.safetensors` file.
    case noWeights(path: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason):
            return "cannot open '\(path)': \(reason)"
        case let .fileTooSmall(path, size):
            return "'\(path)' is \(size) bytes long; a safetensors file starts with an 8-byte header length"
        case let .headerTooLarge(path, headerLength, fileSize):
            return "'\(path)' declares a \(headerLength)-byte header, but the file is \(fileSize) bytes; "
                + "expected a header of at most \(max(fileSize - 8, 0)) bytes (and at most 100 MB)"
        case let .invalidJSON(path, reason):
            return "the header of '\(path)' is not valid: \(reason); expected a JSON object of tensor entries"
        case let .invalidHeaderEntry(path, tensor, reason):
            return "entry '\(tensor)' in the header of '\(path)' is invalid: \(reason)"
        case let .unknownDType(path, tensor, dtype):
            return "tensor '\(tensor)' in '\(path)' has unknown dtype '\(dtype)'; expected one of "
                + DType.allCases.map(\.rawValue).joined(separator: ", ")
        case let .offsetsOutOfRange(path, tensor, end, dataSize):
            return "tensor '\(tensor)' in '\(path)' ends at data offset \(end), "
                + "past the end of the \(dataSize)-byte data section"
        case let .sizeMismatch(path, tensor, expectedBytes, actualBytes):
            return "tensor '\(tensor)' in '\(path)' spans \(actualBytes) bytes, "
                + "but its shape and dtype need \(expectedBytes) bytes"
        case let .overlappingTensors(path, first, second):
            return "tensors '\(first)' and '\(second)' in '\(path)' overlap; "
                + "expected every tensor to have its own bytes"
        case let .shapeOverflow(path, tensor):
            return "the shape of tensor '\(tensor)' in '\(path)' is too large: "
                + "its element or byte count overflows a 64-bit integer"
        case let .tensorNotFound(path, name):
            return "no tensor named '\(name)' in '\(path)'"
        case let .unsupportedDType(path, tensor, dtype):
            return "tensor '\(tensor)' in '\(path)' is \(dtype.rawValue); "
                + "expected F32, F16 or BF16 to load it as a Float32 tensor"
        case let .missingShard(path, shard):
            return "'\(path)' names shard '\(shard)', which is not in the folder"
        case let .invalidIndex(path, reason):
            return "'\(path)' is not a valid safetensors index: \(reason); "
                + "expected a JSON object whose \"weight_map\" maps tensor names to shard file names"
        case let .duplicateTensor(name, firstPath, secondPath):
            return "tensor '\(name)' is in both '\(firstPath)' and '\(secondPath)'; "
                + "expected each tensor in exactly one file (add a model.safetensors.index.json to choose)"
        case let .noWeights(path):
            return "'\(path)' has no model.safetensors.index.json and no *.safetensors file"
        }
    }
}
