/// The `.env` format, as vsecure writes and reads it. Writing chooses a quoting that reads
/// back to exactly the same bytes; reading accepts what common tools write:
///
/// - `NAME=value`, optionally prefixed by `export `; blank lines and `#` comment lines.
/// - Unquoted values end at the line end or at ` #`, and are trimmed.
/// - `'single quotes'` are literal and end on the same line.
/// - `"double quotes"` may span lines and understand `\n \r \t \" \\ \$`.
///
/// Values with a NUL byte cannot be written (no shell or dotenv reader keeps them).
public enum Dotenv {
    public struct Entry {
        public var name: SecretName
        public var value: [UInt8]
        public var line: Int

        public init(name: SecretName, value: [UInt8], line: Int) {
            self.name = name
            self.value = value
            self.line = line
        }
    }

    public static func encode(name: SecretName, value: UnsafeRawBufferPointer, exportPrefix: Bool = false) throws(VSecureError) -> [UInt8] {
        guard !value.contains(0) else {
            throw VSecureError(.usage, "\(name) holds a NUL byte, which a .env file cannot carry", hint: "export it with --format json")
        }
        var out = Array((exportPrefix ? "export " : "").utf8) + Array(name.rawValue.utf8) + [UInt8(ascii: "=")]
        let plain = value.allSatisfy { byte in
            byte.isASCIILetter || byte.isASCIIDigit || Array("_-./:@+,%".utf8).contains(byte)
        }
        if plain {
            out += value
        } else if !value.contains(where: { $0 == UInt8(ascii: "'") || $0 == 0x0A || $0 == 0x0D }) {
            out.append(UInt8(ascii: "'"))
            out += value
            out.append(UInt8(ascii: "'"))
        } else {
            out.append(UInt8(ascii: "\""))
            for byte in value {
                switch byte {
                case 0x0A: out += Array("\\n".utf8)
                case 0x0D: out += Array("\\r".utf8)
                case 0x09: out += Array("\\t".utf8)
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "$"):
                    out.append(UInt8(ascii: "\\"))
                    out.append(byte)
                default: out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
        out.append(0x0A)
        return out
    }

    /// POSIX shell: `export NAME='…'`, with `'` written as `'\''`. Reads back exactly through `sh`.
    public static func encodeShell(name: SecretName, value: UnsafeRawBufferPointer) throws(VSecureError) -> [UInt8] {
        guard !value.contains(0) else {
            throw VSecureError(.usage, "\(name) holds a NUL byte, which a shell variable cannot carry", hint: "export it with --format json")
        }
        var out = Array("export \(name.rawValue)='".utf8)
        for byte in value {
            if byte == UInt8(ascii: "'") { out += Array("'\\''".utf8) } else { out.append(byte) }
        }
        out += Array("'\n".utf8)
        return out
    }

    /// Parses a whole file. Errors name the file and line, never a value.
    public static func parse(_ bytes: [UInt8], path: String) throws(VSecureError) -> [Entry] {
        var entries: [Entry] = []
        var firstLines: [SecretName: Int] = [:]   // a duplicate is found in O(1), so a 100,000-line import stays linear
        var i = 0
        var line = 1
        func fail(_ problem: String) -> VSecureError { VSecureError(.usage, "\(path):\(line): \(problem)") }
        func skipSpaces() { while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 } }
        func skipRestOfLine() throws(VSecureError) {
            skipSpaces()
            if i < bytes.count, bytes[i] == UInt8(ascii: "#") { while i < bytes.count, bytes[i] != 0x0A { i += 1 } }
            if i < bytes.count, bytes[i] == 0x0D { i += 1 }
            if i < bytes.count {
                guard bytes[i] == 0x0A else { throw fail("unexpected text after the closing quote") }
                i += 1
                line += 1
            }
        }
        while i < bytes.count {
            skipSpaces()
            if i >= bytes.count { break }
            if bytes[i] == 0x0A { i += 1; line += 1; continue }
            if bytes[i] == 0x0D, i + 1 < bytes.count, bytes[i + 1] == 0x0A { i += 2; line += 1; continue }
            if bytes[i] == UInt8(ascii: "#") { while i < bytes.count, bytes[i] != 0x0A { i += 1 }; continue }
            let exportWord = Array("export ".utf8)
            if i + exportWord.count <= bytes.count, Array(bytes[i..<(i + exportWord.count)]) == exportWord {
                i += exportWord.count
                skipSpaces()
            }
            let nameStart = i
            while i < bytes.count, bytes[i] != UInt8(ascii: "="), bytes[i] != 0x0A, bytes[i] != 0x20, bytes[i] != 0x09 { i += 1 }
            let nameText = String(decoding: bytes[nameStart..<i], as: UTF8.self)
            skipSpaces()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "=") else { throw fail("expected NAME=value") }
            let name: SecretName
            do { name = try SecretName(nameText) } catch { throw fail(error.message) }
            i += 1
            skipSpaces()
            let entryLine = line
            var value: [UInt8] = []
            if i < bytes.count, bytes[i] == UInt8(ascii: "'") {
                i += 1
                while i < bytes.count, bytes[i] != UInt8(ascii: "'") {
                    guard bytes[i] != 0x0A else { throw fail("unterminated single quote for \(name)") }
                    value.append(bytes[i])
                    i += 1
                }
                guard i < bytes.count else { throw fail("unterminated single quote for \(name)") }
                i += 1
                try skipRestOfLine()
            } else if i < bytes.count, bytes[i] == UInt8(ascii: "\"") {
                i += 1
                while true {
                    guard i < bytes.count else { throw VSecureError(.usage, "\(path):\(entryLine): unterminated double quote for \(name)") }
                    let byte = bytes[i]
                    if byte == UInt8(ascii: "\"") { i += 1; break }
                    if byte == UInt8(ascii: "\\"), i + 1 < bytes.count {
                        let next = bytes[i + 1]
                        switch next {
                        case UInt8(ascii: "n"): value.append(0x0A)
                        case UInt8(ascii: "r"): value.append(0x0D)
                        case UInt8(ascii: "t"): value.append(0x09)
                        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "$"): value.append(next)
                        default: value.append(byte); value.append(next)
                        }
                        i += 2
                        continue
                    }
                    if byte == 0x0A { line += 1 }
                    value.append(byte)
                    i += 1
                }
                try skipRestOfLine()
            } else {
                let start = i
                while i < bytes.count, bytes[i] != 0x0A {
                    if bytes[i] == UInt8(ascii: "#"), i > start, bytes[i - 1] == 0x20 || bytes[i - 1] == 0x09 { break }
                    i += 1
                }
                var end = i
                while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 || bytes[end - 1] == 0x0D { end -= 1 }
                value = Array(bytes[start..<end])
                while i < bytes.count, bytes[i] != 0x0A { i += 1 }
                if i < bytes.count { i += 1; line += 1 }
            }
            if let previous = firstLines.updateValue(entryLine, forKey: name) {
                throw VSecureError(.usage, "\(path):\(entryLine): \(name) is set twice (first on line \(previous))")
            }
            entries.append(Entry(name: name, value: value, line: entryLine))
        }
        return entries
    }
}
