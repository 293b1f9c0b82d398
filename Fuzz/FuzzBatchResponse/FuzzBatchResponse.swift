@testable import VSecureRemote
import VSecureCore

// The launcher's remote path: the body of a batch-get answer, as `RemoteSource` reads it from
// locked memory — `LockedJSON.parse`, `RemoteSource.decode` (internal, hence @testable: debug
// builds are compiled with -enable-testing), then every value unescaped or base64-decoded into a
// buffer of exactly the length decode announced, as `writeValue` does.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)

    // Every string of any document: its announced length and its decoded bytes agree.
    if let node = try? LockedJSON.parse(bytes) { checkStrings(node, in: bytes) }

    guard let entries = try? RemoteSource.decode(bytes) else { return 0 }
    for entry in entries {
        guard entry.length >= 0, entry.value.upperBound <= size else { fatalError("entry out of the response") }
        let destination = UnsafeMutableRawBufferPointer.allocate(byteCount: entry.length, alignment: 1)
        defer { destination.deallocate() }
        if entry.base64 {
            // A short or malformed payload is the launcher's error to report, never a crash.
            _ = RemoteSource.decodeBase64(UnsafeRawBufferPointer(rebasing: bytes[entry.value]), into: destination)
        } else {
            do { try LockedJSON.decode(entry.value, escaped: entry.escaped, in: bytes, into: destination) } catch {
                fatalError("decode accepted a value it cannot unescape: \(error.message)")
            }
        }
    }
    return 0
}

private func checkStrings(_ node: LockedJSON.Node, in bytes: UnsafeRawBufferPointer) {
    switch node {
    case .string(let range, let escaped):
        // A bad escape may still be inside a value the parser accepted; both readers must agree.
        let length = try? LockedJSON.decodedLength(range, escaped: escaped, in: bytes)
        let decoded = try? LockedJSON.decodedBytes(range, escaped: escaped, in: bytes, failure: .response)
        guard length == decoded?.count else { fatalError("decodedLength \(String(describing: length)) != \(String(describing: decoded?.count))") }
        if let length {
            let destination = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 1)
            defer { destination.deallocate() }
            guard (try? LockedJSON.decode(range, escaped: escaped, in: bytes, into: destination)) != nil,
                  Array(destination) == decoded! else { fatalError("decode into a buffer differs from decodedBytes") }
        }
    case .array(let items): for item in items { checkStrings(item, in: bytes) }
    case .object(let members): for (_, item) in members { checkStrings(item, in: bytes) }
    case .number, .bool, .null: break
    }
}
