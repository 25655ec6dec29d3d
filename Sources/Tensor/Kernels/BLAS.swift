import COpenBLAS

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

    /// Makes every sgemm run on the thread that calls it. TinySeek parallelises with its own
    /// `WorkerPool` (sgemm split over output columns, one OpenBLAS call per lane): OpenBLAS's
    /// pthread workers busy-wait for a while after each call (sched_yield loops of up to ~0.1 s),
    /// so letting them run as well would put two spinning threads on each of this machine's cores.
    static func useCallerThreadOnly() { openblas_set_num_threads(1) }
}
