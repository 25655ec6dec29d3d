import Foundation

/// Collects an `OpRecord` for every operator the model runs, timed where it is called.
///
/// The model calls `recorder?.op(...) { work }`: with no recorder the work runs directly and
/// the cost closure is never evaluated, so profiling is free when off.
public final class OpRecorder: @unchecked Sendable {
    public private(set) var records: [OpRecord] = []
    public var phase: Phase = .prefill
    private let origin: UInt64

    public init(reservingCapacity capacity: Int = 4096) {
        records.reserveCapacity(capacity)
        origin = Self.now()
    }

    @inline(__always)
    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// Runs `body` and records it under `name` with the cost the formula gives.
    @inline(__always)
    public func op<R>(_ name: String, layer: Int?, expert: Int? = nil, kind: OpKind, cost: () -> OpCost,
                      _ body: () throws -> R) rethrows -> R {
        let t0 = Self.now()
        let result = try body()
        let t1 = Self.now()
        records.append(OpRecord(name: name, layer: layer, expert: expert, phase: phase, kind: kind, cost: cost(),
                                seconds: Double(t1 - t0) * 1e-9, start: Double(t0 - origin) * 1e-9))
        return result
    }

    public func removeAll() { records.removeAll(keepingCapacity: true) }
}

extension Optional where Wrapped == OpRecorder {
    /// Records when a recorder is attached, else just runs `body`.
    @inline(__always)
    public func op<R>(_ name: String, layer: Int?, expert: Int? = nil, kind: OpKind, cost: @autoclosure () -> OpCost,
                      _ body: () throws -> R) rethrows -> R {
        switch self {
        case .none: return try body()
        case let .some(recorder): return try recorder.op(name, layer: layer, expert: expert, kind: kind, cost: cost, body)
        }
    }
}
