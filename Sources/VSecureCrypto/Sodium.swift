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
        // sodium_malloc places the block against a guard page, mlocks it, and excludes it from
        // core dumps; sodium_free zeroes it before release.
        guard let pointer = sodium_malloc(max(count, 1)) else {
            fatalError("sodium_malloc(\(count)) failed: out of memory")
        }
        return pointer
    }

    /// A key's buffer: a slot of the shared key region when one is free and `count` fits.
    static func allocateKey(_ count: Int) -> UnsafeMutableRawPointer {
        initialize()
        if count > 0, count <= KeySlots.slotBytes, let slot = KeySlots.shared.take() { return slot }
        return allocate(count)
    }

    static func free(_ pointer: UnsafeMutableRawPointer) {
        if KeySlots.shared.giveBack(pointer) { return }
        sodium_free(pointer)
    }
}

/// Keys (32 bytes) share one `sodium_malloc` region, in 64-byte slots, instead of a region
/// each: a region costs a process about 40 µs on this machine kind (`mmap`, two guard-page
/// `mprotect`s, `madvise`, `mlock`, two page faults, and their undoing on release), and a
/// launch holds three keys (the key file's, the data key, the audit log's). The shared region
/// has what each had: guard pages around it, locked, left out of core dumps; a slot is zeroed
/// when it is given back. What the keys give up is a guard page and canary of their own
/// between one slot and the next. That is why only keys come here (`SecureBytes(keyCount:)`):
/// fixed-size buffers that libsodium fills, next to nothing a request or a user supplies. When
/// every slot is taken, a key gets a region of its own as before.
final class KeySlots: @unchecked Sendable {
    static let slotBytes = 64
    /// The process's region, made on first use.
    static let shared = KeySlots(slotCount: 32)

    let slotCount: Int
    /// nil if sodium_malloc failed: then every key gets a region of its own.
    let region: UnsafeMutableRawPointer?
    /// Bit `i` set: slot `i` is taken.
    private let taken = Atomic<UInt64>(0)

    init(slotCount: Int) {
        precondition(slotCount > 0 && slotCount < 64, "the taken-slot mask is one UInt64")
        self.slotCount = slotCount
        region = sodium_malloc(Self.slotBytes * slotCount)
    }

    deinit { if let region { sodium_free(region) } }

    func take() -> UnsafeMutableRawPointer? {
        guard let region else { return nil }
        let all: UInt64 = (1 << UInt64(slotCount)) - 1
        var current = taken.load(ordering: .relaxed)
        while true {
            let free = ~current & all
            guard free != 0 else { return nil }
            let slot = free.trailingZeroBitCount
            let (exchanged, original) = taken.compareExchange(expected: current, desired: current | (1 << UInt64(slot)),
                                                              successOrdering: .acquiring, failureOrdering: .relaxed)
            if exchanged { return region + slot * Self.slotBytes }
            current = original
        }
    }

    /// Zeroes and frees `pointer`'s slot; false when `pointer` is not in the region. A pointer
    /// inside it that is not the start of a taken slot is a double free or a stray pointer:
    /// the process stops, as sodium_free stops it for a damaged canary.
    func giveBack(_ pointer: UnsafeMutableRawPointer) -> Bool {
        guard let region, pointer >= region, pointer < region + Self.slotBytes * slotCount else { return false }
        let offset = pointer - region
        precondition(offset % Self.slotBytes == 0, "a pointer into the key region that is not a slot")
        let bit = UInt64(1) << UInt64(offset / Self.slotBytes)
        precondition(taken.load(ordering: .acquiring) & bit != 0, "a key slot given back twice")
        sodium_memzero(pointer, Self.slotBytes)
        let before = taken.bitwiseAnd(~bit, ordering: .releasing).oldValue
        precondition(before & bit != 0, "a key slot given back twice")
        return true
    }

    /// Slots taken now (tests).
    var takenCount: Int { taken.load(ordering: .acquiring).nonzeroBitCount }
}
