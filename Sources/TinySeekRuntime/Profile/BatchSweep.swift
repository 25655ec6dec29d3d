import Foundation
import TinySeek

/// Expert intensity against batch size, measured and predicted: the paper's second finding on
/// this machine. B sequences decode together; each step routes B·k (token, slot) pairs over E
/// experts, each active expert streams its weights once for all its tokens, so its arithmetic
/// intensity grows with tokens per expert ≈ Γ_imb · B · k / E until it reaches the ridge.
public struct BatchPoint: Sendable {
    public var batch: Int
    /// Decode step time (median over steps) and aggregate tokens/s.
    public var stepSeconds: Double
    public var tokensPerSecond: Double
    /// Recorded FLOPs / bytes of the routed-expert matmuls (gate_up + down) in decode.
    public var expertIntensity: Double
    public var expertGFLOPS: Double
    /// Mean tokens per active expert, measured.
    public var tokensPerActiveExpert: Double
    /// Most tokens any expert got in a step (mean over steps): Γ·B·k/E by definition of Γ.
    public var maxTokensPerExpert: Double
    /// The balanced prediction B·k/E (at least 1 for an expert that runs at all).
    public var predictedTokensPerExpert: Double
    /// Intensity the cost model predicts for an expert with `predictedTokensPerExpert` tokens.
    public var predictedIntensity: Double
    public var imbalance: Double
    public var distinctExperts: Double
    public var expertTime: Double
}

public enum BatchSweep {
    public static func run(model: Model, batches: [Int], promptTokens: Int, decodeSteps: Int,
                           progress: (String) -> Void = { _ in }) throws(ModelError) -> [BatchPoint] {
        let c = model.config
        guard c.routedExperts > 0 else { throw .invalidArgument(name: "batch sweep", reason: "the model has no routed experts") }
        guard batches.allSatisfy({ $0 >= 1 }) else { throw .invalidArgument(name: "batch", reason: "sizes must be >= 1") }
        guard promptTokens + decodeSteps <= c.maxPositionEmbeddings else {
            throw .contextOverflow(needed: promptTokens + decodeSteps, limit: c.maxPositionEmbeddings)
        }
        var points: [BatchPoint] = []
        for b in batches {
            progress("batch \(b): prefill \(b) x \(promptTokens) tokens, \(decodeSteps) decode steps")
            let executor = BatchExecutor(model: model)
            let caches = (0..<b).map { _ in LatentCache(config: c, capacity: promptTokens + decodeSteps + 1) }
            let prompts = (0..<b).map { Profiler.prompt(count: promptTokens, vocabSize: c.vocabSize, seed: UInt64(100 + $0)) }
            var logits = try executor.step(Array(zip(prompts, caches)))
            let recorder = OpRecorder(), load = ExpertLoadRecorder()
            var stepTimes: [Double] = []
            for step in 0..<decodeSteps {
                let next = (0..<b).map { i in
                    Kernels.argmax(UnsafeBufferPointer(start: logits.pointer + i * c.vocabSize, count: c.vocabSize)) ?? 0
                }
                // The first step is warm-up (it pages in the experts this batch touches).
                if step > 0 { executor.recorder = recorder; executor.expertLoad = load }
                let t0 = DispatchTime.now().uptimeNanoseconds
                logits = try executor.step(zip(next, caches).map { ([$0], $1) })
                if step > 0 { stepTimes.append(Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9) }
            }
            let experts = recorder.records.filter { $0.name == "expert_gate_up" || $0.name == "expert_down" }
            let cost = experts.reduce(OpCost()) { $0 + $1.cost }
            let time = experts.reduce(0) { $0 + $1.seconds }
            let steps = load.steps
            let active = steps.reduce(0) { $0 + $1.distinctExperts }
            let pairs = steps.reduce(0) { $0 + $1.pairs }
            let imbalance = steps.isEmpty ? 0 : steps.reduce(0) { $0 + $1.imbalance } / Double(steps.count)
            let predicted = max(1, Double(b * c.expertsPerToken) / Double(c.routedExperts))
            let maxTokens = steps.isEmpty ? 0 : Double(steps.reduce(0) { $0 + ($1.counts.max() ?? 0) }) / Double(steps.count)
            let median = stepTimes.sorted()[stepTimes.count / 2]
            points.append(BatchPoint(
                batch: b, stepSeconds: median, tokensPerSecond: Double(b) / median,
                expertIntensity: cost.intensity, expertGFLOPS: time > 0 ? cost.flops / time / 1e9 : 0,
                tokensPerActiveExpert: active > 0 ? Double(pairs) / Double(active) : 0,
                maxTokensPerExpert: maxTokens,
                predictedTokensPerExpert: predicted,
                predictedIntensity: expertIntensity(c, tokens: predicted),
                imbalance: imbalance, distinctExperts: steps.isEmpty ? 0 : Double(active) / Double(steps.count),
                expertTime: time / Double(max(stepTimes.count, 1))))
        }
        return points
    }

    /// gate_up + down of one F32 expert over `tokens` rows, from the cost model.
    static func expertIntensity(_ c: ModelConfig, tokens: Double) -> Double {
        let n = max(1, Int(tokens.rounded()))
        let d = c.hiddenSize, i = c.expertIntermediateSize
        let cost = Cost.linear(tokens: n, inFeatures: d, outFeatures: i, weightBytes: 4)
            + Cost.linear(tokens: n, inFeatures: d, outFeatures: i, weightBytes: 4)
            + Cost.linear(tokens: n, inFeatures: i, outFeatures: d, weightBytes: 4)
        return cost.intensity
    }
}
