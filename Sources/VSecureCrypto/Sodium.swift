import CLinux
import CSodium

/// The funnel for libsodium: the rest of the package never sees a C return code.
public enum Sodium {
    private static let initialized: Bool = sodium_init() >= 0

    /// Call before any other function of this module; cheap after the first call.
    public static func initialize() {
        precondition(initialized, "libsodium could not be initialised")
    }

    /// Fills `buffer` from the kernel's random source.
    public static func fillRandom(_ buffer: UnsafeMutableRawBufferPointer) {
        initialize()
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        randombytes_buf(base, buffer.count)
    }

    public static func randomBytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { fillRandom($0) }
        return out
    }

    /// A uniformly random number in `0..<upperBound`.
    public static func randomUniform(_ upperBound: UInt32) -> UInt32 {
        initialize()
        return randombytes_uniform(upperBound)
    }

    /// Zeroes memory in a way the optimiser cannot remove.
    public static func wipe(_ pointer: UnsafeMutableRawPointer, count: Int) {
        guard count > 0 else { return }
        sodium_memzero(pointer, count)
    }

    public static func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { if let base = $0.baseAddress { sodium_memzero(base, $0.count) } }
    }

    /// Wipes the part of the stack below the caller that recent calls used: up to `bytes`,
    /// in the pages that were ever touched (see `vsecure_wipe_touched_stack`).
    public static func wipeStack(bytes: Int = 64 * 1024) {
        vsecure_wipe_touched_stack(bytes)
    }

    /// Constant-time comparison of equal-length buffers.
    public static func constantTimeEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        guard a.count > 0 else { return true }
        return sodium_memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0
    }

    static func allocate(_ count: Int) -> UnsafeMutableRawPointer {
        initialize()
        // sodium_malloc places the block against a guard page, mlocks it, and excludes it from
        // core dumps; sodium_free zeroes it before release.
        guard let pointer = sodium_malloc(max(count, 1)) else {
            fatalError("sodium_malloc(\(count)) failed: out of memory")
        }
        return pointer
    }

    static func free(_ pointer: UnsafeMutableRawPointer) {
        sodium_free(pointer)
    }
}
