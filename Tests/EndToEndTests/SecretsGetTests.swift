import Foundation
import Testing
import TestSupport

@Suite("secrets:get", .noValuesOnStderr)
struct SecretsGetTests {
    @Test func printsTheRawValueWithoutANewlineWhenStdoutIsAPipe() throws {
        let vault = try Vault()
        try vault.create("RAW", "raw-SECRET-value")
        let result = try vault.run(["secrets:get", "RAW"])
        expectSuccess(result)
        #expect(result.stdout == bytes("raw-SECRET-value"))
        // Also through a shell pipe into another program.
        let piped = try vault.shell("\"$VSECURE\" secrets:get RAW | od -An -c | tr -s ' '")
        expectSuccess(piped)
        #expect(piped.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "r a w - S E C R E T - v a l u e")
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/dev/full")))
    func aFailedWriteToStdoutIsAnError() throws {
        let vault = try Vault()
        try vault.create("UNWRITTEN", "unwritten-SECRET")
        // Fixed in Sources/vsecure/Support/Console.swift and VSecure.swift: write errors on stdout
        // were ignored and these exited 0, so `secrets:get K > file` on a full disk looked saved.
        for command in ["secrets:get UNWRITTEN", "secrets:export", "secrets:list --output json"] {
            let result = try vault.shell("\"$VSECURE\" \(command) > /dev/full")
            #expect(result.status == 9, "\(command): \(result)")
            #expect(result.stderr == """
                vsecure: error: cannot write the output: No space left on device
                vsecure: hint: the output is incomplete; check where stdout goes (a full disk, a closed pipe)

                """, "\(command)")
        }
    }

    @Test func versionSelectsAnOlderValue() throws {
        let vault = try Vault()
        try vault.create("VERSIONED", "versioned-SECRET-1")
        try vault.update("VERSIONED", "versioned-SECRET-2")
        try vault.update("VERSIONED", "versioned-SECRET-3")
        #expect(try vault.value("VERSIONED", ["--version", "1"]) == bytes("versioned-SECRET-1"))
        #expect(try vault.value("VERSIONED", ["--version", "2"]) == bytes("versioned-SECRET-2"))
        #expect(try vault.value("VERSIONED") == bytes("versioned-SECRET-3"))
        let missing = try vault.run(["secrets:get", "VERSIONED", "--version", "9"])
        expectFailure(missing, 3, "VERSIONED in development has no version 9 (current: 3)")
        expectFailure(try vault.run(["secrets:get", "VERSIONED", "--version", "0"]), 2, "--version must be 1 or more")
    }

    @Test func jsonOutputHasTheValueAndItsAttributes() throws {
        let vault = try Vault()
        try vault.create("JSON_GET", "json-get-SECRET \"quoted\"\n", ["--tags", "api", "--metadata", "owner=me", "--env", "staging"])
        try vault.update("JSON_GET", "json-get-SECRET-2", ["--env", "staging"])
        let json = try object(vault.json(["secrets:get", "JSON_GET", "--env", "staging", "--version", "1"]))
        #expect(json.string("name") == "JSON_GET")
        #expect(json.string("environment") == "staging")
        #expect(json.int("version") == 1)
        #expect(json.int("currentVersion") == 2)
        #expect(json.string("value") == "json-get-SECRET \"quoted\"\n")
        #expect(json.string("valueEncoding") == "utf8")
        #expect(json.strings("tags") == ["api"])
        #expect(json["metadata"] as? [String: String] == ["owner": "me"])
        #expect(json["expired"] as? Bool == false)
    }

    @Test func jsonOutputGivesNonUTF8ValuesAsBase64() throws {
        let vault = try Vault()
        try vault.create("BINARY", [0xFF, 0xFE, 0x00, 0x41])
        let json = try object(vault.json(["secrets:get", "BINARY"]))
        #expect(json["value"] == nil)
        #expect(json.string("valueBase64") == "//4AQQ==")
        #expect(json.string("valueEncoding") == "base64")
    }

    @Test func anExpiredSecretIsAnErrorNamingItAndWhen() throws {
        let vault = try Vault()
        try vault.create("SHORT_LIVED", "short-lived-SECRET", ["--expires-in", "1s"])
        let expiresAt = try #require(objects(vault.json(["secrets:list", "--include-expired"])).first?.string("expiresAt"))
        Thread.sleep(forTimeInterval: 1.5)
        let result = try vault.run(["secrets:get", "SHORT_LIVED"])
        #expect(result.status == 5)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == """
            vsecure: error: SHORT_LIVED in development expired at \(expiresAt)
            vsecure: hint: --allow-expired reads it anyway
            vsecure: hint: renew it with `vsecure secrets:update SHORT_LIVED --expires-in DURATION` (or --no-expiry); a new value alone keeps the expiry

            """)
        expectNoLeak("short-lived-SECRET", result)
        // The refusal is recorded as a failed read, never as a read.
        let entries = try objects(vault.json(["audit:logs", "--name", "SHORT_LIVED", "--action", "accessed"]))
        #expect(entries.map { $0["result"] as? String } == ["failure"], "\(entries)")
        #expect(entries.first.flatMap { ($0["details"] as? [String: Any])?["reason"] as? String } == "expired", "\(entries)")
        #expect(try vault.run(["secrets:get", "SHORT_LIVED", "--output", "json"]).status == 5)

        let allowed = try vault.run(["secrets:get", "SHORT_LIVED", "--allow-expired"])
        expectSuccess(allowed)
        #expect(allowed.stdout == bytes("short-lived-SECRET"))
        let json = try object(vault.json(["secrets:get", "SHORT_LIVED", "--allow-expired"]))
        #expect(json["expired"] as? Bool == true)
        #expect(json.string("value") == "short-lived-SECRET")

        // As the hint says: a new value alone keeps the (past) expiry; --expires-in renews it.
        // (Fixed in Sources/vsecure/Commands/SecretsGet.swift: the hint used to say a new value renews it.)
        try vault.update("SHORT_LIVED", "short-lived-SECRET-2")
        expectFailure(try vault.run(["secrets:get", "SHORT_LIVED"]), 5, "SHORT_LIVED in development expired at \(expiresAt)")
        expectSuccess(try vault.run(["secrets:update", "SHORT_LIVED", "--expires-in", "1h"]))
        #expect(try vault.value("SHORT_LIVED") == bytes("short-lived-SECRET-2"))
    }

    @Test func anUnknownSecretIsNotFoundWithAHint() throws {
        let vault = try Vault()
        let result = try vault.run(["secrets:get", "UNKNOWN"])
        #expect(result.status == 3)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == """
            vsecure: error: no secret UNKNOWN in development
            vsecure: hint: `vsecure secrets:list --env development` shows the secrets of that environment

            """)
        expectFailure(try vault.run(["secrets:get", "UNKNOWN", "--env", "qa"]), 2, "unknown environment 'qa'")
    }
}
