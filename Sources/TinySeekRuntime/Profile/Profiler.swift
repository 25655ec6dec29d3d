import Foundation
import TinySeek

/// What `tinyseek profile` runs: a prompt prefilled in one pass, then greedy decode steps.
public struct ProfileOptions: Sendable {
    public var promptTokens: Int = 64
    public var decodeTokens: Int = 16
    public var attention: AttentionOrder = .auto
    public var experts: ExpertExecution = .grouped
    public var expertsPerToken: Int? = nil
    /// Seed of the pseudo-random prompt (ids drawn uniformly from the vocabulary).
    public var seed: UInt64 = 0

    public init(promptTokens: Int = 64, decodeTokens: Int = 16, attention: AttentionOrder = .auto,
                experts: ExpertExecution = .grouped, expertsPerToken: Int? = nil, seed: UInt64 = 0) {
        self.promptTokens = promptTokens
        self.decodeTokens = decodeTokens
        self.attention = attention
        self.experts = experts
        self.expertsPerToken = expertsPerToken
        self.seed = seed
    }
}

/// Runs a model under the op recorder and returns the records as a `ProfileReport`.
public enum Profiler {
    /// A deterministic prompt of `count` ids for profiling and benchmarks.
    public static func prompt(count: Int, vocabSize: Int, seed: UInt64) -> [Int] {
        var rng = Xoshiro256(seed: seed)
        return (0..<count).map { _ in Int(rng.next() % UInt64(vocabSize)) }
    }

    /// Prefill `promptTokens`, then decode `decodeTokens` greedily, recording every op. A first,
    /// unrecorded pass over the same prompt pages the memory-mapped weights in, so page faults do
    /// not pollute the measured times.
    public static func run(model: Model, options o: ProfileOptions, roofline: Roofline,
                           progress: (String) -> Void = { _ in }) throws(ModelError) -> ProfileReport {
        guard o.promptTokens >= 1 else { throw .invalidArgument(name: "prompt tokens", reason: "must be >= 1, got \(o.promptTokens)") }
        guard o.decodeTokens >= 0 else { throw .invalidArgument(name: "decode tokens", reason: "must be >= 0, got \(o.decodeTokens)") }
        let needed = o.promptTokens + o.decodeTokens
        guard needed <= model.config.maxPositionEmbeddings else {
            throw .contextOverflow(needed: needed, limit: model.config.maxPositionEmbeddings)
        }
        let prompt = Self.prompt(count: o.promptTokens, vocabSize: model.config.vocabSize, seed: o.seed)
        let session = model.makeSession(capacity: needed)
        session.options.attention = o.attention
        session.options.experts = o.experts
        session.options.expertsPerToken = o.expertsPerToken

        progress("warm-up: \(o.promptTokens)-token prefill")
        try session.forward(prompt)
        session.reset()

        let recorder = OpRecorder(), load = ExpertLoadRecorder()
        session.recorder = recorder
        session.expertLoad = load
        progress("prefill: \(o.promptTokens) tokens")
        var logits = try session.forward(prompt)
        for step in 0..<o.decodeTokens {
            if step % 16 == 0 { progress("decode: step \(step + 1)/\(o.decodeTokens)") }
            let next = Kernels.argmax(UnsafeBufferPointer(logits.buffer)) ?? 0
            logits = try session.forward(token: next)
        }
        return ProfileReport(records: recorder.records, roofline: roofline,
                             tokens: [.prefill: o.promptTokens, .decode: o.decodeTokens], expertLoad: load.steps)
    }

    /// The cost of recording, measured: median decode-step time with the recorder on over off.
    public static func recordingOverhead(model: Model, context: Int = 32, steps: Int = 64) throws(ModelError) -> Double {
        let n = min(context, model.config.maxPositionEmbeddings - 1)
        let prompt = Self.prompt(count: n, vocabSize: model.config.vocabSize, seed: 1)
        let session = model.makeSession(capacity: n + 1)
        try session.forward(prompt)
        func medianStep(_ recorder: OpRecorder?) throws(ModelError) -> Double {
            session.recorder = recorder
            var times: [Double] = []
            for _ in 0..<steps {
                recorder?.removeAll()
                let t0 = DispatchTime.now().uptimeNanoseconds
                try session.forward([1])
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0))
                session.rewind(to: n)
            }
            return times.sorted()[times.count / 2]
        }
        _ = try medianStep(nil)
        let off = try medianStep(nil)
        let on = try medianStep(OpRecorder())
        let off2 = try medianStep(nil)
        return on / min(off, off2) - 1
    }
}
