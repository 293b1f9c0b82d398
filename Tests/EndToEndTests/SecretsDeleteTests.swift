import Foundation
import Testing
import TestSupport

@Suite("secrets:delete", .noValuesOnStderr)
struct SecretsDeleteTests {
    @Test func withoutATerminalDeleteNeedsYes() throws {
        let vault = try Vault()
        try vault.create("CONFIRM", "confirm-SECRET")
        let before = try vault.snapshot()
        let result = try vault.run(["secrets:delete", "CONFIRM"])
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == """
            vsecure: error: refusing to delete CONFIRM in development without confirmation
            vsecure: hint: pass --yes in scripts

            """)
        #expect(try vault.snapshot() == before)
        #expect(try vault.value("CONFIRM") == bytes("confirm-SECRET"))
    }

    @Test func aDeletedSecretIsNotServedOrListed() throws {
        let vault = try Vault()
        try vault.create("DELETED", "deleted-SECRET")
        try vault.create("KEPT", "kept-SECRET")
        let result = try vault.run(["secrets:delete", "DELETED", "--yes"])
        expectSuccess(result)
        #expect(result.stdoutText == "Deleted DELETED in development\n")

        for command in [["secrets:get", "DELETED"], ["secrets:versions", "DELETED"], ["secrets:diff", "DELETED"],
                        ["secrets:rollback", "DELETED"], ["secrets:get", "DELETED", "--version", "1"]] {
            let refused = try vault.run(command)
            expectFailure(refused, 3, "no secret DELETED in development")
            expectNoLeak("deleted-SECRET", refused)
        }
        let update = try vault.run(["secrets:update", "DELETED", "-"], stdin: .text("revived-SECRET"))
        expectFailure(update, 3, "no secret DELETED in development")
        #expect(try objects(vault.json(["secrets:list", "--include-expired"])).compactMap { $0.string("name") } == ["KEPT"])
        let export = try vault.run(["secrets:export"])
        #expect(export.stdoutText == "KEPT=kept-SECRET\n")
        let status = try object(vault.json(["vault:status"]))
        #expect(status.int("secrets") == 1)
        #expect(status.int("deletedSecrets") == 1)
        #expect(status.int("versions") == 2)

        let again = try vault.run(["secrets:delete", "DELETED", "--yes"])
        expectFailure(again, 3, "DELETED in development is already deleted")
        #expect(again.stderr.contains("--purge"))
    }

    @Test func purgeDestroysEveryVersion() throws {
        let vault = try Vault()
        try vault.create("PURGED", "purged-SECRET-1")
        try vault.update("PURGED", "purged-SECRET-2")
        let result = try vault.run(["secrets:delete", "PURGED", "--yes", "--purge"])
        expectSuccess(result)
        #expect(result.stdoutText == "Purged PURGED in development: every version is destroyed\n")
        let status = try object(vault.json(["vault:status"]))
        #expect(status.int("secrets") == 0)
        #expect(status.int("deletedSecrets") == 0)
        #expect(status.int("versions") == 0)
        expectFailure(try vault.run(["secrets:get", "PURGED", "--version", "1"]), 3, "no secret PURGED in development")
        // The plaintext is gone from the files too (values are encrypted anyway; this checks nothing
        // was kept in clear). The name may stay in freed pages; the value never was there.
        for file in try FileManager.default.contentsOfDirectory(atPath: vault.directory.path) where file.hasPrefix("vault.db") {
            #expect(!contains(try vault.directory.read(file), bytes("purged-SECRET")))
        }
        // The name is free again, starting over at version 1.
        try vault.create("PURGED", "purged-SECRET-new")
        #expect(try versions(vault, "PURGED").map { $0.int("version") } == [1])
    }

    @Test func purgeAlsoRemovesASoftDeletedSecret() throws {
        let vault = try Vault()
        try vault.create("TWICE", "twice-SECRET")
        expectSuccess(try vault.run(["secrets:delete", "TWICE", "--yes"]))
        expectSuccess(try vault.run(["secrets:delete", "TWICE", "--yes", "--purge"]))
        #expect(try object(vault.json(["vault:status"])).int("deletedSecrets") == 0)
        expectFailure(try vault.run(["secrets:delete", "NEVER_WAS", "--yes"]), 3, "no secret NEVER_WAS in development")
    }
}
