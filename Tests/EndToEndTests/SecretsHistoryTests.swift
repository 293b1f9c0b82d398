import Foundation
import Testing
import TestSupport

@Suite("secrets:versions, secrets:diff, secrets:rollback", .noValuesOnStderr)
struct SecretsHistoryTests {
    @Test func versionsListActionsActorsLengthsAndFingerprints() throws {
        let vault = try Vault()
        try vault.create("HISTORY", "history-SECRET-one")
        try vault.update("HISTORY", "history-SECRET-second")
        expectSuccess(try vault.run(["secrets:rollback", "HISTORY"]))
        let all = try versions(vault, "HISTORY")
        #expect(all.map { $0.int("version") } == [1, 2, 3])
        #expect(all.map { $0.string("action") } == ["create", "update", "rollback"])
        #expect(all.map { $0.string("actor") } == ["tester@e2e", "tester@e2e", "tester@e2e"])
        #expect(all.map { $0.int("valueLength") } == [18, 21, 18])
        #expect(all[0]["sourceVersion"] is NSNull)
        #expect(all[2].int("sourceVersion") == 1)
        let prints = all.compactMap { $0.string("fingerprint") }
        #expect(prints.count == 3)
        #expect(prints.allSatisfy { $0.range(of: "^[0-9a-f]{16}$", options: .regularExpression) != nil })
        #expect(prints[0] == prints[2], "equal values have equal fingerprints")
        #expect(prints[0] != prints[1])

        let text = try vault.run(["secrets:versions", "HISTORY"])
        expectSuccess(text)
        let lines = text.stdoutText.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        #expect(lines.count == 4)
        #expect(lines[0] == "VERSION CREATED ACTION ACTOR BYTES FINGERPRINT")
        #expect(lines[1].hasPrefix("1 ") && lines[1].hasSuffix(" create tester@e2e 18 \(prints[0])"), "\(lines[1])")
        #expect(lines[2].hasPrefix("2 ") && lines[2].hasSuffix(" update tester@e2e 21 \(prints[1])"), "\(lines[2])")
        #expect(lines[3].hasPrefix("3 (current) ") && lines[3].hasSuffix(" rollback to v1 tester@e2e 18 \(prints[2])"), "\(lines[3])")
        #expect(!text.stdoutText.contains("history-SECRET"))
    }

    @Test func equalValuesInDifferentSecretsShareAFingerprint() throws {
        let vault = try Vault()
        try vault.create("FIRST", "shared-SECRET-value")
        try vault.create("SECOND", "shared-SECRET-value")
        try vault.create("THIRD", "other-SECRET-value")
        let first = try versions(vault, "FIRST")[0].string("fingerprint")
        #expect(first != nil)
        #expect(try versions(vault, "SECOND")[0].string("fingerprint") == first)
        #expect(try versions(vault, "THIRD")[0].string("fingerprint") != first)
    }

    @Test func diffComparesThePreviousVersionWithTheCurrentOneByDefault() throws {
        let vault = try Vault()
        try vault.create("DIFFED", "diff-SECRET-one", ["--tags", "a", "--metadata", "owner=alice", "--expires-at", "2098-01-01T00:00:00Z"])
        try vault.update("DIFFED", "diff-SECRET-second")
        expectSuccess(try vault.run(["secrets:update", "DIFFED", "--add-tag", "b", "--remove-tag", "a", "--metadata", "owner=bob",
                                     "--metadata", "team=payments", "--expires-at", "2099-01-01T00:00:00Z"]))
        let all = try versions(vault, "DIFFED")
        let (print1, print2) = (all[0].string("fingerprint")!, all[1].string("fingerprint")!)
        let result = try vault.run(["secrets:diff", "DIFFED"])
        expectSuccess(result)
        #expect(result.stdoutText == """
            DIFFED in development: version 1 → 2
              value:    changed (15 → 18 bytes; fingerprint \(print1) → \(print2))
              tags:     +b -a
              metadata: owner: alice → bob, +team=payments
              expiry:   2098-01-01T00:00:00Z → 2099-01-01T00:00:00Z

            """)
        #expect(!result.stdoutText.contains("diff-SECRET"))

        let json = try object(vault.json(["secrets:diff", "DIFFED"]))
        #expect(json.int("from") == 1 && json.int("to") == 2)
        #expect(json["valueChanged"] as? Bool == true)
        #expect(json.int("fromLength") == 15 && json.int("toLength") == 18)
        #expect(json.strings("tagsAdded") == ["b"])
        #expect(json.strings("tagsRemoved") == ["a"])
        #expect(json.string("expiresAtFrom") == "2098-01-01T00:00:00Z")
        #expect(json.string("expiresAtTo") == "2099-01-01T00:00:00Z")
        let metadata = try objects(json["metadataChanged"] as Any)
        #expect(metadata.map { $0.string("key") } == ["owner", "team"])
        #expect(metadata[1]["from"] is NSNull)
    }

    @Test func diffFromAndToPickTheVersions() throws {
        let vault = try Vault()
        try vault.create("PICKED", "picked-SECRET-a")
        try vault.update("PICKED", "picked-SECRET-b")
        try vault.update("PICKED", "picked-SECRET-a")
        let same = try object(vault.json(["secrets:diff", "PICKED", "--from", "1", "--to", "3"]))
        #expect(same["valueChanged"] as? Bool == false)
        let text = try vault.run(["secrets:diff", "PICKED", "--from", "1", "--to", "3"])
        #expect(text.stdoutText.contains("  value:    unchanged (fingerprint "))
        let older = try object(vault.json(["secrets:diff", "PICKED", "--to", "2"]))
        #expect(older.int("from") == 1 && older.int("to") == 2)
        #expect(older["valueChanged"] as? Bool == true)
        expectFailure(try vault.run(["secrets:diff", "PICKED", "--from", "7"]), 3, "PICKED in development has no version 7 (current: 3)")
    }

    @Test func diffOfASingleVersionHasNothingToCompare() throws {
        let vault = try Vault()
        try vault.create("SINGLE", "single-SECRET")
        let result = try vault.run(["secrets:diff", "SINGLE"])
        expectFailure(result, 3, "SINGLE in development has no version 0 (current: 1)")
        #expect(result.stderr.contains("vsecure: hint: it has only one version; there is nothing to compare\n"))
    }

    @Test func revealWarnsOnStderrAndPrintsALineDiff() throws {
        let vault = try Vault()
        try vault.create("PEM", "-----BEGIN-----\nline-A\nline-B\n-----END-----\n")
        try vault.update("PEM", "-----BEGIN-----\nline-A\nline-C\n-----END-----\n")
        let result = try vault.run(["secrets:diff", "PEM", "--reveal"])
        #expect(result.status == 0)
        #expect(result.stderr == "vsecure: warning: --reveal prints secret values of PEM to stdout\n")
        let parts = result.stdoutText.components(separatedBy: "  expiry:   unchanged (never)\n")
        #expect(parts.count == 2)
        #expect(parts.last == """
              -----BEGIN-----
              line-A
            - line-B
            + line-C
              -----END-----

            """)
    }

    @Test func rollbackDefaultsToThePreviousVersionAndKeepsHistory() throws {
        let vault = try Vault()
        try vault.create("ROLLED", "rolled-SECRET-1", ["--tags", "keep"])
        try vault.update("ROLLED", "rolled-SECRET-2")
        let result = try vault.run(["secrets:rollback", "ROLLED"])
        expectSuccess(result)
        #expect(result.stdoutText == "Rolled back ROLLED in development: version 2 → 3 (the value of version 1)\n")
        #expect(try vault.value("ROLLED") == bytes("rolled-SECRET-1"))
        #expect(try vault.value("ROLLED", ["--version", "2"]) == bytes("rolled-SECRET-2"))
        #expect(try vault.value("ROLLED", ["--version", "1"]) == bytes("rolled-SECRET-1"))
        let all = try versions(vault, "ROLLED")
        #expect(all.map { $0.string("action") } == ["create", "update", "rollback"])
        #expect(try objects(vault.json(["secrets:list"]))[0].strings("tags") == ["keep"])
    }

    @Test func rollbackToAChosenVersion() throws {
        let vault = try Vault()
        try vault.create("CHOSEN", "chosen-SECRET-1")
        try vault.update("CHOSEN", "chosen-SECRET-2")
        try vault.update("CHOSEN", "chosen-SECRET-3")
        let json = try object(vault.json(["secrets:rollback", "CHOSEN", "--version", "1"]))
        #expect(json.int("previousVersion") == 3)
        #expect(json.int("restoredVersion") == 1)
        #expect(json.int("version") == 4)
        #expect(try vault.value("CHOSEN") == bytes("chosen-SECRET-1"))
        #expect(try versions(vault, "CHOSEN").last?.int("sourceVersion") == 1)

        expectFailure(try vault.run(["secrets:rollback", "CHOSEN", "--version", "4"]), 4, "CHOSEN in development is already at version 4")
        expectFailure(try vault.run(["secrets:rollback", "CHOSEN", "--version", "9"]), 3, "CHOSEN in development has no version 9")
        #expect(try versions(vault, "CHOSEN").count == 4)
    }

    @Test func rollbackOfASingleVersionIsRefused() throws {
        let vault = try Vault()
        try vault.create("ONLY_ONE", "only-one-SECRET")
        expectFailure(try vault.run(["secrets:rollback", "ONLY_ONE"]), 3,
                      "ONLY_ONE in development has only version 1; there is nothing to roll back to")
    }
}
