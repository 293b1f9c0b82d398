import Foundation
import Testing
import TestSupport

/// A vault on a small tmpfs that is then filled to the last block: writes fail with exit 9 and
/// a message naming the full disk, reads (old versions included) go on with a warning about the
/// audit entry that could not be written (docs/audit.md), and once space is freed the vault
/// passes its integrity check with nothing half-written.
@Suite("Disk full: a local vault", .serialized,
       .enabled(if: SmallDisk.canMount, "mounting a tmpfs needs root (CAP_SYS_ADMIN); SmallDisk.whyNot has the reason"))
struct DiskFullTests {
    struct Setup {
        let directory: TemporaryDirectory
        let disk: SmallDisk
        let env: [String: String]

        init() throws {
            directory = try TemporaryDirectory(prefix: "vsecure-diskfull")
            disk = try SmallDisk(at: directory.file("disk"), megabytes: 3)
            var env = minimalEnvironment(home: directory.path)
            env["VSECURE_VAULT"] = disk.path + "/vault.db"
            env["VSECURE_KEY_FILE"] = disk.path + "/vault.key"
            env["VSECURE_ACTOR"] = "tester@diskfull"
            self.env = env
        }

        func run(_ arguments: [String], stdin: StandardInput = .null) throws -> ProcessResult {
            try runProcess(Binaries.vsecure, arguments, environment: env, stdin: stdin, workingDirectory: directory.path, timeout: 60)
        }

        func launch(_ arguments: [String]) throws -> ProcessResult {
            try runProcess(Binaries.vsecureRun, arguments, environment: env, workingDirectory: directory.path, timeout: 60)
        }
    }

    /// Exit 9, nothing on stdout, and the message says the disk is full (not a bare "I/O error").
    func expectDiskFull(_ result: ProcessResult, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status == 9, "\(what): \(result)", sourceLocation: sourceLocation)
        #expect(result.stdout.isEmpty, "\(what): \(result)", sourceLocation: sourceLocation)
        #expect(result.stderr.hasPrefix("vsecure: error: "), "\(what): \(result)", sourceLocation: sourceLocation)
        #expect(result.stderr.contains("is full"), "\(what) does not name the full disk: \(result.stderr)", sourceLocation: sourceLocation)
        expectNoLeak("diskfull-SECRET", result, sourceLocation: sourceLocation)
    }

    @Test("create, update and import fail with exit 9; old versions stay readable; the vault is intact after freeing space",
          .timeLimit(.minutes(3)))
    func localVaultOnAFullDisk() throws {
        let setup = try Setup()
        defer { setup.disk.unmount() }
        #expect(try setup.run(["vault:init"]).status == 0)
        #expect(try setup.run(["secrets:create", "DB_PASSWORD", "-", "--quiet"], stdin: .text("diskfull-SECRET-v1")).status == 0)
        #expect(try setup.run(["secrets:update", "DB_PASSWORD", "-", "--quiet"], stdin: .text("diskfull-SECRET-v2")).status == 0)
        let dotenv = try setup.directory.write("import.env", "IMPORTED_A=diskfull-SECRET-a\nDB_PASSWORD=diskfull-SECRET-v3\n")
        let manifest = try setup.directory.write("vsecure.yml", "version: 1\nsecrets: [DB_PASSWORD]\n")

        try setup.disk.fill()
        #expect(setup.disk.availableBytes == 0)

        // Writes: refused, naming the problem.
        expectDiskFull(try setup.run(["secrets:create", "NEW_SECRET", "-"], stdin: .text("diskfull-SECRET-new")), "secrets:create")
        try setup.disk.fill()
        expectDiskFull(try setup.run(["secrets:update", "DB_PASSWORD", "-"], stdin: .text("diskfull-SECRET-v3")), "secrets:update")
        try setup.disk.fill()
        expectDiskFull(try setup.run(["secrets:import", dotenv]), "secrets:import")
        try setup.disk.fill()

        // Reads, while the disk is still full: the value, and a warning that the audit entry
        // was not written (a local log is a record, not a barrier).
        for (arguments, value) in [(["secrets:get", "DB_PASSWORD"], "diskfull-SECRET-v2"),
                                   (["secrets:get", "DB_PASSWORD", "--version", "1"], "diskfull-SECRET-v1")] {
            let read = try setup.run(arguments)
            #expect(read.status == 0, "\(arguments) on a full disk: \(read)")
            #expect(read.stdoutText == value, "\(arguments): \(read)")
            #expect(read.stderr.contains("vsecure: warning: the audit log was not written"), "\(arguments): \(read.stderr)")
            try setup.disk.fill()
        }
        let versions = try setup.run(["secrets:versions", "DB_PASSWORD", "--output", "json"])
        #expect(versions.status == 0, "\(versions)")
        // The launcher reads too, and starts the program (its receipt is only a warning).
        let launched = try setup.launch(["--manifest", manifest, "--", "/usr/bin/printenv", "DB_PASSWORD"])
        #expect(launched.status == 0, "vsecure-run on a full disk: \(launched)")
        #expect(launched.stdoutText == "diskfull-SECRET-v2\n")
        #expect(setup.disk.availableBytes == 0 || setup.disk.availableBytes < 64 * 1024, "the disk stayed (nearly) full throughout")

        // Space again: the vault checks out, and nothing of the refused writes is there.
        setup.disk.free()
        let check = try setup.run(["vault:status", "--check", "--output", "json"])
        #expect(check.status == 0, "\(check)")
        let status = try JSONSerialization.jsonObject(with: Data(check.stdout)) as? [String: Any]
        #expect(status?["integrity"] as? String == "ok", "\(check)")
        if Vault.hasSQLite3 {
            let sqlite = try runProcess(Vault.sqlite3, [setup.disk.path + "/vault.db", "PRAGMA integrity_check"], environment: setup.env)
            #expect(sqlite.stdoutText == "ok\n", "\(sqlite)")
        }
        let history = try setup.run(["secrets:versions", "DB_PASSWORD", "--output", "json"])
        let listed = ((try? JSONSerialization.jsonObject(with: Data(history.stdout))) as? [String: Any])?["versions"] as? [[String: Any]]
        #expect(listed?.compactMap { ($0["version"] as? NSNumber)?.intValue } == [1, 2], "\(history)")
        #expect(try setup.run(["secrets:get", "NEW_SECRET"]).status == 3)
        #expect(try setup.run(["secrets:get", "IMPORTED_A"]).status == 3, "the import was all or nothing")
        #expect(try setup.run(["secrets:get", "DB_PASSWORD"]).stdoutText == "diskfull-SECRET-v2")
        // And it takes writes again.
        let update = try setup.run(["secrets:update", "DB_PASSWORD", "-", "--quiet"], stdin: .text("diskfull-SECRET-v3"))
        #expect(update.status == 0, "\(update)")
        #expect(try setup.run(["secrets:get", "DB_PASSWORD", "--version", "3"]).stdoutText == "diskfull-SECRET-v3")
        let verify = try setup.run(["audit:verify"])
        #expect(verify.status == 0, "the audit chain survived the refused appends: \(verify)")
    }
}
