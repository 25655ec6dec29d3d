#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Zero-filled memory straight from the kernel (an anonymous private mapping): pages become
/// resident only when first written and go back to the system at `unmap`, which malloc does not
/// promise for a freed block. Used for the large buffers (`TensorStorage`), the load-time weight
/// copies (`WeightArena`) and weights read into memory (`MappedFile`, `--no-mmap`).
enum AnonymousMemory {
    /// `bytes` of fresh zero pages, page-aligned, or nil if the kernel refuses. `hugePages` asks
    /// for 2 MB pages (`MADV_HUGEPAGE`, Linux; a hint: without THP the pages are 4 KB): fewer TLB
    /// misses for data that is streamed, at the cost of 2 MB of residency granularity.
    static func map(_ bytes: Int, hugePages: Bool) -> UnsafeMutableRawPointer? {
        guard let mapped = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              mapped != MAP_FAILED else { return nil }
        #if os(Linux)
        if hugePages { _ = madvise(mapped, bytes, MADV_HUGEPAGE) }
        #endif
        return mapped
    }

    /// Returns memory from `map` (the same byte count) to the system.
    static func unmap(_ p: UnsafeMutableRawPointer, _ bytes: Int) { munmap(p, bytes) }
}
