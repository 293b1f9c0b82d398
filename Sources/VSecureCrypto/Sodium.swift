import CLinux
import CSodium
import Synchronization

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
        if count <= SmallSecrets.slotBytes, let slot = SmallSecrets.take() { return slot }
        // sodium_malloc places the block against a guard page, mlocks it, and excludes it from
        // core dumps; sodium_free zeroes it before release.
        guard let pointer = sodium_malloc(max(count, 1)) else {
            fatalError("sodium_malloc(\(count)) failed: out of memory")
        }
        return pointer
    }

    static func free(_ pointer: UnsafeMutableRawPointer) {
        if SmallSecrets.give(back: pointer) { return }
        sodium_free(pointer)
    }
}

/// Keys (32 bytes) and other small secrets share one `sodium_malloc` region, in 64-byte slots,
/// instead of one region each. Each region costs a process about 40 µs on this machine kind
/// (`mmap`, two guard-page `mprotect`s, `madvise`, `mlock`, two page faults, and their undoing
/// on release: bench/launcher.sh's notes), and a launch holds three keys (the key file's, the
/// data key, the audit log's). The shared region has what each had: guard pages around it,
/// locked, left out of core dumps; a slot is zeroed when it is given back. What the keys give
/// up is a guard page and canary of their own between one slot and the next: a write past the
/// end of a 32-byte key would land in the next slot instead of faulting. Their writers are
/// libsodium's functions, each of a fixed output size. When every slot is taken (a server under
/// load can hold more at once), an allocation gets a region of its own as before.
enum SmallSecrets {
    static let slotBytes = 64
    static let slotCount = 32  // at most 63: the bitmask below is one UInt64
    /// One region of `slotCount` slots, made on first use; nil if sodium_malloc failed (then
    /// every allocation gets its own region).
    nonisolated(unsafe) static let region: UnsafeMutableRawPointer? = sodium_malloc(slotBytes * slotCount)
    /// Bit `i` set: slot `i` is taken.
    private static let taken = Atomic<UInt64>(0)

    static func take() -> UnsafeMutableRawPointer? {
        guard let region else { return nil }
        var current = taken.load(ordering: .relaxed)
        while true {
            let free = ~current & ((1 << UInt64(slotCount)) - 1)
            guard free != 0 else { return nil }
            let slot = free.trailingZeroBitCount
            let (exchanged, original) = taken.compareExchange(expected: current, desired: current | (1 << UInt64(slot)),
                                                              successOrdering: .acquiring, failureOrdering: .relaxed)
            if exchanged { return region + slot * slotBytes }
            current = original
        }
    }

    /// Zeroes and frees `pointer`'s slot; false when `pointer` is not one.
    static func give(back pointer: UnsafeMutableRawPointer) -> Bool {
        guard let region, pointer >= region, pointer < region + slotBytes * slotCount else { return false }
        let slot = (pointer - region) / slotBytes
        sodium_memzero(region + slot * slotBytes, slotBytes)
        taken.bitwiseAnd(~(UInt64(1) << UInt64(slot)), ordering: .releasing)
        return true
    }

    /// Slots taken now (tests).
    static var takenCount: Int { taken.load(ordering: .acquiring).nonzeroBitCount }
}
