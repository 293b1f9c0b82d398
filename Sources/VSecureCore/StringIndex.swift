/// A set of strings that numbers its members in insertion order: an open-addressing hash table
/// of indices into `keys`. Callers keep any values in arrays of their own, indexed the same way.
///
/// The launch path uses it instead of `Set` and `Dictionary`. Each distinct hashed collection
/// type (`Set<SecretName>`, `[VariableName: Int]`, `[String: Int]`…) costs a process, on its
/// first use, generic metadata built at run time: a demangle plus a scan of every protocol
/// conformance in the binary for the key's `Hashable` conformance, 30,000–250,000 instructions
/// each. `StringIndex` is one non-generic type over `[String]` and `[Int]`, whose metadata a
/// Swift program builds anyway. Strings compare as `String` does (canonical equivalence), so
/// membership means what it meant in a `Set<String>`.
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
        var slot = key.hashValue & mask
        while true {
            let member = slots[slot]
            if member < 0 { return (slot, false) }
            if keys[member] == key { return (slot, true) }
            slot = (slot + 1) & mask
        }
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
            var slot = key.hashValue & mask
            while slots[slot] >= 0 { slot = (slot + 1) & mask }
            slots[slot] = member
        }
    }
}
