import Foundation
import TinySeek

/// Measured naive vs absorbed MLA time, so the choice of order is a measurement, not a rule.
///
/// Naive decompresses K and V for every head and cached position: its FLOPs grow with
/// S·H·(dn+dv)·r, but prefill amortises the decompression over T queries. Absorbed attends over
/// the r+dr latent directly: cheap per decode step (the cache is read once for all heads), but
/// each query does r+dr work per position instead of dn+dr, so long prefills favour naive.
public struct AttentionAdvice: Sendable {
    public struct Point: Sendable {
        public var phase: Phase
        /// Prompt length (prefill) or cache length (decode).
        public var length: Int
        /// Seconds spent in attention ops (best of the repetitions).
        public var naive: Double
        public var absorbed: Double
        /// Arithmetic intensity of attn_score in each order (FLOP/B): the paper's headline, ~1 for
        /// naive decode (per-head keys) vs ~H for absorbed (one latent row serves every head).
        public var naiveScoreIntensity: Double
        public var absorbedScoreIntensity: Double
    }

    public var points: [Point]

    /// Attention-part time of one forward at each length, in both orders.
    public static func measure(model: Model, lengths: [Int], repetitions: Int = 3,
                               progress: (String) -> Void = { _ in }) throws(ModelError) -> AttentionAdvice {
        let maxLen = model.config.maxPositionEmbeddings
        let lengths = Array(Set(lengths.filter { $0 >= 1 && $0 < maxLen })).sorted()
        var points: [Point] = []
        let recorder = OpRecorder()
        func attentionSeconds() -> Double {
            recorder.records.filter { ModelPart(opName: $0.name) == .attention }.reduce(0) { $0 + $1.seconds }
        }
        func scoreIntensity() -> Double {
            recorder.records.filter { $0.name == "attn_score" }.reduce(OpCost()) { $0 + $1.cost }.intensity
        }
        for length in lengths {
            progress("attention orders: length \(length)")
            let prompt = Profiler.prompt(count: length, vocabSize: model.config.vocabSize, seed: 2)
            let session = model.makeSession(capacity: length + 1)
            var best: [AttentionOrder: (prefill: Double, decode: Double)] = [:]
            var intensity: [AttentionOrder: (prefill: Double, decode: Double)] = [:]
            for order in [AttentionOrder.naive, .absorbed] {
                session.options.attention = order
                var prefill = Double.infinity, decode = Double.infinity
                var prefillIntensity = 0.0, decodeIntensity = 0.0
                for _ in 0..<max(repetitions, 1) {
                    session.reset()
                    recorder.removeAll()
                    session.recorder = length > 1 ? recorder : nil
                    try session.forward(prompt)
                    if length > 1 {
                        prefill = min(prefill, attentionSeconds())
                        prefillIntensity = scoreIntensity()
                    }
                    recorder.removeAll()
                    session.recorder = recorder
                    try session.forward([1])          // one decode step over `length` cached positions
                    decode = min(decode, attentionSeconds())
                    decodeIntensity = scoreIntensity()
                    session.recorder = nil
                }
                best[order] = (prefill, decode)
                intensity[order] = (prefillIntensity, decodeIntensity)
            }
            if length > 1, let n = best[.naive], let a = best[.absorbed], let ni = intensity[.naive], let ai = intensity[.absorbed] {
                points.append(Point(phase: .prefill, length: length, naive: n.prefill, absorbed: a.prefill,
                                    naiveScoreIntensity: ni.prefill, absorbedScoreIntensity: ai.prefill))
            }
            if let n = best[.naive], let a = best[.absorbed], let ni = intensity[.naive], let ai = intensity[.absorbed] {
                points.append(Point(phase: .decode, length: length + 1, naive: n.decode, absorbed: a.decode,
                                    naiveScoreIntensity: ni.decode, absorbedScoreIntensity: ai.decode))
            }
        }
        return AttentionAdvice(points: points)
    }

    /// One sentence per phase stating which order wins where, with the measured crossover.
    public func summary(_ phase: Phase) -> String {
        let pts = points.filter { $0.phase == phase }.sorted { $0.length < $1.length }
        guard let first = pts.first, let last = pts.last else { return "\(phase.rawValue): not measured" }
        let what = phase == .prefill ? "prompts" : "contexts"
        let naiveWins = pts.map { $0.naive < $0.absorbed }
        if naiveWins.allSatisfy({ !$0 }) {
            return "\(phase.rawValue): absorbed is faster at every measured length (\(first.length)-\(last.length) tokens)"
        }
        if naiveWins.allSatisfy({ $0 }) {
            return "\(phase.rawValue): naive is faster at every measured length (\(first.length)-\(last.length) tokens)"
        }
        // The first length from which one order wins for good.
        let lastWinner = naiveWins.last ?? false
        var i = naiveWins.count - 1
        while i > 0 && naiveWins[i - 1] == lastWinner { i -= 1 }
        let (winner, loser) = lastWinner ? ("naive", "absorbed") : ("absorbed", "naive")
        return "\(phase.rawValue): \(winner) is faster for \(what) of ~\(pts[i].length) tokens and more; "
            + "\(loser) below that (measured \(first.length)-\(last.length))"
    }
}
