import ArgumentParser

struct Calibrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Measure this machine's roofline (GEMM GFLOP/s, memory GB/s).")
    func run() async throws { throw ValidationError("calibrate is not implemented yet") }
}
