import Foundation
import Tensor

/// Writes a copy of a model folder whose linear weights are stored in another `WeightFormat`:
/// what `tinyseek quantize` runs. The result is an ordinary HF-layout folder that `Model.load`
/// reads like any other.
///
/// - Which tensors: the linear layers' weights, named by the loading table itself
///   (`ModelWeights.linearWeightNames`): attention projections, dense FFN, routed and shared
///   experts, LM head. Norms, the router (`mlp.gate.weight`) and its correction bias, and biases
///   are copied unchanged. The embedding table is converted for BF16/F16 (a lookup decodes one row)
///   and copied unchanged for Q8_0, which is meant for the streamed matrices only.
/// - Q8_0 storage (see `ModelWeights` and `WeightFormat.q8_0`): `<name>` as I8 [out, in] and
///   `<name>_scale` as F16 [out, ⌈in/32⌉]. config.json gets a `quantization_config` entry
///   describing it, and the safetensors `__metadata__` says the same, so a reader that does not
///   know the convention (transformers) refuses the folder instead of misreading it.
/// - The source may itself be in any supported format; weights are decoded to float32 first.
public enum Quantizer {
    public struct Summary: Sendable {
        public var converted = 0
        public var copied = 0
        public var inputBytes = 0
        public var outputBytes = 0
    }

    public static func convert(from input: URL, to output: URL, format: WeightFormat) throws -> Summary {
        let config = try ModelConfig.load(from: input)
        let checkpoint: SafetensorsCheckpoint
        do { checkpoint = try SafetensorsCheckpoint(directory: input) } catch { throw ModelError.weights(error.description) }
        let linear = Set(try ModelWeights.linearWeightNames(in: checkpoint, config: config))
        let embedding = "model.embed_tokens.weight"
        try prepare(output, input: input)

        var writer = SafetensorsWriter(metadata: metadata(format))
        var summary = Summary()
        for name in checkpoint.tensorNames {
            // The scales of a Q8_0 source are read with their values.
            if name.hasSuffix("_scale"), linear.contains(String(name.dropLast("_scale".count))) { continue }
            let info = try checkpoint.info(name)
            let convert = linear.contains(name) || (name == embedding && format != .q8_0)
            guard convert else {
                writer.add(name, dtype: info.dtype, shape: info.shape, copying: try checkpoint.rawBytes(name))
                summary.copied += 1
                continue
            }
            let matrix = try checkpoint.matrix(name)
            add(matrix, named: name, format: format, to: &writer)
            summary.converted += 1
        }
        let file = output.appendingPathComponent("model.safetensors")
        try writer.write(to: file)
        try writeConfig(from: input, to: output, format: format)
        summary.inputBytes = checkpoint.files.reduce(0) { $0 + $1.fileSize }
        summary.outputBytes = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0
        return summary
    }

    /// Adds `w` in `format`, produced row by row while the file is written.
    static func add(_ w: WeightMatrix, named name: String, format: WeightFormat, to writer: inout SafetensorsWriter) {
        let rows = w.rows, cols = w.cols
        let shape = [rows, cols]
        switch format {
        case .f32:
            writer.add(name, dtype: .f32, shape: shape) { out in
                let f = out.bindMemory(to: Float.self)
                for i in 0..<rows { w.dequantizeRow(i, into: f.baseAddress.unsafelyUnwrapped + i * cols) }
            }
        case .bf16, .f16:
            writer.add(name, dtype: format == .bf16 ? .bf16 : .f16, shape: shape) { out in
                let h = out.bindMemory(to: UInt16.self)
                var row = [Float](repeating: 0, count: cols)
                for i in 0..<rows {
                    row.withUnsafeMutableBufferPointer { w.dequantizeRow(i, into: $0.baseAddress.unsafelyUnwrapped) }
                    for j in 0..<cols {
                        h[i * cols + j] = format == .bf16 ? WeightMatrix.bf16Bits(row[j]) : Float16(row[j]).bitPattern
                    }
                }
            }
        case .q8_0:
            // Values and scales are two tensors written at different times; each producer
            // quantises the rows again (cheap and deterministic) rather than holding one for the other.
            let blocks = Q8_0.blocks(cols)
            func quantize(into values: UnsafeMutablePointer<Int8>?, scales: UnsafeMutablePointer<UInt16>?) {
                var row = [Float](repeating: 0, count: cols)
                var q = [Int8](repeating: 0, count: cols)
                var d = [UInt16](repeating: 0, count: blocks)
                for i in 0..<rows {
                    row.withUnsafeMutableBufferPointer { w.dequantizeRow(i, into: $0.baseAddress.unsafelyUnwrapped) }
                    Q8_0.quantize(row: row, count: cols, values: &q, scales: &d)
                    if let values { for j in 0..<cols { values[i * cols + j] = q[j] } }
                    if let scales { for b in 0..<blocks { scales[i * blocks + b] = d[b] } }
                }
            }
            writer.add(name, dtype: .i8, shape: shape) { out in
                quantize(into: out.bindMemory(to: Int8.self).baseAddress, scales: nil)
            }
            writer.add(Q8_0.scaleName(for: name), dtype: .f16, shape: [rows, blocks]) { out in
                quantize(into: nil, scales: out.bindMemory(to: UInt16.self).baseAddress)
            }
        }
    }

    static func metadata(_ format: WeightFormat) -> [String: String] {
        var m = ["format": "pt", "tinyseek.weight_format": format.rawValue]
        if format == .q8_0 {
            m["tinyseek.q8_0"] = "linear weight <name>: I8 values [out, in]; <name>_scale: F16 [out, ceil(in/32)]; "
                + "W[i, j] = scale[i, j/32] * values[i, j]"
        }
        return m
    }

    /// Creates `output` and refuses to mix with weights already there (an unindexed folder loads
    /// every *.safetensors file it holds).
    static func prepare(_ output: URL, input: URL) throws {
        guard output.standardizedFileURL.path != input.standardizedFileURL.path else {
            throw ModelError.invalidArgument(name: "output folder", reason: "must differ from the input folder")
        }
        let fm = FileManager.default
        try fm.createDirectory(at: output, withIntermediateDirectories: true)
        let existing = try fm.contentsOfDirectory(atPath: output.path).filter { $0.hasSuffix(".safetensors") }
        guard existing.isEmpty else {
            throw ModelError.invalidArgument(name: "output folder",
                                             reason: "\(output.path) already holds \(existing.sorted().joined(separator: ", ")); remove it or choose an empty folder")
        }
    }

    /// config.json with a `quantization_config` for Q8_0 (and `dtype` for 16-bit weights); every
    /// other file of the folder (generation config, tokenizer) is copied as is.
    static func writeConfig(from input: URL, to output: URL, format: WeightFormat) throws {
        let fm = FileManager.default
        for name in try fm.contentsOfDirectory(atPath: input.path) where name != "config.json"
            && !name.hasSuffix(".safetensors") && name != SafetensorsCheckpoint.indexFileName {
            var isDirectory: ObjCBool = false
            let source = input.appendingPathComponent(name)
            guard fm.fileExists(atPath: source.path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            let target = output.appendingPathComponent(name)
            if fm.fileExists(atPath: target.path) { try fm.removeItem(at: target) }
            try fm.copyItem(at: source, to: target)
        }
        let data = try Data(contentsOf: input.appendingPathComponent("config.json"))
        guard var config = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ModelError.invalidConfigFile(path: input.appendingPathComponent("config.json").path, reason: "not a JSON object")
        }
        switch format {
        case .q8_0:
            config["quantization_config"] = [
                "quant_method": "tinyseek", "format": "q8_0", "bits": 8, "block_size": Q8_0.blockSize,
                "scale_dtype": "float16", "scale_suffix": "_scale",
                "quantized": "linear layer weights (attention, dense FFN, experts, lm_head)",
            ] as [String: Any]
        case .bf16, .f16, .f32:
            config.removeValue(forKey: "quantization_config")
            let dtype = ["bf16": "bfloat16", "f16": "float16", "f32": "float32"][format.rawValue]
            for key in ["dtype", "torch_dtype"] where config[key] != nil { config[key] = dtype }
        }
        let json = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try json.write(to: output.appendingPathComponent("config.json"))
    }
}
