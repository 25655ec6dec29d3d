import Foundation
import Tensor
import Testing

/// `SafetensorsWriter` round-trips through our reader: names, dtypes, shapes, bytes and metadata
/// come back, tensors are back to back (no holes, as the reference reader demands) and each starts
/// aligned for its element type, so F32 tensors map in place.
@Suite struct SafetensorsWriterTests {
    static func bytes(_ n: Int, seed: UInt8) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) } }

    @Test func roundTrip() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("writer-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        let tensors: [(String, DType, [Int])] = [
            ("a.f32", .f32, [3, 5]), ("b.bf16", .bf16, [7]), ("c.i8", .i8, [2, 9]), ("d.f16", .f16, [1, 3]),
            ("e.scalar", .f32, []), ("f.empty", .f32, [0, 4]), ("g.u8", .u8, [5]), ("h.f32", .f32, [2]),
        ]
        var writer = SafetensorsWriter(metadata: ["format": "pt", "note": "written by the test"])
        var expected: [String: [UInt8]] = [:]
        for (i, (name, dtype, shape)) in tensors.enumerated() {
            let data = Self.bytes(shape.reduce(1, *) * dtype.byteSize, seed: UInt8(i))
            expected[name] = data
            writer.add(name, dtype: dtype, shape: shape) { out in out.copyBytes(from: data) }
        }
        try writer.write(to: url)

        let file = try SafetensorsFile(contentsOf: url)
        #expect(file.metadata == ["format": "pt", "note": "written by the test"])
        #expect(Set(file.tensorNames) == Set(tensors.map(\.0)))
        var end: Int?
        for name in file.tensorNames {  // file order: by offset
            let info = try file.info(name)
            let spec = tensors.first { $0.0 == name }!
            #expect(info.dtype == spec.1 && info.shape == spec.2, "\(name)")
            #expect(Array(try file.rawBytes(name)) == expected[name], "\(name) bytes")
            #expect(info.byteOffset % info.dtype.byteSize == 0, "\(name) aligned")
            if let end, info.byteCount > 0 { #expect(info.byteOffset == end, "\(name) follows the previous tensor") }
            if info.byteCount > 0 { end = info.byteOffset + info.byteCount }
        }
        #expect(end == file.fileSize, "the data section ends with the last tensor")
        // The data section starts at a multiple of 8, and an F32 tensor is a view into the mapping.
        let headerLength = try FileHandle(forReadingFrom: url).read(upToCount: 8).map { Data($0) }
        let n = headerLength?.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } ?? 1
        #expect((8 + n) % 8 == 0)
        #expect(!(try file.tensor("a.f32")).storage.isOwned)
    }

    @Test func producersAreCalledOnceInStorageOrderWithExactSizes() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("writer-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        final class Log: @unchecked Sendable { var calls: [(String, Int)] = [] }
        let log = Log()
        var writer = SafetensorsWriter()
        for (name, dtype, shape) in [("z", DType.i8, [10]), ("y", .f16, [4]), ("x", .f32, [3]), ("w", .f32, [1])] {
            writer.add(name, dtype: dtype, shape: shape) { out in
                log.calls.append((name, out.count))
                out.initializeMemory(as: UInt8.self, repeating: 1)
            }
        }
        try writer.write(to: url)
        #expect(log.calls.map(\.0) == ["w", "x", "y", "z"])   // 4-byte, then 2-byte, then 1-byte; by name within
        #expect(log.calls.map(\.1) == [4, 12, 8, 10])
    }
}
