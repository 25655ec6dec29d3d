import Foundation

/// Why a report could not be produced or saved; every case names what failed, so the CLI can
/// print it as is ("cannot write report to /tmp/x/profile.html: Permission denied").
public enum ReportError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// The file cannot be written there (missing permissions, a directory in the way, ...).
    case unwritable(path: String, reason: String)
    /// The report could not be encoded. The renderers replace every non-finite number before
    /// encoding, so this signals a bug rather than bad input; it still is an error, not a crash.
    case unencodable(format: String, reason: String)

    public var description: String {
        switch self {
        case let .unwritable(path, reason): return "cannot write report to \(path): \(reason)"
        case let .unencodable(format, reason): return "cannot encode the \(format) report: \(reason)"
        }
    }

    public var errorDescription: String? { description }
}

/// Writing a rendered report to disk, shared by every report type.
enum ReportFile {
    /// Writes `data` atomically (a temporary file renamed into place, so a viewer never loads
    /// half a page), creating the parent directory if needed.
    static func write(_ data: Data, to url: URL) throws(ReportError) {
        let directory = url.deletingLastPathComponent()
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw .unwritable(path: url.path, reason: "it is a directory")
        }
        if FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw .unwritable(path: url.path, reason: "\(directory.path) is not a directory")
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try data.write(to: url, options: .atomic)
        } catch {
            throw .unwritable(path: url.path, reason: MachineProfile.systemReason(error))
        }
    }
}

/// JSON cannot carry NaN or ±infinity. Every report maps a non-finite number to 0, the value
/// `ProfileReport` already uses for an undefined ratio (the intensity of an op that moves no
/// bytes, the rate of an op measured at zero time). Only a degenerate roofline (zero bandwidth
/// or peak) or a corrupt record can produce one.
extension Double {
    var finiteOrZero: Double { isFinite ? self : 0 }
}
