import CKernelSupport
import Foundation

/// How the loops that stream memory once (the float formats' batch-1 matvec, and the read probes
/// the roofline is measured with) ask for it ahead of use. Which is faster depends on the CPU's
/// hardware prefetchers and memory latency, so the choice is per machine:
///
/// - `pageAhead`: one L2 prefetch a 4 KB page, 16 KB ahead, and the hardware prefetchers for
///   the rest. Tuned on AMD Zen 4 (this project's first machine): against a plain stream, 94 →
///   97% of the read roof on the F32 benchmark model's decode at ~30 GB/s; an L2 prefetch of
///   every line lost 10-20% there.
/// - `everyLine`: an L2 prefetch of every 64-byte line, 4 KB ahead (8 KB for 16-bit weights). On an Intel Xeon (family 6,
///   model 207, in a 2-vCPU VM whose one lane alone streams only ~9-15 GB/s, so each core's
///   misses in flight bound the rate) a plain sum streamed 13-18% faster with it, the F32
///   matvec 7-11% faster than the plain sum (against 0.93-0.97 of it page-ahead; a C loop,
///   interleaved rounds). Decode steps of the benchmark model alternating between the two
///   policies (the median ratio of a step to its two neighbours, 6 × 127 steps): F32 steps took
///   0.85-0.86× as long with `everyLine`, BF16 0.69-0.70×, Q8_0 (its own kernel, which always
///   prefetches every line 8 KB ahead) 0.99×.
///
/// The default is `everyLine` on Intel CPUs and `pageAhead` elsewhere; TINYSEEK_PREFETCH=line or
/// =page chooses. The read probes (`Kernels.streamSum`) use the same policy, so the roof is what
/// this machine streams the way the kernels stream.
public enum StreamPrefetch: String, Sendable, CaseIterable {
    case pageAhead = "page"
    case everyLine = "line"

    /// The policy of this process, chosen once (`choose`).
    public static let current = choose(environment: ProcessInfo.processInfo.environment,
                                       intel: tinyseek_cpu_is_intel() != 0)

    /// The environment variable that overrides the default.
    public static let variable = "TINYSEEK_PREFETCH"

    /// TINYSEEK_PREFETCH when it names a policy, else `everyLine` on Intel and `pageAhead` elsewhere.
    public static func choose(environment: [String: String], intel: Bool) -> StreamPrefetch {
        environment[variable].flatMap(StreamPrefetch.init(rawValue:)) ?? (intel ? .everyLine : .pageAhead)
    }

    /// `pageAhead`'s distance: where each next page is touched.
    static let pageAheadBytes = 16384
    /// `everyLine`'s distance for weights of `elementBytes`: 4 KB for F32, 8 KB for 16-bit
    /// formats. Alternating decode steps on the Xeon, against 4 KB: F32 steps took 1.04-1.06×
    /// as long at 2 KB, 1.00-1.01× at 6 and 8 KB; BF16 steps 1.14-1.16× at 2 KB, 0.97-0.99× at
    /// 8 KB, ~1.00× at 16 KB.
    @inline(__always)
    static func lineAheadBytes(elementBytes: Int) -> Int { elementBytes >= 4 ? 4096 : 8192 }
}
