import Foundation
import Testing
@testable import TinySeek

/// `Quantizer` (what `tinyseek quantize` runs) on the toy models: the written folder loads like any
/// model, its weights are in the requested format and read in place, and its logits stay close to
/// the float32 model's over every position of the golden prompts.
///
/// Bounds, from measurement (the test prints them) with margin. Measured on deepseek-v3-tiny,
/// logits of std ~1 and max |logit| ~3: Q8_0 max error 0.100 (mean 0.013), BF16 0.040 (mean
/// 0.005), F16 0.004; deepseek-v2-lite-tiny: 0.071, 0.028, 0.003; top-1 agreed at 18/18 positions
/// for all but one (17/18, v2-lite Q8_0). Q8_0 is ~2.5x BF16: its step is max|w|/127 per block of
/// 32 against BF16's 2⁻⁸ relative per weight, and here most rows are one or two blocks long.
/// Top-1 must agree at ≥ 90% of positions: a position whose top two logits are closer than the
/// error may legitimately flip. deepseek-v3-tiny-halfsplit is left out: its routing margins are
/// smaller than the Q8_0/BF16 perturbation of the router input, an expert flips and logits move by
/// up to 1.0 (F16 stays at 0.004) — the effect the issue warns about for the benchmark model.
@Suite struct QuantizeTests {
    struct Bounds { var maxLogitError: Float; var topOneAgreement: Double }
    static let bounds: [WeightFormat: Bounds] = [
        .q8_0: Bounds(maxLogitError: 0.15, topOneAgreement: 0.9),
        .bf16: Bounds(maxLogitError: 0.06, topOneAgreement: 0.9),
        .f16: Bounds(maxLogitError: 0.01, topOneAgreement: 0.9),
    ]

    static func quantized(_ name: String, _ format: WeightFormat) throws -> (Model, URL) {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("tinyseek-quantize-\(name)-\(format.rawValue)-\(UUID().uuidString)", isDirectory: true)
        _ = try Quantizer.convert(from: Repo.model(name), to: dir, format: format)
        return (try Model.load(from: dir), dir)
    }

    @Test("quantised logits stay close to float32 over the golden prompts",
          arguments: ["deepseek-v3-tiny", "deepseek-v2-lite-tiny"], [WeightFormat.q8_0, .bf16, .f16])
    func closeToFloat32(model name: String, format: WeightFormat) throws {
        let reference = try Models.load(name)
        let (model, dir) = try Self.quantized(name, format)
        defer { try? FileManager.default.removeItem(at: dir) }
        var maxError: Float = 0, sumError: Double = 0, count = 0, agree = 0, positions = 0
        for c in try GoldenFile.load(name).cases {
            let a = try model.makeSession(capacity: c.prompt.count).forward(c.prompt, allLogits: true)
            let b = try reference.makeSession(capacity: c.prompt.count).forward(c.prompt, allLogits: true)
            for t in 0..<c.prompt.count {
                let x = a.row(t).scalars, y = b.row(t).scalars
                maxError = max(maxError, maxAbsDiff(x, y))
                sumError += zip(x, y).reduce(0) { $0 + Double(abs($1.0 - $1.1)) }
                count += x.count
                if x.indices.max(by: { x[$0] < x[$1] }) == y.indices.max(by: { y[$0] < y[$1] }) { agree += 1 }
                positions += 1
            }
        }
        let agreement = Double(agree) / Double(positions)
        print("quantize \(name) \(format.rawValue): max logit error \(maxError), mean \(sumError / Double(count)), "
              + "top-1 agreement \(agree)/\(positions)")
        let bound = Self.bounds[format]!
        #expect(maxError <= bound.maxLogitError, "\(name) \(format): max logit error \(maxError)")
        #expect(agreement >= bound.topOneAgreement, "\(name) \(format): top-1 agreement \(agree)/\(positions)")
    }

    @Test("linear weights are in the new format and read in place; embedding, norms and router as stored",
          arguments: [WeightFormat.q8_0, .bf16])
    func formats(format: WeightFormat) throws {
        let (model, dir) = try Self.quantized("deepseek-v3-tiny", format)
        defer { try? FileManager.default.removeItem(at: dir) }
        let w = model.weights
        #expect(w.lmHead.weight.format == format && w.lmHead.weight.isBorrowed)
        #expect(w.layers[0].attention.kvB.weight.format == format && w.layers[0].attention.kvB.weight.isBorrowed)
        guard case let .moe(moe) = w.layers[1].mlp else { Issue.record("layer 1 should be MoE"); return }
        #expect(moe.experts[3].down.weight.format == format)
        #expect(moe.experts[3].down.weightBytes == format.bytesPerElement)
        // The embedding is converted to 16 bits, but left as stored (F32) by Q8_0.
        #expect(w.embedding.format == (format == .q8_0 ? .f32 : format))
        // Attention 5 per layer (q_a, q_b, kv_a, kv_b, o) × 3, dense FFN 3, 2 MoE layers × (8 experts + shared) × 3, LM head.
        #expect(try ModelWeights.linearWeightNames(in: SafetensorsCheckpoint(directory: dir), config: model.config).count
            == 5 * 3 + 3 + 2 * 9 * 3 + 1)
    }

    /// BF16 → float32 → BF16 is exact, so re-writing the BF16 toy model gives identical logits.
    @Test func bf16RoundTripIsExact() throws {
        let original = try Models.load("deepseek-v3-tiny-bf16")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tinyseek-bf16-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try Quantizer.convert(from: Repo.model("deepseek-v3-tiny-bf16"), to: dir, format: .bf16)
        let copy = try Model.load(from: dir)
        let prompt = [5, 66, 129, 200, 1, 9]
        let a = try original.makeSession(capacity: 6).forward(prompt, allLogits: true).scalars
        let b = try copy.makeSession(capacity: 6).forward(prompt, allLogits: true).scalars
        #expect(a == b)
    }

    @Test func q8WithoutScalesIsANamedError() throws {
        let (_, dir) = try Self.quantized("deepseek-v3-tiny", .q8_0)
        let broken = dir.appendingPathExtension("broken")
        defer { for d in [dir, broken] { try? FileManager.default.removeItem(at: d) } }
        // The same folder with one scale tensor left out.
        let checkpoint = try SafetensorsCheckpoint(directory: dir)
        let scale = "model.layers.0.self_attn.o_proj.weight_scale"
        var writer = SafetensorsWriter()
        for name in checkpoint.tensorNames where name != scale {
            let info = try checkpoint.info(name)
            writer.add(name, dtype: info.dtype, shape: info.shape, copying: try checkpoint.rawBytes(name))
        }
        try FileManager.default.createDirectory(at: broken, withIntermediateDirectories: true)
        try writer.write(to: broken.appendingPathComponent("model.safetensors"))
        try FileManager.default.copyItem(at: dir.appendingPathComponent("config.json"), to: broken.appendingPathComponent("config.json"))
        #expect {
            _ = try Model.load(from: broken)
        } throws: { error in
            "\(error)".contains(scale)
        }
    }

    @Test func refusesToWriteOverWeightsOrIntoItsInput() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tinyseek-q-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try Quantizer.convert(from: Repo.model("deepseek-v3-tiny"), to: dir, format: .q8_0)
        #expect(throws: ModelError.self) { try Quantizer.convert(from: Repo.model("deepseek-v3-tiny"), to: dir, format: .q8_0) }
        #expect(throws: ModelError.self) {
            try Quantizer.convert(from: Repo.model("deepseek-v3-tiny"), to: Repo.model("deepseek-v3-tiny"), format: .bf16)
        }
    }
}
