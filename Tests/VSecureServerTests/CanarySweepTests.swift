import Foundation
import Testing
import TestSupport

/// One random canary value run through every `vsecure` command (local and against a server),
/// the launcher (local and remote, success and failure paths, `--dry-run`, the offline
/// fallback) and a live server logging at trace, with requests that succeed and fail. Its raw,
/// hex and base64 forms (`Canary`) must never appear in the output of a command not meant to
/// print it, the server log, the audit logs (files and exports), a cache or any other file left
/// under /tmp or /dev/shm, or `/proc/*/cmdline` while a launched child runs. Every hit is
/// reported with where it was found.
@Suite("Security sweep: a canary value never leaks", .serialized)
struct CanarySweepTests {
    @Test("the canary appears only where a command is meant to print it")
    func sweep() throws {
        let sweep = CanarySweep()
        let before = try FileListing.take(["/tmp", "/dev/shm"])

        let local = try Vault()
        try localCommands(sweep, local)
        try localLaunches(sweep, local)
        sweep.checkTree(local.directory.path, label: "local vault directory")

        let live = try LiveStore()
        let config = try TemporaryDirectory(prefix: "vsecure-sweep-config")
        try serverPhase(sweep, live, config: config)

        let after = try FileListing.take(["/tmp", "/dev/shm"])
        let changed = before.changed(in: after)
        for path in changed { sweep.checkFile(path, label: "new or changed file") }

        #expect(changed.contains { $0.hasPrefix(local.directory.path) }, "the listing must see the test's own files")
        if !sweep.skippedFiles.isEmpty { print("canary sweep: files too large to scan: \(sweep.skippedFiles)") }
        print("canary sweep: \(sweep.placesChecked) places checked, \(changed.count) new or changed files under /tmp and /dev/shm")
        #expect(sweep.placesChecked > 200, "checked only \(sweep.placesChecked) places")
        #expect(sweep.hits.isEmpty, "the canary leaked:\n\(sweep.hits.joined(separator: "\n"))")
    }

    @Test("the sweep finds each form of the canary, wherever it starts")
    func formsAreFound() {
        let canary = Canary()
        for prefix in ["", "a", "ab", "abc"] {
            let text = Array((prefix + canary.value + "tail").utf8)
            let standard = Data(text).base64EncodedString()
            let urlSafe = standard.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            for encoded in [standard, urlSafe, standard.replacingOccurrences(of: "=", with: "")] {
                #expect(!canary.formsFound(in: Array(("x" + encoded + "y").utf8)).isEmpty, "prefix \(prefix.count): \(encoded)")
            }
        }
        let hex = canary.bytes.map { String(format: "%02x", $0) }.joined()
        #expect(canary.formsFound(in: Array(("0x" + hex).utf8)) == ["hex"])
        #expect(canary.formsFound(in: Array(hex.uppercased().utf8)) == ["HEX"])
        #expect(canary.formsFound(in: Array(("said " + canary.value).utf8)).contains("raw"))
        #expect(canary.formsFound(in: Array(Canary().value.utf8)).isEmpty)
    }

    // MARK: - vsecure, local and remote

    /// Runs `vsecure` (against a local vault or a server), checks the exit status when given, and sweeps the output.
    struct CLI {
        let sweep: CanarySweep
        let label: String
        let invoke: ([String], StandardInput) throws -> ProcessResult

        @discardableResult
        func run(_ arguments: [String], stdin: StandardInput = .null, status: Int32? = 0, printsValue: Bool = false,
                 sourceLocation: SourceLocation = #_sourceLocation) throws -> ProcessResult {
            let result = try invoke(arguments, stdin)
            let command = "\(label) vsecure \(arguments.joined(separator: " "))"
            if status == anyStatus {
            } else if let status {
                #expect(result.status == status, "\(command): \(result)", sourceLocation: sourceLocation)
            } else {
                #expect(result.status != 0, "\(command) was meant to fail: \(result)", sourceLocation: sourceLocation)
            }
            sweep.check(result, command, printsValue: printsValue)
            return result
        }
    }

    /// The secret lifecycle, the same on a local vault and a server. The canary is CANARY's
    /// version 1 and, after a rollback, its current value again.
    /// On a server, the rotation commands work too (the server makes the values); a rotation
    /// command is given only where it can run (the local vault).
    func lifecycle(_ cli: CLI, rotationScript: String?, remote: Bool = false) throws {
        let rotationStatus: Int32 = 0
        let value = StandardInput.text(cli.sweep.canary.value)
        let env = ["--env", "production"]
        try cli.run(["secrets:create", "CANARY", "-", "--tags", "api", "--metadata", "owner=team", "--description", "sweep"] + env, stdin: value)
        try cli.run(["secrets:create", "CANARY", "-"] + env, stdin: value, status: nil)            // exists already
        try cli.run(["secrets:create", "BAD-NAME", "-"] + env, stdin: value, status: nil)          // invalid name
        // NAME=VALUE in argv (the value is then the caller's to protect): only the name is quoted.
        try cli.run(["secrets:create", "BAD-NAME=" + cli.sweep.canary.value] + env, status: nil)
        try cli.run(["secrets:create", "EMPTY_ENV", "-", "--env", "nosuchenv"], stdin: value, status: nil)
        try cli.run(["secrets:get", "CANARY"] + env, printsValue: true)
        try cli.run(["secrets:get", "CANARY", "--output", "json"] + env, printsValue: true)
        try cli.run(["secrets:get", "MISSING"] + env, status: nil)
        try cli.run(["secrets:list"])
        try cli.run(["secrets:list", "--output", "json"] + env)
        try cli.run(["secrets:update", "CANARY", "-"] + env, stdin: .text("second-value-\(UUID().uuidString)"))
        try cli.run(["secrets:update", "CANARY", "--metadata", "stage=two"] + env)
        try cli.run(["secrets:versions", "CANARY"] + env)
        try cli.run(["secrets:versions", "CANARY", "--output", "json"] + env)
        try cli.run(["secrets:diff", "CANARY", "--from", "1", "--to", "2"] + env)
        try cli.run(["secrets:diff", "CANARY", "--from", "1", "--to", "2", "--output", "json"] + env)
        try cli.run(["secrets:diff", "CANARY", "--from", "1", "--to", "2", "--reveal"] + env, printsValue: true)
        try cli.run(["secrets:diff", "CANARY", "--from", "1", "--to", "9"] + env, status: nil)
        try cli.run(["secrets:rollback", "CANARY"] + env)                                          // a new version: v1's value
        try cli.run(["secrets:rollback", "CANARY", "--version", "2", "--output", "json"] + env)
        try cli.run(["secrets:rollback", "CANARY", "--version", "99"] + env, status: nil)
        try cli.run(["secrets:update", "CANARY", "-"] + env, stdin: value)                         // the canary is current
        try cli.run(["secrets:update", "CANARY", "-", "--if-version", "1"] + env, stdin: value, status: nil)

        // Rotation: a generated value, then a command that fails after echoing its stdin (the
        // current value) to stderr; then the canary again.
        try cli.run(["secrets:update", "CANARY", "--rotation-period", "30d", "--rotation-generate", "length=32,charset=alnum"] + env, status: rotationStatus)
        try cli.run(["rotation:status"], status: rotationStatus)
        try cli.run(["rotation:status", "--output", "json"], status: rotationStatus)
        try cli.run(["secrets:rotate", "CANARY"] + env, status: rotationStatus)
        if let rotationScript {
            try cli.run(["secrets:update", "CANARY", "--rotation-period", "30d", "--rotation-command", rotationScript] + env)
            try cli.run(["secrets:rotate", "CANARY"] + env, status: nil)
        }
        try cli.run(["rotation:run", "--dry-run"], status: rotationStatus)
        try cli.run(["rotation:run"], status: rotationStatus)
        try cli.run(["secrets:update", "CANARY", "-", "--no-rotation"] + env, stdin: value, status: rotationStatus)

        // Import and export: the canary as one of several values.
        let dotenv = "IMPORTED_A=\(cli.sweep.canary.value)\nIMPORTED_B=plain-b\n"
        try cli.run(["secrets:import", "-"] + env, stdin: .text(dotenv))
        try cli.run(["secrets:import", "-", "--output", "json"] + env, stdin: .text(dotenv))
        try cli.run(["secrets:import", "-", "--format", "json"] + env, stdin: .text("{\"IMPORTED_C\": \"\(cli.sweep.canary.value)\", \"bad name\": \"x\"}"),
                    status: nil)
        try cli.run(["secrets:import", "-"] + env, stdin: .text("IMPORTED_D=\(cli.sweep.canary.value)\nnot a line\n"), status: nil)
        for format in ["dotenv", "json", "shell"] {
            try cli.run(["secrets:export", "--format", format] + env, printsValue: true)
        }
        try cli.run(["secrets:export", "--env", "staging"])                                        // nothing there

        // Expiry: an expired secret is refused without its value.
        try cli.run(["secrets:create", "EXPIRING", "-", "--expires-in", "1s"] + env, stdin: value)
        Thread.sleep(forTimeInterval: 1.5)
        try cli.run(["secrets:get", "EXPIRING"] + env, status: nil)
        try cli.run(["secrets:get", "EXPIRING", "--allow-expired"] + env, printsValue: true)
        try cli.run(["secrets:list", "--include-expired"])

        try cli.run(["secrets:delete", "IMPORTED_A", "--yes"] + env)
        try cli.run(["secrets:delete", "IMPORTED_A", "--yes"] + env, status: nil)
        try cli.run(["secrets:delete", "EXPIRING", "--yes", "--purge"] + env)

        // The audit log, read back every way.
        try cli.run(["audit:logs"])
        try cli.run(["audit:logs", "--output", "json", "--limit", "1000"])
        try cli.run(["audit:logs", "--result", "failure", "--output", "json"])
        try cli.run(["audit:export", "--format", "jsonl"])
        try cli.run(["audit:export", "--format", "csv"])
        try cli.run(["audit:verify"])
        try cli.run(["audit:verify", "--output", "json"])
    }

    /// A rotation command that echoes the current value to stderr and fails.
    func failingRotationScript(in directory: TemporaryDirectory) throws -> String {
        try directory.write("bin/echo-and-fail", "#!/bin/sh\ncat >&2\necho 'rotation failed' >&2\nexit 3\n", mode: 0o755)
    }

    func localCommands(_ sweep: CanarySweep, _ vault: Vault) throws {
        let cli = CLI(sweep: sweep, label: "local") { arguments, stdin in try vault.run(arguments, stdin: stdin) }
        try cli.run(["vault:status"])
        try cli.run(["vault:status", "--output", "json"])
        try lifecycle(cli, rotationScript: try failingRotationScript(in: vault.directory))
        // Commands that need a server explain so on a local vault.
        try cli.run(["users:list"], status: nil)
        try cli.run(["secrets:grants"], status: nil)
        try cli.run(["vault:status"])
    }

    // MARK: - vsecure-run

    /// Runs `vsecure-run` with `environment`, checks the status, sweeps the output.
    func launch(_ sweep: CanarySweep, _ label: String, _ arguments: [String], environment: [String: String], directory: String,
                status: Int32?, sourceLocation: SourceLocation = #_sourceLocation) throws -> ProcessResult {
        let result = try runProcess(Binaries.vsecureRun, arguments, environment: environment, workingDirectory: directory, timeout: 60)
        let command = "\(label) vsecure-run \(arguments.joined(separator: " "))"
        if status == anyStatus {
        } else if let status {
            #expect(result.status == status, "\(command): \(result)", sourceLocation: sourceLocation)
        } else {
            #expect(result.status != 0, "\(command) was meant to fail: \(result)", sourceLocation: sourceLocation)
        }
        sweep.check(result, command)
        return result
    }

    /// Starts a launch whose child sleeps 2 s and, while it lives, reads every `/proc/*/cmdline`.
    /// The child's own environment must hold the canary: that proves the scan overlapped it.
    func commandLinesDuringLaunch(_ sweep: CanarySweep, _ label: String, _ arguments: [String], environment: [String: String],
                                  directory: String) throws {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox()
        Thread.detachNewThread {
            box.result = try? runProcess(Binaries.vsecureRun, arguments + ["--", "/bin/sleep", "2"], environment: environment,
                                         workingDirectory: directory, timeout: 60)
            done.signal()
        }
        var holders: [Int32] = []
        var rounds = 0
        var finished = false
        while !finished {
            sweep.checkCommandLines()
            rounds += 1
            holders += sweep.processesWithCanaryInEnvironment()
            finished = done.wait(timeout: .now() + 0.1) == .success
        }
        #expect(box.result?.status == 0, "\(label): \(String(describing: box.result))")
        #expect(!holders.isEmpty, "\(label): no scan of /proc overlapped the child (\(rounds) rounds)")
        if let result = box.result { sweep.check(result, "\(label) vsecure-run … -- /bin/sleep 2") }
    }

    func localLaunches(_ sweep: CanarySweep, _ vault: Vault) throws {
        let directory = vault.directory
        let env = vault.environment()
        let dir = directory.path
        try vault.create("LAUNCH_CANARY", sweep.canary.value, ["--env", "production"])
        try vault.create("LAUNCH_EXPIRED", sweep.canary.value, ["--env", "production", "--expires-in", "1s"])
        Thread.sleep(forTimeInterval: 1.2)
        let good = try directory.write("good.yml", "version: 1\nsecrets: [LAUNCH_CANARY]\n", mode: 0o644)
        let missing = try directory.write("missing.yml", "version: 1\nsecrets: [LAUNCH_CANARY, NOT_THERE]\n", mode: 0o644)
        let expired = try directory.write("expired.yml", "version: 1\nsecrets: [LAUNCH_CANARY, LAUNCH_EXPIRED]\n", mode: 0o644)
        let bad = try directory.write("bad.yml", "version: 1\nsecrets: [LAUNCH_CANARY\n  - : :\n", mode: 0o644)
        let prod = ["--env", "production"]

        _ = try launch(sweep, "local", prod + ["--manifest", good, "--", "/bin/true"], environment: env, directory: dir, status: 0)
        _ = try launch(sweep, "local", prod + ["--manifest", good, "--", "/bin/sh", "-c", "exit 7"], environment: env, directory: dir, status: 7)
        _ = try launch(sweep, "local", prod + ["--manifest", good, "--dry-run"], environment: env, directory: dir, status: 0)
        _ = try launch(sweep, "local", prod + ["--manifest", good, "--dry-run", "--output", "json"], environment: env, directory: dir, status: 0)
        _ = try launch(sweep, "local", prod + ["--manifest", expired, "--dry-run", "--output", "json"], environment: env, directory: dir, status: nil)
        _ = try launch(sweep, "local", prod + ["--manifest", missing, "--", "/bin/true"], environment: env, directory: dir, status: 3)
        _ = try launch(sweep, "local", prod + ["--manifest", expired, "--", "/bin/true"], environment: env, directory: dir, status: 5)
        _ = try launch(sweep, "local", ["--env", "nosuchenv", "--manifest", good, "--", "/bin/true"], environment: env, directory: dir, status: nil)
        _ = try launch(sweep, "local", prod + ["--manifest", bad, "--", "/bin/true"], environment: env, directory: dir, status: 10)
        _ = try launch(sweep, "local", prod + ["--manifest", good, "--", directory.file("no-such-program")], environment: env, directory: dir,
                       status: 127)
        // A variable the launcher protects (PATH) named by a secret, and a wrong key file.
        try vault.create("PATH", sweep.canary.value, ["--env", "production"])
        let protected = try directory.write("protected.yml", "version: 1\nsecrets: [PATH]\n", mode: 0o644)
        _ = try launch(sweep, "local", prod + ["--manifest", protected, "--", "/bin/true"], environment: env, directory: dir, status: 11)
        let wrongKey = try directory.write("wrong.key", Array(repeating: 7, count: 32))
        _ = try launch(sweep, "local", prod + ["--manifest", good, "--key-file", wrongKey, "--", "/bin/true"], environment: env, directory: dir,
                       status: nil)
        try commandLinesDuringLaunch(sweep, "local", prod + ["--manifest", good], environment: env, directory: dir)
    }

    // MARK: - The server, vsecure against it, and the remote launcher

    func serverPhase(_ sweep: CanarySweep, _ live: LiveStore, config: TemporaryDirectory) throws {
        let server = try LiveServer(store: live, extraArguments: ["--log-level", "trace", "--max-body-bytes", "65536"])
        let client = LiveClient(baseURL: server.baseURL, token: live.adminToken, scratch: live.directory)
        try apiRequests(sweep, client)

        var env = minimalEnvironment(home: config.path)
        env["VSECURE_ENDPOINT"] = server.baseURL
        env["VSECURE_API_KEY"] = live.adminToken
        env["VSECURE_CONFIG_DIR"] = config.file("cfg")
        env["VSECURE_TIMEOUT"] = "10s"
        let remoteEnv = env
        let cli = CLI(sweep: sweep, label: "remote") { arguments, stdin in
            try runProcess(Binaries.vsecure, arguments, environment: remoteEnv, stdin: stdin, workingDirectory: config.path, timeout: 60)
        }
        try lifecycle(cli, rotationScript: nil, remote: true)
        try accessCommands(cli, config: config, server: server, token: live.adminToken)

        // The remote launcher, with the offline cache in the config directory.
        let launchEnv = remoteEnv.merging(["VSECURE_CACHE_DIR": config.file("cache"), "VSECURE_TIMEOUT": "3s"]) { $1 }
        let dir = config.path
        let good = try config.write("good.yml", "version: 1\nsecrets: [CANARY]\n", mode: 0o644)
        let missing = try config.write("missing.yml", "version: 1\nsecrets: [CANARY, NOT_THERE]\n", mode: 0o644)
        let prod = ["--env", "production"]
        _ = try cli.run(["secrets:create", "R_EXPIRED", "-", "--expires-in", "1s"] + prod, stdin: .text(sweep.canary.value))
        Thread.sleep(forTimeInterval: 1.2)
        let expired = try config.write("expired.yml", "version: 1\nsecrets: [CANARY, R_EXPIRED]\n", mode: 0o644)
        _ = try launch(sweep, "remote", prod + ["--manifest", good, "--fallback", "--", "/bin/true"], environment: launchEnv, directory: dir,
                       status: 0)
        _ = try launch(sweep, "remote", prod + ["--manifest", good, "--dry-run"], environment: launchEnv, directory: dir, status: 0)
        _ = try launch(sweep, "remote", prod + ["--manifest", good, "--dry-run", "--output", "json"], environment: launchEnv, directory: dir,
                       status: 0)
        _ = try launch(sweep, "remote", prod + ["--manifest", missing, "--", "/bin/true"], environment: launchEnv, directory: dir, status: 3)
        _ = try launch(sweep, "remote", prod + ["--manifest", expired, "--", "/bin/true"], environment: launchEnv, directory: dir, status: 5)
        _ = try launch(sweep, "remote", ["--env", "nosuchenv", "--manifest", good, "--", "/bin/true"], environment: launchEnv, directory: dir,
                       status: nil)
        _ = try launch(sweep, "remote", prod + ["--manifest", good, "--", "/bin/true"],
                       environment: launchEnv.merging(["VSECURE_API_KEY": "vsec_key_0000000000000000_" + sweep.canary.value]) { $1 },
                       directory: dir, status: 12)
        try commandLinesDuringLaunch(sweep, "remote", prod + ["--manifest", good], environment: launchEnv, directory: dir)

        // Everything the server wrote, while it runs (the SQLite -wal files exist now).
        sweep.checkTree(live.dataPath, label: "server data (running)")
        sweep.check(Array(server.process.log.utf8), at: "server log (trace)")
        #expect(server.process.log.contains(" trace "), "the server must have logged at trace")

        // Server down: the offline cache stands in; it holds the value only encrypted.
        #expect(server.stop(signal: SIGTERM, timeout: 30) != nil)
        let cacheFiles = regularFilesIn(config.file("cache"))
        #expect(!cacheFiles.isEmpty, "the --fallback launch wrote no cache")
        _ = try launch(sweep, "offline", prod + ["--manifest", good, "--fallback", "--", "/bin/true"], environment: launchEnv, directory: dir,
                       status: 0)
        _ = try launch(sweep, "offline", prod + ["--manifest", good, "--fallback", "--dry-run"], environment: launchEnv, directory: dir,
                       status: anyStatus)
        _ = try launch(sweep, "offline", prod + ["--manifest", good, "--", "/bin/true"], environment: launchEnv, directory: dir, status: 13)
        try cli.run(["secrets:get", "CANARY"] + prod, status: nil)

        sweep.checkTree(config.path, label: "client config and cache")
        sweep.checkTree(live.directory.path, label: "server directory (stopped)")
        sweep.check(Array(server.process.log.utf8), at: "server log (after shutdown)")
    }

    func regularFilesIn(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).map { directory + "/" + $0 }
    }

    /// `users:*`, `api-keys:*`, `policy:*`, grants, login and config against the server.
    func accessCommands(_ cli: CLI, config: TemporaryDirectory, server: LiveServer, token: String) throws {
        try cli.run(["users:create", "eng@example.com", "--roles", "engineers"])
        try cli.run(["users:create", "ci-deploy", "--service", "--roles", "deployers"])
        try cli.run(["users:create", "eng@example.com"], status: nil)
        try cli.run(["users:list"])
        try cli.run(["users:list", "--output", "json"])
        try cli.run(["users:update", "eng@example.com", "--roles", "engineers,devops"])
        let created = try cli.run(["api-keys:create", "--user", "eng@example.com", "--scopes", "secrets:read", "--name", "laptop",
                                   "--output", "json"])
        let key = (try? JSONSerialization.jsonObject(with: Data(created.stdout))) as? [String: Any] ?? [:]
        let keyID = key["id"] as? String ?? "key_0000000000000000"
        let engToken = key["key"] as? String ?? ""
        try cli.run(["api-keys:list"])
        try cli.run(["api-keys:list", "--output", "json"])

        let policy = try config.write("policy.json", """
            {"secrets": {"production/*": {"read": ["engineers", "admins"], "write": ["admins"], "delete": ["admins"]},
                         "production/CANARY": {"read": ["admins"], "write": ["admins"], "delete": ["admins"]},
                         "**": {"read": ["admins"], "write": ["admins"], "delete": ["admins"]}}}
            """)
        let badPolicy = try config.write("bad-policy.json", "{\"secrets\": {\"production/*\": {\"read\": 3}}}\n")
        try cli.run(["policy:set", policy])
        try cli.run(["policy:set", badPolicy], status: nil)
        try cli.run(["policy:show"])
        try cli.run(["policy:show", "--output", "json"])
        try cli.run(["policy:test", "--user", "eng@example.com", "--action", "read", "production/CANARY"], status: nil)
        try cli.run(["policy:test", "--user", "eng@example.com", "--action", "read", "production/IMPORTED_B"])

        // The engineer's key: denied on CANARY (a 403 the CLI reports), then granted, then revoked.
        let asEngineer = CLI(sweep: cli.sweep, label: "remote (engineer)") { arguments, stdin in
            var env = minimalEnvironment(home: config.path)
            env["VSECURE_ENDPOINT"] = server.baseURL
            env["VSECURE_API_KEY"] = engToken
            env["VSECURE_CONFIG_DIR"] = config.file("cfg-eng")
            env["VSECURE_TIMEOUT"] = "10s"
            return try runProcess(Binaries.vsecure, arguments, environment: env, stdin: stdin, workingDirectory: config.path, timeout: 60)
        }
        try asEngineer.run(["secrets:get", "CANARY", "--env", "production"], status: 12)
        try asEngineer.run(["secrets:update", "CANARY", "-", "--env", "production"], stdin: .text(cli.sweep.canary.value), status: nil)
        let grant = try cli.run(["secrets:grant-access", "CANARY", "--env", "production", "--user", "eng@example.com", "--duration", "1h",
                                 "--output", "json"])
        let grantID = ((try? JSONSerialization.jsonObject(with: Data(grant.stdout))) as? [String: Any])?["id"] as? String ?? "grt_none"
        try asEngineer.run(["secrets:get", "CANARY", "--env", "production"], printsValue: true)
        try cli.run(["secrets:grants"])
        try cli.run(["secrets:grants", "CANARY", "--env", "production", "--output", "json"])
        try cli.run(["secrets:revoke-access", grantID])
        try cli.run(["secrets:grants", "--include-expired"])
        try cli.run(["secrets:grant-access", "--path", "production/*", "--user", "ci-deploy", "--duration", "30m"])
        try cli.run(["users:disable", "eng@example.com"])
        try asEngineer.run(["secrets:get", "CANARY", "--env", "production"], status: nil)
        try cli.run(["api-keys:rotate", keyID])
        try cli.run(["api-keys:revoke", keyID])
        try cli.run(["api-keys:revoke", keyID], status: nil)

        // login (the key on stdin; a wrong one, and the canary given as a key), config and logout.
        let home = config.file("login-home")
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let loginCLI = CLI(sweep: cli.sweep, label: "login") { arguments, stdin in
            var env = minimalEnvironment(home: home)
            env["VSECURE_CONFIG_DIR"] = home + "/cfg"
            return try runProcess(Binaries.vsecure, arguments, environment: env, stdin: stdin, workingDirectory: home, timeout: 60)
        }
        try loginCLI.run(["login", "--endpoint", server.baseURL], stdin: .text("vsec_key_0000000000000000_" + cli.sweep.canary.value + "\n"),
                         status: nil)
        try loginCLI.run(["login", "--endpoint", server.baseURL], stdin: .text(cli.sweep.canary.value + "\n"), status: nil)
        try loginCLI.run(["login", "--endpoint", server.baseURL], stdin: .text(token + "\n"))
        try loginCLI.run(["config:show"])
        try loginCLI.run(["config:path"])
        try loginCLI.run(["config:get", "endpoint"])
        try loginCLI.run(["config:set", "timeout", "30s"])
        try loginCLI.run(["config:set", "apiKey", cli.sweep.canary.value], status: nil)
        try loginCLI.run(["secrets:get", "CANARY", "--env", "production"], printsValue: true)
        try loginCLI.run(["secrets:list"])
        try loginCLI.run(["logout"])
        try loginCLI.run(["secrets:get", "CANARY", "--env", "production"], status: nil)
    }

    /// Requests straight to the API: successes and every kind of failure, with the canary in
    /// the value, in a token, in a query, in a body too large, and in fields where it does not belong.
    func apiRequests(_ sweep: CanarySweep, _ client: LiveClient) throws {
        let c = sweep.canary.value
        func call(_ method: String, _ path: String, _ json: String? = nil, token: String?? = .none, headers: [String: String] = [:],
                  expect status: Int, printsValue: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let result = try client.request(method, path, json: json, headers: headers, token: token)
            let place = "HTTP \(method) \(path)\(json.map { " " + String($0.prefix(80)) } ?? "")"
            #expect(result.status == status, "\(place): \(result)", sourceLocation: sourceLocation)
            if printsValue {
                if !canaryContains(result.body, sweep.canary.bytes) { sweep.record("\(place): the value was expected in the body") }
            } else {
                sweep.check(result.body, at: "response body of \(place) (\(result.status))")
            }
            sweep.check(Array(result.headers.map { "\($0.key): \($0.value)\n" }.joined().utf8), at: "response headers of \(place)")
        }
        let secrets = "/v1/security/secrets"
        try call("POST", secrets, liveJSON(["name": "API_CANARY", "value": c, "environment": "production"]), expect: 201)
        try call("GET", secrets + "/API_CANARY?environment=production", expect: 200, printsValue: true)
        try call("POST", secrets + "/batch/get", liveJSON(["names": ["API_CANARY", "NOT_THERE"], "environment": "production"]), expect: 200,
                 printsValue: true)
        try call("GET", secrets + "?environment=production", expect: 200)
        try call("GET", secrets + "/API_CANARY/versions?environment=production", expect: 200)
        try call("PUT", secrets + "/API_CANARY?environment=production", liveJSON(["value": "v2-\(UUID().uuidString)"]), expect: 200)
        try call("GET", secrets + "/API_CANARY/diff?environment=production&from=1&to=2", expect: 200)
        try call("POST", secrets + "/API_CANARY/rollback?environment=production", "{}", expect: 200)
        try call("POST", secrets + "/batch/upsert",
                 liveJSON(["environment": "production", "secrets": [["name": "BATCH_CANARY", "value": c]]]), expect: 200)

        // 401: a wrong token, the canary as the token, the canary as a token's secret, a token in the URL.
        try call("GET", secrets, token: .some(c), expect: 401)
        try call("GET", secrets, token: .some("vsec_key_0000000000000000_" + c), expect: 401)
        try call("GET", secrets + "?api_key=" + c, expect: 401)
        try call("GET", secrets, token: .some(nil), headers: ["Authorization": "Basic " + Data(c.utf8).base64EncodedString()], expect: 401)
        // 403: a key without the scope.
        let made = try client.post("/v1/security/api-keys", liveJSON(["name": "reader", "scopes": ["secrets:read"]]))
        let reader = made.json["key"] as? String ?? "vsec_none"
        try call("POST", secrets, liveJSON(["name": "DENIED", "value": c, "environment": "production"]), token: .some(reader), expect: 403)
        try call("PUT", secrets + "/API_CANARY?environment=production", liveJSON(["value": c]), token: .some(reader), expect: 403)
        // 404, 409 (exists; wrong ifVersion), 410 (expired), 413, 415.
        try call("GET", secrets + "/NOT_THERE?environment=production", expect: 404)
        try call("PUT", secrets + "/NOT_THERE?environment=production", liveJSON(["value": c]), expect: 404)
        try call("POST", secrets, liveJSON(["name": "API_CANARY", "value": c, "environment": "production"]), expect: 409)
        try call("PUT", secrets + "/API_CANARY?environment=production", liveJSON(["value": c, "ifVersion": 99]), expect: 409)
        try call("POST", secrets, liveJSON(["name": "API_EXPIRING", "value": c, "environment": "production", "expiresIn": "1s"]), expect: 201)
        Thread.sleep(forTimeInterval: 1.5)
        try call("GET", secrets + "/API_EXPIRING?environment=production", expect: 410)
        try call("POST", secrets + "/batch/get", liveJSON(["names": ["API_EXPIRING"], "environment": "production"]), expect: 200)
        try call("POST", secrets, liveJSON(["name": "BIG", "value": String(repeating: c, count: 2000), "environment": "production"]),
                 expect: 413)
        try call("POST", secrets, nil, headers: ["Content-Type": "text/plain"], expect: 415)
        // 400: the value in a field where it does not belong, or in a body that does not parse.
        let invalid: [String] = [
            liveJSON(["name": "X", "valeu": c]),
            liveJSON(["name": "X", "value": ["nested": c]]),
            liveJSON(["name": "X", "value": [c]]),
            liveJSON(["name": "X", "valueBase64": c + "!!"]),
            liveJSON(["name": "X", "value": c, "valueBase64": "QUFB"]),
            liveJSON(["name": "X", "metadata": ["k": c + "\u{1}"], "value": "v"]),
            liveJSON(["name": "X", "description": 5, "value": c]),
            liveJSON(["name": "X", "value": c, "rotationPolicy": ["period": "30d", "generate": ["length": 2]]]),
            "{\"name\":\"X\",\"value\":\"" + c,
            "{\"name\":\"X\",\"value\":\"" + c + "\",\"value\":\"" + c + "\"}",
            "{\"name\":\"X\",\"value\":\"" + c + "\\q\"}",
            "{\"name\":\"X\",\"value\":\"" + c + "\" garbage}",
            "[\"" + c + "\"]",
        ]
        for body in invalid { try call("POST", secrets, body, expect: 400) }
        try call("POST", secrets + "/batch/upsert", liveJSON(["environment": "production", "secrets": [["name": "Q", "value": c, "bogus": 1]]]), expect: 400)
        try call("POST", secrets + "/batch/upsert", "{\"secrets\":[{\"name\":\"Q\",\"value\":\"" + c + "\"}", expect: 400)
        // Public fields (names, tags, environments, durations, scopes) are quoted back in their
        // error, by design (STYLE: echo public input, never secret input); the canary there may
        // be in that answer, and nowhere else: not in the log, the audit log or any file.
        let publicFields: [(String, String)] = [
            (secrets, liveJSON(["name": "BAD-" + c, "value": "v"])),
            (secrets, liveJSON(["name": "X", "value": "v", "tags": [c + "!"]])),
            (secrets, liveJSON(["name": "X", "value": "v", "environment": c])),
            (secrets, liveJSON(["name": "X", "value": "v", "expiresIn": c])),
            ("/v1/security/api-keys", liveJSON(["name": "k", "scopes": [c]])),
        ]
        for (path, body) in publicFields {
            let result = try client.request("POST", path, json: body)
            #expect(result.status == 400, "\(body): \(result)")
        }
        try call("PUT", "/v1/security/policy", "{\"secrets\": {\"production/*\": {\"read\": \"" + c + "\"}}", expect: 400)
        // Rotation through the API, and the audit log as the API serves it.
        try call("PUT", secrets + "/API_CANARY?environment=production",
                 liveJSON(["rotationPolicy": ["period": "30d", "generate": ["length": 40, "charset": "alnum"]]]), expect: 200)
        try call("POST", secrets + "/API_CANARY/rotate?environment=production", "{}", expect: 200)
        try call("GET", "/v1/security/audit-logs?limit=1000", expect: 200)
        try call("DELETE", secrets + "/BATCH_CANARY?environment=production", expect: 204)
    }
}

/// Any exit status will do (the sweep is about the output, not the outcome).
private let anyStatus = Int32.min

private final class ResultBox: @unchecked Sendable {
    var result: ProcessResult?
}
