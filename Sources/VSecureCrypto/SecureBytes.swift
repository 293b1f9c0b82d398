import CSodium

/// Bytes that are secret: held only in `sodium_malloc` memory (guard pages, locked, excluded
/// from core dumps) and zeroed when released. There is no way to turn one into a `String` or
/// an `Array` here on purpose; callers that must hand bytes to the system do so through
/// `withUnsafeBytes`. Keys made with `init(keyCount:)` share one such region (see `KeySlots`);
/// everything else, values above all, gets a region of its own.
public final class SecureBytes: @unchecked Sendable {
    public let count: Int
    private let storage: UnsafeMutableRawPointer

    /// `count` zero bytes, in a region of their own.
    public init(count: Int) {
        self.count = count
        storage = Sodium.allocate(count)
        Sodium.wipe(storage, count: max(count, 1))
    }

    /// `count` zero bytes for a key: a fixed-size buffer that only libsodium writes (a key read
    /// from a key file, derived, or unwrapped). Up to 64 bytes it takes a slot of the region
    /// keys share (`KeySlots`), which saves each key the set-up and tear-down of a region of its
    /// own; never use it for a value or for anything a request or a user supplies.
    public init(keyCount count: Int) {
        self.count = count
        storage = Sodium.allocateKey(count)
        Sodium.wipe(storage, count: max(count, 1))
    }

    /// Copies `bytes` in; the caller remains responsible for wiping its own copy.
    public convenience init(copying bytes: UnsafeRawBufferPointer) {
        self.init(count: bytes.count)
        if let base = bytes.baseAddress, bytes.count > 0 { storage.copyMemory(from: base, byteCount: bytes.count) }
    }

    /// `count` random bytes.
    public static func random(count: Int) -> SecureBytes {
        let bytes = SecureBytes(count: count)
        bytes.withUnsafeMutableBytes { Sodium.fillRandom($0) }
        return bytes
    }

    deinit { Sodium.free(storage) }

    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: storage, count: count))
    }

    public func withUnsafeMutableBytes<R, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeMutableRawBufferPointer(start: storage, count: count))
    }

    /// A new buffer holding `range` of this one.
    public func slice(_ range: Range<Int>) -> SecureBytes {
        precondition(range.lowerBound >= 0 && range.upperBound <= count)
        let out = SecureBytes(count: range.count)
        if range.count > 0 { out.storage.copyMemory(from: storage + range.lowerBound, byteCount: range.count) }
        return out
    }

    /// Constant-time equality.
    public func isEqual(to other: SecureBytes) -> Bool {
        withUnsafeBytes { a in other.withUnsafeBytes { b in Sodium.constantTimeEqual(a, b) } }
    }

    public func contains(byte: UInt8) -> Bool {
        withUnsafeBytes { $0.contains(byte) }
    }
}

extension SecureBytes: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String { "SecureBytes(\(count) bytes, <redacted>)" }
    public var debugDescription: String { description }
}

extension SecureBytes {
    /// `count` characters, each drawn uniformly and independently from `alphabet` with
    /// `randombytes_uniform` (no modulo bias). The value exists only in this locked buffer.
    public static func randomCharacters(count: Int, alphabet: [UInt8]) -> SecureBytes {
        precondition(!alphabet.isEmpty && alphabet.count <= Int(UInt32.max), "an alphabet needs at least one character")
        let bytes = SecureBytes(count: count)
        let size = UInt32(alphabet.count)
        bytes.withUnsafeMutableBytes { raw in
            for index in 0..<count { raw[index] = alphabet[Int(Sodium.randomUniform(size))] }
        }
        return bytes
    }
}
