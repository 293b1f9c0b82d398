private let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

func hexByte(_ byte: UInt8) -> String {
    String(decoding: [hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]], as: UTF8.self)
}

/// Lower-case hex of public bytes (ids, fingerprints, nonces). Never used for secret bytes.
/// Inlinable, so each caller gets a version specialised for its collection (the generic one
/// resolved the collection's witnesses at run time, a measurable part of a launch).
@inlinable
public func hexString<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        out.append(hexDigit(byte >> 4))
        out.append(hexDigit(byte & 0x0F))
    }
    return String(decoding: out, as: UTF8.self)
}

/// The lower-case hex digit of a nibble (0...15).
@inlinable
func hexDigit(_ nibble: UInt8) -> UInt8 {
    nibble < 10 ? 0x30 + nibble : 0x57 + nibble
}

/// Parses lower- or upper-case hex; nil when malformed.
public func bytesFromHex(_ text: String) -> [UInt8]? {
    let chars = Array(text.utf8)
    guard chars.count % 2 == 0 else { return nil }
    func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        case 0x41...0x46: return c - 0x41 + 10
        default: return nil
        }
    }
    var out: [UInt8] = []
    out.reserveCapacity(chars.count / 2)
    var i = 0
    while i < chars.count {
        guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { return nil }
        out.append(hi << 4 | lo)
        i += 2
    }
    return out
}

extension Array where Element == UInt8 {
    /// `withUnsafeBytes` for bodies with typed throws (the standard one only rethrows `any Error`).
    public func withRawBytes<R>(_ body: (UnsafeRawBufferPointer) throws(VSecureError) -> R) throws(VSecureError) -> R {
        try withUnsafeBytes { raw in Result { () throws(VSecureError) in try body(raw) } }.get()
    }
}

extension String {
    /// The UTF-8 bytes of public text, for bodies with typed throws.
    public func withUTF8Bytes<R>(_ body: (UnsafeRawBufferPointer) throws(VSecureError) -> R) throws(VSecureError) -> R {
        var copy = self
        return try copy.withUTF8 { buffer in Result { () throws(VSecureError) in try body(UnsafeRawBufferPointer(buffer)) } }.get()
    }
}
