import Foundation
import Testing
import Tensor

// Golden fixtures from Tools/make_safetensors_fixtures.py (the reference `safetensors` library
// and huggingface_hub's sharding), then hand-built malformed files that must each be rejected
// with the right error, then a seeded mutation loop that must never trap.

private let fixtures = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()
    .appendingPathComponent("Fixtures/safetensors")

// MARK: - Golden fixtures

private struct ExpectedTensor: Decodable {
    let dtype: String
    let shape: [Int]
    /// float32 values as torch computes them, written as doubles (exact).
    let values: [Double]
}

private struct MixedExpectations: Decodable {
    let metadata: [String: String]
    let tensors: [String: ExpectedTensor]
}

private struct ShardedExpectations: Decodable {
    let totalSize: Int
    let tensors: [String: ExpectedTensor]
    enum CodingKeys: String, CodingKey { case totalSize = "total_size", tensors }
}

private func load<T: Decodable>(_ type: T.Type, _ name: String) throws -> T {
    try JSONDecoder().decode(type, from: Data(contentsOf: fixtures.appendingPathComponent(name)))
}

/// Checks shape and bit-exact values (so -0.0 and subnormals count); on a mismatch the message
/// gives the largest absolute difference.
private func expectMatches(_ tensor: Tensor, _ expected: ExpectedTensor, _ name: String,
                           sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(tensor.shape == expected.shape, "\(name) shape", sourceLocation: sourceLocation)
    let actual = tensor.scalars
    let wanted = expected.values.map { Float($0) }
    guard actual.count == wanted.count else {
        Issue.record("\(name): \(actual.count) values, expected \(wanted.count)", sourceLocation: sourceLocation)
        return
    }
    let bitExact = zip(actual, wanted).allSatisfy { $0.bitPattern == $1.bitPattern }
    let maxDifference = zip(actual, wanted).map { abs($0 - $1) }.max() ?? 0
    #expect(bitExact, "\(name) differs from torch: max |difference| = \(maxDifference)", sourceLocation: sourceLocation)
}

@Suite("safetensors fixtures")
struct SafetensorsFixtureTests {
    let mixedURL = fixtures.appendingPathComponent("mixed.safetensors")

    @Test(arguments: WeightResidency.allCases)
    func everyTensorMatchesTorch(residency: WeightResidency) throws {
        let expected = try load(MixedExpectations.self, "mixed.expected.json")
        let file = try SafetensorsFile(contentsOf: mixedURL, residency: residency)
        #expect(expected.tensors.count == 17)
        for (name, tensorExpectation) in expected.tensors {
            #expect(try file.info(name).dtype.rawValue == tensorExpectation.dtype)
            expectMatches(try file.tensor(name), tensorExpectation, name)
        }
    }

    @Test func metadataAndFileOrder() throws {
        let expected = try load(MixedExpectations.self, "mixed.expected.json")
        let file = try SafetensorsFile(contentsOf: mixedURL)
        #expect(file.metadata == expected.metadata)
        #expect(Set(file.tensorNames) == Set(expected.tensors.keys).union(["i32.ids"]))
        let offsets = try file.tensorNames.map { try file.info($0).byteOffset }
        #expect(offsets == offsets.sorted(), "tensorNames must follow the data offsets")
    }

    @Test func float32IsAZeroCopyViewAndHalvesAreConverted() throws {
        let file = try SafetensorsFile(contentsOf: mixedURL)
        let matrix = try file.tensor("f32.matrix")
        #expect(!matrix.storage.isOwned)
        let raw = try file.rawBytes("f32.matrix")
        #expect(UnsafeRawPointer(matrix.pointer) == raw.baseAddress)
        #expect(try file.tensor("f16.matrix").storage.isOwned)
        #expect(try file.tensor("bf16.matrix").storage.isOwned)
    }

    @Test func infoDescribesTheStoredBytes() throws {
        let file = try SafetensorsFile(contentsOf: mixedURL)
        let info = try file.info("f16.cube")
        #expect(info.dtype == .f16 && info.shape == [2, 3, 4])
        #expect(info.byteCount == 48 && info.elementCount == 24)
        #expect(try file.rawBytes("f16.cube").count == 48)
        let scalar = try file.tensor("f32.scalar")
        #expect(scalar.shape == [] && scalar.count == 1)
        #expect(try file.tensor("bf16.empty").count == 0)
    }

    @Test func viewKeepsTheMappingAlive() throws {
        var file: SafetensorsFile? = try SafetensorsFile(contentsOf: mixedURL)
        let cube = try #require(file).tensor("f32.cube")
        let before = cube.scalars
        file = nil
        #expect(cube.scalars == before)
    }

    @Test func writesThroughAViewNeverReachTheFile() throws {
        let dir = try TemporaryDirectory()
        let copy = dir.url.appendingPathComponent("copy.safetensors")
        try FileManager.default.copyItem(at: mixedURL, to: copy)
        let original = try Data(contentsOf: copy)
        let file = try SafetensorsFile(contentsOf: copy)
        let view = try file.tensor("f32.matrix")
        let value = view[0]
        view[0] = 12345  // lands in a private copy-on-write page
        #expect(try file.tensor("f32.matrix")[0] == 12345)
        #expect(try SafetensorsFile(contentsOf: copy).tensor("f32.matrix")[0] == value)
        #expect(try Data(contentsOf: copy) == original)
    }

    @Test func otherDTypesAreListedButNotLoaded() throws {
        let file = try SafetensorsFile(contentsOf: mixedURL)
        #expect(throws: SafetensorsError.unsupportedDType(path: mixedURL.path, tensor: "i32.ids", dtype: .i32)) {
            try file.tensor("i32.ids")
        }
        let ids = try file.rawBytes("i32.ids")
        #expect((0..<4).map { ids.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self) } == [3, 1, 4, 1])
        #expect(throws: SafetensorsError.tensorNotFound(path: mixedURL.path, name: "nope")) {
            try file.tensor("nope")
        }
    }

    @Test func shardedCheckpointFollowsItsIndex() throws {
        let expected = try load(ShardedExpectations.self, "sharded.expected.json")
        let checkpoint = try SafetensorsCheckpoint(directory: fixtures.appendingPathComponent("sharded"))
        #expect(checkpoint.files.count == 2)
        #expect(checkpoint.tensorNames == expected.tensors.keys.sorted())
        #expect(checkpoint.totalBytes == expected.totalSize)
        for (name, tensorExpectation) in expected.tensors {
            #expect(checkpoint.contains(name))
            #expect(try checkpoint.dtype(of: name).rawValue == tensorExpectation.dtype)
            expectMatches(try checkpoint.tensor(name), tensorExpectation, name)
        }
        #expect(!checkpoint.contains("model.norm.weight"))
        #expect(throws: SafetensorsError.tensorNotFound(path: checkpoint.directory.path, name: "model.norm.weight")) {
            try checkpoint.tensor("model.norm.weight")
        }
    }

    @Test func folderWithoutIndexOpensEveryFile() throws {
        let dir = try TemporaryDirectory()
        let shards = fixtures.appendingPathComponent("sharded")
        for shard in ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"] {
            try FileManager.default.copyItem(at: shards.appendingPathComponent(shard),
                                             to: dir.url.appendingPathComponent(shard))
        }
        let checkpoint = try SafetensorsCheckpoint(directory: dir.url)
        #expect(checkpoint.tensorNames.count == 4)
        #expect(try checkpoint.tensor("lm_head.weight").shape == [4, 3])
    }

    /// A hand-written file may put tensors at odd offsets; typed pointers need alignment, so the
    /// reader must copy instead of viewing (F32) or converting in place (F16).
    @Test func misalignedTensorsAreCopied() throws {
        let dir = try TemporaryDirectory()
        let header = #"{"pad":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"#
            + #""h":{"dtype":"F16","shape":[2],"data_offsets":[1,5]},"#
            + #""w":{"dtype":"F32","shape":[2],"data_offsets":[5,13]}}"#
        let data = [0] + le(UInt16(0x3C00)) + le(UInt16(0xC000)) + le(Float(1.5).bitPattern) + le(Float(-0.25).bitPattern)
        let url = try dir.write("odd.safetensors", safetensors(header: header, data: data))
        let file = try SafetensorsFile(contentsOf: url)
        let w = try file.tensor("w")
        #expect(w.storage.isOwned && w.scalars == [1.5, -0.25])
        #expect(try file.tensor("h").scalars == [1, -2])
    }
}

// MARK: - Malformed files

/// One hand-built file and the error opening it must throw.
struct MalformedSafetensorsFile: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    /// Whether `error` is the right one for the file written at `path`.
    let matches: @Sendable (_ path: String, _ error: SafetensorsError) -> Bool
    var testDescription: String { name }

    /// A file whose header and data are `header` and `data`, and the exact error expected.
    init(_ name: String, header: String, data: [UInt8] = [], _ expected: @escaping @Sendable (String) -> SafetensorsError) {
        self.init(name, bytes: safetensors(header: header, data: data)) { path, error in error == expected(path) }
    }

    init(_ name: String, bytes: [UInt8], matches: @escaping @Sendable (String, SafetensorsError) -> Bool) {
        self.name = name
        self.bytes = bytes
        self.matches = matches
    }

    /// A file whose header must be rejected as `.invalidHeaderEntry` for `tensor`.
    static func badEntry(_ name: String, _ header: String, tensor: String = "w") -> MalformedSafetensorsFile {
        MalformedSafetensorsFile(name, bytes: safetensors(header: header, data: [UInt8](repeating: 0, count: 8))) { path, error in
            if case .invalidHeaderEntry(path, tensor, _) = error { true } else { false }
        }
    }

    static func badJSON(_ name: String, _ headerBytes: [UInt8]) -> MalformedSafetensorsFile {
        MalformedSafetensorsFile(name, bytes: le(UInt64(headerBytes.count)) + headerBytes) { path, error in
            if case .invalidJSON(path, _) = error { true } else { false }
        }
    }

    static let all: [MalformedSafetensorsFile] = [
        MalformedSafetensorsFile("empty", bytes: []) { $1 == .fileTooSmall(path: $0, size: 0) },
        MalformedSafetensorsFile("four-bytes", bytes: [1, 0, 0, 0]) { $1 == .fileTooSmall(path: $0, size: 4) },
        MalformedSafetensorsFile("header-past-end", bytes: le(UInt64(100)) + Array("{}".utf8)) {
            $1 == .headerTooLarge(path: $0, headerLength: 100, fileSize: 10)
        },
        MalformedSafetensorsFile("header-2^63", bytes: le(UInt64(1) << 63) + Array("{}".utf8)) {
            $1 == .headerTooLarge(path: $0, headerLength: 1 << 63, fileSize: 10)
        },
        badJSON("not-json", Array(#"{"w": {"dtype": "F32""#.utf8)),
        badJSON("json-array", Array("[1, 2]".utf8)),
        badJSON("empty-header", []),
        badJSON("not-utf8", [0x7B, 0xFF, 0xFE, 0x7D]),
        badJSON("deeply-nested", Array((String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)).utf8)),
        badEntry("entry-not-object", #"{"w": 3}"#),
        badEntry("missing-dtype", #"{"w":{"shape":[1],"data_offsets":[0,4]}}"#),
        badEntry("dtype-not-string", #"{"w":{"dtype":5,"shape":[1],"data_offsets":[0,4]}}"#),
        badEntry("missing-shape", #"{"w":{"dtype":"F32","data_offsets":[0,4]}}"#),
        badEntry("negative-dim", #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#),
        badEntry("boolean-dim", #"{"w":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}"#),
        badEntry("fractional-dim", #"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#),
        badEntry("float-literal-dim", #"{"w":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}"#),
        badEntry("dim-past-uint64", #"{"w":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]}}"#),
        badEntry("dim-past-int64", #"{"w":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,4]}}"#),
        badEntry("missing-offsets", #"{"w":{"dtype":"F32","shape":[1]}}"#),
        badEntry("three-offsets", #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#),
        badEntry("string-offsets", #"{"w":{"dtype":"F32","shape":[1],"data_offsets":["0","4"]}}"#),
        badEntry("negative-offset", #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#),
        badEntry("begin-after-end", #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#),
        badEntry("metadata-not-strings", #"{"__metadata__":{"n":1}}"#, tensor: "__metadata__"),
        MalformedSafetensorsFile("unknown-dtype", header: #"{"w":{"dtype":"F13","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]) {
            .unknownDType(path: $0, tensor: "w", dtype: "F13")
        },
        MalformedSafetensorsFile("shape-overflow", header: #"{"w":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,4]}}"#,
                      data: [0, 0, 0, 0]) { .shapeOverflow(path: $0, tensor: "w") },
        MalformedSafetensorsFile("byte-count-overflow", header: #"{"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,4]}}"#,
                      data: [0, 0, 0, 0]) { .shapeOverflow(path: $0, tensor: "w") },
        MalformedSafetensorsFile("offsets-out-of-range", header: #"{"w":{"dtype":"F32","shape":[100],"data_offsets":[0,400]}}"#,
                      data: [0, 0, 0, 0]) { .offsetsOutOfRange(path: $0, tensor: "w", end: 400, dataSize: 4) },
        MalformedSafetensorsFile("size-mismatch", header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#,
                      data: [UInt8](repeating: 0, count: 8)) {
            .sizeMismatch(path: $0, tensor: "w", expectedBytes: 8, actualBytes: 4)
        },
        MalformedSafetensorsFile("overlap", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                      data: [UInt8](repeating: 0, count: 12)) { .overlappingTensors(path: $0, first: "a", second: "b") },
        MalformedSafetensorsFile("same-range", header: #"{"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                      data: [0, 0, 0, 0]) { .overlappingTensors(path: $0, first: "a", second: "b") },
    ]
}

@Suite("safetensors malformed input")
struct SafetensorsMalformedTests {
    /// Mapped or read into memory (`--no-mmap`), a malformed file is the same typed error.
    @Test(arguments: MalformedSafetensorsFile.all, WeightResidency.allCases)
    func isRejected(_ file: MalformedSafetensorsFile, residency: WeightResidency) throws {
        let dir = try TemporaryDirectory()
        let url = try dir.write("\(file.name).safetensors", file.bytes)
        let error = #expect(throws: SafetensorsError.self) { try SafetensorsFile(contentsOf: url, residency: residency) }
        guard let error else { return }
        #expect(file.matches(url.path, error), "got: \(error)")
        #expect(error.description.contains("\(file.name).safetensors"), "description must name the file: \(error)")
    }

    /// The 100 MB cap: a sparse file is big enough to hold the declared header, which must
    /// still be refused before anything tries to parse it.
    @Test func headerOverTheSanityLimit() throws {
        let dir = try TemporaryDirectory()
        let url = try dir.write("huge-header.safetensors", le(UInt64(150_000_000)))
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: 200_000_000)
        try handle.close()
        #expect(throws: SafetensorsError.headerTooLarge(path: url.path, headerLength: 150_000_000, fileSize: 200_000_000)) {
            try SafetensorsFile(contentsOf: url)
        }
    }

    @Test func missingOrUnreadablePaths() throws {
        let dir = try TemporaryDirectory()
        let missing = dir.url.appendingPathComponent("absent.safetensors")
        let directory = dir.url.appendingPathComponent("folder.safetensors")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
        for url in [missing, directory] {
            for residency in WeightResidency.allCases {
                let error = #expect(throws: SafetensorsError.self) { try SafetensorsFile(contentsOf: url, residency: residency) }
                if case .cannotOpen(url.path, _)? = error {} else { Issue.record("got \(String(describing: error))") }
            }
            let error = #expect(throws: SafetensorsError.self) { try SafetensorsFile(contentsOf: url) }
            if case .cannotOpen(url.path, _)? = error {} else { Issue.record("got \(String(describing: error))") }
        }
    }

    // MARK: Checkpoint folders

    /// A folder holding one valid shard with tensor `w`, and `index` (if any) as the index file.
    private func folder(index: String?) throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory()
        _ = try dir.write("model-00001-of-00002.safetensors", validFile(tensor: "w"))
        if let index { _ = try dir.write(SafetensorsCheckpoint.indexFileName, Array(index.utf8)) }
        return dir
    }

    @Test func indexNamingAMissingShard() throws {
        let dir = try folder(index: #"{"weight_map":{"w":"model-00001-of-00002.safetensors","v":"model-00002-of-00002.safetensors"}}"#)
        let indexPath = dir.url.appendingPathComponent(SafetensorsCheckpoint.indexFileName).path
        let expected = SafetensorsError.missingShard(path: indexPath, shard: "model-00002-of-00002.safetensors")
        #expect(throws: expected) { try SafetensorsCheckpoint(directory: dir.url) }
        #expect(expected.description.contains("model.safetensors.index.json"))
    }

    @Test(arguments: [
        "not json at all",
        "[1, 2]",
        #"{"metadata": {}}"#,
        #"{"weight_map": {}}"#,
        #"{"weight_map": {"w": 3}}"#,
        #"{"weight_map": {"w": "../model-00001-of-00002.safetensors"}}"#,
    ])
    func invalidIndex(_ index: String) throws {
        let dir = try folder(index: index)
        let indexPath = dir.url.appendingPathComponent(SafetensorsCheckpoint.indexFileName).path
        let error = #expect(throws: SafetensorsError.self) { try SafetensorsCheckpoint(directory: dir.url) }
        if case .invalidIndex(indexPath, _)? = error {} else { Issue.record("got \(String(describing: error))") }
        #expect(error?.description.contains("model.safetensors.index.json") == true)
    }

    @Test func indexMappingATensorTheShardLacks() throws {
        let dir = try folder(index: #"{"weight_map":{"w":"model-00001-of-00002.safetensors","v":"model-00001-of-00002.safetensors"}}"#)
        let shardPath = dir.url.appendingPathComponent("model-00001-of-00002.safetensors").path
        #expect(throws: SafetensorsError.tensorNotFound(path: shardPath, name: "v")) {
            try SafetensorsCheckpoint(directory: dir.url)
        }
    }

    @Test func duplicateTensorAcrossFiles() throws {
        let dir = try TemporaryDirectory()
        let first = try dir.write("a.safetensors", validFile(tensor: "w"))
        let second = try dir.write("b.safetensors", validFile(tensor: "w"))
        let expected = SafetensorsError.duplicateTensor(name: "w", firstPath: first.path, secondPath: second.path)
        #expect(throws: expected) { try SafetensorsCheckpoint(directory: dir.url) }
        #expect(expected.description.contains("a.safetensors") && expected.description.contains("b.safetensors"))
    }

    @Test func emptyAndMissingFolders() throws {
        let dir = try TemporaryDirectory()
        _ = try dir.write("notes.txt", Array("not weights".utf8))
        #expect(throws: SafetensorsError.noWeights(path: dir.url.path)) { try SafetensorsCheckpoint(directory: dir.url) }
        #expect(SafetensorsError.noWeights(path: dir.url.path).description.contains(dir.url.lastPathComponent))
        let missing = dir.url.appendingPathComponent("absent")
        let error = #expect(throws: SafetensorsError.self) { try SafetensorsCheckpoint(directory: missing) }
        if case .cannotOpen(missing.path, _)? = error {} else { Issue.record("got \(String(describing: error))") }
    }

    /// Seeded mutations of a real file's header region (bit flips, JSON-ish bytes, digit edits
    /// that keep the JSON valid but move offsets and shapes, truncations, new header lengths).
    /// Each must open and load every tensor, or throw; a trap would kill the test process.
    @Test func mutatedHeadersNeverTrap() throws {
        let original = try [UInt8](Data(contentsOf: fixtures.appendingPathComponent("mixed.safetensors")))
        let headerEnd = 8 + original.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        let dir = try TemporaryDirectory()
        var rng = SplitMix64(seed: 0x5AFE_7E45)
        var rejected = 0
        let mutations = 300
        for index in 0..<mutations {
            var bytes = original
            let at = Int.random(in: 0..<headerEnd, using: &rng)
            switch index % 5 {
            case 0: bytes[at] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
            case 1: bytes[at] = Array(#"{}[]":,-.e0123456789 "#.utf8).randomElement(using: &rng) ?? 0
            case 2:
                let digits = bytes.indices.filter { $0 >= 8 && $0 < headerEnd && (48...57).contains(bytes[$0]) }
                if let digit = digits.randomElement(using: &rng) { bytes[digit] = UInt8.random(in: 48...57, using: &rng) }
            case 3: bytes.removeLast(Int.random(in: 1...bytes.count, using: &rng))
            default:
                let length = [UInt64.random(in: 0...UInt64(bytes.count), using: &rng), rng.next()].randomElement(using: &rng) ?? 0
                bytes.replaceSubrange(0..<8, with: le(length))
            }
            let url = try dir.write("mutant-\(index).safetensors", bytes)
            let file: SafetensorsFile
            do {
                file = try SafetensorsFile(contentsOf: url)
            } catch {
                rejected += 1
                continue
            }
            // Once open, every listed tensor must load (touching every element) or be of a dtype
            // the F32 loader does not take: all other checks happened at open time.
            for name in file.tensorNames {
                do {
                    _ = try file.tensor(name).scalars.reduce(0, +)
                } catch {
                    if case .unsupportedDType = error {} else { Issue.record("mutant \(index), \(name): \(error)") }
                }
            }
        }
        #expect(rejected > mutations / 3, "mutations should mostly break the header")
    }
}

// MARK: - Building files

/// A safetensors file: little-endian header length, `header` padded with spaces to a multiple
/// of 8 as the reference writer does, then `data`.
private func safetensors(header: String, data: [UInt8]) -> [UInt8] {
    var json = Array(header.utf8)
    json += [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8)
    return le(UInt64(json.count)) + json + data
}

/// A valid file holding one F32 tensor `tensor` = [1, 2].
private func validFile(tensor: String) -> [UInt8] {
    safetensors(header: #"{"\#(tensor)":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                data: le(Float(1).bitPattern) + le(Float(2).bitPattern))
}

private func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.littleEndian) { Array($0) }
}

/// A fresh directory under the system temporary directory, removed when released.
private final class TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("safetensors-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ bytes: [UInt8]) throws -> URL {
        let file = url.appendingPathComponent(name)
        try Data(bytes).write(to: file)
        return file
    }

    deinit { try? FileManager.default.removeItem(at: url) }
}
