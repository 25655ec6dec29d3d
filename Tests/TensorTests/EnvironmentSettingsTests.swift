import Foundation
@testable import Tensor
import Testing

@Suite("Environment settings")
struct EnvironmentSettingsTests {
    @Test("values the engine would ignore are refused, naming the variable; good ones and none pass")
    func validate() throws {
        try EnvironmentSettings.validate([:])
        try EnvironmentSettings.validate(["TINYSEEK_THREADS": "2", "TINYSEEK_PREFETCH": "line"])
        try EnvironmentSettings.validate(["TINYSEEK_PREFETCH": "page"])
        for (variable, value) in [("TINYSEEK_THREADS", "0"), ("TINYSEEK_THREADS", "two"), ("TINYSEEK_PREFETCH", "LINE")] {
            #expect(throws: EnvironmentSettings.InvalidValue.self, "\(variable)=\(value)") {
                try EnvironmentSettings.validate([variable: value])
            }
        }
        let error = EnvironmentSettings.InvalidValue(variable: "TINYSEEK_PREFETCH", value: "x", expected: "\"page\" or \"line\"")
        #expect(throws: error) { try EnvironmentSettings.validate(["TINYSEEK_PREFETCH": "x"]) }
        #expect(error.description == "TINYSEEK_PREFETCH=\"x\" is not valid: expected \"page\" or \"line\"")
    }

    @Test("TINYSEEK_ISA: avx2 always, avx512 only on a CPU that has it; anything else is refused")
    func instructionSet() throws {
        try EnvironmentSettings.validate(["TINYSEEK_ISA": "avx2"], hasAVX512: false)
        try EnvironmentSettings.validate(["TINYSEEK_ISA": "avx512"], hasAVX512: true)
        let missing = EnvironmentSettings.InvalidValue(variable: "TINYSEEK_ISA", value: "avx512",
                                                       expected: "\"avx2\" (this CPU has no AVX-512)")
        #expect(throws: missing) { try EnvironmentSettings.validate(["TINYSEEK_ISA": "avx512"], hasAVX512: false) }
        let unknown = EnvironmentSettings.InvalidValue(variable: "TINYSEEK_ISA", value: "sse", expected: "\"avx2\" or \"avx512\"")
        #expect(throws: unknown) { try EnvironmentSettings.validate(["TINYSEEK_ISA": "sse"], hasAVX512: true) }
    }

    @Test("the kernels use the widest instruction set the CPU has unless TINYSEEK_ISA narrows it")
    func chooseInstructionSet() {
        #expect(VectorISA.choose(environment: [:], hasAVX512: true) == .avx512)
        #expect(VectorISA.choose(environment: [:], hasAVX512: false) == .avx2)
        #expect(VectorISA.choose(environment: ["TINYSEEK_ISA": "avx2"], hasAVX512: true) == .avx2)
        // Never an instruction set the CPU lacks, whatever the variable says (the CLI refuses it first).
        #expect(VectorISA.choose(environment: ["TINYSEEK_ISA": "avx512"], hasAVX512: false) == .avx2)
        #expect(VectorISA.current == VectorISA.choose(environment: ProcessInfo.processInfo.environment,
                                                      hasAVX512: VectorISA.hardwareHasAVX512))
    }
}
