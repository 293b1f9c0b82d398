import Foundation
import Testing
import TestSupport
import VSecureCore

@Suite("Dotenv and shell encodings")
struct DotenvTests {
    /// Values that need every quoting rule; each must read back to exactly the same bytes.
    static let trickyValues: [[UInt8]] = [
        Array("plain-value_1.2:3@x+y,z%/".utf8),
        [],
        Array("with space".utf8),
        Array("  leading and trailing  ".utf8),
        Array("\ttab at both ends\t".utf8),
        Array("it's single".utf8),
        Array("say \"double\"".utf8),
        Array("both ' and \"".utf8),
        Array("back\\slash".utf8),
        Array("back\\slash and ' quote".utf8),
        Array("trailing backslash\\".utf8),
        Array("trailing backslash and quote'\\".utf8),
        Array("$HOME and ${PATH} and $(id) and `id`".utf8),
        Array("$HOME with ' quote".utf8),
        Array("line1\nline2".utf8),
        Array("line1\r\nline2\n".utf8),
        Array("\n".utf8),
        Array("\r".utf8),
        Array("# not a comment".utf8),
        Array("value # with hash".utf8),
        Array("value\t#tab hash".utf8),
        Array("#".utf8),
        Array("literal \\n and a real\nnewline".utf8),
        Array("=equals=signs=".utf8),
        Array("export X=1".utf8),
        Array("é unicode 😀".utf8),
        Array("'".utf8),
        Array("\"".utf8),
        Array("\\".utf8),
        Array("\\'".utf8),
        Array("''".utf8),
        [0xFF, 0xFE, 0x80],
        [0xC3, 0x28],
        [0xFF, 0x27, 0x0A],
        [0x01, 0x02, 0x0B, 0x0C, 0x1B, 0x7F],
        Array("-----BEGIN KEY-----\nMIIB+abc/def==\n-----END KEY-----\n".utf8),
    ]

    static let name = literal("TRICKY", SecretName.init)

    @Test("encode then parse gives back exactly the same bytes", arguments: trickyValues.indices)
    func roundTrip(_ index: Int) throws {
        let value = Self.trickyValues[index]
        for exportPrefix in [false, true] {
            let file = try value.withRawBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
                try Dotenv.encode(name: Self.name, value: raw, exportPrefix: exportPrefix)
            }
            #expect(file.last == 0x0A)
            let entries = try Dotenv.parse(file, path: "t.env")
            #expect(entries.count == 1)
            #expect(entries.first?.name == Self.name)
            #expect(entries.first?.value == value, "value #\(index) as \(String(decoding: file, as: UTF8.self).debugDescription)")
        }
    }

    @Test("a whole file of tricky values parses back entry by entry")
    func wholeFile() throws {
        var file: [UInt8] = Array("# exported by a test\n\n".utf8)
        var names: [SecretName] = []
        for (index, value) in Self.trickyValues.enumerated() {
            let name = try SecretName("V\(index)")
            names.append(name)
            file += try value.withRawBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
                try Dotenv.encode(name: name, value: raw)
            }
        }
        let entries = try Dotenv.parse(file, path: "all.env")
        #expect(entries.map(\.name) == names)
        #expect(entries.map(\.value) == Self.trickyValues)
        #expect(entries.first?.line == 3)
    }

    @Test("plain values are written bare; others are quoted")
    func quotingChoice() throws {
        func encoded(_ text: String) throws -> String {
            String(decoding: try Array(text.utf8).withRawBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
                try Dotenv.encode(name: Self.name, value: raw)
            }, as: UTF8.self)
        }
        #expect(try encoded("abc-1.2") == "TRICKY=abc-1.2\n")
        #expect(try encoded("") == "TRICKY=\n")
        #expect(try encoded("a b$c") == "TRICKY='a b$c'\n")
        #expect(try encoded("it's\n$x\\\"") == "TRICKY=\"it's\\n\\$x\\\\\\\"\"\n")
    }

    @Test("a NUL byte cannot be written, and the error names the secret but not the value")
    func refusesNUL() {
        let value: [UInt8] = Array("sekrit".utf8) + [0] + Array("tail".utf8)
        for shell in [false, true] {
            let error = #expect(throws: VSecureError.self) {
                try value.withRawBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
                    shell ? try Dotenv.encodeShell(name: Self.name, value: raw) : try Dotenv.encode(name: Self.name, value: raw)
                }
            }
            #expect(error?.status == .usage)
            #expect(error?.message.contains("TRICKY holds a NUL byte") == true)
            #expect(error?.message.contains("sekrit") == false)
        }
    }

    @Test("what common tools write is read")
    func readsCommonForms() throws {
        let text = "# comment\r\n\r\nexport A=1\r\nB = spaced  \nC=value # comment\nD=a#b\nE='single # kept'  # comment\n"
            + "F=\"multi\nline\"\nG=\"esc \\n \\t \\\" \\\\ \\$ \\q\"\n   H=indented\nI=\n"
        let entries = try Dotenv.parse(Array(text.utf8), path: "x.env")
        let values = Dictionary(uniqueKeysWithValues: entries.map { ($0.name.rawValue, String(decoding: $0.value, as: UTF8.self)) })
        #expect(entries.map(\.name.rawValue) == ["A", "B", "C", "D", "E", "F", "G", "H", "I"])
        #expect(values["A"] == "1")
        #expect(values["B"] == "spaced")
        #expect(values["C"] == "value")
        #expect(values["D"] == "a#b")
        #expect(values["E"] == "single # kept")
        #expect(values["F"] == "multi\nline")
        #expect(values["G"] == "esc \n \t \" \\ $ \\q")
        #expect(values["H"] == "indented")
        #expect(values["I"] == "")
        #expect(entries.first { $0.name.rawValue == "G" }?.line == 10)
    }

    static let malformed: [(String, String)] = [
        ("JUSTANAME\n", "x.env:1: expected NAME=value"),
        ("A=1\n1BAD=x\n", "x.env:2: invalid secret name '1BAD'"),
        ("A=1\nB=2\nA=3\n", "x.env:3: A is set twice (first on line 1)"),
        ("A='sekrit\n", "x.env:1: unterminated single quote for A"),
        ("\nA=\"sekrit\n\n", "x.env:2: unterminated double quote for A"),
        ("A='sekrit' trailing\n", "x.env:1: unexpected text after the closing quote"),
        ("A=\"sekrit\"x\n", "x.env:1: unexpected text after the closing quote"),
        ("BAD-NAME=sekrit\n", "x.env:1: invalid secret name"),
    ]

    @Test("malformed files name the file and line, never a value", arguments: malformed)
    func refusesMalformed(_ text: String, _ message: String) {
        let error = #expect(throws: VSecureError.self) { try Dotenv.parse(Array(text.utf8), path: "x.env") }
        #expect(error?.status == .usage)
        #expect(error?.message.contains(message) == true, "\(String(describing: error?.message))")
        #expect(error?.message.contains("sekrit") == false)
    }

    @Test("the shell encoding reads back exactly through /bin/sh", arguments: trickyValues.indices)
    func shellRoundTrip(_ index: Int) throws {
        let value = Self.trickyValues[index]
        let script = try value.withRawBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
            try Dotenv.encodeShell(name: Self.name, value: raw)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vsecure-shell-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("vars.sh")
        try Data(script).write(to: file)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", ". \"$1\" && printf '%s' \"$TRICKY\"", "sh", file.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(Array(output) == value, "value #\(index)")
    }
}
