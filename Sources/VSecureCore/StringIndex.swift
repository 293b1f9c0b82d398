/// A set of strings that numbers its members in insertion order: an open-addressing hash table
/// of indices into `keys`. Callers keep any values in arrays of their own, indexed the same way.
///
/// The launch path uses it instead of `Set` and `Dictionary`. Each distinct hashed collection
/// type (`Set<SecretName>`, `[VariableName: Int]`, `[String: Int]`…) costs a process, on its
/// first use, generic metadata built at run time: a demangle plus a scan of every protocol
/// conformance in the binary for the key's `Hashable` conformance, 30,000–250,000 instructions
/// each. `StringIndex` is one non-generic type over `[String]` and `[Int]`, whose metadata a
/// Swift program builds anyway.
///
/// Members are compared by their UTF-8 bytes, not by canonical equivalence as `String`'s `==`
/// compares them: environment variable names are byte strings to the kernel and to the program
/// that reads them (`K` and the Kelvin sign U+212A are two variables, though `"K" == "\u{212A}"`
/// in Swift), and YAML compares mapping keys by their characters as written, unnormalized. The
/// names of the launch path (secrets, variables, tags, environments) have ASCII grammars, where
/// the two agree. Hashing is a multiply-and-fold over the bytes, eight at a time, not
/// `Hasher`'s SipHash: a launch hashes a few hundred short names and SipHash's set-up and
/// finalization cost more than the bytes. It is not seeded: the keys come from the user's own
/// manifest, environment and vault, or from requests whose key counts are capped, so a chosen
/// collision costs at most a longer probe.
public struct StringIndex: Sendable {
    /// The members, in the order they were first inserted.
    public private(set) var keys: [String] = []
    /// -1 for an empty slot, else an index into `keys`. Its size is a power of two, at least
    /// twice the number of members.
    private var slots: [Int]

    public init(capacity: Int = 0) {
        var size = 8
        while size < 2 * capacity { size <<= 1 }
        slots = [Int](repeating: -1, count: size)
        keys.reserveCapacity(capacity)
    }

    /// Each member of `strings` once, numbered by its first occurrence.
    public init(_ strings: [String]) {
        self.init(capacity: strings.count)
        for string in strings { insert(string) }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    /// The slot that holds `key`, or the empty slot where it would go.
    private func slot(for key: String) -> (slot: Int, found: Bool) {
        let mask = slots.count - 1
        var slot = Self.hash(key) & mask
        while true {
            let member = slots[slot]
            if member < 0 { return (slot, false) }
            if Self.sameBytes(keys[member], key) { return (slot, true) }
            slot = (slot + 1) & mask
        }
    }

    /// The same UTF-8 bytes.
    static func sameBytes(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        let compared = a.utf8.withContiguousStorageIfAvailable { x in
            b.utf8.withContiguousStorageIfAvailable { y in
                for offset in 0..<x.count where x[offset] != y[offset] { return false }
                return true
            }
        }
        if let compared, let compared { return compared }
        return Array(a.utf8) == Array(b.utf8)
    }

    static func hash(_ key: String) -> Int {
        key.utf8.withContiguousStorageIfAvailable { hash(bytes: UnsafeRawBufferPointer($0)) }
            ?? Array(key.utf8).withUnsafeBytes { hash(bytes: $0) }
    }

    /// Eight bytes at a time: xor in, multiply by an odd constant, fold the high half down; the
    /// tail last, with the length; then MurmurHash3's 64-bit finalizer, so that the low bits
    /// the table masks depend on every byte (a product's low bits depend only on its factors'
    /// low bits, and names that differ in their last characters differ only in high bits).
    static func hash(bytes: UnsafeRawBufferPointer) -> Int {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15
        var offset = 0
        while offset + 8 <= bytes.count {
            h = (h ^ bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) &* 0xFF51_AFD7_ED55_8CCD
            h ^= h >> 32
            offset += 8
        }
        var tail = UInt64(truncatingIfNeeded: bytes.count) << 56
        var shift: UInt64 = 0
        while offset < bytes.count {
            tail |= UInt64(bytes[offset]) << shift
            shift += 8
            offset += 1
        }
        h ^= tail
        h ^= h >> 33
        h = h &* 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33
        h = h &* 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 33
        return Int(truncatingIfNeeded: h)
    }

    /// The number `key` got when it was first inserted, or nil.
    public func index(of key: String) -> Int? {
        let found = slot(for: key)
        return found.found ? slots[found.slot] : nil
    }

    public func contains(_ key: String) -> Bool { slot(for: key).found }

    /// Adds `key` unless it is a member; either way returns its number.
    @discardableResult
    public mutating func insert(_ key: String) -> (inserted: Bool, index: Int) {
        if 2 * (keys.count + 1) > slots.count { grow() }
        let found = slot(for: key)
        if found.found { return (false, slots[found.slot]) }
        slots[found.slot] = keys.count
        keys.append(key)
        return (true, keys.count - 1)
    }

    private mutating func grow() {
        slots = [Int](repeating: -1, count: 2 * slots.count)
        let mask = slots.count - 1
        for (member, key) in keys.enumerated() {
            var slot = Self.hash(key) & mask
            while slots[slot] >= 0 { slot = (slot + 1) & mask }
            slots[slot] = member
        }
    }
}
