import COpenBLAS
import Foundation
@testable import Tensor
import Testing

// OpenBLAS 0.3.21 falls back to its generic (SSE3) kernels on CPU models it does not know; the
// command line then relaunches itself with OPENBLAS_CORETYPE naming the family the CPU's
// instruction sets call for (`BLAS.relaunchWithBetterCore`). These check that choice against
// the kernel's own view of the CPU (/proc/cpuinfo), and that it never overrides a user's choice
// or a family OpenBLAS picked itself.
@Suite("BLAS core choice")
struct BLASTests {
    /// The flags the kernel reports for the first CPU.
    private func cpuFlags() throws -> Set<Substring> {
        let info = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let line = try #require(info.split(separator: "\n").first { $0.hasPrefix("flags") })
        return Set(line.split(separator: ":")[1].split(separator: " "))
    }

    @Test("the OpenBLAS family and the vector width named for the CPU's instruction sets agree with /proc/cpuinfo")
    func familyForISA() throws {
        let flags = try cpuFlags()
        let avx512 = ["avx512f", "avx512dq", "avx512bw", "avx512vl"].allSatisfy { flags.contains(Substring($0)) }
        let avx2 = flags.contains("avx2") && flags.contains("fma")
        let expected: String? = avx2 ? (avx512 ? "SkylakeX" : "Haswell") : nil
        let got = BLAS.coreForInstructionSets
        #expect(got == expected, "CPUID says \(got ?? "nil"), /proc/cpuinfo flags say \(expected ?? "nil")")
        // The same CPUID answer picks the kernels' vector width (VectorISA).
        #expect(VectorISA.hardwareHasAVX512 == (avx2 && avx512), "CPUID says AVX-512: \(VectorISA.hardwareHasAVX512)")
    }

    @Test("a relaunch is asked for only when OpenBLAS fell back to its generic kernels and the user did not choose")
    func betterCoreOnlyOnFallback() {
        #expect(BLAS.betterCore(environment: ["OPENBLAS_CORETYPE": "Haswell"]) == nil)
        let isa = BLAS.coreForInstructionSets
        let expected = BLAS.coreName == BLAS.genericCore ? isa : nil
        #expect(BLAS.betterCore(environment: [:]) == expected,
                "OpenBLAS picked \(BLAS.coreName); the CPU's instruction sets call for \(isa ?? "nothing better")")
    }
}
