import Foundation
import Testing
@testable import TinySeek

/// The executor's recorded FLOPs and bytes, op by op, against formulas derived by hand for
/// deepseek-v3-tiny (d=64, H=4, q_lora 32, r=32, dn=16, dr=8, dv=16, dense I=96, expert I=16,
/// 8 experts top-2, 1 shared, vocab 256). Numbers are written out, not computed with `Cost`.
@Suite struct OpCostTests {
    func run(_ order: AttentionOrder) throws -> [OpRecord] {
        let model = try Models.load("deepseek-v3-tiny")
        let session = model.makeSession(capacity: 6)
        session.options.attention = order
        let recorder = OpRecorder()
        session.recorder = recorder
        try session.forward([5, 66, 129, 200, 1])    // prefill T=5, S=5
        try session.forward([7])                     // decode T=1, S=6
        return recorder.records
    }

    func op(_ records: [OpRecord], _ name: String, layer: Int?, _ phase: Phase) -> OpCost? {
        let matching = records.filter { $0.name == name && $0.layer == layer && $0.phase == phase }
        #expect(matching.count == 1, "\(name) layer \(String(describing: layer)) \(phase): \(matching.count) records")
        return matching.first?.cost
    }

    @Test func projectionsAndNorms() throws {
        let r = try run(.naive)
        #expect(op(r, "q_a_proj", layer: 0, .prefill) == OpCost(flops: 2 * 5 * 64 * 32, weightBytes: 64 * 32 * 4,
                                                                  activationBytes: 5 * 64 * 4, bytesWritten: 5 * 32 * 4))
        #expect(op(r, "q_a_norm", layer: 0, .prefill)?.flops == Double(4 * 5 * 32))
        #expect(op(r, "q_b_proj", layer: 0, .prefill)?.flops == Double(2 * 5 * 32 * 96))
        #expect(op(r, "kv_a_proj", layer: 1, .prefill) == OpCost(flops: 2 * 5 * 64 * 40, weightBytes: 64 * 40 * 4,
                                                                   activationBytes: 5 * 64 * 4, bytesWritten: 5 * 40 * 4))
        #expect(op(r, "kv_norm", layer: 2, .decode)?.flops == Double(4 * 1 * 32))
        #expect(op(r, "rope", layer: 0, .prefill)?.flops == Double(3 * (5 * 5) * 8))
        #expect(op(r, "o_proj", layer: 0, .decode) == OpCost(flops: 2 * 1 * 64 * 64, weightBytes: 64 * 64 * 4,
                                                              activationBytes: 64 * 4, bytesWritten: 64 * 4))
        #expect(op(r, "lm_head", layer: nil, .prefill)?.flops == Double(2 * 1 * 64 * 256))   // only the last row in prefill
        #expect(op(r, "lm_head", layer: nil, .decode)?.weightBytes == Double(256 * 64 * 4))
    }

    @Test func naiveAttention() throws {
        let r = try run(.naive)
        // kv_decompress expands all S cached latents: 2·S·r·H(dn+dv).
        #expect(op(r, "kv_decompress", layer: 0, .prefill) == OpCost(flops: 2 * 5 * 32 * 128, weightBytes: 32 * 128 * 4,
                                                                       cacheBytes: 5 * 32 * 4, bytesWritten: 5 * 128 * 4))
        #expect(op(r, "kv_decompress", layer: 0, .decode)?.flops == Double(2 * 6 * 32 * 128))
        // score: 2·H·T·S·(dn+dr); reads Q, the decompressed K_nope per head, and k_pe from the cache.
        #expect(op(r, "attn_score", layer: 1, .prefill) == OpCost(flops: 2 * 4 * 5 * 5 * 24,
                                                                   activationBytes: 4 * 5 * 24 * 4 + 4 * 5 * 16 * 4,
                                                                   cacheBytes: 5 * 8 * 4, bytesWritten: 4 * 5 * 5 * 4))
        #expect(op(r, "attn_score", layer: 1, .decode)?.flops == Double(2 * 4 * 1 * 6 * 24))
        #expect(op(r, "softmax", layer: 1, .decode)?.flops == Double(5 * 4 * 6))
        #expect(op(r, "attn_context", layer: 2, .prefill)?.flops == Double(2 * 4 * 5 * 5 * 16))
        #expect(r.filter { $0.name == "q_absorb" || $0.name == "v_absorb" }.isEmpty)
    }

    @Test func absorbedAttention() throws {
        let r = try run(.absorbed)
        #expect(op(r, "q_absorb", layer: 0, .prefill) == OpCost(flops: 2 * 4 * 5 * 16 * 32, weightBytes: 4 * 16 * 32 * 4,
                                                                  activationBytes: 4 * 5 * 16 * 4, bytesWritten: 4 * 5 * 32 * 4))
        // One pass over the (r + dr)-wide latent rows serves all four heads.
        #expect(op(r, "attn_score", layer: 0, .decode) == OpCost(flops: 2 * 4 * 1 * 6 * 40, activationBytes: 4 * 1 * 40 * 4,
                                                                  cacheBytes: 6 * 40 * 4, bytesWritten: 4 * 1 * 6 * 4))
        #expect(op(r, "attn_context", layer: 0, .decode) == OpCost(flops: 2 * 4 * 1 * 6 * 32, activationBytes: 4 * 6 * 4,
                                                                    cacheBytes: 6 * 32 * 4, bytesWritten: 4 * 32 * 4))
        #expect(op(r, "v_absorb", layer: 2, .prefill)?.flops == Double(2 * 4 * 5 * 32 * 16))
        #expect(r.filter { $0.name == "kv_decompress" }.isEmpty)
    }

    @Test func feedForwardAndExperts() throws {
        let r = try run(.naive)
        #expect(op(r, "ffn_gate_up", layer: 0, .prefill) == OpCost(flops: 2 * (2 * 5 * 64 * 96), weightBytes: 2 * 64 * 96 * 4,
                                                                     activationBytes: 2 * 5 * 64 * 4, bytesWritten: 2 * 5 * 96 * 4))
        #expect(op(r, "ffn_down", layer: 0, .decode)?.flops == Double(2 * 1 * 96 * 64))
        #expect(op(r, "router", layer: 1, .prefill) == OpCost(flops: 2 * 5 * 64 * 8, weightBytes: 64 * 8 * 4,
                                                               activationBytes: 5 * 64 * 4, bytesWritten: 5 * 8 * 4))
        #expect(op(r, "shared_gate_up", layer: 2, .prefill)?.flops == Double(2 * (2 * 5 * 64 * 16)))
        for phase in [Phase.prefill, .decode] {
            let tokens = phase == .prefill ? 5 : 1
            let experts = r.filter { $0.name == "expert_gate_up" && $0.layer == 1 && $0.phase == phase }
            // Every (token, slot) pair is computed once: Σ rows over experts = T·k.
            let rows = experts.map { Int($0.cost.flops) / (2 * 2 * 64 * 16) }
            #expect(rows.reduce(0, +) == tokens * 2)
            // Each expert touched streams its gate and up weights once, whatever its row count.
            #expect(experts.allSatisfy { $0.cost.weightBytes == 2 * 64 * 16 * 4 && $0.expert != nil })
            #expect(Set(experts.compactMap(\.expert)).count == experts.count)
        }
    }

    @Test func recordedTimeAccountsForTheForwardPass() throws {
        let model = try Models.load("deepseek-v3-tiny")
        let session = model.makeSession(capacity: 100)
        let prompt = Array(0..<96)
        try session.forward(prompt)
        session.reset()
        let recorder = OpRecorder()
        session.recorder = recorder
        let t0 = DispatchTime.now().uptimeNanoseconds
        try session.forward(prompt)
        let wall = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        let sum = recorder.records.reduce(0) { $0 + $1.seconds }
        // Ops cover all the work; what is left is loop glue and the rotary-angle table.
        #expect(sum <= wall && sum >= 0.6 * wall, "op times sum to \(sum) s of a \(wall) s forward")
    }
}
