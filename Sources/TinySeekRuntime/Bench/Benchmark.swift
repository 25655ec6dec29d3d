import Foundation
import Tensor
import TinySeek

/// What `tinyseek bench` runs, in the spirit of llama-bench: a prompt-processing test (pp: one
/// prefill of `promptTokens` tokens) and a text-generation test (tg: `decodeTokens` greedy decode
/// steps from an empty context), each repeated, plus the machine's roofline measured in the same run.
public struct BenchmarkOptions: Sendable {
    /// Prompt length of the pp test; 0 skips it.
    public var promptTokens = 512
    /// Decode steps of the tg test; 0 skips it.
    public var decodeTokens = 128
    /// Sequences decoded together in tg tests: 1 is single-sequence decode, each B > 1 adds a
    /// tgN@B test of B sequences decoded together through the batched executor.
    public var batchSizes = [1]
    /// Timed runs of each test after the warm-up; mean and standard deviation are over these.
    public var repetitions = 5
    public var attention: AttentionOrder = .auto
    /// Weights memory-mapped (the default) or read into memory (`--no-mmap`).
    public var residency: WeightResidency = .mapped
    /// The calibration run once before loading, reported for the record; each repetition's
    /// fraction uses the probes measured next to it (see `RooflineProbe`).
    public var calibration: CalibrationOptions = .quick
    /// Seed of the pseudo-random prompt.
    public var seed: UInt64 = 0

    public init() {}
}

/// Why a benchmark cannot run.
public enum BenchmarkError: Error, Equatable, CustomStringConvertible, LocalizedError {
    case invalidOption(String)

    public var description: String {
        switch self {
        case let .invalidOption(message): return message
        }
    }

    public var errorDescription: String? { description }
}

/// Runs the benchmark: calibrate, load (cold), fault all weights in, warm up, record one pass of
/// each test for its FLOPs and bytes, then time the repetitions, each next to a probe of the roof.
public enum Benchmark {
    public static func run(modelDirectory url: URL, options o: BenchmarkOptions,
                           progress: (String) -> Void = { _ in }) throws -> BenchmarkReport {
        guard o.promptTokens >= 0, o.decodeTokens >= 0, o.promptTokens + o.decodeTokens > 0 else {
            throw BenchmarkError.invalidOption("-p and -n must be >= 0 and not both 0")
        }
        guard o.repetitions >= 1 else { throw BenchmarkError.invalidOption("--repetitions must be >= 1, got \(o.repetitions)") }
        guard !o.batchSizes.isEmpty, o.batchSizes.allSatisfy({ $0 >= 1 }) else {
            throw BenchmarkError.invalidOption("--batch needs sizes >= 1, got \(o.batchSizes)")
        }
        let batched = o.batchSizes.filter { $0 > 1 }
        if !batched.isEmpty && o.decodeTokens == 0 { throw BenchmarkError.invalidOption("--batch needs -n > 0 decode steps") }

        // A calibration before the model is loaded, for the record (the fractions use the probes
        // next to each repetition, see `RooflineProbe`).
        progress("machine: \(o.calibration == .quick ? "quick" : "full") calibration")
        let machines = [Calibration.measure(options: o.calibration) { _ in }]

        // Cold start: mapping the checkpoint, then the first prompt on cold pages.
        var clock = Stopwatch()
        let model = try Model.load(from: url, residency: o.residency)
        let loadSeconds = clock.lap()
        let c = model.config
        let context = max(o.promptTokens, 1) + o.decodeTokens
        guard context <= c.maxPositionEmbeddings else {
            throw BenchmarkError.invalidOption("-p + -n = \(context) exceeds max_position_embeddings \(c.maxPositionEmbeddings)")
        }
        let prompt = Profiler.prompt(count: max(o.promptTokens, 1), vocabSize: c.vocabSize, seed: o.seed)
        var results: [BenchmarkResult] = []
        var gemmRoofs: [Double] = [], readRoofs: [Double] = [], oneLaneRead: Double?
        var kernelRead: (gbps: Double, ofProbe: Double)?
        let firstTokenSeconds: Double, touchSeconds: Double
        var hugePages: (resident: Int, huge: Int)?
        do {  // the cold-start session lives in this scope only
            let session = model.makeSession(capacity: context)
            session.options.attention = o.attention
            progress("cold start: first \(prompt.count)-token prompt")
            _ = clock.lap()
            try session.forward(prompt)
            firstTokenSeconds = clock.lap()

            // Steady state: every page of the weights (all experts) resident, code paths warm.
            progress("warm-up: touching every weight page, one prefill and \(min(o.decodeTokens, 16)) decode steps")
            model.touchWeights()
            touchSeconds = clock.lap()
            hugePages = ProcessMemory.hugePages(in: model.weightMemory)
            session.reset()
            try decode(session, prompt: prompt, steps: min(o.decodeTokens, 16))
        }

        // Peak memory of the engine alone, per phase, with every weight page resident: the
        // high-water mark is reset (Linux: clear_refs 5) before a fresh session decodes, then
        // before another prefills. Measured before the timed runs, whose probe buffer and
        // recorded passes are the benchmark's own memory, not the engine's (glibc keeps a thread
        // arena's freed memory resident, so it would count even after they are gone).
        let decodePeak = try ProcessMemory.peak {
            try decode(model.makeSession(capacity: context), prompt: [prompt[0]], steps: o.decodeTokens)
        }
        let prefillPeak = try ProcessMemory.peak { try model.makeSession(capacity: context).forward(prompt) }
        let memory = decodePeak.map { BenchmarkMemory(decodePeakBytes: $0, prefillPeakBytes: prefillPeak ?? 0) }

        do {
            let session = model.makeSession(capacity: context)
            session.options.attention = o.attention
            let probe = RooflineProbe()
            if o.promptTokens > 0 {
                // FLOPs of one prefill from the cost model (a recorded, untimed pass).
                let recorder = OpRecorder()
                session.reset()
                session.recorder = recorder
                try session.forward(prompt)
                session.recorder = nil
                let flops = recorder.records.reduce(0) { $0 + $1.cost.flops }
                progress("pp\(o.promptTokens): \(o.repetitions) runs, each after an sgemm probe")
                var rates: [Double] = []
                for _ in 0..<o.repetitions {
                    gemmRoofs.append(probe.gemmGFLOPS())
                    session.reset()
                    _ = clock.lap()
                    try session.forward(prompt)
                    rates.append(Double(o.promptTokens) / clock.lap())
                }
                results.append(BenchmarkResult(test: "pp\(o.promptTokens)", kind: .prompt, tokens: o.promptTokens, batch: 1,
                                               rates: rates, roofs: gemmRoofs, flopsPerToken: flops / Double(o.promptTokens),
                                               bytesPerToken: nil))
            }
            if o.decodeTokens > 0 {
                // Bytes one decode step streams from memory: the weights it touches (the experts its
                // token picked) and the latent cache, from the cost model over a recorded, untimed run.
                let recorder = OpRecorder()
                recorder.phase = .decode
                session.recorder = recorder
                try decode(session, prompt: [prompt[0]], steps: o.decodeTokens)
                session.recorder = nil
                let steps = recorder.records.filter { $0.phase == .decode }
                let bytes = steps.reduce(0) { $0 + $1.cost.weightBytes + $1.cost.cacheBytes } / Double(o.decodeTokens)
                let flops = steps.reduce(0) { $0 + $1.cost.flops } / Double(o.decodeTokens)
                progress("tg\(o.decodeTokens): \(o.repetitions) runs, each between two bursts of a read probe")
                let runs = try bracketed(o.repetitions, by: probe) { try decode(session, prompt: [prompt[0]], steps: o.decodeTokens) }
                readRoofs += runs.map(\.roof)
                var tg = BenchmarkResult(test: "tg\(o.decodeTokens)", kind: .decode, tokens: o.decodeTokens, batch: 1,
                                         rates: runs.map { Double(o.decodeTokens) / $0.seconds }, roofs: runs.map(\.roof),
                                         steady: runs.map(\.steady), flopsPerToken: flops, bytesPerToken: bytes)
                // Where a step's time goes between the lanes: one more run, untimed, with the
                // pool's timeline recording (four clock reads a job). Pulls per step: the
                // one-token prompt is a step like the decode steps.
                tg.lanes = try recordLanes(steps: o.decodeTokens, extraSteps: 1) { timeline in
                    try decode(session, prompt: [prompt[0]], steps: o.decodeTokens, timeline: timeline)
                }
                results.append(tg)
            }
            for b in batched {
                // One distinct first token per sequence, also with -p 0 or a prompt shorter than B
                // (the sequences would otherwise start alike, decode alike and share their experts).
                let prompt = prompt.count >= b ? prompt : Profiler.prompt(count: b, vocabSize: c.vocabSize, seed: o.seed)
                // B sequences decoded together: every step is one BatchExecutor step over B rows,
                // the experts seeing the step's tokens grouped per expert.
                let recorder = OpRecorder()
                try batchedDecode(model, attention: o.attention, batch: b, prompt: prompt, steps: o.decodeTokens, recorder: recorder)
                let steps = recorder.records.filter { $0.phase == .decode }
                let tokens = Double(b * o.decodeTokens)
                let bytes = steps.reduce(0) { $0 + $1.cost.weightBytes + $1.cost.cacheBytes } / tokens
                let flops = steps.reduce(0) { $0 + $1.cost.flops } / tokens
                progress("tg\(o.decodeTokens)@\(b): \(o.repetitions) runs, each between two bursts of a read probe")
                let runs = try bracketed(o.repetitions, by: probe) {
                    try batchedDecode(model, attention: o.attention, batch: b, prompt: prompt, steps: o.decodeTokens)
                }
                readRoofs += runs.map(\.roof)
                var tgB = BenchmarkResult(test: "tg\(o.decodeTokens)@\(b)", kind: .decode, tokens: o.decodeTokens, batch: b,
                                          rates: runs.map { tokens / $0.seconds }, roofs: runs.map(\.roof),
                                          steady: runs.map(\.steady), flopsPerToken: flops, bytesPerToken: bytes)
                // The prompts are one step of B one-token prompts, like the decode steps.
                tgB.lanes = try recordLanes(steps: o.decodeTokens, extraSteps: 1) { timeline in
                    try batchedDecode(model, attention: o.attention, batch: b, prompt: prompt, steps: o.decodeTokens,
                                      timeline: timeline)
                }
                results.append(tgB)
            }
            oneLaneRead = probe.takeOneLaneReadGBps()
            kernelRead = probe.takeKernelRead()
        }

        let machine = BenchmarkMachine(calibration: machines[0], gemmProbes: gemmRoofs, readProbes: readRoofs,
                                       oneLaneRead: oneLaneRead, kernelRead: kernelRead, lanes: WorkerPool.shared.laneCount)
        let weights = ModelReport(model: model)
        return BenchmarkReport(
            results: results, machine: machine,
            coldStart: ColdStart(loadSeconds: loadSeconds, firstTokenSeconds: firstTokenSeconds,
                                 promptTokens: prompt.count, touchSeconds: touchSeconds),
            model: BenchmarkModel(path: url.path, modelType: c.modelType, parameters: weights.totalParameters,
                                  // A token reads one row of the embedding table, not all of it.
                                  activeParameters: weights.activeParameters - c.vocabSize * c.hiddenSize + c.hiddenSize,
                                  weightFormats: formats(model),
                                  fileBytes: model.fileBytes, residency: o.residency.rawValue,
                                  hugePageFraction: hugePages.map { Double($0.huge) / Double(max($0.resident, 1)) }, kvCacheBytes: weights.latentBytesPerToken * context),
            memory: memory)
    }

    /// Runs `body` (a decode of `steps` steps, after `extraSteps` more that pull like them) once
    /// with the pool recording every job, and says where the steps' time went between the lanes.
    static func recordLanes(steps: Int, extraSteps: Int, _ body: (PoolTimeline) throws -> Void) rethrows -> LaneBreakdown? {
        let timeline = PoolTimeline(capacity: 512 * steps, lanes: WorkerPool.shared.laneCount)
        let pulled = WorkerPool.shared.pulledBytes
        try body(timeline)
        var lanes = timeline.breakdown()
        lanes?.pulledBytesPerStep = Double(WorkerPool.shared.pulledBytes - pulled) / Double(steps + extraSteps)
        return lanes
    }

    /// Runs `body` (a timed repetition, returning its seconds) `n` times, each between two bursts
    /// of the read probe; returns each repetition's seconds, the mean of the bursts around it, and
    /// whether they agree (`steadyBurstRatio`).
    static func bracketed(_ n: Int, by probe: RooflineProbe, _ body: () throws -> Double) rethrows
        -> [(seconds: Double, roof: Double, steady: Bool)] {
        var before = probe.readBurst()
        var runs: [(seconds: Double, roof: Double, steady: Bool)] = []
        for _ in 0..<n {
            let seconds = try body()
            let after = probe.readBurst()
            runs.append((seconds, (before + after) / 2, min(before, after) >= steadyBurstRatio * max(before, after)))
            before = after
        }
        return runs
    }

    /// A repetition whose bursts before and after read within this ratio of each other saw one
    /// bandwidth state; one whose bursts differ more straddled a switch (this VM's two lanes read
    /// either ~31-35 or ~55-65 GB/s, minutes at a time), and its roof, their mean, can be far
    /// from what it ran at (0.75-1.12 of it in one F32 run whose repetitions straddled switches;
    /// within one state they agree to a few percent). Such a repetition still counts for tokens/s
    /// but not for the roofline fraction, unless every one of a test did (`BenchmarkResult`).
    static let steadyBurstRatio = 0.8

    /// Prefills `prompt` on a fresh sequence, then times `steps` greedy decode steps (each feeding
    /// the argmax of the last logits back). Returns the seconds of the decode steps. With a
    /// timeline, the pool records every job of the steps, each step marked in it.
    @discardableResult
    static func decode(_ session: Session, prompt: [Int], steps: Int, timeline: PoolTimeline? = nil) throws -> Double {
        session.reset()
        var logits = try session.forward(prompt)
        var clock = Stopwatch()
        WorkerPool.shared.timeline = timeline
        defer { WorkerPool.shared.timeline = nil }
        for _ in 0..<steps {
            timeline?.beginStep()
            let next = Kernels.argmax(UnsafeBufferPointer(logits.buffer)) ?? 0
            logits = try session.forward(token: next)
            timeline?.endStep()
        }
        return clock.lap()
    }

    /// Decodes `batch` sequences together for `steps` greedy steps after a one-token prompt each
    /// (distinct first tokens, so they route differently); returns the seconds of the steps. With a
    /// recorder, the steps are recorded (for the cost model's bytes and FLOPs) instead of timed;
    /// with a timeline, the pool records every job of the steps, each step marked in it.
    @discardableResult
    static func batchedDecode(_ model: Model, attention: AttentionOrder, batch b: Int, prompt: [Int], steps: Int,
                              recorder: OpRecorder? = nil, timeline: PoolTimeline? = nil) throws -> Double {
        let executor = BatchExecutor(model: model)
        executor.options.attention = attention
        let vocab = model.config.vocabSize
        let caches = (0..<b).map { _ in LatentCache(config: model.config, capacity: 1 + steps) }
        var logits = try executor.step((0..<b).map { ([prompt[$0 % prompt.count]], caches[$0]) })
        executor.recorder = recorder
        recorder?.phase = .decode
        var batch = caches.map { (tokens: [0], cache: $0) }
        var clock = Stopwatch()
        WorkerPool.shared.timeline = timeline
        defer { WorkerPool.shared.timeline = nil }
        for _ in 0..<steps {
            timeline?.beginStep()
            for i in 0..<b {
                batch[i].tokens[0] = Kernels.argmax(UnsafeBufferPointer(start: logits.pointer + i * vocab, count: vocab)) ?? 0
            }
            logits = try executor.step(batch)
            timeline?.endStep()
        }
        return clock.lap()
    }

    /// The distinct formats of the linear weights, most common first, e.g. "bf16" or "q8_0 + f32".
    static func formats(_ model: Model) -> String {
        var count: [WeightFormat: Int] = [:]
        func add(_ l: Linear?) { if let l { count[l.weight.format, default: 0] += l.weight.count } }
        add(model.weights.lmHead)
        for layer in model.weights.layers {
            let a = layer.attention
            for l in [a.qA, a.qB, a.q, a.kvA, a.kvB, a.o] { add(l) }
            switch layer.mlp {
            case let .dense(f): add(f.gate); add(f.up); add(f.down)
            case let .moe(m):
                for f in m.experts + (m.shared.map { [$0] } ?? []) { add(f.gate); add(f.up); add(f.down) }
            }
        }
        return count.sorted { $0.value > $1.value }.map(\.key.rawValue).joined(separator: " + ")
    }
}

/// Wall-clock laps.
struct Stopwatch {
    private var last = DispatchTime.now().uptimeNanoseconds
    /// Seconds since the previous lap (or creation).
    mutating func lap() -> Double {
        let now = DispatchTime.now().uptimeNanoseconds
        defer { last = now }
        return Double(now - last) * 1e-9
    }
}
