import NIOCore
import VSecureCore

/// A JSON response body written straight into the `ByteBuffer` that is sent: the same bytes as
/// `JSONValue.serialized(indent: nil)`, without building a `String` first. Secret values are
/// written from locked memory with `valueMembers`, so no `String` or `Array` holds them; the
/// response buffer is the one copy the server must make to send a value.
struct ResponseJSON {
    private(set) var buffer: ByteBuffer

    init(capacity: Int = 512) {
        buffer = ByteBufferAllocator().buffer(capacity: capacity)
    }

    /// Zeroes what was written so far, for a response that holds values and will not be sent.
    mutating func wipe() {
        buffer.wipeInPlace()
    }

    static func body(_ value: JSONValue) -> ByteBuffer {
        var json = ResponseJSON()
        json.value(value)
        return json.buffer
    }

    /// One flag per open array or object: whether the next element needs a comma first.
    private var needsComma: [Bool] = [false]
    /// Set by `key`: the next value follows a colon, not a comma.
    private var afterKey = false

    private mutating func separate() {
        if afterKey {
            afterKey = false
            return
        }
        if needsComma[needsComma.count - 1] { buffer.writeInteger(UInt8(ascii: ",")) }
        needsComma[needsComma.count - 1] = true
    }

    mutating func value(_ value: JSONValue) {
        switch value {
        case .null: separate(); buffer.writeStaticString("null")
        case .bool(let flag): separate(); buffer.writeStaticString(flag ? "true" : "false")
        case .int(let number): separate(); buffer.writeString(String(number))
        case .string(let text): separate(); writeString(text)
        case .array(let items):
            openArray()
            for item in items { self.value(item) }
            closeArray()
        case .object(let members):
            openObject()
            for (name, member) in members { key(name); self.value(member) }
            closeObject()
        }
    }

    mutating func member(_ name: String, _ member: JSONValue) {
        key(name)
        value(member)
    }

    mutating func key(_ name: String) {
        separate()
        writeString(name)
        buffer.writeInteger(UInt8(ascii: ":"))
        afterKey = true
    }

    mutating func openObject() {
        separate()
        buffer.writeInteger(UInt8(ascii: "{"))
        needsComma.append(false)
    }

    mutating func closeObject() {
        needsComma.removeLast()
        buffer.writeInteger(UInt8(ascii: "}"))
    }

    mutating func openArray() {
        separate()
        buffer.writeInteger(UInt8(ascii: "["))
        needsComma.append(false)
    }

    mutating func closeArray() {
        needsComma.removeLast()
        buffer.writeInteger(UInt8(ascii: "]"))
    }

    /// Inside an object: the members `jsonValueMembers` makes, written from `bytes` without
    /// copying them anywhere else: `"value":"…","valueEncoding":"utf8"` for UTF-8 text,
    /// otherwise `"valueBase64":"…","valueEncoding":"base64"`.
    mutating func valueMembers(_ bytes: UnsafeRawBufferPointer) {
        // Room for all of it first: growing the buffer mid-value would leave a partial copy in
        // the freed storage.
        buffer.reserveCapacity(minimumWritableBytes: Self.encodedLength(of: bytes) + 64)
        if Self.isValidUTF8(bytes) {
            key("value")
            separate()
            writeEscaped(bytes)
            key("valueEncoding")
            value(.string("utf8"))
        } else {
            key("valueBase64")
            separate()
            writeBase64(bytes)
            key("valueEncoding")
            value(.string("base64"))
        }
    }

    private mutating func writeString(_ text: String) {
        var text = text
        text.withUTF8 { writeEscaped(UnsafeRawBufferPointer($0)) }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// A quoted JSON string from UTF-8 bytes, escaped as `JSONValue` escapes (every byte it
    /// escapes is ASCII, so escaping byte by byte is the same as by scalar).
    private mutating func writeEscaped(_ bytes: UnsafeRawBufferPointer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        var runStart = 0
        for index in 0..<bytes.count {
            let byte = bytes[index]
            guard byte < 0x20 || byte == 0x22 || byte == 0x5C || byte == 0x7F else { continue }
            if index > runStart { buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<index])) }
            runStart = index + 1
            switch byte {
            case 0x22: buffer.writeStaticString("\\\"")
            case 0x5C: buffer.writeStaticString("\\\\")
            case 0x0A: buffer.writeStaticString("\\n")
            case 0x0D: buffer.writeStaticString("\\r")
            case 0x09: buffer.writeStaticString("\\t")
            default:
                buffer.writeStaticString("\\u00")
                buffer.writeInteger(Self.hexDigits[Int(byte >> 4)])
                buffer.writeInteger(Self.hexDigits[Int(byte & 0x0F)])
            }
        }
        if bytes.count > runStart { buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<bytes.count])) }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    private static let base64Alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Quoted standard base64 with padding, as `Base64.encode` makes it.
    private mutating func writeBase64(_ bytes: UnsafeRawBufferPointer) {
        let alphabet = Self.base64Alphabet
        buffer.writeInteger(UInt8(ascii: "\""))
        var index = 0
        while index < bytes.count {
            let count = min(3, bytes.count - index)
            var group = UInt32(bytes[index]) << 16
            if count > 1 { group |= UInt32(bytes[index + 1]) << 8 }
            if count > 2 { group |= UInt32(bytes[index + 2]) }
            buffer.writeInteger(alphabet[Int(group >> 18 & 63)])
            buffer.writeInteger(alphabet[Int(group >> 12 & 63)])
            buffer.writeInteger(count > 1 ? alphabet[Int(group >> 6 & 63)] : UInt8(ascii: "="))
            buffer.writeInteger(count > 2 ? alphabet[Int(group & 63)] : UInt8(ascii: "="))
            index += 3
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    /// An upper bound of what `valueMembers` writes for the value itself.
    private static func encodedLength(of bytes: UnsafeRawBufferPointer) -> Int {
        var escaped = 0
        for byte in bytes where byte < 0x20 || byte == 0x22 || byte == 0x5C || byte == 0x7F { escaped += 5 }
        return max(bytes.count + escaped, (bytes.count + 2) / 3 * 4) + 2
    }

    /// What `String(validating:as: UTF8.self)` accepts, checked without making a `String`.
    static func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var iterator = bytes.makeIterator()
        var decoder = Unicode.UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }
}
