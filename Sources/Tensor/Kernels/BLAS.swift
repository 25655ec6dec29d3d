import COpenBLAS

/// What the OpenBLAS behind `Kernels.gemm` runs with, for reports and calibration.
public enum BLAS {
    /// Threads sgemm runs on: OPENBLAS_NUM_THREADS (or OMP_NUM_THREADS) if set, else all cores.
    public static var threadCount: Int { Int(openblas_get_num_threads()) }

    /// The kernel family OpenBLAS picked for this CPU at load time ("Haswell", "Zen",
    /// "SkylakeX", ...); OPENBLAS_CORETYPE overrides it.
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }
}
