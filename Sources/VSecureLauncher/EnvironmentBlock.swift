#if canImport(Glibc)
import Glibc
#endif
import CLinux
import VSecureCore
import VSecureCrypto

/// The child's whole environment in one `sodium_malloc` block: the `envp` pointer array
/// followed by the `NAME=value\0` strings. Secret values are written into their slot by the
/// source (decrypted in place) and exist nowhere else in this process; the block is wiped when
/// it is released.
final class EnvironmentBlock {
    private let storage: SecureBytes
    private(set) var count = 0
    private var cursor: Int
    private let capacity: Int
    /// Descriptors of file-delivered secrets, inherited by the child.
    private(set) var fileDescriptors: [Int32] = []

    /// `entries` strings of `stringBytes` bytes in all (each counted with its `=` and NUL).
    init(entries: Int, stringBytes: Int) {
        capacity = entries
        let pointerBytes = (entries + 1) * MemoryLayout<UnsafeMutablePointer<CChar>?>.stride
        storage = SecureBytes(count: pointerBytes + stringBytes)
        cursor = pointerBytes
    }

    deinit {
        for fd in fileDescriptors { close(fd) }
    }

    var envp: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> {
        storage.withUnsafeBytes { UnsafeMutableRawPointer(mutating: $0.baseAddress!).assumingMemoryBound(to: UnsafeMutablePointer<CChar>?.self) }
    }

    private var base: UnsafeMutableRawPointer {
        storage.withUnsafeBytes { UnsafeMutableRawPointer(mutating: $0.baseAddress!) }
    }

    /// Reserves `NAME=` plus `valueLength` bytes and a NUL, and lets `fill` write the value.
    func append(name: UnsafeRawBufferPointer, valueLength: Int,
                fill: (UnsafeMutableRawBufferPointer) throws(VSecureError) -> Void) throws(VSecureError) {
        precondition(count < capacity)
        let total = name.count + 1 + valueLength + 1
        precondition(cursor + total <= storage.count)
        let start = base + cursor
        start.copyMemory(from: name.baseAddress!, byteCount: name.count)
        start.storeBytes(of: UInt8(ascii: "="), toByteOffset: name.count, as: UInt8.self)
        let value = UnsafeMutableRawBufferPointer(start: start + name.count + 1, count: valueLength)
        try fill(value)
        start.storeBytes(of: 0, toByteOffset: total - 1, as: UInt8.self)
        envp[count] = start.assumingMemoryBound(to: CChar.self)
        count += 1
        envp[count] = nil
        cursor += total
    }

    /// Copies an inherited `NAME=value` string as it is.
    func appendInherited(_ entry: UnsafePointer<CChar>) {
        let length = strlen(entry)
        precondition(count < capacity && cursor + length + 1 <= storage.count)
        let start = base + cursor
        start.copyMemory(from: entry, byteCount: length + 1)
        envp[count] = start.assumingMemoryBound(to: CChar.self)
        count += 1
        envp[count] = nil
        cursor += length + 1
    }

    /// Puts `length` bytes written by `fill` into a sealed memfd that the child inherits, and
    /// returns its descriptor. Nothing touches a disk; the staging buffer is locked and wiped.
    func makeSealedFile(variable: VariableName, length: Int,
                        fill: (UnsafeMutableRawBufferPointer) throws(VSecureError) -> Void) throws(VSecureError) -> Int32 {
        let staging = SecureBytes(count: length)
        try staging.withUnsafeMutableBytes { (raw: UnsafeMutableRawBufferPointer) throws(VSecureError) in try fill(raw) }
        let fd = vsecure_memfd_create("vsecure:" + variable.rawValue)
        guard fd >= 0 else { throw VSecureError(.internalError, "memfd_create failed for \(variable): \(PrivateFiles.errnoText())") }
        fileDescriptors.append(fd)
        let written = staging.withUnsafeBytes { raw -> Bool in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
        guard written, lseek(fd, 0, SEEK_SET) == 0, vsecure_seal_all(fd) == 0, vsecure_clear_cloexec(fd) == 0 else {
            throw VSecureError(.internalError, "could not prepare the sealed file for \(variable): \(PrivateFiles.errnoText())")
        }
        return fd
    }
}
