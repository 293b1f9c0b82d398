#if canImport(Glibc)
import Glibc
#endif
import VSecureCore
import VSecureCrypto

/// Lays out the child's environment: kept inherited variables, then one entry per injection,
/// each name once. Values are written by the source straight into the block (or into a sealed
/// memfd for file delivery); on any failure the partly built block is released and wiped.
enum EnvironmentBuilder {
    /// `markers` are public variables the launcher itself sets (VSECURE_STALE=1); a secret
    /// injected under the same name wins over a marker.
    static func build(injections: [Injection], inherited: InheritedEnvironment, source: SecretSource,
                      markers: [(name: String, value: String)] = []) throws(VSecureError) -> EnvironmentBlock {
        var overridden = StringIndex(injections.map(\.variable.rawValue))
        let markers = markers.filter { !overridden.contains($0.name) }
        for marker in markers { overridden.insert(marker.name) }
        let kept = inherited.without(overridden)
        var stringBytes = kept.reduce(0) { $0 + $1.length + 1 }
        for marker in markers { stringBytes += marker.name.utf8.count + 1 + marker.value.utf8.count + 1 }
        for injection in injections {
            let valueLength = injection.delivery == .file ? 24 : injection.valueLength
            stringBytes += injection.variable.rawValue.utf8.count + 1 + valueLength + 1
        }
        let block = EnvironmentBlock(entries: kept.count + markers.count + injections.count, stringBytes: stringBytes)
        for entry in kept { block.appendInherited(entry.pointer) }
        for marker in markers {
            try marker.name.withUTF8Bytes { (name: UnsafeRawBufferPointer) throws(VSecureError) in
                try marker.value.withUTF8Bytes { (value: UnsafeRawBufferPointer) throws(VSecureError) in
                    try block.append(name: name, valueLength: value.count) { (slot: UnsafeMutableRawBufferPointer) throws(VSecureError) in
                        slot.copyMemory(from: value)
                    }
                }
            }
        }
        for injection in injections {
            try injection.variable.rawValue.withUTF8Bytes { (nameRaw: UnsafeRawBufferPointer) throws(VSecureError) in
                switch injection.delivery {
                case .environment:
                    try block.append(name: nameRaw, valueLength: injection.valueLength) { (slot: UnsafeMutableRawBufferPointer) throws(VSecureError) in
                        try write(injection, into: slot, source: source)
                        if slot.contains(0) {
                            let hint: String
                            if case .template = injection.content {
                                hint = "a template cannot hold a secret with a NUL byte; deliver that secret as a file (file: true) and build the value in the program"
                            } else {
                                hint = "deliver it as a file instead (file: true in the manifest)"
                            }
                            throw VSecureError(.unsafeEnvironment, "the value for \(injection.variable) contains a NUL byte, which an environment variable cannot hold; nothing was started",
                                               hint: hint)
                        }
                    }
                case .file:
                    let fd = try block.makeSealedFile(variable: injection.variable, length: injection.valueLength) { (buffer: UnsafeMutableRawBufferPointer) throws(VSecureError) in
                        try write(injection, into: buffer, source: source)
                    }
                    try "/dev/fd/\(fd)".withUTF8Bytes { (path: UnsafeRawBufferPointer) throws(VSecureError) in
                        precondition(path.count <= 24)
                        try block.append(name: nameRaw, valueLength: path.count) { (slot: UnsafeMutableRawBufferPointer) throws(VSecureError) in
                            slot.copyMemory(from: path)
                        }
                    }
                }
            }
        }
        return block
    }

    /// Writes an injection's value: a secret as it is, a template part by part.
    private static func write(_ injection: Injection, into destination: UnsafeMutableRawBufferPointer, source: SecretSource) throws(VSecureError) {
        switch injection.content {
        case .secret(let secret):
            try source.writeValue(of: secret, into: destination)
        case .template(let parts):
            var offset = 0
            for part in parts {
                switch part {
                case .literal(let bytes):
                    bytes.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: destination[offset..<(offset + $0.count)]).copyMemory(from: $0) }
                    offset += bytes.count
                case .secret(let secret):
                    try source.writeValue(of: secret, into: UnsafeMutableRawBufferPointer(rebasing: destination[offset..<(offset + secret.valueLength)]))
                    offset += secret.valueLength
                }
            }
        }
    }
}
