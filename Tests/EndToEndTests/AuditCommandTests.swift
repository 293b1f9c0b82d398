import Foundation
import Testing
import TestSupport

/// `vsecure audit:*` through the real binary: on a local vault (entries written by the other
/// commands) and against a live server on loopback.
@Suite("audit:logs, audit:export, audit:verify", .noValuesOnStderr)
struct AuditCommandTests {
    func entries(_ vault: Vault, _ arguments: [String] = [], env: [String: String] = [:]) throws -> [[String: Any]] {
        let result = try vault.run(["audit:logs", "--limit", "1000", "--output", "json"] + arguments, env: env)
        #expect(result.status == 0, "\(result)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [[String: Any]])
    }

    @Test("the lifecycle commands record who did what; filters, export formats and verify work")
    func localLifecycle() throws {
        let vault = try Vault()
        try vault.create("API_KEY", "SECRET-one-0001", ["--env", "production"])
        _ = try vault.value("API_KEY", ["--env", "production"])
        try vault.update("API_KEY", "SECRET-two-0002", ["--env", "production"])
        expectSuccess(try vault.run(["secrets:rollback", "API_KEY", "--env", "production"]))
        expectSuccess(try vault.run(["secrets:list"]))
        expectSuccess(try vault.run(["secrets:delete", "API_KEY", "--env", "production", "--yes"]))
        let all = try entries(vault)
        #expect(all.map { $0["action"] as? String } == ["created", "accessed", "updated", "rolled_back", "deleted"])
        #expect(all.allSatisfy { ($0["actor"] as? [String: Any])?["user"] as? String == "tester@e2e" })
        #expect(all.map { $0["seq"] as? Int } == [1, 2, 3, 4, 5])
        #expect(all[3]["version"] as? Int == 3)

        #expect(try entries(vault, ["--action", "accessed"]).count == 1)
        #expect(try entries(vault, ["--name", "API_KEY", "--since", "1h"]).count == 5)
        #expect(try entries(vault, ["--since", "2000-01-01T00:00:00Z", "--until", "2000-01-02T00:00:00Z"]).isEmpty)
        #expect(try entries(vault, ["--limit", "2"]).map { $0["seq"] as? Int } == [4, 5])

        let table = try vault.run(["audit:logs"])
        #expect(table.status == 0 && table.stdoutText.hasPrefix("SEQ  TIME"), "\(table)")
        #expect(table.stdoutText.contains("production/API_KEY v1"))

        let jsonl = try vault.run(["audit:export", "--format", "jsonl"])
        #expect(jsonl.status == 0)
        let lines = jsonl.stdoutText.split(separator: "\n")
        #expect(lines.count == 5)
        #expect(lines.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) is [String: Any] })
        let csv = try vault.run(["audit:export", "--format", "csv", "--action", "updated"])
        #expect(csv.stdoutText.split(separator: "\n").count == 2, "\(csv)")
        #expect(csv.stdoutText.hasPrefix("seq,time,actor,key_id,resource,action,result"))

        let verify = try vault.run(["audit:verify"])
        expectSuccess(verify)
        #expect(verify.stdoutText.hasPrefix("intact: 5 entries; head 5 "))
        let verifyJSON = try #require(try vault.json(["audit:verify"]) as? [String: Any])
        #expect(verifyJSON["intact"] as? Bool == true && verifyJSON["headSeq"] as? Int == 5)
    }

    @Test("bad filters are usage errors naming the flag; changing nothing")
    func badFilters() throws {
        let vault = try Vault()
        try vault.create("A", "SECRET-value-1")
        expectFailure(try vault.run(["audit:logs", "--action", "stolen"]), 2, "--action: unknown action 'stolen'")
        expectFailure(try vault.run(["audit:logs", "--since", "yesterday"]), 2, "--since")
        expectFailure(try vault.run(["audit:logs", "--result", "maybe"]), 2, "--result")
        expectFailure(try vault.run(["audit:export", "--format", "xml"]), 2, "xml")
        #expect(try entries(vault).count == 1)
    }

    @Test("a local read whose entry cannot be written still returns the value, with a warning")
    func unwritableLogWarns() throws {
        let vault = try Vault()
        try vault.create("A", "SECRET-value-2")
        let elsewhere = vault.directory.file("missing-dir/audit.db")
        let result = try vault.run(["secrets:get", "A"], env: ["VSECURE_AUDIT_LOG": elsewhere])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdoutText == "SECRET-value-2")
        #expect(result.stderr.contains("vsecure: warning: the audit log was not written"), "\(result)")
        #expect(result.stderr.contains("vsecure: hint: the operation went on"))
    }

    @Test("a tampered log: audit:verify names the entry and exits 8")
    func tamperedLocal() throws {
        let vault = try Vault()
        try vault.create("A", "SECRET-value-3")
        try vault.update("A", "SECRET-value-4")
        try vault.update("A", "SECRET-value-5")
        // Cut the newest entry off the file: a truncation the anchor catches. Without the
        // sqlite3 CLI, overwrite the log's key instead (every entry then fails).
        if Vault.hasSQLite3 {
            let sql = try runProcess(Vault.sqlite3, [vault.directory.file("vault.audit.db"), "DELETE FROM audit_entries WHERE seq = 3"],
                                     environment: minimalEnvironment(home: vault.home))
            #expect(sql.status == 0, "\(sql)")
            expectFailure(try vault.run(["audit:verify"]), 8, "the log was cut: it ends at entry 2, but entry 3 was written")
        } else {
            try Data(repeating: 1, count: 32).write(to: URL(fileURLWithPath: vault.directory.file("vault.audit.key")))
            expectFailure(try vault.run(["audit:verify"]), 8, "entry 1 was edited")
        }
    }

    @Test("against a server: the same commands read the server's log; reads are recorded with the key")
    func remote() throws {
        let store = try LiveStore()
        let server = try LiveServer(store: store)
        let vault = try Vault()
        let env = ["VSECURE_ENDPOINT": server.baseURL, "VSECURE_API_KEY": store.adminToken]
        expectSuccess(try vault.run(["secrets:create", "REMOTE_KEY", "-", "--env", "production", "--quiet"],
                                    stdin: .bytes(Array("SECRET-remote-1".utf8)), env: env))
        let got = try vault.run(["secrets:get", "REMOTE_KEY", "--env", "production"], env: env)
        #expect(got.status == 0 && got.stdoutText == "SECRET-remote-1", "\(got)")
        let found = try entries(vault, ["--name", "REMOTE_KEY"], env: env)
        let actions = found.map { $0["action"] as? String }
        #expect(actions.contains("created") && actions.contains("accessed"), "\(found)")
        let read = try #require(found.first { $0["action"] as? String == "accessed" })
        #expect((read["actor"] as? [String: Any])?["keyId"] as? String != nil)
        #expect((read["request"] as? [String: Any])?["requestId"] as? String != nil)
        let verify = try vault.run(["audit:verify"], env: env)
        #expect(verify.status == 0 && verify.stdoutText.hasPrefix("intact: "), "\(verify)")
    }
}
