import Foundation
import Testing
import TestSupport

/// Launch receipts on the local vault: every launch records one `accessed` entry with the names
/// and versions served and the run id the program sees; without the entry nothing starts.
@Suite("Launch receipts")
struct LaunchReceiptTests {
    func auditEntries(_ fixture: LaunchFixture, _ filters: [String] = []) throws -> [[String: Any]] {
        let json = try fixture.vault.json(["audit:logs", "--limit", "1000"] + filters)
        return try #require(json as? [[String: Any]])
    }

    @Test("one entry per launch: names, versions, the run id the program got, the actor; the chain verifies")
    func receipt() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("DB_PASSWORD", "one")
        try fixture.vault.update("DB_PASSWORD", "two", ["--env", "production"])
        try fixture.secret("API_KEY", "k")
        try fixture.manifest("version: 1\nsecrets: [DB_PASSWORD, API_KEY]\n")
        let before = try auditEntries(fixture).count
        let run = try fixture.childValue("VSECURE_RUN_ID", ["--env", "production"])
        #expect(run.status == 0, "\(run)")
        let runID = run.stdoutText
        #expect(runID.hasPrefix("run_") && runID.count == 20)
        let entries = try auditEntries(fixture)
        #expect(entries.count == before + 1)
        let receipt = try #require(entries.last)
        #expect(receipt["action"] as? String == "accessed")
        #expect(receipt["resource"] as? String == "secrets")
        #expect(receipt["environment"] as? String == "production")
        #expect((receipt["actor"] as? [String: Any])?["user"] as? String == "tester@e2e")
        let items = try #require(receipt["items"] as? [[String: Any]])
        let served = Dictionary(uniqueKeysWithValues: items.map { ($0["name"] as! String, $0["version"] as! Int) })
        #expect(served == ["DB_PASSWORD": 2, "API_KEY": 1])
        let details = try #require(receipt["details"] as? [String: String])
        #expect(details["runId"] == runID)
        #expect(details["command"] == "/usr/bin/printenv")
        // Findable by the run id's secret name, and the log is intact.
        #expect(try auditEntries(fixture, ["--name", "API_KEY"]).contains { ($0["details"] as? [String: String])?["runId"] == runID })
        let verify = try fixture.vault.run(["audit:verify"])
        #expect(verify.status == 0, "\(verify)")

        // Another launch gets another run id; a parent's run id is recorded, not passed on.
        let second = try fixture.childValue("VSECURE_RUN_ID", ["--env", "production"], env: ["VSECURE_RUN_ID": runID])
        #expect(second.status == 0 && second.stdoutText != runID && second.stdoutText.hasPrefix("run_"))
        let last = try #require(try auditEntries(fixture).last)
        #expect((last["details"] as? [String: String])?["parentRunId"] == runID)
    }

    @Test("without USER or VSECURE_ACTOR, the receipt names the effective user, as the password database has it, at this host")
    func actorWithoutUser() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("A", "1")
        try fixture.manifest("version: 1\nsecrets: [A]\n")
        let result = try fixture.launch(["--env", "production", "--", "/bin/true"], env: ["VSECURE_ACTOR": ""])
        #expect(result.status == 0, "\(result)")
        let user = try #require(getpwuid(geteuid()).flatMap { $0.pointee.pw_name.map { String(cString: $0) } })
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let receipt = try #require(try auditEntries(fixture).last)
        #expect((receipt["actor"] as? [String: Any])?["user"] as? String == "\(user)@\(String(cString: host))")
    }

    @Test("a program that execve refuses (a missing interpreter, not an executable) gets a second entry: accessed failure, the same run id")
    func execFailure() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("A", "1")
        try fixture.manifest("version: 1\nsecrets: [A]\n")
        let badInterpreter = fixture.directory.file("bad-interpreter.sh")
        try "#!/nonexistent/interpreter\n".write(toFile: badInterpreter, atomically: true, encoding: .utf8)
        let notBinary = fixture.directory.file("not-binary")
        try "\u{7F}ELF not really\n".write(toFile: notBinary, atomically: true, encoding: .utf8)
        for (program, status) in [(badInterpreter, Int32(127)), (notBinary, Int32(126))] {
            #expect(chmod(program, 0o755) == 0)
            let before = try auditEntries(fixture).count
            let result = try fixture.launch(["--env", "production", "--", program])
            #expect(result.status == status, "\(program): \(result)")
            let entries = try auditEntries(fixture)
            #expect(entries.count == before + 2, "\(program): \(entries.suffix(2))")
            let (served, failed) = (entries[entries.count - 2], entries[entries.count - 1])
            let servedDetails = served["details"] as? [String: String], failedDetails = failed["details"] as? [String: String]
            #expect(served["result"] as? String == "success" && failed["result"] as? String == "failure", "\(program): \(entries.suffix(2))")
            #expect(failed["action"] as? String == "accessed" && failedDetails?["reason"] == "exec_failed"
                    && failedDetails?["runId"] != nil && failedDetails?["runId"] == servedDetails?["runId"], "\(program): \(failed)")
        }
        #expect(try fixture.vault.run(["audit:verify"]).status == 0)
    }

    @Test("--dry-run serves nothing and records nothing")
    func dryRun() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("A", "1")
        try fixture.manifest("version: 1\nsecrets: [A]\n")
        let before = try auditEntries(fixture).count
        let result = try fixture.launch(["--env", "production", "--dry-run"])
        #expect(result.status == 0, "\(result)")
        #expect(try auditEntries(fixture).count == before)
    }

    @Test("a receipt that cannot be written is a warning, not a stopped program (a local log is a record)")
    func unwritable() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("A", "1")
        try fixture.manifest("version: 1\nsecrets: [A]\n")
        let marker = fixture.directory.file("started")
        let log = fixture.directory.file("no-such-dir/audit.db")
        let result = try fixture.launch(["--env", "production", "--", "/usr/bin/touch", marker], env: ["VSECURE_AUDIT_LOG": log])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.contains("vsecure-run: warning: the launch receipt was not written to the audit log \(log)"), "\(result)")
        #expect(result.stderr.contains("launching anyway"))
        #expect(FileManager.default.fileExists(atPath: marker))
    }

    @Test("an audit log whose anchor does not check out takes no receipt: the launch goes on, the receipt waits in its file, verify exits 8")
    func tampered() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("A", "1")
        try fixture.manifest("version: 1\nsecrets: [A]\n")
        _ = try fixture.launch(["--env", "production", "--", "/bin/true"])
        let before = try auditEntries(fixture).count
        // Another key in place of the log's: as if the anchor had been rewritten without it.
        try Data((0..<32).map { _ in UInt8.random(in: 0...255) }).write(to: URL(fileURLWithPath: fixture.directory.file("vault.audit.key")))
        // The launch only appends to the receipts file; it does not read the log.
        let result = try fixture.launch(["--env", "production", "--", "/bin/true"])
        #expect(result.status == 0, "\(result)")
        let receipts = fixture.directory.file("vault.audit.receipts")
        #expect(try String(contentsOfFile: receipts, encoding: .utf8).split(separator: "\n").count == 2)
        let verify = try fixture.vault.run(["audit:verify"])
        #expect(verify.status == 8 && verify.stderr.contains("entry 1 was edited"), "\(verify)")
        #expect(verify.stderr.contains("the key"), "\(verify)")
        // The receipt could not join a log whose end cannot be trusted: a warning says so, it
        // stays in its file, and nothing was added to the log.
        #expect(verify.stderr.contains("launch receipts waiting in") && verify.stderr.contains("anchor"), "\(verify)")
        #expect(try String(contentsOfFile: receipts, encoding: .utf8).split(separator: "\n").count == 2)
        #expect(try auditEntries(fixture).count == before)
    }

    @Test("a secret cannot set VSECURE_RUN_ID, not even with --allow-override")
    func runIDProtected() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("VSECURE_RUN_ID", "forged")
        try fixture.manifest("version: 1\nsecrets: [VSECURE_RUN_ID]\n")
        for extra in [[], ["--allow-override", "VSECURE_RUN_ID"]] {
            let result = try fixture.launch(["--env", "production"] + extra + ["--", "/bin/true"])
            #expect(result.status == 11, "\(result)")
            #expect(result.stderr.contains("VSECURE_RUN_ID"))
            #expect(!result.stderr.contains("--allow-override"), "no hint that an override would do: \(result.stderr)")
        }
    }
}
