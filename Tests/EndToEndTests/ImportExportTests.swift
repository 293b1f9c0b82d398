import Foundation
import Testing
import TestSupport

@Suite("secrets:import, secrets:export", .noValuesOnStderr)
struct ImportExportTests {
    @Test func importDotenvCreatesThenUpdatesOnlyChangedValues() throws {
        let vault = try Vault()
        let file = try vault.directory.write("app.env", """
            # comment
            export DATABASE_URL=postgres://u:p@db/app
            API_KEY='import-SECRET-api'
            MULTI="line one\\nline two"

            """)
        let first = try vault.run(["secrets:import", file, "--env", "staging", "--tags", "imported"])
        expectSuccess(first)
        #expect(first.stdoutText == "Imported 3 secrets into staging: 3 created, 0 updated, 0 unchanged\n")
        #expect(try vault.value("DATABASE_URL", ["--env", "staging"]) == bytes("postgres://u:p@db/app"))
        #expect(try vault.value("API_KEY", ["--env", "staging"]) == bytes("import-SECRET-api"))
        #expect(try vault.value("MULTI", ["--env", "staging"]) == bytes("line one\nline two"))
        let listed = try objects(vault.json(["secrets:list", "--env", "staging"]))
        #expect(listed.allSatisfy { $0.strings("tags") == ["imported"] })
        #expect(try versions(vault, "API_KEY", ["--env", "staging"]).map { $0.string("action") } == ["import"])

        try vault.directory.write("app.env", """
            export DATABASE_URL=postgres://u:p@db/app
            API_KEY='import-SECRET-api-rotated'
            MULTI="line one\\nline two"
            """)
        let second = try object(vault.json(["secrets:import", file, "--env", "staging"]))
        #expect(second.strings("created") == [])
        #expect(second.strings("updated") == ["API_KEY"])
        #expect(Set(second.strings("unchanged") ?? []) == ["DATABASE_URL", "MULTI"])
        #expect(try versions(vault, "API_KEY", ["--env", "staging"]).count == 2)
        #expect(try versions(vault, "DATABASE_URL", ["--env", "staging"]).count == 1, "an unchanged value gets no new version")
        #expect(try versions(vault, "MULTI", ["--env", "staging"]).count == 1)
        #expect(try vault.value("API_KEY", ["--env", "staging"]) == bytes("import-SECRET-api-rotated"))
    }

    @Test func importJSONObject() throws {
        let vault = try Vault()
        let file = try vault.directory.write("secrets.json", #"{"JSON_A": "json-SECRET-a", "JSON_B": "line\nbreak \"q\" $x", "JSON_NUL": "a\u0000b"}"#)
        let result = try vault.run(["secrets:import", file])
        expectSuccess(result)
        #expect(result.stdoutText == "Imported 3 secrets into development: 3 created, 0 updated, 0 unchanged\n")
        #expect(try vault.value("JSON_A") == bytes("json-SECRET-a"))
        #expect(try vault.value("JSON_B") == bytes("line\nbreak \"q\" $x"))
        #expect(try vault.value("JSON_NUL") == [0x61, 0x00, 0x62])
    }

    @Test func importFromStdin() throws {
        let vault = try Vault()
        expectSuccess(try vault.run(["secrets:import", "-", "--env", "production"], stdin: .text("STDIN_IMPORT=stdin-import-SECRET\n")))
        #expect(try vault.value("STDIN_IMPORT", ["--env", "production"]) == bytes("stdin-import-SECRET"))
    }

    @Test(arguments: [
        ("bad-name.env", "GOOD_ONE=bad-import-SECRET-1\nbad/name=bad-import-SECRET-2\n", "bad-name.env:2: invalid secret name 'bad/name'"),
        ("unterminated.env", "GOOD_ONE=bad-import-SECRET-1\nOTHER=\"bad-import-SECRET-2\n", "unterminated.env:2: unterminated double quote for OTHER"),
        ("twice.env", "GOOD_ONE=bad-import-SECRET-1\nGOOD_ONE=bad-import-SECRET-2\n", "twice.env:2: GOOD_ONE is set twice (first on line 1)"),
        ("bad-name.json", #"{"GOOD_ONE": "bad-import-SECRET-1", "bad name": "bad-import-SECRET-2"}"#, "invalid secret name 'bad name'"),
        ("nul-name.json", #"{"GOOD_ONE": "bad-import-SECRET-1", "A\u0000B": "bad-import-SECRET-2"}"#, "invalid secret name 'A\\x00B'"),
        ("number.json", #"{"GOOD_ONE": "bad-import-SECRET-1", "NUMBER": 12345678}"#, "the value of NUMBER in"),
        ("array.json", #"["GOOD_ONE", "bad-import-SECRET-1"]"#, "array.json:1: expected NAME=value"),
        ("array-as-json.json", #"["GOOD_ONE", "bad-import-SECRET-1"]"#, "array-as-json.json is JSON but not an object"),
        ("broken.json", #"{"GOOD_ONE": "bad-import-SECRET-1""#, "broken.json: invalid JSON at line 1"),
    ])
    func importIsAllOrNothing(file: String, contents: String, message: String) throws {
        let vault = try Vault()
        try vault.create("GOOD_ONE", "existing-SECRET-value")
        let before = try vault.snapshot()
        let path = try vault.directory.write(file, contents)
        // Without --format, a file is JSON when it starts with '{'.
        let format = file.hasSuffix("-as-json.json") ? ["--format", "json"] : []
        let result = try vault.run(["secrets:import", path] + format)
        expectFailure(result, 2, message)
        expectNoLeak("bad-import-SECRET", result)
        #expect(try vault.snapshot() == before)
        #expect(try vault.value("GOOD_ONE") == bytes("existing-SECRET-value"))
    }

    @Test func importRefusesAnOverlongValueAndChangesNothing() throws {
        let vault = try Vault()
        let before = try vault.snapshot()
        let path = try vault.directory.write("big.env", "SMALL=ok-value\nBIG=" + String(repeating: "x", count: 122_881) + "\n")
        let result = try vault.run(["secrets:import", path])
        expectFailure(result, 2, "the value of BIG is 122881 bytes; the limit is 122880 bytes")
        #expect(try vault.snapshot() == before)
    }

    @Test func exportFormatsQuoteValuesToReadBackExactly() throws {
        let vault = try Vault()
        try vault.create("PLAIN", "plain-value_1.2")
        try vault.create("SPACED", "two words")
        try vault.create("NEWLINES", "a\nb\r\n")
        try vault.create("QUOTES", "it's \"quoted\" $HOME `x` \\")
        try vault.create("EMPTY", "")
        let dotenv = try vault.run(["secrets:export"])
        expectSuccess(dotenv)
        #expect(dotenv.stdoutText == """
            EMPTY=
            NEWLINES="a\\nb\\r\\n"
            PLAIN=plain-value_1.2
            QUOTES="it's \\"quoted\\" \\$HOME `x` \\\\"
            SPACED='two words'

            """)
        let shell = try vault.run(["secrets:export", "--format", "shell"])
        expectSuccess(shell)
        #expect(shell.stdoutText == """
            export EMPTY=''
            export NEWLINES='a
            b\r
            '
            export PLAIN='plain-value_1.2'
            export QUOTES='it'\\''s "quoted" $HOME `x` \\'
            export SPACED='two words'

            """)
        let json = try vault.run(["secrets:export", "--format", "json"])
        expectSuccess(json)
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout)) as? [String: String])
        #expect(parsed == ["PLAIN": "plain-value_1.2", "SPACED": "two words", "NEWLINES": "a\nb\r\n",
                           "QUOTES": "it's \"quoted\" $HOME `x` \\", "EMPTY": ""])
    }

    @Test func dotenvExportImportsBackIntoAnotherEnvironmentByteForByte() throws {
        let vault = try Vault()
        let values: [String: [UInt8]] = [
            "D_PLAIN": bytes("abc123"), "D_SPACES": bytes("  padded value  "), "D_HASH": bytes("#not a comment"),
            "D_INLINE_HASH": bytes("value #tail"), "D_NEWLINE": bytes("one\ntwo\n"), "D_CR": bytes("\r\nx\r"),
            "D_QUOTES": bytes("'single' \"double\""), "D_DOLLAR": bytes("$(rm -rf /) ${HOME} $x"), "D_EQUALS": bytes("a=b==c"),
            "D_BACKSLASH": bytes("\\n is not a newline\\"), "D_TAB": bytes("\ttab\t"), "D_EMPTY": [],
            "D_UTF8": bytes("päßwörd ✓"), "D_NOT_UTF8": [0xFF, 0xFE, 0x80, 0x41],
        ]
        for (name, value) in values { try vault.create(name, value) }
        let export = try vault.run(["secrets:export", "--format", "dotenv"])
        expectSuccess(export)
        let file = try vault.directory.write("exported.env", export.stdout)
        let imported = try vault.run(["secrets:import", file, "--env", "staging", "--format", "dotenv"])
        expectSuccess(imported)
        #expect(imported.stdoutText == "Imported \(values.count) secrets into staging: \(values.count) created, 0 updated, 0 unchanged\n")
        for (name, value) in values {
            #expect(try vault.value(name, ["--env", "staging"]) == value, "\(name)")
        }
        // Importing the same export again over the originals changes nothing.
        let again = try object(vault.json(["secrets:import", file]))
        #expect(again.strings("updated") == [])
        #expect(again.strings("unchanged")?.count == values.count)
    }

    @Test func shellExportSourcedByShGivesTheExactBytes() throws {
        let vault = try Vault()
        let values: [String: [UInt8]] = [
            "S_NEWLINE": bytes("one\ntwo\n\n"), "S_QUOTES": bytes("it's \"q\" '' '"), "S_DOLLAR": bytes("$(echo pwned) `id` $HOME"),
            "S_EQUALS": bytes("=a=b="), "S_BACKSLASH": bytes("\\\\x\\"), "S_EMPTY": [], "S_NOT_UTF8": [0xFF, 0xFE],
            "S_GLOB": bytes("* ? [a-z]"),
        ]
        for (name, value) in values { try vault.create(name, value) }
        let export = try vault.run(["secrets:export", "--format", "shell"])
        expectSuccess(export)
        let script = try vault.directory.write("exported.sh", export.stdout)
        for (name, value) in values {
            let sourced = try vault.shell(". \(shellQuoted(script)) && printf '%s' \"$\(name)\"")
            expectSuccess(sourced)
            #expect(sourced.stdout == value, "\(name)")
        }
        // `export` makes them visible to child processes too.
        let child = try vault.shell(". \(shellQuoted(script)) && sh -c 'printf %s \"$S_DOLLAR\"'")
        #expect(child.stdout == values["S_DOLLAR"])
    }

    @Test func jsonExportParsesBackAndImportsIntoAnotherEnvironment() throws {
        let vault = try Vault()
        let values: [String: String] = ["J_A": "json \"quoted\"\n\t", "J_B": "päß ✓", "J_EMPTY": "", "J_NUL": "a\u{0}b"]
        for (name, value) in values { try vault.create(name, value) }
        let export = try vault.run(["secrets:export", "--format", "json"])
        expectSuccess(export)
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(export.stdout)) as? [String: String])
        #expect(parsed == values)
        let file = try vault.directory.write("exported.json", export.stdout)
        expectSuccess(try vault.run(["secrets:import", file, "--env", "production"]))
        for (name, value) in values { #expect(try vault.value(name, ["--env", "production"]) == bytes(value), "\(name)") }
    }

    @Test func exportFiltersByEnvironmentAndTagsAndLeavesOutExpired() throws {
        let vault = try Vault()
        try vault.create("E_API", "e-api", ["--tags", "api"])
        try vault.create("E_DB", "e-db", ["--tags", "db"])
        try vault.create("E_PROD", "e-prod", ["--env", "production", "--tags", "api"])
        try vault.create("E_OLD", "e-old", ["--tags", "api", "--expires-in", "1s"])
        Thread.sleep(forTimeInterval: 1.5)
        let api = try vault.run(["secrets:export", "--tags", "api"])
        #expect(api.status == 0)
        #expect(api.stdoutText == "E_API=e-api\n")
        #expect(api.stderr == "vsecure: left out 1 expired secret(s); --include-expired exports them\n")
        let withExpired = try vault.run(["secrets:export", "--tags", "api", "--include-expired"])
        expectSuccess(withExpired)
        #expect(withExpired.stdoutText == "E_API=e-api\nE_OLD=e-old\n")
        let production = try vault.run(["secrets:export", "--env", "production", "--format", "shell"])
        expectSuccess(production)
        #expect(production.stdoutText == "export E_PROD='e-prod'\n")
        let empty = try vault.run(["secrets:export", "--env", "staging", "--format", "json"])
        expectSuccess(empty)
        #expect(empty.stdoutText == "{}\n")
    }
}
