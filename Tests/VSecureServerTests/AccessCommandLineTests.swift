import Foundation
import Testing
import TestSupport

/// `vsecure users:*`, `api-keys:*`, `policy:*` and the grant commands, run as built against a
/// live `vsecure-server` on loopback: stdout, stderr and exit status.
@Suite("vsecure access commands against a live server", .serialized)
struct AccessCommandLineTests {
    final class Setup: @unchecked Sendable {
        let store: LiveStore
        let server: LiveServer
        let config: TemporaryDirectory

        init() throws {
            store = try LiveStore()
            server = try LiveServer(store: store)
            config = try TemporaryDirectory(prefix: "vsecure-access-cli")
        }

        func run(_ arguments: [String], token: String? = nil, stdin: StandardInput = .null) throws -> ProcessResult {
            var env = minimalEnvironment(home: config.path)
            env["VSECURE_ENDPOINT"] = server.baseURL
            env["VSECURE_API_KEY"] = token ?? store.adminToken
            env["VSECURE_CONFIG_DIR"] = config.file("cfg")
            env["VSECURE_TIMEOUT"] = "10s"
            return try runProcess(Binaries.vsecure, arguments, environment: env, stdin: stdin, workingDirectory: config.path, timeout: 60)
        }

        @discardableResult
        func ok(_ arguments: [String], token: String? = nil, stdin: StandardInput = .null,
                sourceLocation: SourceLocation = #_sourceLocation) throws -> ProcessResult {
            let result = try run(arguments, token: token, stdin: stdin)
            #expect(result.status == 0, "\(arguments.joined(separator: " ")): \(result)", sourceLocation: sourceLocation)
            #expect(!result.stderr.contains(store.adminToken) && !result.stdoutText.contains(store.adminToken), sourceLocation: sourceLocation)
            return result
        }

        func json(_ result: ProcessResult) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(result.stdoutText.utf8)) as? [String: Any])
        }
    }

    @Test("users, keys, a policy and grants, end to end")
    func lifecycle() throws {
        let setup = try Setup()
        // Secrets made while the default policy lets the admin account do everything.
        try setup.ok(["secrets:create", "API_KEY", "--env", "production"], stdin: .text("prod-api-value"))
        try setup.ok(["secrets:create", "DB_ROOT", "--env", "production"], stdin: .text("prod-root-value"))

        let created = try setup.ok(["users:create", "Eng@Example.com", "--roles", "engineers"])
        #expect(created.stdoutText.hasPrefix("Created person eng@example.com (usr_"), "\(created)")
        try setup.ok(["users:create", "ci-deploy", "--service", "--roles", "deployers"])
        let users = try setup.json(try setup.ok(["users:list", "--output", "json"]))
        let names = (users["data"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(Set(names) == ["admin", "eng@example.com", "ci-deploy"])
        let table = try setup.ok(["users:list"])
        #expect(table.stdoutText.hasPrefix("NAME"), "\(table)")
        let duplicate = try setup.run(["users:create", "eng@example.com"])
        #expect(duplicate.status == 4, "\(duplicate)")
        #expect(duplicate.stderr.hasPrefix("vsecure: error: the user eng@example.com already exists\n"), "\(duplicate)")
        // Spaces around list items go; a space inside a name is the server's to refuse, not the CLI's to remove.
        let spaced = try setup.run(["users:create", "ops@example.com", "--roles", "dev ops"])
        #expect(spaced.status == 2 && spaced.stderr.contains("'dev ops'"), "\(spaced)")
        let trimmed = try setup.ok(["users:create", "two@example.com", "--roles", " engineers , deployers "])
        #expect(trimmed.stdoutText.contains("engineers,deployers") || trimmed.stdoutText.contains("engineers, deployers"), "\(trimmed)")
        // An unknown user: exit 3, and a hint that names commands, not the API's routes.
        for arguments in [["users:update", "nobody@example.com", "--roles", "x"], ["users:disable", "nobody@example.com"],
                          ["api-keys:create", "--user", "nobody@example.com", "--scopes", "secrets:read"],
                          ["policy:test", "--user", "nobody@example.com", "production/API_KEY"],
                          ["secrets:grant-access", "API_KEY", "--env", "production", "--user", "nobody@example.com", "--duration", "1h"]] {
            let unknown = try setup.run(arguments)
            #expect(unknown.status == 3, "\(arguments): \(unknown)")
            #expect(unknown.stderr.hasPrefix("vsecure: error: no user 'nobody@example.com'\n"), "\(arguments): \(unknown)")
            #expect(unknown.stderr.contains("vsecure: hint: `vsecure users:list` shows the users") && !unknown.stderr.contains("/v1/"),
                    "\(arguments): \(unknown)")
        }

        let key = try setup.ok(["api-keys:create", "--user", "eng@example.com", "--scopes", "secrets:read", "--name", "eng laptop"])
        let engToken = key.stdoutText.trimmingCharacters(in: .newlines)
        #expect(engToken.hasPrefix("vsec_key_"), "\(key)")
        #expect(key.stderr.contains("for eng@example.com"), "\(key)")
        let keys = try setup.ok(["api-keys:list"])
        #expect(keys.stdoutText.contains("eng@example.com"), "\(keys)")
        #expect(!keys.stdoutText.contains(engToken))

        // A bad policy: the error names the file, line and column; nothing changes.
        let bad = setup.config.file("bad.json")
        try "{\"secrets\": {\n  \"production/*\": {\"read\": [\"engineers\"]},\n  \"production/DB_ROOT\": {\"reed\": [\"admins\"]}\n}}\n"
            .write(toFile: bad, atomically: true, encoding: .utf8)
        let refused = try setup.run(["policy:set", bad])
        #expect(refused.status == 2, "\(refused)")
        #expect(refused.stderr.hasPrefix("vsecure: error: \(bad): line 3, column "), "\(refused)")
        #expect(refused.stderr.contains("vsecure: hint: nothing changed"), "\(refused)")
        #expect(try setup.ok(["policy:show"]).stdoutText.contains("\"**\": {\"read\": [\"admins\"]"))
        // A missing file is bad input, as for `import`.
        let missing = try setup.run(["policy:set", setup.config.file("no-such-policy.json")])
        #expect(missing.status == 2 && missing.stderr.contains("no-such-policy.json"), "\(missing)")
        let directory = try setup.run(["policy:set", setup.config.path])
        #expect(directory.status == 9 && directory.stderr.contains("Is a directory"), "\(directory)")

        let good = setup.config.file("policy.json")
        let policy = """
            {"secrets": {
              "production/*": {"read": ["engineers", "admins"], "write": ["admins"], "delete": ["admins"]},
              "production/DB_ROOT": {"read": ["admins"], "write": ["admins"], "delete": ["admins"]}
            }}
            """
        try policy.write(toFile: good, atomically: true, encoding: .utf8)
        #expect(try setup.ok(["policy:set", good]).stdoutText == "Set the access policy from \(good) (2 rules)\n")
        #expect(try setup.ok(["policy:show"]).stdoutText == policy + "\n")

        let allow = try setup.ok(["policy:test", "--user", "eng@example.com", "--action", "read", "production/API_KEY"])
        #expect(allow.stdoutText.hasPrefix("allow: rule \"production/*\" (line 2)"), "\(allow)")
        let deny = try setup.run(["policy:test", "--user", "eng@example.com", "production/DB_ROOT"])
        #expect(deny.status == 12, "\(deny)")
        #expect(deny.stdoutText.hasPrefix("deny: rule \"production/DB_ROOT\" (line 3)"), "\(deny)")

        // The engineer's own key: reads API_KEY, not DB_ROOT.
        #expect(try setup.ok(["secrets:get", "API_KEY", "--env", "production"], token: engToken).stdoutText == "prod-api-value")
        let denied = try setup.run(["secrets:get", "DB_ROOT", "--env", "production"], token: engToken)
        #expect(denied.status == 12, "\(denied)")
        #expect(denied.stderr.hasPrefix("vsecure: error: read on production/DB_ROOT is denied by the access policy\n"), "\(denied)")
        #expect(!denied.stdoutText.contains("prod-root-value"))

        // A grant lets the engineer read DB_ROOT until it is revoked.
        let grant = try setup.ok(["secrets:grant-access", "DB_ROOT", "--env", "production", "--user", "eng@example.com", "--duration", "1h"])
        #expect(grant.stdoutText.hasPrefix("Granted eng@example.com read on production/DB_ROOT until "), "\(grant)")
        let grantID = try #require(grant.stdoutText.split(separator: "(").last.map { String($0.prefix { $0 != ")" }) })
        #expect(grantID.hasPrefix("grt_"))
        #expect(try setup.ok(["secrets:get", "DB_ROOT", "--env", "production"], token: engToken).stdoutText == "prod-root-value")
        let listed = try setup.json(try setup.ok(["secrets:grants", "DB_ROOT", "--env", "production", "--output", "json"]))
        #expect((listed["data"] as? [[String: Any]])?.map { $0["id"] as? String } == [grantID])
        #expect(try setup.ok(["secrets:revoke-access", grantID]).stdoutText == "Revoked \(grantID)\n")
        #expect(try setup.run(["secrets:get", "DB_ROOT", "--env", "production"], token: engToken).status == 12)
        #expect(try setup.ok(["secrets:grants"]).stdoutText.split(separator: "\n").count == 1)
        #expect(try setup.ok(["secrets:grants", "--include-expired"]).stdoutText.contains("revoked"))
        let path = try setup.ok(["secrets:grant-access", "--path", "production/*", "--user", "ci-deploy", "--action", "read", "--duration", "30m"])
        #expect(path.stdoutText.hasPrefix("Granted ci-deploy read on production/* until "), "\(path)")

        // Roles change on the next request; a disabled user is refused everywhere.
        try setup.ok(["users:update", "eng@example.com", "--roles", "nobody"])
        #expect(try setup.run(["secrets:get", "API_KEY", "--env", "production"], token: engToken).status == 12)
        try setup.ok(["users:update", "eng@example.com", "--roles", "engineers"])
        #expect(try setup.run(["secrets:get", "API_KEY", "--env", "production"], token: engToken).status == 0)
        try setup.ok(["users:disable", "eng@example.com"])
        let disabled = try setup.run(["secrets:get", "API_KEY", "--env", "production"], token: engToken)
        #expect(disabled.status == 12, "\(disabled)")
        #expect(disabled.stderr.contains("the user eng@example.com is disabled"), "\(disabled)")

        // Keys: rotate prints a new token, revoke ends it.
        let keyID = try #require(engToken.split(separator: "_").dropFirst().prefix(2).joined(separator: "_") as String?)
        let rotated = try setup.ok(["api-keys:rotate", keyID])
        #expect(rotated.stdoutText.hasPrefix("vsec_\(keyID)_"), "\(rotated)")
        #expect(try setup.ok(["api-keys:revoke", keyID]).stdoutText == "Revoked \(keyID)\n")
        #expect(try setup.run(["api-keys:revoke", keyID]).status == 3)
    }
}
