#if canImport(Glibc)
import Glibc
#endif
import VSecureCore

/// The parent's variables that the child keeps, read straight from `environ` (no copies into
/// Swift strings): first occurrence of each name wins, entries without `=` are dropped, the
/// launcher's own credentials are removed, and `--clean-env` keeps only `--keep` names.
///
/// Names are compared as the kernel sees them, as bytes. A name that is not UTF-8 cannot be a
/// secret's variable, a credential or a `--keep` name (those are ASCII, or arrive as UTF-8), so
/// it is kept as it came unless `--clean-env` is given; two such names are one only when their
/// bytes are equal (decoding them would turn every bad byte into U+FFFD and merge names that
/// differ).
struct InheritedEnvironment {
    struct Entry {
        var pointer: UnsafePointer<CChar>
        var nameLength: Int
        var length: Int

        var nameBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: pointer, count: nameLength) }
    }

    private(set) var entries: [Entry] = []
    private var names = StringIndex(capacity: 64)
    /// Indexes in `entries` of the names that are not UTF-8 (rare: compared one by one).
    private var undecodable: [Int] = []

    init(clean: Bool, keep: StringIndex) {
        let start: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = environ
        guard var cursor = start else { return }
        while let entry = cursor.pointee {
            defer { cursor += 1 }
            guard let equals = strchr(entry, Int32(UInt8(ascii: "="))) else { continue }
            let candidate = Entry(pointer: UnsafePointer(entry), nameLength: equals - entry, length: 0)
            guard candidate.nameLength > 0 else { continue }
            guard let name = Self.decode(candidate.nameBytes) else {
                if clean || undecodable.contains(where: { entries[$0].nameBytes.elementsEqual(candidate.nameBytes) }) { continue }
                undecodable.append(entries.count)
                entries.append(Entry(pointer: candidate.pointer, nameLength: candidate.nameLength, length: strlen(entry)))
                continue
            }
            if ProtectedVariables.isLauncherOnly(name) || names.contains(name) { continue }
            if clean && !keep.contains(name) { continue }
            names.insert(name)
            entries.append(Entry(pointer: candidate.pointer, nameLength: candidate.nameLength, length: strlen(entry)))
        }
    }

    /// The name as a String, or nil when it is not UTF-8. ASCII, nearly every name, takes the
    /// quick way (`String(validating:)` costs about 1,200 instructions a name).
    private static func decode(_ bytes: UnsafeRawBufferPointer) -> String? {
        if bytes.allSatisfy({ $0 < 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
        return String(validating: bytes, as: UTF8.self)
    }

    /// True when a variable of this name is inherited (`name` is UTF-8, as every variable a
    /// secret sets is).
    func contains(_ name: String) -> Bool { names.contains(name) }

    /// The entries whose names are not in `overridden` (names a secret sets, all UTF-8).
    func without(_ overridden: StringIndex) -> [Entry] {
        var kept: [Entry] = []
        kept.reserveCapacity(entries.count)
        var next = 0
        for (index, entry) in entries.enumerated() {
            if next < undecodable.count, undecodable[next] == index {
                next += 1
                kept.append(entry)
                continue
            }
            if !overridden.contains(String(decoding: entry.nameBytes, as: UTF8.self)) { kept.append(entry) }
        }
        return kept
    }
}
