import Foundation
import Testing
import TinySeek
import TinySeekRuntime

/// MoE load, the batch that reaches the ridge, memory, interconnect and parallel splits.
@Suite("System quantities: expert load, B_attn, B_MoE, memory, all-to-all")
struct SystemQuantityTests {
    let h200 = Accelerator.builtIn.first { $0.name == "H200" }!

    func model(_ spec: ArchitectureSpec, batch: Int, context: Int = 4096, phase: Phase = .decode,
               imbalance: Double = 1, parallelism: Parallelism = .single) throws -> AnalyticModel {
        try AnalyticModel(spec: spec, scenario: Scenario(batch: batch, context: context, phase: phase, dtype: .bf16,
                                                        parallelism: parallelism, routing: .expected(imbalance: imbalance)))
    }

    @Test("E[touched] = n_e(1 - (1 - n_k/n_e)^B); tokens per expert = Γ·B·n_k / E[touched]")
    func expectedExpertLoad() throws {
        let v3 = try AnalysisRepo.spec("deepseek-v3")
        let one = try #require(try model(v3, batch: 1).expertLoad())
        expectRelative(one.touchedExperts, 8, within: 1e-12, "one token touches n_k experts")
        expectRelative(one.tokensPerExpert, 1, within: 1e-12, "one token each")
        let small = try #require(try model(v3, batch: 32).expertLoad())
        expectRelative(small.touchedExperts, 256 * (1 - pow(1 - 8.0 / 256, 32)), within: 1e-12, "B = 32")   // 163.3
        let large = try #require(try model(v3, batch: 4096, imbalance: 1.5).expertLoad())
        expectRelative(large.touchedExperts, 256, within: 1e-9, "every expert busy")
        expectRelative(large.tokensPerExpert, 1.5 * 4096 * 8 / 256, within: 1e-9, "Γ·B·n_k/n_e")
        // The layer's expert weights are read once per touched expert.
        let gateUp = try model(v3, batch: 32).cost("expert_gate_up", layer: 3)
        expectRelative(gateUp.weightBytes, small.touchedExperts * 2 * 7168 * 2048 * 2, within: 1e-12, "expert weight bytes")
        // FLOPs count every (token, slot) pair exactly at Γ = 1: 2 matrices x 2·d·I per pair.
        expectRelative(gateUp.flops, 32 * 8 * 2 * 2 * 7168 * 2048, within: 1e-12, "expert FLOPs")
    }

    @Test("expert ArI ≈ Γ·B·n_k/n_e while tokens per expert ≪ hidden, width")
    func expertIntensity() throws {
        let v3 = try AnalysisRepo.spec("deepseek-v3")
        for (batch, g) in [(1024, 1.0), (1024, 2.0), (256, 1.0)] {
            let m = try model(v3, batch: batch, imbalance: g)
            let t = try #require(m.expertLoad()).tokensPerExpert   // Γ·B·n_k / E[touched]
            let c = m.cost("expert_gate_up", layer: 3)
            // 4·t·d·I FLOPs over 2·d·I weights + 2·t·d read + 2·t·I written, 2 bytes each.
            expectRelative(c.intensity, t / (1 + t / 7168 + t / 2048), within: 1e-9, "B = \(batch), Γ = \(g)")
            expectRelative(c.intensity, g * Double(batch) * 8 / 256, within: 0.04, "B = \(batch), Γ = \(g) vs Γ·B·n_k/n_e")
        }
    }

    @Test("B_MoE = RP·n_e/n_k and B_attn = RP·deg_DP, and where this cost model reaches the ridge")
    func ridgeBatches() throws {
        let v3 = try AnalysisRepo.spec("deepseek-v3")
        let rp = 989.5e12 / 4800e9
        let a = try Analysis(spec: v3, scenario: Scenario(batch: 64, context: 4096), accelerator: h200)
        let q = try SystemQuantities(analysis: a)
        expectRelative(q.ridge, rp, within: 1e-12, "ridge")
        expectRelative(try #require(q.moeBatchPaper), rp * 256 / 8, within: 1e-12, "B_MoE closed form")   // 6597
        expectRelative(q.attentionBatchPaper, rp, within: 1e-12, "B_attn closed form, dp = 1")
        // The model's expert matmuls also read and write activations, so they need ~15% more.
        let bMoE = try #require(q.moeBatchModel)
        #expect(Double(bMoE) >= rp * 256 / 8 && Double(bMoE) <= 1.2 * rp * 256 / 8)
        func expertIntensity(_ b: Int) throws -> Double {
            let m = try model(v3, batch: b)
            return (m.cost("expert_gate_up", layer: 3) + m.cost("expert_down", layer: 3)).intensity
        }
        #expect(try expertIntensity(bMoE) >= rp && expertIntensity(bMoE - 1) < rp)
        // Data-parallel attention needs deg_DP times the batch.
        let dp4 = try SystemQuantities(analysis: Analysis(spec: v3, scenario: Scenario(batch: 64, context: 4096,
                                                                                       parallelism: .init(dp: 4, ep: 4)), accelerator: h200))
        expectRelative(dp4.attentionBatchPaper, 4 * rp, within: 1e-12, "B_attn = RP x 4")
        let single = try #require(q.attentionBatchModel), four = try #require(dp4.attentionBatchModel)
        #expect(abs(four - 4 * single) <= 4, "dp 4: \(four) vs 4 x \(single)")
        // Dense Llama-3: no B_MoE.
        let llama = try SystemQuantities(analysis: Analysis(spec: AnalysisRepo.spec("llama-3-70b"),
                                                            scenario: Scenario(batch: 8, context: 4096), accelerator: h200))
        #expect(llama.moeBatchPaper == nil && llama.moeBatchModel == nil)
    }

    @Test("memory: weights, KV cache and activations per device; the largest batch that fits")
    func memory() throws {
        let v3 = try AnalysisRepo.spec("deepseek-v3")
        // One H200 cannot hold 671B BF16 parameters.
        let one = try SystemQuantities(analysis: Analysis(spec: v3, scenario: Scenario(batch: 1, context: 4096), accelerator: h200))
        #expect(one.maxBatch == 0 && !one.memory.fits)
        // 16 devices, experts spread: attention and dense weights on every device, routed experts / 16.
        let par = Parallelism(dp: 16, ep: 16)
        let a = try Analysis(spec: v3, scenario: Scenario(batch: 1024, context: 4096, parallelism: par), accelerator: h200)
        let q = try SystemQuantities(analysis: a)
        let p = ParameterCount(v3)
        expectRelative(q.memory.weights, 2 * (p.total - p.routedExperts + p.routedExperts / 16), within: 1e-12, "weights per device")
        expectRelative(q.memory.kvCache, 64 * 576 * 61 * 2 * 4096, within: 1e-12, "64 sequences' latent cache")
        let maxBatch = try #require(q.maxBatch)
        #expect(maxBatch > 0 && maxBatch % 16 == 0)
        func fits(_ b: Int) throws -> Bool {
            try SystemQuantities(analysis: Analysis(spec: v3, scenario: Scenario(batch: b, context: 4096, parallelism: par),
                                                    accelerator: h200)).memory.fits
        }
        #expect(try fits(maxBatch) && !fits(maxBatch + 16))
    }

    @Test("all-to-all per MoE layer = 2·Γ·token_bytes·n_k·B / (bandwidth·devices) + 2·latency")
    func allToAll() throws {
        let v3 = try AnalysisRepo.spec("deepseek-v3")
        let s = Scenario(batch: 1024, context: 4096, parallelism: .init(dp: 16, ep: 16), routing: .expected(imbalance: 1.25))
        let a = try Analysis(spec: v3, scenario: s, accelerator: h200)
        let tokenBytes = 7168.0 * 2, bandwidth = 450e9, latency = 10e-6
        let expected: Double = 2 * 1.25 * tokenBytes * 8 * 1024 / (bandwidth * 16) + 2 * latency
        expectRelative(a.allToAllSecondsPerMoELayer, expected, within: 1e-12, "all-to-all")
        expectRelative(a.communicationSeconds, 58 * expected, within: 1e-12, "58 MoE layers")
        expectRelative(a.tokensPerSecondPerDevice, 1024 / a.stepSeconds / 16, within: 1e-12, "tokens/s per device")
        // No interconnect on this machine: parallelism is refused.
        let cpu = Accelerator(name: "cpu", peakTFLOPS: ["fp32": 0.1], memoryBandwidthGBps: 20, memoryGB: 16)
        #expect(throws: AnalysisError.self) { try Analysis(spec: v3, scenario: s, accelerator: cpu) }
    }

    @Test("tensor parallelism splits heads and widths; MLA's latent cache is read whole by every rank")
    func tensorParallel() throws {
        let v3 = try AnalysisRepo.spec("deepseek-v3")
        let one = try model(v3, batch: 8), two = try model(v3, batch: 8, parallelism: .init(tp: 2, ep: 2))
        #expect(two.cost("q_b_proj", layer: 0).flops * 2 == one.cost("q_b_proj", layer: 0).flops)
        #expect(two.cost("q_a_proj", layer: 0) == one.cost("q_a_proj", layer: 0))   // replicated
        #expect(two.cost("attn_score", layer: 0).cacheBytes == one.cost("attn_score", layer: 0).cacheBytes)
        #expect(two.cost("attn_score", layer: 0).flops * 2 == one.cost("attn_score", layer: 0).flops)
        #expect(two.cost("ffn_gate_up", layer: 0).weightBytes * 2 == one.cost("ffn_gate_up", layer: 0).weightBytes)
        // GQA splits its KV heads.
        let llama = try AnalysisRepo.spec("llama-3-70b")
        let g1 = try model(llama, batch: 8), g8 = try model(llama, batch: 8, parallelism: .init(tp: 8, ep: 8))
        #expect(g8.cost("attn_score", layer: 0).cacheBytes * 8 == g1.cost("attn_score", layer: 0).cacheBytes)
    }

    @Test("scenario errors name the argument")
    func scenarioErrors() throws {
        let v3 = try AnalysisRepo.spec("deepseek-v3")
        #expect(throws: AnalysisError.invalidArgument(name: "batch", reason: "must be at least 1, got 0")) {
            try AnalyticModel(spec: v3, scenario: Scenario(batch: 0, context: 10))
        }
        #expect(throws: AnalysisError.invalidArgument(name: "tp", reason: "3 does not divide the 128 attention heads")) {
            try AnalyticModel(spec: v3, scenario: Scenario(batch: 1, context: 10, parallelism: .init(tp: 3, ep: 3)))
        }
        #expect(throws: AnalysisError.invalidArgument(name: "ep", reason: "3 does not divide the dp x tp = 4 devices")) {
            try AnalyticModel(spec: v3, scenario: Scenario(batch: 1, context: 10, parallelism: .init(dp: 4, ep: 3)))
        }
        #expect(throws: AnalysisError.self) {
            try AnalyticModel(spec: v3, scenario: Scenario(batch: 1, context: 10, routing: .expected(imbalance: 0.5)))
        }
    }
}
