import Foundation
import Testing
@testable import TinySeek

@Suite struct SamplerTests {
    static let logits: [Float] = [0.5, 2.0, -1.0, 1.5, 0.0, 1.9, -3.0, 0.7]

    func draw(_ p: SamplingParameters, _ n: Int) -> [Int] {
        var s = Sampler(p)
        return Self.logits.withUnsafeBufferPointer { buf in (0..<n).map { _ in s.sample(buf) } }
    }

    @Test func greedyIsArgmax() {
        #expect(draw(.greedy, 5) == [1, 1, 1, 1, 1])
        #expect(draw(SamplingParameters(temperature: 1, topK: 1, seed: 3), 20).allSatisfy { $0 == 1 })
        #expect(draw(SamplingParameters(temperature: 1, topP: 1e-6, seed: 3), 20).allSatisfy { $0 == 1 })
    }

    @Test func sameSeedSameTokensOtherSeedOtherTokens() {
        let a = draw(SamplingParameters(temperature: 1, seed: 42), 64)
        #expect(a == draw(SamplingParameters(temperature: 1, seed: 42), 64))
        #expect(a != draw(SamplingParameters(temperature: 1, seed: 43), 64))
    }

    /// Frequencies over many draws follow softmax(logits / T) restricted by top-k/top-p.
    @Test func frequenciesFollowTheDistribution() {
        let n = 40_000
        let t: Float = 0.8
        let exps = Self.logits.map { exp(Double($0 / t)) }
        let z = exps.reduce(0, +)
        var counts = [Int](repeating: 0, count: Self.logits.count)
        for i in draw(SamplingParameters(temperature: t, seed: 7), n) { counts[i] += 1 }
        for i in counts.indices {
            let expected = exps[i] / z
            #expect(abs(Double(counts[i]) / Double(n) - expected) < 0.01, "token \(i)")
        }
        // top-k 3 keeps tokens 1, 5, 3 only.
        let topK = Set(draw(SamplingParameters(temperature: 5, topK: 3, seed: 1), 2000))
        #expect(topK == [1, 5, 3])
        // top-p: probabilities at T=1 sorted are ~[.30, .27, .18, .08, ...]; p=0.5 keeps the first two.
        let topP = Set(draw(SamplingParameters(temperature: 1, topP: 0.5, seed: 1), 2000))
        #expect(topP == [1, 5])
    }

    @Test func invalidParametersAreErrors() {
        #expect(throws: ModelError.self) { try SamplingParameters(temperature: -1).validate() }
        #expect(throws: ModelError.self) { try SamplingParameters(temperature: 1, topP: 0).validate() }
        #expect(throws: ModelError.self) { try SamplingParameters(temperature: 1, topK: -2).validate() }
    }
}
