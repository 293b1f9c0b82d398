import Foundation
import Testing
import TestSupport

/// The built `vsecure` binary run twice for every step: against a local vault and against a
/// live `vsecure-server` on loopback. Stdout, stderr and the exit status must match, once ids,
/// times, actors and fingerprints (which differ between any two stores) are masked.
@Suite("vsecure CLI: local and remote give the same answers", .serialized)
struct RemoteCLITests {
    /// A local vault and a server, each with an empty HOME and config directory.
    final class Pair: @unchecked Sendable {
        let local: Vault
        let live: LiveStore
        let server: LiveServer
        let config: TemporaryDirectory

        /// `serverArguments`: more `vsecure-server serve` options (`--rotation-interval 0`, …).
        init(serverArguments: [String] = []) throws {
            local = try Vault()
            live = try LiveStore()
            server = try LiveServer(store: live, extraArguments: serverArguments)
            config = try TemporaryDirectory(prefix: "vsecure-cli-config")
        }

        var remoteEnvironment: [String: String] {
            var env = minimalEnvironment(home: config.path)
            env["VSECURE_ENDPOINT"] = server.baseURL
            env["VSECURE_API_KEY"] = live.adminToken
            env["VSECURE_CONFIG_DIR"] = config.file("cfg")
            env["VSECURE_TIMEOUT"] = "10s"
            return env
        }

        func remote(_ arguments: [String], stdin: StandardInput = .null, env extra: [String: String] = [:]) throws -> ProcessResult {
            try runProcess(Binaries.vsecure, arguments, environment: remoteEnvironment.merging(extra) { $1 }, stdin: stdin,
                           workingDirectory: config.path, timeout: 60)
        }

        /// Runs both, expects the same masked output and status, and returns the remote result.
        @discardableResult
        func both(_ arguments: [String], stdin: StandardInput = .null, status: Int32 = 0,
                  sourceLocation: SourceLocation = #_sourceLocation) throws -> ProcessResult {
            let here = try local.run(arguments, stdin: stdin)
            let there = try remote(arguments, stdin: stdin)
            let label = arguments.joined(separator: " ")
            #expect(here.status == status, "local \(label): \(here)", sourceLocation: sourceLocation)
            #expect(there.status == status, "remote \(label): \(there)", sourceLocation: sourceLocation)
            #expect(masked(here.stdoutText) == masked(there.stdoutText), "stdout of \(label)\nlocal:\n\(here)\nremote:\n\(there)",
                    sourceLocation: sourceLocation)
            #expect(masked(here.stderr) == masked(there.stderr), "stderr of \(label)\nlocal:\n\(here)\nremote:\n\(there)",
                    sourceLocation: sourceLocation)
            #expect(!there.stderr.contains(live.adminToken) && !there.stdoutText.contains(live.adminToken), sourceLocation: sourceLocation)
            return there
        }
    }

    /// Masks what differs between any two stores: ids, times, relative expiries, actors, keyed
    /// fingerprints, and the column widths that depend on them.
    static func mask(_ text: String) -> String {
        var out = text
        let rules: [(String, String)] = [
            (#"sec_[0-9a-f]{24}"#, "sec_ID"),
            (#"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"#, "TIME"),
            (#"expires in [0-9dhm ]+"#, "expires in N"),
            (#"admin \(key_[0-9a-f]{16}\)"#, "ACTOR"),
            (#"tester@e2e"#, "ACTOR"),
            (#"\b[0-9a-f]{16}\b"#, "FINGERPRINT"),
            (#" {2,}"#, "  "),
        ]
        for (pattern, replacement) in rules {
            out = out.replacingOccurrences(of: pattern, with: replacement, options: .regularExpression)
        }
        return out
    }

    @Test("every secrets command, its errors included, answers alike")
    func lifecycle() throws {
        let pair = try Pair()
        try pair.both(["secrets:create", "API_KEY", "--tags", "production,api", "--metadata", "owner=team",
                       "--description", "the api key", "--expires-in", "30d"], stdin: .text("value-one"))
        try pair.both(["secrets:create", "API_KEY", "--env", "production"], stdin: .text("x"), status: 4)
        let value = try pair.both(["secrets:get", "API_KEY", "--env", "production"])
        #expect(value.stdoutText == "value-one")
        try pair.both(["secrets:get", "API_KEY", "--env", "production", "--output", "json"])
        try pair.both(["secrets:update", "API_KEY", "--env", "production"], stdin: .text("value-two"))
        try pair.both(["secrets:update", "API_KEY", "--env", "production", "--add-tag", "extra", "--remove-metadata", "owner"])
        try pair.both(["secrets:update", "API_KEY", "--env", "production", "--no-expiry", "--output", "json"])
        try pair.both(["secrets:update", "API_KEY", "--env", "production", "--if-version", "1"], stdin: .text("lost"), status: 4)
        try pair.both(["secrets:update", "NOPE", "--env", "production"], stdin: .text("lost"), status: 3)
        #expect(try pair.both(["secrets:get", "API_KEY", "--env", "production", "--version", "1"]).stdoutText == "value-one")
        try pair.both(["secrets:get", "API_KEY", "--env", "production", "--version", "9"], status: 3)
        try pair.both(["secrets:get", "MISSING", "--env", "production"], status: 3)
        try pair.both(["secrets:get", "API_KEY"], status: 3)
        try pair.both(["secrets:get", "API_KEY", "--env", "bogus"], status: 2)
        try pair.both(["secrets:create", "OTHER", "--tags", "staging,db"], stdin: .text("o"))
        try pair.both(["secrets:list"])
        try pair.both(["secrets:list", "--env", "production", "--output", "json"])
        try pair.both(["secrets:list", "--tags", "db"])
        try pair.both(["secrets:list", "--search", "API"])
        try pair.both(["secrets:list", "--env", "development"])
        try pair.both(["secrets:versions", "API_KEY", "--env", "production"])
        try pair.both(["secrets:versions", "API_KEY", "--env", "production", "--output", "json"])
        try pair.both(["secrets:diff", "API_KEY", "--env", "production"])
        try pair.both(["secrets:diff", "API_KEY", "--env", "production", "--output", "json"])
        try pair.both(["secrets:diff", "API_KEY", "--env", "production", "--reveal"])
        try pair.both(["secrets:rollback", "API_KEY", "--env", "production"])
        try pair.both(["secrets:rollback", "API_KEY", "--env", "production", "--version", "3"], status: 4)
        try pair.both(["secrets:rollback", "API_KEY", "--env", "production", "--version", "1", "--output", "json"])
        #expect(try pair.both(["secrets:get", "API_KEY", "--env", "production"]).stdoutText == "value-one")
        // Expiry: refused with exit 5 unless --allow-expired.
        try pair.both(["secrets:create", "SHORT", "--expires-in", "1s"], stdin: .text("short-lived"))
        Thread.sleep(forTimeInterval: 2.2)
        try pair.both(["secrets:get", "SHORT"], status: 5)
        #expect(try pair.both(["secrets:get", "SHORT", "--allow-expired"]).stdoutText == "short-lived")
        try pair.both(["secrets:list", "--env", "development"])
        try pair.both(["secrets:list", "--env", "development", "--include-expired"])
        // Import and export, into the default environment and into one named by a tag.
        let dotenv = "DB_URL=\"postgres://u:p@h/db\"\nEMPTY=\nQUOTED='single quoted'\n"
        try pair.both(["secrets:import", "-"], stdin: .text(dotenv))
        try pair.both(["secrets:import", "-", "--tags", "staging,imported"], stdin: .text(dotenv))
        try pair.both(["secrets:import", "-", "--tags", "staging", "--output", "json"], stdin: .text("DB_URL=changed\nEMPTY=\nNEW=1\n"))
        try pair.both(["secrets:list", "--env", "staging"])
        try pair.both(["secrets:export"])
        try pair.both(["secrets:export", "--include-expired", "--format", "json"])
        try pair.both(["secrets:export", "--env", "staging", "--format", "shell", "--tags", "imported"])
        try pair.both(["secrets:get", "DB_URL", "--env", "staging"])
        // Delete, again, purge, revive.
        try pair.both(["secrets:delete", "DB_URL", "--yes"])
        try pair.both(["secrets:delete", "DB_URL", "--yes"], status: 3)
        try pair.both(["secrets:delete", "DB_URL"], status: 2)
        try pair.both(["secrets:delete", "DB_URL", "--yes", "--purge"])
        try pair.both(["secrets:create", "DB_URL"], stdin: .text("again"))
        try pair.both(["secrets:versions", "DB_URL"])
        try pair.both(["secrets:delete", "OTHER", "--env", "staging", "--yes"])
        try pair.both(["secrets:list"])
    }

    @Test("update, versions, diff, rollback and list against a server read no value: the audit log records no read of one")
    func noValueReadForAttributes() throws {
        let pair = try Pair()
        let client = LiveClient(baseURL: pair.server.baseURL, token: pair.live.adminToken, scratch: pair.config)
        func run(_ arguments: [String], stdin: StandardInput = .null, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let result = try pair.remote(arguments, stdin: stdin)
            #expect(result.status == 0, "\(arguments.joined(separator: " ")): \(result)", sourceLocation: sourceLocation)
        }
        /// The `accessed` entries for `name` that record a read of its value: the history and
        /// diff views are `accessed` too, but say which view in `details.view`.
        func valueReads(_ name: String) throws -> [[String: Any]] {
            let reply = try client.get("/v1/security/audit-logs?resource=secrets&action=accessed&name=\(name)&limit=1000")
            #expect(reply.status == 200, "\(reply)")
            return reply.json.liveObjects("data").filter { $0.liveObject("details")?["view"] == nil }
        }
        try run(["secrets:create", "API_KEY", "--env", "production"], stdin: .text("first-SECRET-value"))
        try run(["secrets:create", "DEV_TOKEN"], stdin: .text("dev-SECRET-value"))
        // With a value (from stdin here: no prompt, so no existence check first); without --env, in the default environment.
        try run(["secrets:update", "API_KEY", "--env", "production"], stdin: .text("second-SECRET-value"))
        try run(["secrets:update", "DEV_TOKEN"], stdin: .text("dev-SECRET-value-2"))
        try run(["secrets:update", "API_KEY", "--env", "production", "--add-tag", "api", "--description", "the key"])
        try run(["secrets:versions", "API_KEY", "--env", "production"])
        try run(["secrets:versions", "API_KEY", "--env", "production", "--output", "json"])
        try run(["secrets:versions", "DEV_TOKEN"])
        try run(["secrets:diff", "API_KEY", "--env", "production"])
        try run(["secrets:rollback", "API_KEY", "--env", "production"])
        try run(["secrets:list", "--search", "API"])
        try run(["secrets:list", "--env", "production", "--output", "json"])
        let apiReads = try valueReads("API_KEY"), devReads = try valueReads("DEV_TOKEN")
        #expect(apiReads.isEmpty, "no command above reads API_KEY's value: \(apiReads)")
        #expect(devReads.isEmpty, "no command above reads DEV_TOKEN's value: \(devReads)")
        // A key with secrets:write alone (a CI deploy key) updates a value from stdin or a file:
        // no list is needed when nobody is prompted.
        let created = try client.post("/v1/security/api-keys", #"{"name": "writer", "scopes": ["secrets:write"]}"#)
        #expect(created.status == 201, "\(created)")
        let writer = try #require(created.json["key"] as? String)
        let written = try pair.remote(["secrets:update", "DEV_TOKEN", "-"], stdin: .text("dev-SECRET-value-3"), env: ["VSECURE_API_KEY": writer])
        #expect(written.status == 0, "\(written)")
        // The same query does find a read of the value.
        try run(["secrets:get", "API_KEY", "--env", "production"])
        let afterGet = try valueReads("API_KEY")
        #expect(afterGet.count == 1 && afterGet.first?["version"] as? Int == 3, "secrets:get reads version 3 (the rollback's): \(afterGet)")
    }

    @Test("--expires-in counts from the server's clock: a 1 s expiry is never refused as already past", .timeLimit(.minutes(2)))
    func shortExpiryAgainstAServer() throws {
        let pair = try Pair()
        // Before, the CLI sent a time in whole seconds from its own clock, and a second boundary
        // passed on the way to the server often enough to refuse it as "in the past".
        for index in 0..<10 {
            let created = try pair.remote(["secrets:create", "SHORT_\(index)", "-", "--expires-in", "1s", "--env", "production"],
                                          stdin: .text("v"))
            #expect(created.status == 0, "\(created)")
            let updated = try pair.remote(["secrets:update", "SHORT_\(index)", "--expires-in", "1s", "--env", "production"])
            #expect(updated.status == 0, "\(updated)")
        }
        // And it does expire: refused (exit 5) once the second has passed.
        Thread.sleep(forTimeInterval: 2.2)
        let expired = try pair.remote(["secrets:get", "SHORT_0", "--env", "production"])
        #expect(expired.status == 5, "\(expired)")
    }

    @Test("a refused key is exit 12, an unreachable server exit 13 within the timeout")
    func remoteFailures() throws {
        let pair = try Pair()
        let refused = try pair.remote(["secrets:list"], env: ["VSECURE_API_KEY": "vsec_key_0000000000000000_not-a-real-key"])
        #expect(refused.status == 12, "\(refused)")
        #expect(refused.stderr.hasPrefix("vsecure: error: the server at \(pair.server.baseURL) refused the API key\n"), "\(refused)")
        #expect(!refused.stderr.contains("not-a-real-key"))
        let port = try liveFreeLoopbackPort()
        let started = Date()
        let down = try pair.remote(["secrets:get", "API_KEY"], env: ["VSECURE_ENDPOINT": "http://127.0.0.1:\(port)", "VSECURE_TIMEOUT": "3s"])
        #expect(down.status == 13, "\(down)")
        #expect(down.stderr.contains("cannot reach the server at http://127.0.0.1:\(port)"), "\(down)")
        #expect(Date().timeIntervalSince(started) < 8)
        let noKey = try pair.remote(["secrets:list"], env: ["VSECURE_API_KEY": ""])
        #expect(noKey.status == 12, "\(noKey)")
        #expect(noKey.stderr.contains("no API key for \(pair.server.baseURL)"), "\(noKey)")
        let insecure = try pair.remote(["secrets:list"], env: ["VSECURE_VERIFY_SSL": "false"])
        #expect(insecure.status == 0, "\(insecure)")
        #expect(insecure.stderr.contains("vsecure: warning: VSECURE_VERIFY_SSL=false: the server's certificate is NOT checked"), "\(insecure)")
        // --vault always means the local vault, whatever endpoint is configured.
        let local = try pair.remote(["secrets:list", "--vault", pair.local.vaultPath, "--key-file", pair.local.keyPath])
        #expect(local.status == 0, "\(local)")
        #expect(local.stderr == "vsecure: no secrets match\n", "\(local)")
        let both = try pair.remote(["secrets:list", "--vault", pair.local.vaultPath, "--endpoint", pair.server.baseURL])
        #expect(both.status == 2, "\(both)")
    }

    @Test("TLS: trusted with --cacert or VSECURE_CA_CERT, refused without")
    func tls() throws {
        let live = try LiveStore()
        let pki = try LivePKI(in: live.directory)
        let server = try LiveServer(store: live, pki: pki)
        let config = try TemporaryDirectory(prefix: "vsecure-cli-tls")
        var env = minimalEnvironment(home: config.path)
        env["VSECURE_API_KEY"] = live.adminToken
        env["VSECURE_CONFIG_DIR"] = config.file("cfg")
        let url = "https://localhost:\(server.port)"
        let untrusted = try runProcess(Binaries.vsecure, ["secrets:list", "--endpoint", url], environment: env, timeout: 60)
        #expect(untrusted.status == 13, "\(untrusted)")
        #expect(untrusted.stderr.contains("TLS with \(url) failed"), "\(untrusted)")
        let trusted = try runProcess(Binaries.vsecure, ["secrets:list", "--endpoint", url, "--cacert", pki.caCertificate], environment: env, timeout: 60)
        #expect(trusted.status == 0, "\(trusted)")
        env["VSECURE_CA_CERT"] = pki.caCertificate
        env["VSECURE_ENDPOINT"] = url
        let fromEnvironment = try runProcess(Binaries.vsecure, ["secrets:create", "TLS_OK"], environment: env, stdin: .text("v"), timeout: 60)
        #expect(fromEnvironment.status == 0, "\(fromEnvironment)")
    }
}

private func masked(_ text: String) -> String { RemoteCLITests.mask(text) }
