import Tensor

extension SafetensorsCheckpoint: WeightSource {
    public func shape(of name: String) throws -> [Int] { try info(name).shape }
    public func float32(_ name: String) throws -> Tensor { try tensor(name) }
}
