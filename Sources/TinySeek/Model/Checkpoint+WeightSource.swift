import Tensor

extension SafetensorsCheckpoint: WeightSource {
    public func shape(of name: String) throws -> [Int] { try info(name).shape }
    public func float32(_ name: String) throws -> Tensor { try tensor(name) }

    /// F32, BF16 and F16 matrices point into the mapping; an I8 tensor is Q8_0 values whose F16
    /// scales are the tensor `Q8_0.scaleName(for: name)` (see `ModelWeights` for the convention).
    /// The matrix keeps this checkpoint (and so its mappings) alive.
    public func matrix(_ name: String) throws -> WeightMatrix {
        let info = try self.info(name)
        guard info.shape.count == 2 else {
            throw ModelError.weights("tensor '\(name)' has shape \(info.shape); a linear weight is [out, in]")
        }
        let rows = info.shape[0], cols = info.shape[1]
        let bytes = try rawBytes(name)
        guard let base = bytes.baseAddress ?? (info.byteCount == 0 ? UnsafeRawPointer(bitPattern: 64) : nil) else {
            throw ModelError.weights("tensor '\(name)' has no data")
        }
        switch info.dtype {
        case .f32: return WeightMatrix(format: .f32, rows: rows, cols: cols, bytes: base, owner: self)
        case .bf16: return WeightMatrix(format: .bf16, rows: rows, cols: cols, bytes: base, owner: self)
        case .f16: return WeightMatrix(format: .f16, rows: rows, cols: cols, bytes: base, owner: self)
        case .i8:
            let scaleName = Q8_0.scaleName(for: name)
            guard contains(scaleName) else {
                throw ModelError.weights("tensor '\(name)' is I8 (Q8_0 values) but its scales '\(scaleName)' are missing")
            }
            let scaleInfo = try self.info(scaleName)
            guard scaleInfo.dtype == .f16, scaleInfo.shape == [rows, Q8_0.blocks(cols)] else {
                throw ModelError.weights("Q8_0 scales '\(scaleName)' are \(scaleInfo.dtype.rawValue) \(scaleInfo.shape); "
                                         + "expected F16 [\(rows), \(Q8_0.blocks(cols))]")
            }
            let scales = try rawBytes(scaleName)
            guard let scaleBase = scales.baseAddress ?? (scaleInfo.byteCount == 0 ? UnsafeRawPointer(bitPattern: 64) : nil) else {
                throw ModelError.weights("Q8_0 scales '\(scaleName)' have no data")
            }
            return WeightMatrix(format: .q8_0, rows: rows, cols: cols, bytes: base, scales: scaleBase,
                                owner: self)
        default:
            throw ModelError.weights("tensor '\(name)' is \(info.dtype.rawValue); expected F32, BF16, F16 or I8 (Q8_0) for a linear weight")
        }
    }
}
