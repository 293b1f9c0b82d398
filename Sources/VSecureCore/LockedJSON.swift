/// The one JSON reader of the package (RFC 8259, strict): string tokens are recorded as byte
/// ranges and unescaped only on request, straight into a caller's buffer, so a document in
/// locked memory (a server response on the launcher's path) is read without a secret ever
/// becoming a Swift `String`. `JSONParser` materializes the same nodes for ordinary documents.
/// Duplicate keys and deep nesting are refused; numbers must be whole. Errors carry line and
/// column, never the text of a string.
public struct LockedJSON {
    public indirect enum Node {
        case string(Range<Int>, escaped: Bool)
        case number(Range<Int>)
        case bool(Bool)
        case null
        case array([Node])
        case object([(String, Node)])
    }

    /// How a caller reports a malformed document: which exit status, and what to call it.
    public struct Failure: Sendable {
        public var status: ExitStatus
        public var subject: String
        public var maxDepth: Int
        public init(status: ExitStatus, subject: String, maxDepth: Int) {
            self.status = status
            self.subject = subject
            self.maxDepth = maxDepth
        }
        /// A server's answer on the launcher's path.
        public static let response = Failure(status: .remoteUnreachable, subject: "the server's response is not valid JSON", maxDepth: 32)
    }

    /// Parses `bytes`. Object keys become `String`s (they are field names, never secrets);
    /// string values stay ranges into `bytes`.
    public static func parse(_ bytes: UnsafeRawBufferPointer, failure: Failure = .response) throws(VSecureError) -> Node {
        var reader = Reader(bytes: bytes, failure: failure)
        reader.skipSpace()
        let node = try reader.value(depth: 0)
        reader.skipSpace()
        guard reader.index == bytes.count else { throw reader.fail("unexpected text after the JSON value") }
        return node
    }

    /// The decoded length of a string token.
    public static func decodedLength(_ range: Range<Int>, escaped: Bool, in bytes: UnsafeRawBufferPointer,
                                     failure: Failure = .response) throws(VSecureError) -> Int {
        guard escaped else { return range.count }
        var count = 0
        try decode(range, in: bytes, failure: failure) { _ in count += 1 }
        return count
    }

    /// A string token's decoded bytes as a new array (for public text, or documents that are not
    /// secret).
    public static func decodedBytes(_ range: Range<Int>, escaped: Bool, in bytes: UnsafeRawBufferPointer,
                                    failure: Failure) throws(VSecureError) -> [UInt8] {
        guard escaped else { return Array(UnsafeRawBufferPointer(rebasing: bytes[range])) }
        var out: [UInt8] = []
        out.reserveCapacity(range.count)
        try decode(range, in: bytes, failure: failure) { out.append($0) }
        return out
    }

    /// Writes a string token's decoded bytes into `destination` (exactly `decodedLength` bytes).
    public static func decode(_ range: Range<Int>, escaped: Bool, in bytes: UnsafeRawBufferPointer,
                              into destination: UnsafeMutableRawBufferPointer, failure: Failure = .response) throws(VSecureError) {
        guard escaped else {
            precondition(destination.count == range.count)
            if !range.isEmpty { destination.baseAddress!.copyMemory(from: bytes.baseAddress! + range.lowerBound, byteCount: range.count) }
            return
        }
        var offset = 0
        try decode(range, in: bytes, failure: failure) { byte in
            precondition(offset < destination.count)
            destination[offset] = byte
            offset += 1
        }
        precondition(offset == destination.count)
    }

    /// A short public string (a name, a date) as a Swift `String`.
    public static func text(_ range: Range<Int>, in bytes: UnsafeRawBufferPointer) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    private static func decode(_ range: Range<Int>, in bytes: UnsafeRawBufferPointer, failure: Failure,
                               emit: (UInt8) -> Void) throws(VSecureError) {
        var i = range.lowerBound
        func fail(_ problem: String) -> VSecureError { Reader(bytes: bytes, index: i, failure: failure).fail(problem) }
        func hex4(_ at: Int) throws(VSecureError) -> UInt32 {
            guard at + 4 <= range.upperBound else { throw fail("short \\u escape") }
            var value: UInt32 = 0
            for k in at..<(at + 4) {
                let c = bytes[k]
                let digit: UInt32
                switch c {
                case 0x30...0x39: digit = UInt32(c - 0x30)
                case 0x61...0x66: digit = UInt32(c - 0x61 + 10)
                case 0x41...0x46: digit = UInt32(c - 0x41 + 10)
                default: throw fail("bad \\u escape")
                }
                value = value << 4 | digit
            }
            return value
        }
        while i < range.upperBound {
            let c = bytes[i]
            guard c == UInt8(ascii: "\\") else { emit(c); i += 1; continue }
            guard i + 1 < range.upperBound else { throw fail("unterminated escape") }
            switch bytes[i + 1] {
            case UInt8(ascii: "\""): emit(0x22); i += 2
            case UInt8(ascii: "\\"): emit(0x5C); i += 2
            case UInt8(ascii: "/"): emit(0x2F); i += 2
            case UInt8(ascii: "b"): emit(0x08); i += 2
            case UInt8(ascii: "f"): emit(0x0C); i += 2
            case UInt8(ascii: "n"): emit(0x0A); i += 2
            case UInt8(ascii: "r"): emit(0x0D); i += 2
            case UInt8(ascii: "t"): emit(0x09); i += 2
            case UInt8(ascii: "u"):
                var scalar = try hex4(i + 2)
                i += 6
                if (0xD800...0xDBFF).contains(scalar) {
                    guard i + 1 < range.upperBound, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                        throw fail("a lone surrogate escape")
                    }
                    let low = try hex4(i + 2)
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail("a lone surrogate escape") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw fail("a lone surrogate escape")
                }
                // UTF-8 encoding by hand: no intermediate String or Character.
                switch scalar {
                case 0..<0x80: emit(UInt8(scalar))
                case 0x80..<0x800:
                    emit(UInt8(0xC0 | scalar >> 6)); emit(UInt8(0x80 | scalar & 0x3F))
                case 0x800..<0x10000:
                    emit(UInt8(0xE0 | scalar >> 12)); emit(UInt8(0x80 | scalar >> 6 & 0x3F)); emit(UInt8(0x80 | scalar & 0x3F))
                default:
                    emit(UInt8(0xF0 | scalar >> 18)); emit(UInt8(0x80 | scalar >> 12 & 0x3F))
                    emit(UInt8(0x80 | scalar >> 6 & 0x3F)); emit(UInt8(0x80 | scalar & 0x3F))
                }
            default: throw fail("unknown escape")
            }
        }
    }

    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var index = 0
        let failure: Failure

        init(bytes: UnsafeRawBufferPointer, index: Int = 0, failure: Failure) {
            self.bytes = bytes
            self.index = index
            self.failure = failure
        }

        /// The error at the current position: line and column, never the text.
        func fail(_ problem: String) -> VSecureError {
            var line = 1, lineStart = 0
            for offset in 0..<min(index, bytes.count) where bytes[offset] == 0x0A {
                line += 1
                lineStart = offset + 1
            }
            return VSecureError(failure.status, "\(failure.subject) at line \(line), column \(index - lineStart + 1): \(problem)")
        }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        mutating func value(depth: Int) throws(VSecureError) -> Node {
            guard depth < failure.maxDepth else { throw fail("nested deeper than \(failure.maxDepth) levels") }
            guard index < bytes.count else { throw fail("unexpected end of input") }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                var members: [(String, Node)] = []
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object([]) }
                while true {
                    skipSpace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a quoted key") }
                    let keyStart = index
                    let (range, escaped) = try string()
                    let keyBytes = try LockedJSON.decodedBytes(range, escaped: escaped, in: bytes, failure: failure)
                    guard let key = String(validating: keyBytes, as: UTF8.self) else { throw fail("a key is not valid UTF-8") }
                    guard !members.contains(where: { $0.0 == key }) else {
                        throw Reader(bytes: bytes, index: keyStart, failure: failure).fail("the key \(Quoted(key)) appears twice")
                    }
                    skipSpace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                    index += 1
                    skipSpace()
                    members.append((key, try value(depth: depth + 1)))
                    skipSpace()
                    guard index < bytes.count else { throw fail("unterminated object") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    guard bytes[index] == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
                    index += 1
                    return .object(members)
                }
            case UInt8(ascii: "["):
                index += 1
                var items: [Node] = []
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array([]) }
                while true {
                    skipSpace()
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard index < bytes.count else { throw fail("unterminated array") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    guard bytes[index] == UInt8(ascii: "]") else { throw fail("expected ',' or ']'") }
                    index += 1
                    return .array(items)
                }
            case UInt8(ascii: "\""):
                let (range, escaped) = try string()
                return .string(range, escaped: escaped)
            case UInt8(ascii: "t"): try word("true"); return .bool(true)
            case UInt8(ascii: "f"): try word("false"); return .bool(false)
            case UInt8(ascii: "n"): try word("null"); return .null
            case UInt8(ascii: "-"), 0x30...0x39:
                let start = index
                if bytes[index] == UInt8(ascii: "-") { index += 1 }
                let digits = index
                while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
                guard index > digits, !(bytes[digits] == 0x30 && index - digits > 1) else { throw fail("malformed number") }
                if index < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[index]) {
                    throw fail("only whole numbers are accepted")
                }
                guard Int64(LockedJSON.text(start..<index, in: bytes)) != nil else { throw fail("number out of range") }
                return .number(start..<index)
            default: throw fail("unexpected character")
            }
        }

        mutating func word(_ text: StaticString) throws(VSecureError) {
            let count = text.utf8CodeUnitCount
            guard index + count <= bytes.count, (0..<count).allSatisfy({ bytes[index + $0] == text.utf8Start[$0] }) else {
                throw fail("unexpected word")
            }
            index += count
        }

        /// The range between the quotes, and whether it holds escapes.
        mutating func string() throws(VSecureError) -> (Range<Int>, Bool) {
            index += 1
            let start = index
            var escaped = false
            while index < bytes.count {
                let c = bytes[index]
                if c == UInt8(ascii: "\"") {
                    index += 1
                    return (start..<(index - 1), escaped)
                }
                if c == UInt8(ascii: "\\") { escaped = true; index += 2; continue }
                guard c >= 0x20 else { throw fail("a control character inside a string must be escaped") }
                index += 1
            }
            throw fail("unterminated string")
        }
    }
}

extension LockedJSON.Node {
    public subscript(key: String) -> LockedJSON.Node? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }
}
