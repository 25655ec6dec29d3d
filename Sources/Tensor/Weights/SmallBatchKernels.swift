import CKernelSupport

/// y[m, rows] = x[m, cols]·Wᵀ for a few rows of activations (2 ≤ m ≤ `WeightKernels.smallBatch`)
/// straight from the stored weights: batched decode, where m is the number of sequences, and
/// experts with a few tokens.
///
/// Decoding tiles of W to float32 for sgemm (the path for large m) costs a pass over the tile
/// per call, which for a handful of rows is slower than the product itself (measured: a BF16
/// 256×1024 product took twice as long at m = 2 as at m = 1, and 8× at m = 16), and for F32
/// OpenBLAS's packing of the weights took two thirds of sgemm's time at 16 rows. Here each weight
/// is widened once in registers and used for several rows of x: two rows of W against six (AVX2)
/// or eight (AVX-512) rows of x per pass, every line of W prefetched into L2. The kernels are C
/// with a per-function target (rows_avx2.h, rows_avx512.h; `VectorISA` picks one), their
/// measurements in those headers. (The Swift AVX2 kernel they replaced, with sgemm or decoded
/// tiles for F32 and Q8_0 at 9-16 rows, was 1.1-1.25× slower at 4 and 16 sequences.)
extension WeightKernels {
    /// Largest m that takes this path rather than sgemm (F32) or decoded tiles + sgemm.
    static let smallBatch = 16

    static func smallBatch(_ w: WeightView, rows: Range<Int>, m: Int, x: UnsafePointer<Float>, ldx: Int,
                           y: UnsafeMutablePointer<Float>, ldy: Int, isa: VectorISA = .current) {
        guard !rows.isEmpty, m > 0 else { return }
        let format: Int32, base: UnsafeRawPointer, scales: UnsafePointer<UInt16>?, elementBytes: Int
        switch w.storage {
        case let .f32(p): (format, base, scales, elementBytes) = (Int32(TINYSEEK_F32), UnsafeRawPointer(p), nil, 4)
        case let .bf16(p): (format, base, scales, elementBytes) = (Int32(TINYSEEK_BF16), UnsafeRawPointer(p), nil, 2)
        case let .f16(p): (format, base, scales, elementBytes) = (Int32(TINYSEEK_F16), UnsafeRawPointer(p), nil, 2)
        case let .q8_0(v, s): (format, base, scales, elementBytes) = (Int32(TINYSEEK_Q8_0), UnsafeRawPointer(v), s, 1)
        }
        // Every line as far ahead as the float matvec prefetches (`StreamPrefetch.lineAheadBytes`),
        // and at least two rows on: the kernels stream two adjacent rows, so anything nearer is
        // being read already. Never past the matrix (as the matvec).
        let ahead = max(StreamPrefetch.lineAheadBytes(elementBytes: max(2, elementBytes)), 2 * w.cols * elementBytes)
        let limit = w.rows * w.cols * elementBytes
        if isa == .avx512 && ldy < Int(Int32.max) / 8 {   // the AVX-512 kernel scatters into y with 32-bit offsets
            tinyseek_rows_avx512(base, scales, w.cols, format, rows.lowerBound, rows.upperBound, x, ldx, m, y, ldy, ahead, limit)
        } else {
            tinyseek_rows_avx2(base, scales, w.cols, format, rows.lowerBound, rows.upperBound, x, ldx, m, y, ldy, ahead, limit)
        }
    }
}
