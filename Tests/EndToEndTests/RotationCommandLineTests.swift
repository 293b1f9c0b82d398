import Foundation
import Testing
import TestSupport

/// Rotation and expiry through the real binaries, on a clock set with VSECURE_TEST_NOW.
@Suite("Rotation from the command line")
struct RotationCommandLineTests {
    static let t0 = "2026-01-01T00:00:00Z"
    static let day: Int64 = 86_400
    static let start: Int64 = 1_767_225_600

    /// `VSECURE_TEST_NOW` for `start + offset` seconds, in epoch seconds (the other accepted spelling).
    static func at(_ offset: Int64) -> [String: String] { ["VSECURE_TEST_NOW": String(start + offset)] }

    func status(_ vault: Vault, _ name: String, at offset: Int64) throws -> [String: Any] {
        let result = try vault.run(["rotation:status", "--env", "production", "--output", "json"], env: Self.at(offset))
        #expect(result.status == 0, "\(result)")
        let entries = try objects(try JSONSerialization.jsonObject(with: Data(result.stdout)))
        return try #require(entries.first { $0.string("name") == name }, "\(name) not in \(result.stdoutText)")
    }

    /// Scripts run as `/bin/sh PATH` (see RotationCommandTests: a just-written file can be busy).
    func script(_ vault: Vault, _ name: String, _ body: String) throws -> String {
        let path = try vault.directory.write(name, "#!/bin/sh\n" + body + "\n")
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: path)
        return path
    }

    @Test("ok → notify → due → rotated at the right instants; a second run rotates nothing")
    func lifecycle() throws {
        let vault = try Vault()
        let created = try vault.run(["secrets:create", "TOKEN", "-", "--env", "production", "--rotation-period", "30d",
                                     "--rotation-notify-before", "7d", "--rotation-generate", "length=40,charset=base64url"],
                                    stdin: .text("first"), env: Self.at(0))
        expectSuccess(created)
        #expect(try status(vault, "TOKEN", at: 23 * Self.day - 1).string("state") == "ok")
        #expect(try status(vault, "TOKEN", at: 23 * Self.day).string("state") == "notify")
        #expect(try status(vault, "TOKEN", at: 30 * Self.day - 1).string("state") == "notify")
        let due = try status(vault, "TOKEN", at: 30 * Self.day)
        #expect(due.string("state") == "due")
        #expect(due.string("nextDueAt") == "2026-01-31T00:00:00Z")
        #expect(try status(vault, "TOKEN", at: 31 * Self.day).string("state") == "overdue")

        let early = try vault.run(["rotation:run"], env: Self.at(30 * Self.day - 1))
        #expect(early.status == 0 && early.stderr == "vsecure: nothing is due\n", "\(early)")
        let run = try vault.run(["rotation:run", "--output", "json"], env: Self.at(30 * Self.day))
        #expect(run.status == 0, "\(run)")
        #expect(run.stdoutText.contains("\"outcome\": \"rotated\""))
        let again = try vault.run(["rotation:run"], env: Self.at(30 * Self.day))
        #expect(again.status == 0 && again.stdout.isEmpty, "\(again)")
        let history = try versions(vault, "TOKEN", ["--env", "production"])
        #expect(history.map { $0.string("action") } == ["create", "rotate"])
        #expect(try status(vault, "TOKEN", at: 30 * Self.day).string("state") == "ok")
        #expect(try status(vault, "TOKEN", at: 30 * Self.day).string("nextDueAt") == "2026-03-02T00:00:00Z")

        // The generated value: the length and charset asked for.
        let value = try vault.value("TOKEN", ["--env", "production"])
        #expect(value.count == 40)
        let alphabet = Set(bytes("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
        #expect(value.allSatisfy { alphabet.contains($0) })

        // secrets:rotate rotates now, due or not.
        let now = try vault.run(["secrets:rotate", "TOKEN", "--env", "production"], env: Self.at(31 * Self.day))
        expectSuccess(now)
        #expect(now.stdoutText == "Rotated TOKEN in production: version 2 → 3\n")
    }

    @Test("expiry takes effect at T: allowed at T−1s, refused at T+1s, by secrets:get and vsecure-run")
    func expiryInstant() throws {
        let vault = try Vault()
        expectSuccess(try vault.run(["secrets:create", "EXP", "-", "--env", "production", "--tags", "app",
                                     "--expires-at", "2026-01-02T00:00:00Z"], stdin: .text("soon-gone"), env: Self.at(0)))
        #expect(try vault.run(["secrets:get", "EXP", "--env", "production"], env: Self.at(Self.day - 1)).stdout == bytes("soon-gone"))
        expectFailure(try vault.run(["secrets:get", "EXP", "--env", "production"], env: Self.at(Self.day + 1)), 5, "EXP in production expired at 2026-01-02T00:00:00Z")
        func launch(_ offset: Int64) throws -> ProcessResult {
            try runProcess(Binaries.vsecureRun, ["--env", "production", "--tags", "app", "--", "/bin/sh", "-c", "printf '%s' \"$EXP\""],
                           environment: vault.environment(extra: Self.at(offset)), workingDirectory: vault.directory.path)
        }
        let before = try launch(Self.day - 1)
        #expect(before.status == 0 && before.stdout == bytes("soon-gone"), "\(before)")
        let after = try launch(Self.day + 1)
        #expect(after.status == 5 && after.stdout.isEmpty, "\(after)")
        #expect(after.stderr.contains("expired secret in production: EXP"))
    }

    @Test("secrets:diff --reveal refuses an expired secret as secrets:get does, and prints nothing; --allow-expired prints it")
    func revealExpired() throws {
        let vault = try Vault()
        expectSuccess(try vault.run(["secrets:create", "OLD", "-", "--env", "production", "--expires-at", "2026-01-02T00:00:00Z"],
                                    stdin: .text("first-one"), env: Self.at(0)))
        expectSuccess(try vault.run(["secrets:update", "OLD", "-", "--env", "production"], stdin: .text("second-one"), env: Self.at(60)))
        let refused = try vault.run(["secrets:diff", "OLD", "--env", "production", "--reveal"], env: Self.at(Self.day + 1))
        expectFailure(refused, 5, "OLD in production expired at 2026-01-02T00:00:00Z")
        #expect(refused.stdout.isEmpty && refused.stderr.contains("vsecure: hint: --allow-expired prints its values anyway"), "\(refused)")
        let plain = try vault.run(["secrets:diff", "OLD", "--env", "production"], env: Self.at(Self.day + 1))
        #expect(plain.status == 0 && !plain.stdoutText.contains("-one"), "without --reveal no value is read: \(plain)")
        let allowed = try vault.run(["secrets:diff", "OLD", "--env", "production", "--reveal", "--allow-expired"], env: Self.at(Self.day + 1))
        #expect(allowed.status == 0 && allowed.stdoutText.contains("- first-one") && allowed.stdoutText.contains("+ second-one"), "\(allowed)")
    }

    @Test("vsecure-run warns about a secret inside its notify-before window, with the due time")
    func launcherNotice() throws {
        let vault = try Vault()
        expectSuccess(try vault.run(["secrets:create", "DB", "-", "--env", "production", "--tags", "app", "--rotation-period", "10d",
                                     "--rotation-notify-before", "2d"], stdin: .text("pw"), env: Self.at(0)))
        func launch(_ offset: Int64) throws -> ProcessResult {
            try runProcess(Binaries.vsecureRun, ["--env", "production", "--tags", "app", "--", "/bin/true"],
                           environment: vault.environment(extra: Self.at(offset)), workingDirectory: vault.directory.path)
        }
        let quiet = try launch(8 * Self.day - 1)
        #expect(quiet.status == 0 && quiet.stderr.isEmpty, "\(quiet)")
        let warned = try launch(8 * Self.day)
        #expect(warned.status == 0, "\(warned)")
        #expect(warned.stderr == "vsecure-run: warning: DB in production is due for rotation at 2026-01-11T00:00:00Z (in 2d)\n", "\(warned)")
        let overdue = try launch(11 * Self.day)
        #expect(overdue.stderr.contains("is due for rotation at 2026-01-11T00:00:00Z (overdue)"), "\(overdue)")
    }

    @Test("a rotation command: name, environment and version in its environment, the value on stdin, nothing in argv")
    func commandContract() throws {
        let vault = try Vault()
        let out = vault.directory.path
        let command = try script(vault, "rotate.sh", """
            for a in "$@"; do printf '%s\\n' "$a"; done > '\(out)/argv'
            tr '\\0' '\\n' < /proc/$$/cmdline > '\(out)/cmdline'
            env | sort > '\(out)/env'
            cat > '\(out)/stdin'
            printf 'NEW-PASSWORD-VALUE\\n'
            """)
        expectSuccess(try vault.run(["secrets:create", "DB_PASSWORD", "-", "--env", "staging", "--rotation-period", "1d",
                                     "--rotation-command", "/bin/sh \(command) --user app", "--rotation-arg", "two words"],
                                    stdin: .text("OLD-PASSWORD-VALUE"), env: Self.at(0)))
        let run = try vault.run(["rotation:run", "--env", "staging"], env: Self.at(Self.day).merging(["VSECURE_PASSPHRASE": "not-passed-on"]) { $1 })
        #expect(run.status == 0, "\(run)")
        #expect(run.stdoutText == "rotated staging/DB_PASSWORD: version 1 → 2\n")
        #expect(try vault.value("DB_PASSWORD", ["--env", "staging"]) == bytes("NEW-PASSWORD-VALUE"))
        #expect(try String(contentsOfFile: out + "/argv", encoding: .utf8) == "--user\napp\ntwo words\n")
        #expect(try !String(contentsOfFile: out + "/cmdline", encoding: .utf8).contains("PASSWORD-VALUE"))
        #expect(try String(contentsOfFile: out + "/stdin", encoding: .utf8) == "OLD-PASSWORD-VALUE")
        let env = try String(contentsOfFile: out + "/env", encoding: .utf8)
        #expect(env.contains("VSECURE_SECRET_NAME=DB_PASSWORD\n"))
        #expect(env.contains("VSECURE_SECRET_ENVIRONMENT=staging\n"))
        #expect(env.contains("VSECURE_SECRET_VERSION=1\n"))
        #expect(!env.contains("VSECURE_KEY_FILE") && !env.contains("VSECURE_PASSPHRASE") && !env.contains("VSECURE_VAULT"))
        #expect(!env.contains("PASSWORD-VALUE"))
    }

    @Test("failures (exit 1, empty output, timeout) change nothing, are reported and recorded, exit 15, and do not stop the others")
    func failures() throws {
        let vault = try Vault()
        let failing = try script(vault, "fail.sh", "cat >/dev/null; echo 'OLD-VALUE-X' >&2; exit 1")
        let empty = try script(vault, "empty.sh", "cat >/dev/null")
        let hang = try script(vault, "hang.sh", "sleep 30")
        for (name, command) in [("A_FAIL", failing), ("B_EMPTY", empty), ("C_HANG", hang)] {
            expectSuccess(try vault.run(["secrets:create", name, "-", "--env", "production", "--rotation-period", "1h",
                                         "--rotation-command", "/bin/sh " + command], stdin: .text("OLD-VALUE-X"), env: Self.at(0)))
        }
        expectSuccess(try vault.run(["secrets:create", "D_GOOD", "-", "--env", "production", "--rotation-period", "1h",
                                     "--rotation-generate", "length=16,charset=hex"], stdin: .text("OLD-VALUE-X"), env: Self.at(0)))
        let run = try vault.run(["rotation:run", "--timeout", "1s"], env: Self.at(3600))
        #expect(run.status == 15, "\(run)")
        #expect(run.stdoutText.contains("failed  production/A_FAIL: the rotation command /bin/sh exited with status 1"))
        #expect(run.stdoutText.contains("failed  production/B_EMPTY: the rotation command /bin/sh printed an empty value"))
        #expect(run.stdoutText.contains("failed  production/C_HANG: the rotation command /bin/sh did not finish within 1s and was killed"))
        #expect(run.stdoutText.contains("rotated production/D_GOOD: version 1 → 2"))
        #expect(run.stderr.hasPrefix("vsecure: error: 3 rotations failed: production/A_FAIL, production/B_EMPTY, production/C_HANG"))
        #expect(!run.stdoutText.contains("OLD-VALUE-X") && !run.stderr.contains("OLD-VALUE-X"))
        for name in ["A_FAIL", "B_EMPTY", "C_HANG"] {
            #expect(try vault.value(name, ["--env", "production"]) == bytes("OLD-VALUE-X"))
            #expect(try versions(vault, name, ["--env", "production"]).count == 1)
            let entry = try status(vault, name, at: 3600)
            #expect(entry.string("state") == "failing")
            let failure = try #require(entry["failing"] as? [String: Any])
            #expect(failure.int("count") == 1)
        }
        // Retried on the next run; secrets:rotate of a failing one exits 15 too.
        let retry = try vault.run(["rotation:run", "--env", "production", "--timeout", "1s"], env: Self.at(3700))
        #expect(retry.status == 15 && retry.stdoutText.contains("failed  production/A_FAIL"), "\(retry)")
        #expect(try status(vault, "A_FAIL", at: 3700)["failing"].flatMap { ($0 as? [String: Any])?.int("count") } == 2)
        let single = try vault.run(["secrets:rotate", "B_EMPTY", "--env", "production"], env: Self.at(3700))
        expectFailure(single, 15, "rotating B_EMPTY in production failed: the rotation command /bin/sh printed an empty value")
    }

    @Test("a command that leaves a background process holding its stdout still succeeds when it exits")
    func backgroundChildKeepsStdoutOpen() throws {
        let vault = try Vault()
        // The background sleep inherits stdout, so end of file never comes while it runs.
        let command = try script(vault, "daemonizes.sh", "cat >/dev/null\n(sleep 30) &\nprintf 'fresh-value'")
        expectSuccess(try vault.run(["secrets:create", "BG", "-", "--env", "production", "--rotation-period", "1h",
                                     "--rotation-command", "/bin/sh " + command], stdin: .text("old"), env: Self.at(0)))
        let started = Date()
        let run = try vault.run(["rotation:run", "--timeout", "20s"], env: Self.at(3600))
        #expect(run.status == 0, "\(run)")
        #expect(run.stdoutText.contains("rotated production/BG: version 1 → 2"), "\(run.stdoutText)")
        #expect(Date().timeIntervalSince(started) < 15, "the run does not wait for the background process")
        #expect(try vault.value("BG", ["--env", "production"]) == bytes("fresh-value"))
    }

    @Test("a signal to vsecure during a rotation command reaches the command; the failure is recorded before vsecure ends",
          .timeLimit(.minutes(2)))
    func signalReachesTheCommand() throws {
        let vault = try Vault()
        let started = vault.directory.file("started"), caught = vault.directory.file("caught")
        // Waits for a signal (its `sleep` is in the same process group and gets it too).
        let command = try script(vault, "waits.sh", """
            cat >/dev/null
            trap 'echo term > \(shellQuoted(caught)); exit 3' TERM
            trap 'echo int > \(shellQuoted(caught)); exit 3' INT
            : > \(shellQuoted(started))
            sleep 30 & wait $!
            printf 'never-stored'
            """)
        expectSuccess(try vault.run(["secrets:create", "WAITS", "-", "--env", "production", "--rotation-period", "1d",
                                     "--rotation-command", "/bin/sh " + command], stdin: .text("old"), env: Self.at(0)))
        for (signal, word) in [(SIGTERM, "term"), (SIGINT, "int")] {
            try? FileManager.default.removeItem(atPath: started)
            try? FileManager.default.removeItem(atPath: caught)
            // Spawned with the usual dispositions (a shell's background job would ignore SIGINT).
            let cli = try LiveProcess(Binaries.vsecure, ["secrets:rotate", "WAITS", "--env", "production"],
                                      environment: vault.environment(extra: Self.at(Self.day)), logPath: vault.directory.file("rotate-\(word).out"))
            let deadline = Date().addingTimeInterval(20)
            while !FileManager.default.fileExists(atPath: started) && Date() < deadline && cli.isRunning { usleep(20_000) }
            #expect(FileManager.default.fileExists(atPath: started), "the command did not start: \(cli.log)")
            let signalled = Date()
            cli.signal(signal)
            let status = cli.wait(timeout: 15)
            // Ended by the signal itself (128 + N), once the failed rotation was recorded.
            #expect(status == 128 + signal, "signal \(signal): exit \(status.map(String.init) ?? "none"): \(cli.log)")
            #expect(Date().timeIntervalSince(signalled) < 10, "vsecure ended promptly after signal \(signal)")
            #expect((try? String(contentsOfFile: caught, encoding: .utf8)) == word + "\n", "the command got signal \(signal)")
        }
        // Nothing was stored; each interrupted rotation is in the audit log as a failure.
        #expect(try versions(vault, "WAITS", ["--env", "production"]).map { $0.string("action") } == ["create"])
        let logged = try vault.run(["audit:logs", "--action", "rotated", "--result", "failure", "--output", "json"])
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(logged.stdout)) as? [[String: Any]], "\(logged)")
        #expect(entries.count == 2, "\(logged.stdoutText)")
        #expect(!logged.stdoutText.contains("never-stored"))
    }

    @Test("two concurrent rotation:run processes rotate each due secret exactly once")
    func concurrentRuns() throws {
        let vault = try Vault()
        let slow = try script(vault, "slow.sh", "cat >/dev/null; sleep 1; printf 'rotated-slowly'")
        for index in 0..<6 {
            expectSuccess(try vault.run(["secrets:create", "GEN_\(index)", "-", "--env", "production", "--rotation-period", "1d",
                                         "--rotation-generate", "length=24"], stdin: .text("v"), env: Self.at(0)))
        }
        expectSuccess(try vault.run(["secrets:create", "SLOW", "-", "--env", "production", "--rotation-period", "1d",
                                     "--rotation-command", "/bin/sh " + slow], stdin: .text("v"), env: Self.at(0)))
        let both = try vault.shell("""
            "$VSECURE" rotation:run > run1.out 2>&1 & first=$!
            "$VSECURE" rotation:run > run2.out 2>&1 & second=$!
            wait $first; a=$?; wait $second; b=$?
            echo "$a $b"
            """, env: Self.at(Self.day))
        #expect(both.stdoutText == "0 0\n", "\(both) \((try? String(contentsOfFile: vault.directory.file("run1.out"), encoding: .utf8)) ?? "") \((try? String(contentsOfFile: vault.directory.file("run2.out"), encoding: .utf8)) ?? "")")
        for name in (0..<6).map({ "GEN_\($0)" }) + ["SLOW"] {
            #expect(try versions(vault, name, ["--env", "production"]).map { $0.string("action") } == ["create", "rotate"], "\(name)")
        }
        let outputs = try ["run1.out", "run2.out"].map { try String(contentsOfFile: vault.directory.file($0), encoding: .utf8) }
        #expect(outputs.joined().components(separatedBy: "rotated production/").count - 1 == 7, "\(outputs)")
    }

    @Test("rotation options and commands against a server go to the server (here: none, exit 13); bad options are usage errors")
    func refusals() throws {
        let vault = try Vault()
        // Against a live server: Tests/VSecureServerTests/RemoteRotationCLITests.swift.
        let remote = ["VSECURE_API_KEY": "vsk_test_unused", "VSECURE_TIMEOUT": "5s"]
        for arguments in [["rotation:run", "--endpoint", "https://127.0.0.1:9"], ["rotation:status", "--endpoint", "https://127.0.0.1:9"],
                          ["secrets:rotate", "X", "--endpoint", "https://127.0.0.1:9"]] {
            let result = try vault.run(arguments, env: remote, location: .none)
            expectFailure(result, 13, "cannot reach the server at https://127.0.0.1:9")
        }
        let create = try vault.run(["secrets:create", "X", "-", "--endpoint", "https://127.0.0.1:9", "--rotation-period", "1d"],
                                   stdin: .text("v"), env: remote, location: .none)
        expectFailure(create, 13, "cannot reach the server at https://127.0.0.1:9")
        for (arguments, message) in [
            (["--rotation-notify-before", "1d"], "a rotation policy needs --rotation-period"),
            (["--rotation-period", "1d", "--rotation-generate", "length=3"], "length must be a whole number from 8 to 4096"),
            (["--rotation-period", "1d", "--rotation-generate", "charset=emoji"], "unknown charset 'emoji'"),
            (["--rotation-period", "1d", "--rotation-command", "relative/tool"], "is not an absolute path"),
            (["--rotation-period", "1d", "--rotation-command", "/bin/true", "--rotation-generate", "length=9"], "not both"),
            (["--rotation-period", "1d", "--rotation-notify-before", "2d"], "longer than --rotation-period"),
            (["--no-rotation"], "--no-rotation is for secrets:update"),
        ] as [([String], String)] {
            expectFailure(try vault.run(["secrets:create", "X", "-"] + arguments, stdin: .text("v")), 2, message)
        }
        // A manual policy gives notices only; --no-rotation removes it.
        try vault.create("M", "v", ["--env", "production"])
        expectSuccess(try vault.run(["secrets:update", "M", "--env", "production", "--rotation-period", "1d"], env: Self.at(0)))
        expectFailure(try vault.run(["secrets:rotate", "M", "--env", "production"]), 2, "has a manual rotation policy")
        expectSuccess(try vault.run(["secrets:update", "M", "--env", "production", "--no-rotation"]))
        expectFailure(try vault.run(["secrets:rotate", "M", "--env", "production"]), 2, "has no rotation policy")
        #expect(try versions(vault, "M", ["--env", "production"]).count == 1)
        expectFailure(try vault.run(["rotation:status"], env: ["VSECURE_TEST_NOW": "yesterday"]), 2, "VSECURE_TEST_NOW 'yesterday' is not a time")
    }
}
