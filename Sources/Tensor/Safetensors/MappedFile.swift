#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped into memory, unmapped when the last reference goes away.
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

    init(path: String) throws(SafetensorsError) {
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
        let flags = MAP_PRIVATE | MappedFile.noReserve
        let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, flags, fd, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw .cannotOpen(path: path, reason: "mmap failed: " + MappedFile.lastErrorMessage())
        }
        base = mapped
    }

    deinit {
        if let base { munmap(base, size) }
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
