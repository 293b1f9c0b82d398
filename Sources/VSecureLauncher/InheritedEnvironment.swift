#if canImport(Glibc)
import Glibc
#endif
import VSecureCore

/// The parent's variables that the child keeps, read straight from `environ` (no copies into
/// Swift strings): first occurrence of each name wins, entries without `=` are dropped, the
/// launcher's own credentials are removed, and `--clean-env` keeps only `--keep` names.
struct InheritedEnvironment {
    struct Entry {
        var pointer: UnsafePointer<CChar>
        var nameLength: Int
        var length: Int
    }

    private(set) var entries: [Entry] = []
    private var names = StringIndex(capacity: 64)

    init(clean: Bool, keep: StringIndex) {
        let start: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = environ
        guard var cursor = start else { return }
        while let entry = cursor.pointee {
            defer { cursor += 1 }
            guard let equals = strchr(entry, Int32(UInt8(ascii: "="))) else { continue }
            let nameLength = equals - entry
            let name = String(decoding: UnsafeRawBufferPointer(start: entry, count: nameLength), as: UTF8.self)
            if name.isEmpty || ProtectedVariables.isLauncherOnly(name) || names.contains(name) { continue }
            if clean && !keep.contains(name) { continue }
            names.insert(name)
            entries.append(Entry(pointer: UnsafePointer(entry), nameLength: nameLength, length: strlen(entry)))
        }
    }

    func contains(_ name: String) -> Bool { names.contains(name) }

    func without(_ overridden: StringIndex) -> [Entry] {
        entries.filter { entry in
            !overridden.contains(String(decoding: UnsafeRawBufferPointer(start: entry.pointer, count: entry.nameLength), as: UTF8.self))
        }
    }
}
