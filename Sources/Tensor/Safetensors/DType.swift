/// The element type of a tensor stored in a safetensors file, spelled as in the header's
/// `"dtype"` field.
///
/// The list is every whole-byte type the reference `safetensors` library writes, so a file
/// saved by PyTorch always opens and its tensors can be listed and inspected even when the
/// engine cannot compute with them. A string outside this list is rejected at open time
/// (`SafetensorsError.unknownDType`) because without a byte size the file cannot be validated.
/// Sub-byte types (`F4`, `F6_*`) are deliberately absent: `byteSize` could not describe them.
public enum DType: String, Sendable, CaseIterable {
    case f64 = "F64"
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case i64 = "I64"
    case i32 = "I32"
    case i16 = "I16"
    case i8 = "I8"
    case u64 = "U64"
    case u32 = "U32"
    case u16 = "U16"
    case u8 = "U8"
    case bool = "BOOL"
    case f8E4M3 = "F8_E4M3"
    case f8E4M3FNUZ = "F8_E4M3FNUZ"
    case f8E5M2 = "F8_E5M2"
    case f8E5M2FNUZ = "F8_E5M2FNUZ"
    case f8E8M0 = "F8_E8M0"
    /// Complex float32: two F32 per element.
    case c64 = "C64"

    /// Bytes per element; with the shape it fixes a tensor's byte count, which the reader
    /// checks against the header's `data_offsets`.
    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64, .c64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .i8, .u8, .bool, .f8E4M3, .f8E4M3FNUZ, .f8E5M2, .f8E5M2FNUZ, .f8E8M0: return 1
        }
    }
}
