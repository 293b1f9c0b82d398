import VSecureCrypto

/// A response body that grows in locked memory: every growth copies into a new `sodium_malloc`
/// block and frees (so wipes) the old one. It never becomes a Swift `Array`.
final class LockedBuffer {
    private(set) var storage: SecureBytes
    private(set) var count = 0
    let limit: Int
    private(set) var overflowed = false

    init(initialCapacity: Int = 16 * 1024, limit: Int) {
        storage = SecureBytes(count: initialCapacity)
        self.limit = limit
    }

    /// Appends, or marks the buffer as overflowed (the caller aborts the transfer).
    func append(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard count + bytes.count <= limit else {
            overflowed = true
            return false
        }
        if count + bytes.count > storage.count {
            var capacity = storage.count
            while capacity < count + bytes.count { capacity *= 2 }
            let grown = SecureBytes(count: min(capacity, limit))
            let used = count
            storage.withUnsafeBytes { old in
                grown.withUnsafeMutableBytes { new in
                    if used > 0 { new.baseAddress!.copyMemory(from: old.baseAddress!, byteCount: used) }
                }
            }
            storage = grown
        }
        let offset = count
        storage.withUnsafeMutableBytes { raw in
            if let source = bytes.baseAddress, bytes.count > 0 { (raw.baseAddress! + offset).copyMemory(from: source, byteCount: bytes.count) }
        }
        count += bytes.count
        return true
    }

    /// Lets `body` write exactly `count` bytes at the start of an empty buffer; keeps them only
    /// when it returns true.
    func fill(_ count: Int, _ body: (UnsafeMutableRawBufferPointer) -> Bool) -> Bool {
        precondition(self.count == 0 && count <= storage.count)
        let written = storage.withUnsafeMutableBytes { body(UnsafeMutableRawBufferPointer(rebasing: $0[0..<count])) }
        if written { self.count = count }
        return written
    }

    func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let used = count
        return try storage.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(E) -> R in
            try body(UnsafeRawBufferPointer(rebasing: raw[0..<used]))
        }
    }
}
