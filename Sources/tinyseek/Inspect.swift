import ArgumentParser
import Foundation
import TinySeek

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a model: architecture, parameters, KV-cache size, tensors, and a memory plan.")

    @Option(name: .long, help: ArgumentHelp("Model folder in Hugging Face layout.", valueName: "dir"))
    var model: String

    @Option(name: .long, help: "Context length for the memory plan (default: max_position_embeddings).")
    var context: Int?

    @Flag(name: .long, help: "List every tensor with its dtype and shape.")
    var tensors = false

    func run() throws {
        let url = URL(fileURLWithPath: model, isDirectory: true)
        let m = try loadModel(at: model)
        let c = m.config
        let checkpoint = try SafetensorsCheckpoint(directory: url)
        let report = ModelReport(model: m)
        let n = context ?? c.maxPositionEmbeddings
        guard n > 0 else { throw CLIError("--context must be positive, got \(n)") }

        print("model        \(model)  (\(c.modelType))")
        print("layers       \(c.numHiddenLayers) (\(report.moeLayers) MoE, \(c.numHiddenLayers - report.moeLayers) dense), hidden \(c.hiddenSize), vocab \(c.vocabSize), max positions \(c.maxPositionEmbeddings)")
        let q = c.qLoraRank.map { "q_lora_rank \($0)" } ?? "direct q_proj"
        print("attention    MLA: \(c.numAttentionHeads) heads, \(q), kv_lora_rank \(c.kvLoraRank), qk_nope \(c.qkNopeHeadDim) + qk_rope \(c.qkRopeHeadDim), v \(c.vHeadDim), rope \(c.ropeLayout.rawValue)\(c.rope.kind == "yarn" ? " + yarn x\(c.rope.factor ?? 1)" : "")")
        if c.routedExperts > 0 {
            let gating = c.isV3Family ? "sigmoid + bias, top-2-sum groups" : "softmax, \(c.topkMethod ?? "greedy")"
            print("moe          \(c.routedExperts) routed (top \(c.expertsPerToken), \(c.groups) groups keep \(c.groupsKept)), \(c.sharedExperts) shared, expert ffn \(c.expertIntermediateSize); gating \(gating), scale \(c.scalingFactor)")
        }
        print("parameters   \(formatCount(report.totalParameters)) total, \(formatCount(report.activeParameters)) active per token")
        print("kv cache     \(c.latentCacheWidth) floats/token/layer (kv_lora_rank \(c.kvLoraRank) + rope \(c.qkRopeHeadDim)) = \(formatBytes(Double(report.latentBytesPerToken)))/token")
        print("             decompressed K+V per head would be \(formatBytes(Double(report.fullKVBytesPerToken)))/token: \(String(format: "%.1f", Double(report.fullKVBytesPerToken) / Double(report.latentBytesPerToken)))x more")
        var dtypes: [String: Int] = [:]
        for name in checkpoint.tensorNames { dtypes[try checkpoint.dtype(of: name).rawValue, default: 0] += 1 }
        print("tensors      \(checkpoint.tensorNames.count) in \(checkpoint.files.count) file(s), \(formatBytes(Double(checkpoint.totalBytes))): " + dtypes.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))

        let weightsInMemory = Double(report.weightBytes)
        let cache = Double(report.latentBytesPerToken) * Double(n)
        let memory = MachineMemory.read()
        print("\nmemory plan for \(n) tokens of context:")
        print("  weights (as stored, mapped)     \(formatBytes(weightsInMemory))")
        print("  latent KV cache                 \(formatBytes(cache))")
        print("  total                           \(formatBytes(weightsInMemory + cache))")
        if let memory {
            let total = weightsInMemory + cache
            let verdict = total <= Double(memory.available) ? "fits" : "does NOT fit"
            print("  this machine: \(formatBytes(Double(memory.total))) RAM, \(formatBytes(Double(memory.available))) available -> \(verdict)")
        }
        if tensors {
            print("\ntensors:")
            for name in checkpoint.tensorNames {
                let info = try checkpoint.info(name)
                print("  \(name)  \(info.dtype.rawValue) \(info.shape)")
            }
        }
    }
}

/// Total and available RAM from /proc/meminfo (Linux).
struct MachineMemory {
    var total: Int
    var available: Int

    static func read() -> MachineMemory? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        func field(_ key: String) -> Int? {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return nil }
            return line.split(separator: " ").compactMap { Int($0) }.first.map { $0 * 1024 }
        }
        guard let t = field("MemTotal") else { return nil }
        return MachineMemory(total: t, available: field("MemAvailable") ?? t)
    }
}

func formatBytes(_ b: Double) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = b, i = 0
    while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
    return i == 0 ? "\(Int(v)) B" : String(format: "%.2f %@", v, units[i] as NSString)
}

func formatCount(_ n: Int) -> String {
    let v = Double(n)
    if v >= 1e9 { return String(format: "%.2fB", v / 1e9) }
    if v >= 1e6 { return String(format: "%.2fM", v / 1e6) }
    if v >= 1e3 { return String(format: "%.1fK", v / 1e3) }
    return "\(n)"
}
