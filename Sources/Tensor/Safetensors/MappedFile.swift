#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How a checkpoint's bytes are held in memory.
public enum WeightResidency: String, Sendable, CaseIterable {
    /// mmap the file (the default): nothing is read at load, pages come in on first touch and
    /// are shared with the page cache (and other processes), in 4 KB pages.
    case mapped
    /// Read the file into private anonymous memory asking for 2 MB transparent huge pages
    /// (`MADV_HUGEPAGE`), faulted in before the read (1.8 GB in ~0.4 s here). Streaming it needs
    /// 512× fewer page translations: on this VM decode then keeps pace with the bandwidth probe
    /// (95–98% of the read roof at 34–52 GB/s free, against 84–97% mapped), at the cost of a
    /// load that reads everything and memory the page cache cannot share. llama.cpp's `--no-mmap`.
    case resident
}

/// A whole file mapped into memory, unmapped when the last reference goes away (or, with
/// `WeightResidency.resident`, read into anonymous memory, which is likewise freed).
///
/// Weights are mapped, not read: the kernel pages them in on first touch and shares the page
/// cache between runs, so opening a checkpoint costs nothing however large it is, and an F32
/// tensor can point straight into the mapping. The mapping is `PROT_READ | PROT_WRITE` with
/// `MAP_PRIVATE`: `Tensor` hands out mutable pointers, and a stray write through one becomes a
/// private copy-on-write page instead of a segfault, and never reaches the file on disk.
/// `MAP_NORESERVE` stops Linux from charging the whole writable mapping against the
/// overcommit limit, which would otherwise refuse to map a checkpoint larger than RAM + swap.
///
/// The file must not be truncated by another process while mapped: touching a page past the
/// new end raises SIGBUS, which no user-space check can prevent.
final class MappedFile: @unchecked Sendable {
    let path: String
    /// The first byte of the mapping; `nil` for an empty file, which cannot be mapped.
    private let base: UnsafeMutableRawPointer?
    let size: Int

    init(path: String, residency: WeightResidency = .mapped) throws(SafetensorsError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .cannotOpen(path: path, reason: MappedFile.lastErrorMessage()) }
        defer { close(fd) }

        var status = stat()
        guard fstat(fd, &status) == 0 else {
            throw .cannotOpen(path: path, reason: MappedFile.lastErrorMessage())
        }
        // A directory opens fine with O_RDONLY but cannot be mapped; say so plainly.
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw .cannotOpen(path: path, reason: "not a regular file")
        }
        let size = Int(status.st_size)
        self.size = size
        guard size > 0 else {
            base = nil
            return
        }
        if residency == .resident {
            base = try Self.read(fd: fd, size: size, path: path)
            return
        }
        let flags = MAP_PRIVATE | MappedFile.noReserve
        let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, flags, fd, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw .cannotOpen(path: path, reason: "mmap failed: " + MappedFile.lastErrorMessage())
        }
        #if os(Linux)
        // Ask for 2 MB pages (a hint). Where the filesystem's page cache holds the file in 2 MB
        // folios (ext4 and others on recent kernels, when the file was read in through such a
        // mapping) the mapping then uses PMD entries: see `WeightResidency`.
        _ = madvise(mapped, size, MADV_HUGEPAGE)
        #endif
        base = mapped
    }

    deinit {
        if let base { munmap(base, size) }
    }

    /// The file's bytes in anonymous memory (see `WeightResidency.resident`). The pages are
    /// faulted in first, one write per 4 KB: a read into untouched memory takes each page fault
    /// inside the copy, and measured 7× slower here (3 s against 0.43 s for 1.8 GB).
    private static func read(fd: Int32, size: Int, path: String) throws(SafetensorsError) -> UnsafeMutableRawPointer {
        guard let mapped = AnonymousMemory.map(size, hugePages: true) else {
            throw .cannotOpen(path: path, reason: "cannot allocate \(size) bytes to read it into: " + lastErrorMessage())
        }
        var offset = 0
        while offset < size {
            mapped.storeBytes(of: 0, toByteOffset: offset, as: UInt8.self)
            offset += 4096
        }
        offset = 0
        while offset < size {
            let n = pread(fd, mapped + offset, min(size - offset, 64 << 20), off_t(offset))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let reason = n == 0 ? "file ended at byte \(offset) of \(size) while reading" : "read failed: " + lastErrorMessage()
                munmap(mapped, size)
                throw .cannotOpen(path: path, reason: reason)
            }
            offset += n
        }
        return mapped
    }

    /// All bytes of the file (empty for an empty file). Valid while this object lives.
    var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base, count: base == nil ? 0 : size)
    }

    /// Reads one byte of every page so the whole file is mapped in (page faults now, not in a
    /// timed loop later). Returns a sum of the bytes so the reads cannot be optimised away.
    func touchPages() -> Int {
        guard let base else { return 0 }
        let page = 4096
        var sum = 0
        var offset = 0
        while offset < size {
            sum &+= Int(base.load(fromByteOffset: offset, as: UInt8.self))
            offset += page
        }
        return sum
    }

    /// Mutable access for views that must be typed `UnsafeMutablePointer` (see the type's doc:
    /// writes are private copy-on-write). `nil` for an empty file.
    var mutableBase: UnsafeMutableRawPointer? { base }

    #if os(Linux)
    private static let noReserve = MAP_NORESERVE
    #else
    private static let noReserve: Int32 = 0
    #endif

    private static func lastErrorMessage() -> String {
        guard let message = strerror(errno) else { return "errno \(errno)" }
        return String(cString: message)
    }
}
