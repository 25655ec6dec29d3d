import Foundation

/// Why an analysis could not be set up; every case names the file, field or argument at fault.
public enum AnalysisError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// No config file at `path`.
    case configNotFound(path: String)
    /// The file is not a JSON object, or a field has the wrong type.
    case invalidConfigFile(path: String, reason: String)
    /// A field is missing or has a value the analyser cannot use.
    case invalidConfig(field: String, reason: String)
    /// `model_type` names an architecture the analyser does not know.
    case unsupportedModelType(String)
    /// `--hardware` names no accelerator in the table.
    case unknownHardware(name: String, known: [String])
    /// A `--hardware-file` that cannot be read or decoded.
    case invalidHardwareFile(path: String, reason: String)
    /// The accelerator has no peak for the dtype (nor one to fall back to).
    case noPeak(hardware: String, dtype: String)
    /// A scenario value out of range (batch, context, parallelism, imbalance, ...).
    case invalidArgument(name: String, reason: String)

    public var description: String {
        switch self {
        case let .configNotFound(path):
            return "no model config at \(path)"
        case let .invalidConfigFile(path, reason):
            return "model config \(path) is invalid: \(reason)"
        case let .invalidConfig(field, reason):
            return "config field '\(field)': \(reason)"
        case let .unsupportedModelType(type):
            return "model_type '\(type)' is not supported by the analyser (expected one of: "
                + ArchitectureSpec.supportedModelTypes.joined(separator: ", ") + ")"
        case let .unknownHardware(name, known):
            return "unknown hardware '\(name)'; known: \(known.joined(separator: ", "))"
        case let .invalidHardwareFile(path, reason):
            return "hardware file \(path) is invalid: \(reason)"
        case let .noPeak(hardware, dtype):
            return "\(hardware) has no peak FLOP/s for \(dtype) in the table; choose another --dtype or add it with --hardware-file"
        case let .invalidArgument(name, reason):
            return "\(name): \(reason)"
        }
    }

    public var errorDescription: String? { description }
}

/// "field 'a.b': expected Int" from a DecodingError, not Foundation's debug dump.
func describeDecoding(_ error: any Error) -> String {
    guard let e = error as? DecodingError else { return "\(error)" }
    func path(_ ctx: DecodingError.Context) -> String {
        let p = ctx.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        return p.isEmpty ? "top level" : "field '\(p)'"
    }
    switch e {
    case let .keyNotFound(key, ctx):
        return "missing field '\(key.stringValue)'" + (ctx.codingPath.isEmpty ? "" : " in \(path(ctx))")
    case let .typeMismatch(type, ctx): return "\(path(ctx)): expected \(type)"
    case let .valueNotFound(type, ctx): return "\(path(ctx)): expected \(type), found null"
    case let .dataCorrupted(ctx): return "\(path(ctx)): \(ctx.debugDescription)"
    @unknown default: return "\(error)"
    }
}
