/// Memory for the copies a model makes of its weights at load (MLA's W_UK,hᵀ and gathered W_UV),
/// in 2 MB pages where the kernel allows (`MADV_HUGEPAGE`), like the mapped weights themselves.
///
/// Each copy is ~1 MB per layer, and a malloc'd 1 MB block sits in 4 KB pages: streaming it then
/// pays a TLB walk every 4 KB. Measured on the F32 benchmark model's decode (interleaved runs):
/// q_absorb −25% and v_absorb −15% of their time with the copies in this arena instead.
///
/// Copies are bump-allocated from regions of `regionBytes` (virtual; a page is resident once
/// written). A `WeightMatrix` made here keeps the arena alive as its owner. Not thread-safe:
/// a model fills its arena while it loads, on one thread, and only reads it after that.
public final class WeightArena: @unchecked Sendable {
    /// Size of each reserved region (more when one copy needs more).
    public static let regionBytes = 32 << 20
    private var regions: [(base: UnsafeMutableRawPointer, size: Int)] = []
    private var fallbacks: [UnsafeMutableRawPointer] = []
    private var next: UnsafeMutableRawPointer?
    private var left = 0

    public init() {}

    deinit {
        for region in regions { AnonymousMemory.unmap(region.base, region.size) }
        for block in fallbacks { block.deallocate() }
    }

    /// `count` bytes, 64-byte aligned, zero-filled, valid while the arena lives. Falls back to
    /// ordinary memory (freed with the arena) if the kernel refuses a region.
    public func allocate(_ count: Int) -> UnsafeMutableRawPointer {
        let need = (max(count, 1) + 63) & ~63
        if need > left {
            let size = max(Self.regionBytes, (need + (2 << 20) - 1) & ~((2 << 20) - 1))
            guard let mapped = AnonymousMemory.map(size, hugePages: true) else {
                let fallback = UnsafeMutableRawPointer.allocate(byteCount: need, alignment: 64)
                fallback.initializeMemory(as: UInt8.self, repeating: 0, count: need)
                fallbacks.append(fallback)
                return fallback
            }
            regions.append((mapped, size))
            next = mapped
            left = size
        }
        let p = next.unsafelyUnwrapped
        next = p + need
        left -= need
        return p
    }
}
