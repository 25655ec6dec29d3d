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

    /// Runs `body`, which does the work of `parts` ops at once (e.g. the k experts of a token as
    /// one parallel job), and records one op per part. The measured time is shared out in
    /// proportion to each part's bytes (they are memory-bound matvecs streaming their weights),
    /// so per-expert records stay comparable with the grouped path's.
    @inline(__always)
    public func split<R>(_ name: String, layer: Int?, kind: OpKind, parts: Int, expert: (Int) -> Int?,
                         cost: (Int) -> OpCost, _ body: () throws -> R) rethrows -> R {
        try fused(layer: layer, parts: (0..<parts).map { OpPart(name, kind: kind, expert: expert($0), cost: cost($0)) }, body)
    }

    /// Runs `body`, one parallel job doing the work of several different ops (e.g. a decode
    /// step's q_a_proj and kv_a_proj, which read the same input), and records one op per part,
    /// the time shared out in proportion to each part's bytes (they are memory-bound matvecs).
    public func fused<R>(layer: Int?, parts: [OpPart], _ body: () throws -> R) rethrows -> R {
        let t0 = Self.now()
        let result = try body()
        let t1 = Self.now()
        let totalBytes = parts.reduce(0) { $0 + $1.cost.bytes }
        let seconds = Double(t1 - t0) * 1e-9
        var start = Double(t0 - origin) * 1e-9
        for part in parts {
            let share = totalBytes > 0 ? seconds * part.cost.bytes / totalBytes : seconds / Double(parts.count)
            records.append(OpRecord(name: part.name, layer: layer, expert: part.expert, phase: phase, kind: part.kind,
                                    cost: part.cost, seconds: share, start: start))
            start += share
        }
        return result
    }

    public func removeAll() { records.removeAll(keepingCapacity: true) }
}

/// One op's share of a fused job (see `OpRecorder.fused`).
public struct OpPart: Sendable {
    public var name: String
    public var kind: OpKind
    public var expert: Int?
    public var cost: OpCost

    public init(_ name: String, kind: OpKind, expert: Int? = nil, cost: OpCost) {
        self.name = name
        self.kind = kind
        self.expert = expert
        self.cost = cost
    }
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

    /// `OpRecorder.fused` when a recorder is attached (`parts` is only evaluated then), else
    /// just runs `body`.
    @inline(__always)
    public func fused<R>(layer: Int?, parts: () -> [OpPart], _ body: () throws -> R) rethrows -> R {
        switch self {
        case .none: return try body()
        case let .some(recorder): return try recorder.fused(layer: layer, parts: parts(), body)
        }
    }

    /// `OpRecorder.split` when a recorder is attached, else just runs `body`.
    @inline(__always)
    public func split<R>(_ name: String, layer: Int?, kind: OpKind, parts: Int, expert: (Int) -> Int?,
                         cost: (Int) -> OpCost, _ body: () throws -> R) rethrows -> R {
        switch self {
        case .none: return try body()
        case let .some(recorder): return try recorder.split(name, layer: layer, kind: kind, parts: parts, expert: expert, cost: cost, body)
        }
    }
}
