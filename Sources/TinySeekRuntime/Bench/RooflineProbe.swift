import Foundation
import Tensor

/// Short measurements of the roof, taken right next to each timed repetition.
///
/// On a shared machine the bandwidth other tenants leave over changes within seconds (this one
/// has measured anywhere from 25 to 65 GB/s minutes apart), so a roof measured once, before or
/// after the tests, says little about the conditions a given repetition ran in. Each tg
/// repetition is bracketed by two read measurements and each pp repetition preceded by an sgemm
/// one; the repetition's roofline fraction uses those. The measurements are the calibration's own
/// (`Calibration.streamSum` over all cores, `Kernels.gemm` of a 1024³ product), made quick: a
/// few milliseconds each.
final class RooflineProbe {
    /// Streamed by the read probe: 4 × the last-level cache (at least 64 MiB), as `.quick` does.
    private let buffer: Tensor
    private let threads = ProcessInfo.processInfo.activeProcessorCount
    private let partials: Tensor

    init() {
        let bytes = max(64 << 20, 4 * (Calibration.lastLevelCacheBytes ?? 0))
        buffer = Tensor(zeros: [bytes / 4])
        let b = buffer
        Calibration.parallel(threads: threads, count: b.count) { range, _ in
            (b.pointer + range.lowerBound).update(repeating: 1, count: range.count)
        }
        partials = Tensor(zeros: [threads * 16])
    }

    /// Bytes held by the probe (not part of the engine's memory).
    var byteCount: Int { buffer.count * 4 }

    /// Read bandwidth, GB/s: the best of `runs` passes of `Calibration.streamSum` over the buffer,
    /// split across all cores.
    func readGBps(runs: Int = 3) -> Double {
        let b = buffer, p = partials
        var best = Double.infinity
        for _ in 0..<runs {
            var clock = Stopwatch()
            Calibration.parallel(threads: threads, count: b.count) { range, t in
                p.pointer[t * 16] = Calibration.streamSum(b.pointer, range)
            }
            best = min(best, clock.lap())
        }
        return Double(byteCount) / best / 1e9
    }

    /// sgemm GFLOP/s: the best of `runs` 1024³ products through `Kernels.gemm`.
    func gemmGFLOPS(runs: Int = 3) -> Double {
        let options = CalibrationOptions(gemmSize: 1024, bufferBytes: 4, repetitions: runs, minimumSeconds: 0)
        return Calibration.measureGEMM(n: 1024, options: options) { _ in }
    }
}
