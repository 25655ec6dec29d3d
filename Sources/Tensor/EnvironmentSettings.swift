import Foundation

/// The environment variables the engine reads (TINYSEEK_THREADS, TINYSEEK_PREFETCH, TINYSEEK_ISA), checked in
/// one place: where they are read, a value that does not parse falls back to the default, so a
/// command line calls `validate` first and refuses it instead of running with a setting the user
/// did not ask for.
public enum EnvironmentSettings {
    /// A variable set to something the engine does not understand.
    public struct InvalidValue: Error, CustomStringConvertible, Equatable {
        public let variable: String
        public let value: String
        public let expected: String
        public var description: String { "\(variable)=\"\(value)\" is not valid: expected \(expected)" }
    }

    /// Throws `InvalidValue` for the first variable set to a value it would ignore.
    public static func validate(_ environment: [String: String], hasAVX512: Bool = VectorISA.hardwareHasAVX512) throws {
        if let text = environment[WorkerPool.threadsVariable], (Int(text) ?? 0) < 1 {
            throw InvalidValue(variable: WorkerPool.threadsVariable, value: text, expected: "a whole number of threads, 1 or more")
        }
        if let text = environment[StreamPrefetch.variable], StreamPrefetch(rawValue: text) == nil {
            throw InvalidValue(variable: StreamPrefetch.variable, value: text,
                               expected: StreamPrefetch.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: " or "))
        }
        if let text = environment[VectorISA.variable] {
            let usable = VectorISA.allCases.filter { $0 != .avx512 || hasAVX512 }
            if VectorISA(rawValue: text).map(usable.contains) != true {
                throw InvalidValue(variable: VectorISA.variable, value: text,
                                   expected: usable.map { "\"\($0.rawValue)\"" }.joined(separator: " or ")
                                       + (hasAVX512 ? "" : " (this CPU has no AVX-512)"))
            }
        }
    }
}
