import Foundation
import Testing
@testable import TinySeek

/// Paths relative to the package root, found from this file's location (no bundle resources).
enum Repo {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static func model(_ name: String) -> URL { root.appendingPathComponent("Models/\(name)", isDirectory: true) }
    static let goldenDirectory = root.appendingPathComponent("Tests/TinySeekTests/Fixtures/golden", isDirectory: true)
}

/// Golden outputs from Hugging Face transformers (Tools/make_toy_models.py).
struct GoldenFile: Decodable {
    struct Case: Decodable {
        var prompt: [Int]
        var logits: [[Float]]
        var greedy: [Int]
    }
    var model: String
    var cases: [Case]

    static func load(_ model: String) throws -> GoldenFile {
        let url = Repo.goldenDirectory.appendingPathComponent("\(model).json")
        return try JSONDecoder().decode(GoldenFile.self, from: Data(contentsOf: url))
    }

    /// Every model that has a golden file.
    static var models: [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: goldenDirectoryPath)) ?? []
        return files.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }
    private static var goldenDirectoryPath: String { Repo.goldenDirectory.path }
}

/// max |a - b| over equal-length arrays (infinity when lengths differ).
func maxAbsDiff(_ a: some Collection<Float>, _ b: some Collection<Float>) -> Float {
    guard a.count == b.count else { return .infinity }
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// Records an issue naming `what` and the max difference when it exceeds `tolerance`.
func expectClose(_ a: some Collection<Float>, _ b: some Collection<Float>, tolerance: Float, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    let diff = maxAbsDiff(a, b)
    #expect(diff <= tolerance, "\(what): max abs diff \(diff) > \(tolerance) (counts \(a.count), \(b.count))",
            sourceLocation: sourceLocation)
}

/// Loaded models, shared across tests (loading maps files; the weights are read-only).
enum Models {
    nonisolated(unsafe) private static var cache: [String: Model] = [:]
    private static let lock = NSLock()

    static func load(_ name: String) throws -> Model {
        lock.lock(); defer { lock.unlock() }
        if let m = cache[name] { return m }
        let m = try Model.load(from: Repo.model(name))
        cache[name] = m
        return m
    }
}
