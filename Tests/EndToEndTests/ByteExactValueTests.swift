import Foundation
import Testing
import TestSupport

/// A value that must round-trip byte for byte (or be refused by a documented rule).
struct ExactValue: Sendable, CustomTestStringConvertible {
    var label: String
    var bytes: [UInt8]
    var testDescription: String { label }

    var hasNUL: Bool { bytes.contains(0) }
    var isUTF8: Bool { String(validating: bytes, as: UTF8.self) != nil }
}

/// Deterministic pseudo-random bytes (xorshift), so a failure can be reproduced.
func pseudoRandomBytes(count: Int, seed: UInt64, avoidingNUL: Bool = false) -> [UInt8] {
    var state = seed
    var out: [UInt8] = []
    out.reserveCapacity(count)
    while out.count < count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        let byte = UInt8(truncatingIfNeeded: state >> 24)
        if avoidingNUL && byte == 0 { continue }
        out.append(byte)
    }
    return out
}

let exactValues: [ExactValue] = [
    ExactValue(label: "empty", bytes: []),
    ExactValue(label: "a NUL byte alone", bytes: [0x00]),
    ExactValue(label: "a NUL byte inside", bytes: bytes("before\0after")),
    ExactValue(label: "a newline", bytes: bytes("\n")),
    ExactValue(label: "trailing newlines", bytes: bytes("value\n\n")),
    ExactValue(label: "CRLF", bytes: bytes("line1\r\nline2\r\n")),
    ExactValue(label: "quotes", bytes: bytes(#"it's "double" and 'single' \" \' "#)),
    ExactValue(label: "command substitution", bytes: bytes("$(touch /tmp/vsecure-pwned) `id` ${HOME} $PATH")),
    ExactValue(label: "equals signs", bytes: bytes("=a==b=")),
    ExactValue(label: "surrounding whitespace", bytes: bytes("  \t padded \t  ")),
    ExactValue(label: "invalid UTF-8", bytes: [0xFF, 0xFE]),
    ExactValue(label: "UTF-8 text", bytes: bytes("pässwörd ✓ 🔑")),
    ExactValue(label: "100 KiB binary", bytes: pseudoRandomBytes(count: 100 * 1024, seed: 0x9E37_79B9_7F4A_7C15)),
    ExactValue(label: "100 KiB binary without NUL", bytes: pseudoRandomBytes(count: 100 * 1024, seed: 42, avoidingNUL: true)),
]

@Suite("Values are bytes: exact round trips", .noValuesOnStderr)
struct ByteExactValueTests {
    @Test(arguments: exactValues)
    func roundTripsThroughCreateGetVersionsAndRollback(value: ExactValue) throws {
        let vault = try Vault()
        let file = try vault.directory.write("value.bin", value.bytes)
        var results: [ProcessResult] = []

        results.append(try vault.run(["secrets:create", "VALUE_FILE", "--from-file", file]))
        results.append(try vault.run(["secrets:create", "VALUE_STDIN", "-"], stdin: .bytes(value.bytes)))
        results.append(try vault.run(["secrets:create", "VALUE_PIPE"], stdin: .bytes(value.bytes)))
        var names = ["VALUE_FILE", "VALUE_STDIN", "VALUE_PIPE"]
        if !value.hasNUL && value.bytes.first != UInt8(ascii: "-") {
            // In argv too (which cannot hold NUL, and where a leading - would be an option). The shell keeps every byte, trailing newlines included.
            results.append(try vault.shell("""
                v="$(cat value.bin; printf x)"; v="${v%x}"
                "$VSECURE" secrets:create VALUE_ARGV "$v" --quiet
                """))
            names.append("VALUE_ARGV")
        }
        for result in results { expectSuccess(result) }
        for name in names {
            let got = try vault.run(["secrets:get", name])
            expectSuccess(got)
            #expect(got.stdout == value.bytes, "\(name): \(got.stdout.count) bytes back for \(value.bytes.count)")
            #expect(try versions(vault, name)[0].int("valueLength") == value.bytes.count)
        }
        let prints = try names.map { try versions(vault, $0)[0].string("fingerprint") }
        #expect(Set(prints).count == 1, "one value, one fingerprint")

        // A different value on top, then a rollback: the old bytes come back exactly.
        try vault.update("VALUE_FILE", "something else")
        let rollback = try vault.run(["secrets:rollback", "VALUE_FILE"])
        expectSuccess(rollback)
        results.append(rollback)
        #expect(try vault.value("VALUE_FILE") == value.bytes)
        #expect(try vault.value("VALUE_FILE", ["--version", "1"]) == value.bytes)
        let history = try versions(vault, "VALUE_FILE")
        #expect(history.map { $0.int("valueLength") } == [value.bytes.count, 14, value.bytes.count])
        #expect(history[0].string("fingerprint") == history[2].string("fingerprint"))

        // JSON output carries it as text or base64.
        let json = try object(vault.json(["secrets:get", "VALUE_FILE"]))
        if value.isUTF8 {
            #expect(json.string("value").map { Array($0.utf8) } == value.bytes)
        } else {
            #expect(json.string("valueBase64").flatMap { Data(base64Encoded: $0) }.map { Array($0) } == value.bytes)
        }
        for result in results { expectNoLeak(value.bytes, result) }
    }

    @Test(arguments: exactValues)
    func roundTripsThroughExportAndImportOrIsRefusedByRule(value: ExactValue) throws {
        let vault = try Vault()
        try vault.create("VALUE_A", value.bytes)
        try vault.create("VALUE_B", value.bytes)

        // dotenv: NUL cannot be carried; everything else reads back exactly.
        let dotenv = try vault.run(["secrets:export", "--format", "dotenv"])
        expectNoLeak(value.bytes, dotenv)
        if value.hasNUL {
            expectFailure(dotenv, 2, "VALUE_A holds a NUL byte, which a .env file cannot carry")
        } else {
            expectSuccess(dotenv)
            let file = try vault.directory.write("export.env", dotenv.stdout)
            let imported = try vault.run(["secrets:import", file, "--env", "staging"])
            expectSuccess(imported)
            expectNoLeak(value.bytes, imported)
            #expect(try vault.value("VALUE_A", ["--env", "staging"]) == value.bytes)
            #expect(try vault.value("VALUE_B", ["--env", "staging"]) == value.bytes)
        }

        // shell: NUL cannot be carried; otherwise `sh` reads back exactly the bytes.
        let shell = try vault.run(["secrets:export", "--format", "shell"])
        expectNoLeak(value.bytes, shell)
        if value.hasNUL {
            expectFailure(shell, 2, "VALUE_A holds a NUL byte, which a shell variable cannot carry")
        } else {
            expectSuccess(shell)
            let script = try vault.directory.write("export.sh", shell.stdout)
            let sourced = try vault.shell(". \(shellQuoted(script)) && printf '%s' \"$VALUE_A\"")
            expectSuccess(sourced)
            #expect(sourced.stdout == value.bytes)
        }

        // json: bytes that are not UTF-8 cannot be carried; text (NUL included) reads back exactly.
        let json = try vault.run(["secrets:export", "--format", "json"])
        expectNoLeak(value.bytes, json)
        if !value.isUTF8 {
            expectFailure(json, 2, "VALUE_A is not UTF-8 text, which JSON cannot carry")
        } else {
            expectSuccess(json)
            let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout)) as? [String: String])
            #expect(parsed["VALUE_A"].map { Array($0.utf8) } == value.bytes)
            let file = try vault.directory.write("export.json", json.stdout)
            let imported = try vault.run(["secrets:import", file, "--env", "production"])
            expectSuccess(imported)
            #expect(try vault.value("VALUE_A", ["--env", "production"]) == value.bytes)
        }
    }
}
