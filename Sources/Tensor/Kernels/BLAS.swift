import CKernelSupport
import COpenBLAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What the OpenBLAS behind `Kernels.gemm` runs with, for reports and calibration.
public enum BLAS {
    /// Threads one sgemm call runs on inside OpenBLAS: 1 once the worker pool exists (see
    /// `useCallerThreadOnly`); OPENBLAS_NUM_THREADS or all cores before that.
    public static var threadCount: Int { Int(openblas_get_num_threads()) }

    /// The kernel family OpenBLAS picked for this CPU at load time ("Haswell", "Zen",
    /// "SkylakeX", ...); OPENBLAS_CORETYPE overrides it.
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// OpenBLAS's generic x86-64 kernels (SSE3), what its runtime detection falls back to for a CPU
    /// model it does not know: Debian 12's 0.3.21 does so on Intel family 6 model 207 (Emerald
    /// Rapids), where its sgemm then ran at ~50 GFLOP/s on two cores against ~150 with its Haswell
    /// kernels and ~270 with SkylakeX.
    public static let genericCore = "Prescott"

    /// The kernel family to ask for instead when OpenBLAS fell back to `genericCore` on a CPU with
    /// AVX2 and FMA (the one its detection gives such a CPU when it knows the model), or nil: it
    /// did not fall back, the CPU has no AVX2, or OPENBLAS_CORETYPE already chose.
    public static func betterCore(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard environment["OPENBLAS_CORETYPE"] == nil, coreName == genericCore else { return nil }
        return coreForInstructionSets
    }

    /// The family OpenBLAS's detection gives a CPU with this one's instruction sets when it knows
    /// the model: "SkylakeX" with AVX-512 (F, DQ, BW, VL), "Haswell" with AVX2 and FMA, nil below
    /// that. Read from CPUID and XGETBV (which state the OS saves), not from the model number.
    public static var coreForInstructionSets: String? {
        VectorISA.hardwareHasAVX512 ? "SkylakeX" : tinyseek_has_avx2_fma() != 0 ? "Haswell" : nil
    }

    /// Set by `relaunchWithBetterCore` to the family OpenBLAS had picked, so reports can say so.
    public static let detectedCoreVariable = "TINYSEEK_OPENBLAS_DETECTED_CORE"

    /// Why the kernels are what they are, for reports: "Haswell" or, after a relaunch,
    /// "SkylakeX (OPENBLAS_CORETYPE set by tinyseek: OpenBLAS detected Prescott)".
    public static var coreDescription: String {
        guard let detected = ProcessInfo.processInfo.environment[detectedCoreVariable] else { return coreName }
        return "\(coreName) (OPENBLAS_CORETYPE set by tinyseek: OpenBLAS detected \(detected))"
    }

    /// OpenBLAS reads OPENBLAS_CORETYPE only when it loads, before `main`; so when `betterCore()`
    /// names a family, this sets the variable and replaces the process with a fresh copy of its
    /// executable (same arguments), which then loads OpenBLAS with it. A no-op otherwise, and if
    /// the exec fails (the generic kernels are slow, not wrong). For command-line entry points.
    public static func relaunchWithBetterCore() {
        guard let core = betterCore() else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv(detectedCoreVariable, coreName, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Still here: the exec failed; carry on with the generic kernels.
        unsetenv("OPENBLAS_CORETYPE")
        unsetenv(detectedCoreVariable)
    }

    /// Makes every sgemm run on the thread that calls it. TinySeek parallelises with its own
    /// `WorkerPool` (sgemm split over output columns, one OpenBLAS call per lane): OpenBLAS's
    /// pthread workers busy-wait for a while after each call (sched_yield loops of up to ~0.1 s),
    /// so letting them run as well would put two spinning threads on each of this machine's cores.
    static func useCallerThreadOnly() { openblas_set_num_threads(1) }
}
