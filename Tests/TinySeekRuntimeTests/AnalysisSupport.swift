import Foundation
import Testing
import TinySeek
import TinySeekRuntime

/// Paths relative to the package root, found from this file's location (no bundle resources).
enum AnalysisRepo {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static func model(_ name: String) -> URL { root.appendingPathComponent("Models/\(name)", isDirectory: true) }
    static func config(_ name: String) -> URL { root.appendingPathComponent("Models/configs/\(name).json") }

    /// A real-scale architecture from Models/configs.
    static func spec(_ name: String) throws -> ArchitectureSpec { try ArchitectureSpec.load(from: config(name)) }
}

/// |a − b| ≤ tolerance·|b|, recording both values and the relative error when it fails.
func expectRelative(_ a: Double, _ b: Double, within tolerance: Double, _ what: String,
                    sourceLocation: SourceLocation = #_sourceLocation) {
    let error = abs(a - b) / max(abs(b), .leastNormalMagnitude)
    #expect(error <= tolerance, "\(what): \(a) vs \(b), relative error \(error) > \(tolerance)", sourceLocation: sourceLocation)
}

extension AnalyticModel {
    /// The summed cost of the ops named `name` in layer `layer`.
    func cost(_ name: String, layer: Int) -> OpCost {
        layerOps(layer).filter { $0.name == name }.reduce(OpCost()) { $0 + $1.cost }
    }
}
