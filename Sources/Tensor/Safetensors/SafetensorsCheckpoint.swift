import Foundation

/// A Hugging Face model folder's weights: one or more `.safetensors` files seen as one set of
/// named tensors.
///
/// Two layouts exist. A sharded checkpoint has `model.safetensors.index.json`, whose
/// `weight_map` says which shard holds each tensor; the index is the truth, so only the tensors
/// it names are visible and each must really be in its shard. Without an index every
/// `*.safetensors` file in the folder is opened (usually one, `model.safetensors`) and a name
/// found in two files is an error, since nothing says which copy is meant.
///
/// Every file is mapped and validated when the checkpoint opens, so a bad shard fails the load
/// up front rather than halfway through building the model.
public final class SafetensorsCheckpoint: Sendable {
    /// The index file name Hugging Face `save_pretrained` writes next to the shards.
    public static let indexFileName = "model.safetensors.index.json"

    public let directory: URL
    /// The opened files, sorted by file name.
    public let files: [SafetensorsFile]
    /// Every tensor name, sorted.
    public let tensorNames: [String]
    /// Bytes of tensor data in the checkpoint at their stored dtypes (headers and padding
    /// excluded): what a forward pass streams from memory if it touches every weight once.
    public let totalBytes: Int
    /// Tensor name -> index into `files`.
    private let location: [String: Int]

    /// Opens every file of the folder, mapped (the default) or read into memory (`residency`).
    public init(directory: URL, residency: WeightResidency = .mapped) throws(SafetensorsError) {
        self.directory = directory
        let indexURL = directory.appendingPathComponent(Self.indexFileName)
        let layout: (files: [SafetensorsFile], location: [String: Int])
        if FileManager.default.fileExists(atPath: indexURL.path) {
            layout = try Self.openSharded(directory: directory, index: indexURL, residency: residency)
        } else {
            layout = try Self.openUnindexed(directory: directory, residency: residency)
        }
        files = layout.files
        location = layout.location
        tensorNames = layout.location.keys.sorted()
        // Every name in `location` is in its file (checked while opening), so nothing is skipped.
        totalBytes = layout.location.reduce(0) { sum, entry in
            sum + ((try? layout.files[entry.value].info(entry.key).byteCount) ?? 0)
        }
    }

    public func contains(_ name: String) -> Bool { location[name] != nil }

    /// Reads one byte of every 4 KB page of every file, so all weights (every expert included)
    /// are resident and mapped before a timed run: steady-state figures then contain no page
    /// faults. Returns a checksum (meaningless, but it keeps the reads).
    @discardableResult
    public func touchPages() -> Int { files.reduce(0) { $0 &+ $1.touchPages() } }

    /// The file that holds `name`.
    public func file(containing name: String) throws(SafetensorsError) -> SafetensorsFile {
        guard let index = location[name] else { throw .tensorNotFound(path: directory.path, name: name) }
        return files[index]
    }

    public func info(_ name: String) throws(SafetensorsError) -> TensorInfo {
        try file(containing: name).info(name)
    }

    public func dtype(of name: String) throws(SafetensorsError) -> DType {
        try info(name).dtype
    }

    /// See `SafetensorsFile.tensor(_:)`: a zero-copy view for F32, a conversion for F16/BF16.
    public func tensor(_ name: String) throws(SafetensorsError) -> Tensor {
        try file(containing: name).tensor(name)
    }

    /// See `SafetensorsFile.rawBytes(_:)`; valid while this checkpoint is alive.
    public func rawBytes(_ name: String) throws(SafetensorsError) -> UnsafeRawBufferPointer {
        try file(containing: name).rawBytes(name)
    }


    // MARK: Opening the two layouts

    private static func openSharded(
        directory: URL, index indexURL: URL, residency: WeightResidency
    ) throws(SafetensorsError) -> (files: [SafetensorsFile], location: [String: Int]) {
        let weightMap = try readWeightMap(indexURL)
        let shardNames = Set(weightMap.values).sorted()
        var files: [SafetensorsFile] = []
        var shardIndex: [String: Int] = [:]
        for shard in shardNames {
            let shardURL = directory.appendingPathComponent(shard)
            guard FileManager.default.fileExists(atPath: shardURL.path) else {
                throw .missingShard(path: indexURL.path, shard: shard)
            }
            shardIndex[shard] = files.count
            files.append(try SafetensorsFile(contentsOf: shardURL, residency: residency))
        }
        var location: [String: Int] = [:]
        for name in weightMap.keys.sorted() {
            guard let shard = weightMap[name], let index = shardIndex[shard] else { continue }
            guard files[index].contains(name) else {
                throw .tensorNotFound(path: files[index].url.path, name: name)
            }
            location[name] = index
        }
        return (files, location)
    }

    /// Reads `weight_map` (tensor name -> shard file name) from the index. Other keys (such as
    /// `metadata.total_size`) are informational and ignored. A shard must be a plain file name
    /// in the folder, so an index cannot point the loader at arbitrary paths.
    private static func readWeightMap(_ indexURL: URL) throws(SafetensorsError) -> [String: String] {
        let path = indexURL.path
        let data: Data
        do {
            data = try Data(contentsOf: indexURL)
        } catch {
            throw .cannotOpen(path: path, reason: "\(error.localizedDescription)")
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw .invalidIndex(path: path, reason: "not JSON (\(jsonErrorReason(error)))")
        }
        guard let root = object as? [String: Any] else {
            throw .invalidIndex(path: path, reason: "the top level is \(jsonKind(object)), not an object")
        }
        guard let entries = root["weight_map"] as? [String: Any] else {
            throw .invalidIndex(path: path, reason: "\"weight_map\" is missing or not an object")
        }
        guard !entries.isEmpty else { throw .invalidIndex(path: path, reason: "\"weight_map\" is empty") }
        var weightMap: [String: String] = [:]
        for (name, value) in entries {
            guard let shard = value as? String else {
                throw .invalidIndex(path: path, reason: "\"\(name)\" maps to \(jsonKind(value)), not a file name")
            }
            guard !shard.isEmpty, !shard.contains("/"), shard != ".", shard != ".." else {
                throw .invalidIndex(path: path, reason: "\"\(name)\" maps to '\(shard)', not a file name in the folder")
            }
            weightMap[name] = shard
        }
        return weightMap
    }

    private static func openUnindexed(
        directory: URL, residency: WeightResidency
    ) throws(SafetensorsError) -> (files: [SafetensorsFile], location: [String: Int]) {
        let fileNames: [String]
        do {
            fileNames = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw .cannotOpen(path: directory.path, reason: "\(error.localizedDescription)")
        }
        let weightFiles = fileNames.filter { $0.hasSuffix(".safetensors") }.sorted()
        guard !weightFiles.isEmpty else { throw .noWeights(path: directory.path) }
        var files: [SafetensorsFile] = []
        var location: [String: Int] = [:]
        for fileName in weightFiles {
            let file = try SafetensorsFile(contentsOf: directory.appendingPathComponent(fileName), residency: residency)
            for name in file.tensorNames {
                if let first = location[name] {
                    throw .duplicateTensor(name: name, firstPath: files[first].url.path, secondPath: file.url.path)
                }
                location[name] = files.count
            }
            files.append(file)
        }
        return (files, location)
    }
}
