import CKernelSupport
import Foundation

/// The widest vector instructions the kernels use. The package is compiled for AVX2 + FMA (every
/// x86-64 CPU the project targets); kernels that gain from 512-bit vectors are written in C with
/// a per-function target (`rows_avx512.h`) and called only when the CPU has AVX-512.
///
/// Today that is the few-rows product (`WeightKernels.smallBatch`: batched decode, and experts
/// with a few tokens), where at 9-16 rows each weight meets 2·m FLOPs and with 8-lane FMAs the
/// product was compute-bound below the memory roof, and the F32 batch-1 matvec (fewer
/// instructions between the loads of a memory-bound stream).
///
/// The default is the best the CPU has; TINYSEEK_ISA=avx2 keeps the AVX2 kernels (to compare, or
/// to rule the wide ones out), and =avx512 on a CPU without it is refused by the CLI.
public enum VectorISA: String, Sendable, CaseIterable {
    case avx2
    case avx512

    /// Whether this CPU (and its OS) runs AVX-512 F/DQ/BW/VL code.
    public static let hardwareHasAVX512 = tinyseek_has_avx512() != 0

    /// The instruction set of this process, chosen once (`choose`).
    public static let current = choose(environment: ProcessInfo.processInfo.environment, hasAVX512: hardwareHasAVX512)

    /// The environment variable that overrides the default.
    public static let variable = "TINYSEEK_ISA"

    /// TINYSEEK_ISA when it names an instruction set the CPU has, else the widest it has.
    public static func choose(environment: [String: String], hasAVX512: Bool) -> VectorISA {
        let widest: VectorISA = hasAVX512 ? .avx512 : .avx2
        guard let asked = environment[variable].flatMap(VectorISA.init(rawValue:)) else { return widest }
        return asked == .avx512 && !hasAVX512 ? widest : asked
    }
}
