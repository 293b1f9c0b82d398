import Foundation
import Testing
import TestSupport

/// The `vsecure` rotation options and commands against a live `vsecure-server` on loopback,
/// beside the same commands on a local vault (docs/rotation.md, docs/remote.md): same output,
/// same exit codes, once ids, times, actors and fingerprints are masked. The server's own
/// schedule is off (`--rotation-interval 0`) unless a test says otherwise, so only the commands
/// rotate.
@Suite("vsecure rotation against a server", .serialized)
struct RemoteRotationCLITests {
    typealias Pair = RemoteCLITests.Pair

    static let quietSchedule = ["--rotation-interval", "0"]

    /// A directory of allowed rotation programs, `bin/sh` (a link to /bin/sh), and the scripts it
    /// runs beside it.
    static func commandDirectory() throws -> (directory: TemporaryDirectory, allowed: String, good: String, bad: String) {
        let directory = try TemporaryDirectory(prefix: "vsecure-rotators")
        let allowed = directory.file("bin")
        try FileManager.default.createDirectory(atPath: allowed, withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: allowed + "/sh", withDestinationPath: "/bin/sh")
        let good = try directory.write("good.sh", "read old\nprintf 'new-%s-%s' \"$VSECURE_SECRET_VERSION\" \"${#old}\"\n")
        let bad = try directory.write("bad.sh", "cat >/dev/null\nexit 3\n")
        return (directory, allowed, good, bad)
    }

    @Test("rotation options, secrets:rotate, rotation:status and rotation:run answer alike, local and remote")
    func sameAnswers() throws {
        let pair = try Pair(serverArguments: Self.quietSchedule)
        try pair.both(["secrets:create", "TOKEN", "--env", "production", "--rotation-period", "30d", "--rotation-notify-before", "7d",
                       "--rotation-generate", "length=24,charset=hex"], stdin: .text("v-token-one"))
        try pair.both(["secrets:create", "MANUAL", "--rotation-period", "52w", "--rotation-notify-before", "14d", "--output", "json"],
                      stdin: .text("v-manual-one"))
        try pair.both(["secrets:create", "EXPIRING", "--expires-in", "3d"], stdin: .text("v-expiring-one"))
        try pair.both(["secrets:create", "PLAIN", "--env", "staging"], stdin: .text("v-plain-one"))
        // A policy alone (no new version), then a value and a policy in one update.
        try pair.both(["secrets:update", "PLAIN", "--env", "staging", "--rotation-period", "90d"])
        try pair.both(["secrets:update", "PLAIN", "--env", "staging", "--rotation-period", "90d",
                       "--rotation-generate", "length=16,charset=base64url", "--output", "json"], stdin: .text("v-plain-two"))
        try pair.both(["secrets:create", "BAD", "--rotation-generate", "length=16"], stdin: .text("v-bad"), status: 2)
        try pair.both(["secrets:get", "BAD"], status: 3)

        try pair.both(["rotation:status"])
        try pair.both(["rotation:status", "--output", "json"])
        try pair.both(["rotation:status", "--env", "production"])
        try pair.both(["rotation:status", "--due-within", "10d"])
        try pair.both(["rotation:status", "--env", "bogus"], status: 2)

        try pair.both(["secrets:rotate", "TOKEN", "--env", "production"])
        try pair.both(["secrets:rotate", "TOKEN", "--env", "production", "--output", "json"])
        let rotated = try pair.remote(["secrets:get", "TOKEN", "--env", "production"])
        #expect(rotated.status == 0 && rotated.stdoutText.utf8.count == 24, "\(rotated)")
        #expect(rotated.stdoutText.utf8.allSatisfy { Array("0123456789abcdef".utf8).contains($0) }, "\(rotated)")
        try pair.both(["secrets:versions", "TOKEN", "--env", "production"])
        try pair.both(["secrets:rotate", "PLAIN", "--env", "staging"])

        // What the local vault refuses, the server refuses with the same words and codes.
        try pair.both(["secrets:rotate", "MANUAL"], status: 2)
        try pair.both(["secrets:rotate", "EXPIRING"], status: 2)
        try pair.both(["secrets:rotate", "NOPE"], status: 3)
        try pair.both(["secrets:rotate", "TOKEN", "--env", "bogus"], status: 2)
        try pair.both(["secrets:update", "PLAIN", "--env", "staging", "--no-rotation"])
        try pair.both(["secrets:rotate", "PLAIN", "--env", "staging"], status: 2)

        try pair.both(["rotation:run"])
        try pair.both(["rotation:run", "--dry-run", "--output", "json"])
        try pair.both(["rotation:status", "--output", "json"])
        for secret in ["TOKEN", "MANUAL", "EXPIRING", "PLAIN"] {
            let listed = try pair.remote(["rotation:status", "--output", "json"])
            #expect(!listed.stdoutText.contains("v-\(secret.lowercased())"), "a value in rotation:status: \(listed)")
        }
    }

    @Test("rotation:run rotates the due secrets once, lists manual ones, and the server checks the due time itself")
    func runDue() throws {
        let pair = try Pair(serverArguments: Self.quietSchedule)
        try pair.both(["secrets:create", "DUE", "--env", "production", "--rotation-period", "5s", "--rotation-generate", "length=32"],
                      stdin: .text("v-due-one"))
        try pair.both(["secrets:create", "DUE_MANUAL", "--rotation-period", "5s"], stdin: .text("v-due-manual"))
        try pair.both(["secrets:create", "LATER", "--rotation-period", "30d", "--rotation-generate", "length=32"], stdin: .text("v-later"))
        try pair.both(["rotation:run"])
        Thread.sleep(forTimeInterval: 6)
        try pair.both(["rotation:run", "--dry-run"])
        let run = try pair.both(["rotation:run"])
        #expect(run.stdoutText.contains("rotated production/DUE: version 1 → 2\n"), "\(run)")
        #expect(run.stdoutText.contains("skipped development/DUE_MANUAL: manual policy, due since "), "\(run)")
        #expect(!run.stdoutText.contains("LATER"), "\(run)")
        try pair.both(["rotation:run", "--output", "json", "--env", "production"])
        try pair.both(["secrets:versions", "DUE", "--env", "production"])

        // The client's clock says everything is due; the server's says not: nothing changes.
        let future = try pair.remote(["rotation:run", "--env", "production"], env: ["VSECURE_TEST_NOW": "2099-01-01T00:00:00Z"])
        #expect(future.status == 0, "\(future)")
        #expect(future.stdoutText.hasPrefix("skipped production/DUE: not due until "), "\(future)")
        #expect(try pair.remote(["secrets:versions", "DUE", "--env", "production", "--output", "json"]).stdoutText.components(separatedBy: "\"rotate\"").count == 2)

        // Three runs at once against the server rotate a due secret once.
        Thread.sleep(forTimeInterval: 6)
        var env = pair.remoteEnvironment
        env["VSECURE"] = Binaries.vsecure
        let outputs = pair.config.file("runs")
        try FileManager.default.createDirectory(atPath: outputs, withIntermediateDirectories: false)
        let concurrent = try runProcess("/bin/sh", ["-c", """
            for i in 1 2 3; do "$VSECURE" rotation:run --env production > "\(outputs)/$i" 2>&1 & done; wait
            """], environment: env, timeout: 120)
        #expect(concurrent.status == 0, "\(concurrent)")
        var rotations = 0
        for index in 1...3 {
            let text = try String(contentsOfFile: "\(outputs)/\(index)", encoding: .utf8)
            rotations += text.components(separatedBy: "rotated production/DUE: version 2 → 3").count - 1
            #expect(!text.contains("failed"), "\(text)")
        }
        #expect(rotations == 1)
        let versions = try pair.remote(["secrets:versions", "DUE", "--env", "production"])
        #expect(versions.stdoutText.components(separatedBy: " rotate ").count - 1 == 2, "\(versions)")
    }

    @Test("rotation commands run on the server, only from the directory its operator allows; a failure is exit 15 and recorded")
    func commands() throws {
        let (directory, allowed, good, bad) = try Self.commandDirectory()
        defer { withExtendedLifetime(directory) {} }
        let pair = try Pair(serverArguments: Self.quietSchedule + ["--allow-rotation-commands", allowed])
        let server = pair.server
        func remote(_ arguments: [String], stdin: StandardInput = .null) throws -> ProcessResult {
            try pair.remote(arguments, stdin: stdin)
        }
        func both(_ arguments: [String], stdin: StandardInput = .null, status: Int32 = 0,
                  sourceLocation: SourceLocation = #_sourceLocation) throws {
            try pair.both(arguments, stdin: stdin, status: status, sourceLocation: sourceLocation)
        }
        try both(["secrets:create", "DB", "--rotation-period", "30d", "--rotation-command", "\(allowed)/sh \(good)"],
                 stdin: .text("v-db-secret"))
        try both(["secrets:rotate", "DB"])
        try both(["secrets:get", "DB"])
        #expect(try remote(["secrets:get", "DB"]).stdoutText == "new-1-11")
        try both(["secrets:create", "FAILS", "--rotation-period", "30d", "--rotation-command", "\(allowed)/sh", "--rotation-arg", bad],
                 stdin: .text("v-fails-secret"))
        try both(["secrets:rotate", "FAILS"], status: 15)
        try both(["rotation:status", "--env", "development"])
        let failed = try remote(["secrets:rotate", "FAILS", "--output", "json"])
        #expect(failed.status == 15)
        #expect(failed.stderr.hasPrefix("vsecure: error: rotating FAILS in development failed: the rotation command \(allowed)/sh exited with status 3; nothing was changed\nvsecure: hint: "), "\(failed)")
        #expect(!failed.stderr.contains("v-fails-secret") && !failed.stdoutText.contains("v-fails-secret"))
        let status = try remote(["rotation:status", "--output", "json"])
        #expect(status.stdoutText.contains("\"state\": \"failing\""), "\(status)")
        #expect(status.stdoutText.contains("\"count\": 2"), "\(status)")

        // A program outside the allowed directory: the server refuses it, exit 16, nothing created.
        let outside = try remote(["secrets:create", "OUTSIDE", "--rotation-period", "30d", "--rotation-command", "/bin/sh \(good)"],
                                 stdin: .text("v-outside-secret"))
        #expect(outside.status == 16, "\(outside)")
        #expect(outside.stderr.hasPrefix("vsecure: error: the server at \(server.baseURL) refused the rotation command for OUTSIDE: rotation commands on this server must be programs in \(allowed); nothing was changed\nvsecure: hint: "), "\(outside)")
        #expect(!outside.stderr.contains("v-outside-secret"))
        #expect(try remote(["secrets:get", "OUTSIDE"]).status == 3)
    }

    @Test("what a server refuses: rotation commands it does not run (16), a key without secrets:write (12), an unknown secret (3)")
    func refusals() throws {
        let pair = try Pair(serverArguments: Self.quietSchedule)
        let url = pair.server.baseURL
        let created = try pair.remote(["secrets:create", "DB", "--rotation-period", "1d", "--rotation-command", "/usr/bin/rotate-db --user app"],
                                      stdin: .text("v-db-secret"))
        #expect(created.status == 16, "\(created)")
        #expect(created.stderr == """
            vsecure: error: the server at \(url) refused the rotation command for DB: this server does not run rotation commands; its operator can allow programs from one directory with --allow-rotation-commands DIR; nothing was changed
            vsecure: hint: a server runs rotation commands only from a directory its operator allows (`vsecure-server serve --allow-rotation-commands DIR`)
            vsecure: hint: or let the server make the values: --rotation-generate 'length=32,charset=alnum'

            """, "\(created)")
        #expect(try pair.remote(["secrets:get", "DB"]).status == 3)
        #expect(try pair.remote(["secrets:create", "DB", "--rotation-period", "2s"], stdin: .text("v-db-secret")).status == 0)
        let updated = try pair.remote(["secrets:update", "DB", "--rotation-period", "1d", "--rotation-command", "/usr/bin/rotate-db"])
        #expect(updated.status == 16, "\(updated)")
        #expect(updated.stderr.hasPrefix("vsecure: error: the server at \(url) refused the rotation command for DB: "), "\(updated)")
        let unchanged = try pair.remote(["rotation:status", "--output", "json"])
        #expect(unchanged.stdoutText.contains("\"kind\": \"manual\""), "the policy stayed as it was: \(unchanged)")

        // A command policy set through the server's vault file (the CLI on vault.db): the server
        // does not run it.
        let local = try runProcess(Binaries.vsecure, ["secrets:update", "DB", "--rotation-period", "2s", "--rotation-command", "/bin/true",
                                                      "--vault", pair.live.vaultPath, "--key-file", pair.live.keyPath],
                                   environment: minimalEnvironment(home: pair.config.path), timeout: 60)
        #expect(local.status == 0, "\(local)")
        let rotate = try pair.remote(["secrets:rotate", "DB"])
        #expect(rotate.status == 16, "\(rotate)")
        #expect(rotate.stderr.hasPrefix("vsecure: error: the server at \(url) cannot rotate DB: DB in development has a rotation command this server does not run: "), "\(rotate)")
        #expect(rotate.stderr.contains("\nvsecure: hint: "), "\(rotate)")
        Thread.sleep(forTimeInterval: 3)
        let run = try pair.remote(["rotation:run"])
        #expect(run.status == 15, "\(run)")
        #expect(run.stdoutText.hasPrefix("failed  development/DB: the server at \(url) cannot rotate DB: "), "\(run)")
        #expect(run.stderr.hasPrefix("vsecure: error: 1 rotation failed: development/DB; nothing was changed for it\nvsecure: hint: "), "\(run)")

        // A key that may read but not write.
        try pair.remote(["secrets:create", "TOKEN", "--rotation-period", "30d", "--rotation-generate", "length=32"], stdin: .text("v-token"))
        let key = try pair.remote(["api-keys:create", "--scopes", "secrets:read", "--name", "reader"])
        #expect(key.status == 0, "\(key)")
        let reader = key.stdoutText.trimmingCharacters(in: .newlines)
        let denied = try pair.remote(["secrets:rotate", "TOKEN"], env: ["VSECURE_API_KEY": reader])
        #expect(denied.status == 12, "\(denied)")
        #expect(denied.stderr.hasPrefix("vsecure: error: the server at \(url) refused to rotate TOKEN: "), "\(denied)")
        #expect(denied.stderr.contains("\nvsecure: hint: "), "\(denied)")
        #expect(!denied.stderr.contains(reader))
        let policy = try pair.remote(["secrets:update", "TOKEN", "--rotation-period", "1d"], env: ["VSECURE_API_KEY": reader])
        #expect(policy.status == 12, "\(policy)")
        let status = try pair.remote(["rotation:status", "--output", "json"], env: ["VSECURE_API_KEY": reader])
        #expect(status.status == 0 && status.stdoutText.contains("\"name\": \"TOKEN\""), "\(status)")
        let missing = try pair.remote(["secrets:rotate", "NOPE"])
        #expect(missing.status == 3, "\(missing)")
        #expect(missing.stderr.hasPrefix("vsecure: error: ") && missing.stderr.contains("NOPE"), "\(missing)")
        #expect(try pair.remote(["secrets:versions", "TOKEN", "--output", "json"]).stdoutText.contains("\"rotate\"") == false)
    }

    @Test("rotation:status follows the list's cursor to the end")
    func statusPages() throws {
        let pair = try Pair(serverArguments: Self.quietSchedule)
        var entries = ""
        for index in 0..<230 { entries += "S\(String(format: "%03d", index))=v\(index)\n" }
        #expect(try pair.remote(["secrets:import", "-"], stdin: .text(entries)).status == 0)
        for index in [0, 101, 229] {
            let name = "S\(String(format: "%03d", index))"
            #expect(try pair.remote(["secrets:update", name, "--rotation-period", "\(index + 1)d"]).status == 0)
        }
        let status = try pair.remote(["rotation:status"])
        #expect(status.status == 0, "\(status)")
        let rows = status.stdoutText.split(separator: "\n").dropFirst()
        #expect(rows.map { $0.split(separator: " ", omittingEmptySubsequences: true)[1] } == ["S000", "S101", "S229"], "\(status)")
    }
}
