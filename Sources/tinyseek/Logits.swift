import ArgumentParser
import Foundation
import TinySeek

struct Logits: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the logits of every position of a token sequence as JSON.",
        discussion: "One prefill over all tokens; prints {\"tokens\": [...], \"logits\": [[vocab floats] per position]}. With --hidden-states also the residual stream after every decoder layer (what Tools/compare_with_transformers.py compares).")

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: ArgumentHelp("Comma-separated token ids, e.g. 1,2,3.", valueName: "ids"))
    var tokens: String

    @Flag(name: .long, help: "Also print hidden_states: the output of each decoder layer, per position.")
    var hiddenStates = false

    func run() throws {
        let ids = try parseTokenList(tokens, option: "--tokens")
        let model = try modelOptions.load()
        let session = modelOptions.makeSession(model, capacity: ids.count)
        session.options.keepHiddenStates = hiddenStates
        let logits = try session.forward(ids, allLogits: true)
        var s = "{\"tokens\": [" + ids.map(String.init).joined(separator: ", ") + "], \"logits\": ["
        s += matrixJSON(logits.buffer, rows: ids.count, cols: model.config.vocabSize)
        s += "]"
        if hiddenStates {
            s += ", \"hidden_states\": ["
            s += session.hiddenStates.map { layer in
                "[" + layer.withUnsafeBufferPointer { matrixJSON($0, rows: ids.count, cols: model.config.hiddenSize) } + "]"
            }.joined(separator: ", ")
            s += "]"
        }
        s += "}\n"
        FileHandle.standardOutput.write(Data(s.utf8))
    }
}

func matrixJSON<C: Collection>(_ values: C, rows: Int, cols: Int) -> String where C.Element == Float, C.Index == Int {
    (0..<rows).map { r in
        "[" + (0..<cols).map { formatFloat(values[values.startIndex + r * cols + $0]) }.joined(separator: ", ") + "]"
    }.joined(separator: ", ")
}
