/// How the elements of a weight matrix are stored in memory, which fixes the bytes a matvec
/// streams per weight: the number the cost model and the decode roofline run on.
///
/// - `f32`: IEEE single, 4 bytes.
/// - `bf16`: the top half of a float32, 2 bytes; widened exactly by a 16-bit shift.
/// - `f16`: IEEE half, 2 bytes; widened exactly by F16C (`vcvtph2ps`).
/// - `q8_0`: llama.cpp's Q8_0 idea: each row is cut into blocks of 32 consecutive weights, and a
///   block stores 32 signed bytes q and one scale d; w ≈ d·q. TinySeek keeps the values and the
///   scales in two arrays (values [rows, cols] int8, scales [rows, ⌈cols/32⌉] as IEEE half), so
///   both stream contiguously and a row's values start aligned. 32 + 2 bytes per 32 weights =
///   34/32 = 1.0625 bytes per weight. A row whose length is not a multiple of 32 ends in a
///   shorter block with its own scale.
public enum WeightFormat: String, Sendable, CaseIterable, Codable {
    case f32
    case bf16
    case f16
    case q8_0

    /// Bytes per element as streamed by a matvec (Q8_0 includes its share of the scales).
    public var bytesPerElement: Double {
        switch self {
        case .f32: return 4
        case .bf16, .f16: return 2
        case .q8_0: return Double(Q8_0.blockSize + 2) / Double(Q8_0.blockSize)
        }
    }
}

/// Constants and the quantiser of the Q8_0 format (see `WeightFormat.q8_0`).
public enum Q8_0 {
    /// Weights per block: one scale for every 32 values along a row.
    public static let blockSize = 32

    /// The safetensors name of a Q8_0 matrix's scales: `<name>_scale`, so
    /// `model.layers.0.mlp.up_proj.weight` (I8, [out, in]) has its F16 scales, [out, ⌈in/32⌉], in
    /// `model.layers.0.mlp.up_proj.weight_scale`. Written by `tinyseek quantize`, read by the loader.
    public static func scaleName(for name: String) -> String { name + "_scale" }

    /// Blocks in a row of `cols` weights (the last one may be short).
    @inline(__always)
    public static func blocks(_ cols: Int) -> Int { (cols + blockSize - 1) / blockSize }

    /// Quantises one row: for each block, d = max|w| / 127 rounded to half precision, then
    /// q = round(w / d) clamped to [-127, 127]. Dividing by the *rounded* d (not the exact one)
    /// makes q the best integer for the scale actually stored; the clamp catches the case where
    /// rounding d down pushed max|w|/d just past 127. An all-zero block gets d = 0 and q = 0.
    /// Round-trip error per weight is at most d/2 = max|w|/254 (plus d's own half rounding).
    public static func quantize(row w: UnsafePointer<Float>, count cols: Int,
                                values q: UnsafeMutablePointer<Int8>, scales: UnsafeMutablePointer<UInt16>) {
        for b in 0..<blocks(cols) {
            let lo = b * blockSize, hi = min(lo + blockSize, cols)
            var amax: Float = 0
            for j in lo..<hi { amax = max(amax, abs(w[j])) }
            let d = Float16(amax / 127)
            scales[b] = d.bitPattern
            let scale = Float(d)
            let inverse: Float = scale > 0 ? 1 / scale : 0
            for j in lo..<hi {
                let v = (w[j] * inverse).rounded(.toNearestOrAwayFromZero)
                q[j] = Int8(max(-127, min(127, v)))
            }
        }
    }
}
