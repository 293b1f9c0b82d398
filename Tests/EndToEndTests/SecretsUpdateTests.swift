import Foundation
import Testing
import TestSupport

@Suite("secrets:update", .noValuesOnStderr)
struct SecretsUpdateTests {
    @Test func aNewValueMakesANewVersion() throws {
        let vault = try Vault()
        try vault.create("ROTATED", "rotated-SECRET-v1", ["--tags", "api"])
        let result = try vault.run(["secrets:update", "ROTATED", "-"], stdin: .text("rotated-SECRET-v2"))
        expectSuccess(result)
        #expect(result.stdoutText.hasPrefix("Updated ROTATED in development: version 1 → 2\n"))
        #expect(cardFields(result.stdoutText)["version"] == "2")
        #expect(cardFields(result.stdoutText)["tags"] == "api")
        #expect(!result.stdoutText.contains("rotated-SECRET"))
        #expect(try vault.value("ROTATED") == bytes("rotated-SECRET-v2"))
        #expect(try vault.value("ROTATED", ["--version", "1"]) == bytes("rotated-SECRET-v1"))
        #expect(try versions(vault, "ROTATED").map { $0.string("action") } == ["create", "update"])
    }

    @Test func valueInArgvAndNameEqualsValueWork() throws {
        let vault = try Vault()
        try vault.create("ARGV_UPDATE", "argv-update-SECRET-1")
        let positional = try vault.run(["secrets:update", "ARGV_UPDATE", "argv-update-SECRET-2"])
        #expect(positional.status == 0)
        #expect(positional.stderr == argvHint)
        let joined = try vault.run(["secrets:update", "ARGV_UPDATE=argv-update-SECRET-3", "--quiet"])
        expectSuccess(joined)
        #expect(try vault.value("ARGV_UPDATE") == bytes("argv-update-SECRET-3"))
        #expect(try versions(vault, "ARGV_UPDATE").count == 3)
    }

    @Test func attributeOnlyUpdatesMakeNoVersion() throws {
        let vault = try Vault()
        try vault.create("STRIPE_KEY", "stripe-SECRET")
        let start = Date()
        let result = try vault.run(["secrets:update", "STRIPE_KEY", "--expires-in", "90d"])
        expectSuccess(result)
        #expect(result.stdoutText.hasPrefix("Updated the attributes of STRIPE_KEY in development (still version 1)\n"))
        #expect(cardFields(result.stdoutText)["expires"]?.hasSuffix("(expires in 90d)") == true
                || cardFields(result.stdoutText)["expires"]?.hasSuffix("(expires in 89d)") == true, "\(result.stdoutText)")
        #expect(try versions(vault, "STRIPE_KEY").count == 1)
        let secret = try objects(vault.json(["secrets:list"]))[0]
        #expect(secret.int("version") == 1)
        let expiresAt = try #require(date(secret.string("expiresAt")))
        #expect(abs(expiresAt.timeIntervalSince(start) - 90 * 86_400) <= 5)
        #expect(try vault.value("STRIPE_KEY") == bytes("stripe-SECRET"))
    }

    @Test func tagAndMetadataEditsApplyInPlace() throws {
        let vault = try Vault()
        try vault.create("EDITED", "edited-SECRET", ["--tags", "a,b", "--metadata", "k1=v1", "--metadata", "k2=v2"])
        expectSuccess(try vault.run(["secrets:update", "EDITED", "--add-tag", "c,d", "--remove-tag", "a",
                                     "--remove-metadata", "k1", "--metadata", "k3=x = y", "--metadata", "k2=changed"]))
        var secret = try objects(vault.json(["secrets:list"]))[0]
        #expect(secret.strings("tags") == ["b", "c", "d"])
        #expect(secret["metadata"] as? [String: String] == ["k2": "changed", "k3": "x = y"])
        #expect(secret.int("version") == 1)

        expectSuccess(try vault.run(["secrets:update", "EDITED", "--tags", "only,new"]))
        secret = try objects(vault.json(["secrets:list"]))[0]
        #expect(secret.strings("tags") == ["new", "only"])
        #expect(try versions(vault, "EDITED").count == 1)
        #expect(try vault.value("EDITED") == bytes("edited-SECRET"))
    }

    @Test func noExpiryRemovesTheExpiry() throws {
        let vault = try Vault()
        try vault.create("TEMPORARY", "temporary-SECRET", ["--expires-in", "1d"])
        expectSuccess(try vault.run(["secrets:update", "TEMPORARY", "--no-expiry"]))
        let secret = try objects(vault.json(["secrets:list"]))[0]
        #expect(secret["expiresAt"] is NSNull)
        expectFailure(try vault.run(["secrets:update", "TEMPORARY", "--no-expiry", "--expires-in", "1d"]), 2,
                      "--no-expiry cannot be combined with --expires-in or --expires-at")
    }

    @Test func valueAndAttributesTogetherMakeOneVersion() throws {
        let vault = try Vault()
        try vault.create("BOTH", "both-SECRET-1")
        let result = try vault.run(["secrets:update", "BOTH", "-", "--add-tag", "rotated"], stdin: .text("both-SECRET-2"))
        expectSuccess(result)
        let all = try versions(vault, "BOTH")
        #expect(all.count == 2)
        #expect(all[1].strings("tags") == ["rotated"])
        #expect(try vault.value("BOTH") == bytes("both-SECRET-2"))
    }

    @Test func ifVersionMismatchChangesNothing() throws {
        let vault = try Vault()
        try vault.create("CAS", "cas-SECRET-1")
        try vault.update("CAS", "cas-SECRET-2")
        let before = try vault.snapshot()
        let result = try vault.run(["secrets:update", "CAS", "-", "--if-version", "1", "--add-tag", "x"], stdin: .text("cas-SECRET-3"))
        #expect(result.status == 4)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == """
            vsecure: error: CAS in development is at version 2, not 1; nothing was changed
            vsecure: hint: read the current version with `vsecure secrets:get CAS --env development --output json` and retry

            """)
        expectNoLeak("cas-SECRET-3", result)
        #expect(try vault.snapshot() == before)
        #expect(try vault.value("CAS") == bytes("cas-SECRET-2"))
        #expect(try versions(vault, "CAS").count == 2)

        let attributesOnly = try vault.run(["secrets:update", "CAS", "--if-version", "7", "--add-tag", "y"])
        expectFailure(attributesOnly, 4, "CAS in development is at version 2, not 7; nothing was changed")
        #expect(try vault.snapshot() == before)
    }

    @Test func ifVersionMatchUpdates() throws {
        let vault = try Vault()
        try vault.create("CAS_OK", "cas-ok-SECRET-1")
        expectSuccess(try vault.run(["secrets:update", "CAS_OK", "-", "--if-version", "1"], stdin: .text("cas-ok-SECRET-2")))
        #expect(try vault.value("CAS_OK") == bytes("cas-ok-SECRET-2"))
    }

    @Test func updatingAMissingSecretIsNotFound() throws {
        let vault = try Vault()
        let result = try vault.run(["secrets:update", "NOPE", "-"], stdin: .text("nope-SECRET"))
        expectFailure(result, 3, "no secret NOPE in development")
        expectNoLeak("nope-SECRET", result)
    }
}
