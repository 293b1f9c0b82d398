import VSecureCore
import VSecureCrypto

/// A JSON request body built in locked memory, for requests that carry values. Public members
/// are serialized as usual; a value is written as `valueBase64` straight from its `SecureBytes`
/// into the body, so it never becomes a Swift `String` or `Array` (base64 also carries any
/// bytes exactly, so the client never has to decide whether a value is text).
final class LockedRequestBody {
    private let buffer = LockedBuffer(limit: Int.max / 2)

    init() {}

    func append(_ text: String) {
        var copy = text
        copy.withUTF8 { _ = buffer.append(UnsafeRawBufferPointer($0)) }
    }

    /// Appends the members of a public JSON object without its braces (`"a":1,"b":2`).
    func appendMembers(_ members: [(String, JSONValue)]) {
        let text = JSONValue.object(members).serialized(indent: nil)
        append(String(text.dropFirst().dropLast()))
    }

    /// Appends `"valueBase64":"…"`.
    func appendValue(_ value: SecureBytes) {
        value.withUnsafeBytes { appendValue($0) }
    }

    func appendValue(_ value: UnsafeRawBufferPointer) {
        append("\"valueBase64\":\"")
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        let scratch = SecureBytes(count: 4096)
        let input = value
        do {
            scratch.withUnsafeMutableBytes { out in
                var used = 0
                var index = 0
                while index < input.count {
                    let b0 = UInt32(input[index])
                    let b1 = index + 1 < input.count ? UInt32(input[index + 1]) : 0
                    let b2 = index + 2 < input.count ? UInt32(input[index + 2]) : 0
                    let triple = b0 << 16 | b1 << 8 | b2
                    out[used] = alphabet[Int(triple >> 18 & 63)]
                    out[used + 1] = alphabet[Int(triple >> 12 & 63)]
                    out[used + 2] = index + 1 < input.count ? alphabet[Int(triple >> 6 & 63)] : UInt8(ascii: "=")
                    out[used + 3] = index + 2 < input.count ? alphabet[Int(triple & 63)] : UInt8(ascii: "=")
                    used += 4
                    index += 3
                    if used == out.count {
                        _ = buffer.append(UnsafeRawBufferPointer(out))
                        used = 0
                    }
                }
                if used > 0 { _ = buffer.append(UnsafeRawBufferPointer(rebasing: out[0..<used])) }
            }
        }
        append("\"")
    }

    /// The body so far, in a buffer of its exact length.
    func finish() -> SecureBytes {
        buffer.storage.slice(0..<buffer.count)
    }
}
