/// Where one tensor lives in a safetensors file and how to read it, as validated at open time.
///
/// Everything a loader needs to decide what to do with a weight (check its shape against the
/// config, pick an F32 view or an F16/BF16 conversion, account its bytes in the cost model)
/// without touching the data.
public struct TensorInfo: Sendable, Equatable {
    /// The checkpoint name, e.g. `model.layers.0.self_attn.kv_a_proj_with_mqa.weight`.
    public let name: String
    public let dtype: DType
    /// Row-major dimensions; `[]` is a scalar (one element).
    public let shape: [Int]
    /// Offset of the first byte from the start of the file (not of the data section), so it
    /// can be used directly with the mapping or with `pread`.
    public let byteOffset: Int
    /// Bytes of data: the product of `shape` times `dtype.byteSize` (checked at open time).
    public let byteCount: Int

    /// The number of elements, the product of `shape`.
    public var elementCount: Int { byteCount / dtype.byteSize }
}
