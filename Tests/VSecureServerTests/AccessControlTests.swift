import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import TestSupport
import VSecureCore
import VSecureCrypto
@testable import VSecureServer
import VSecureVault

/// Authorization over real routes: the key's scope, its environment limit, and the policy or a
/// grant for its owner, all three. Expectations come from `AccessReference`, written here from
/// the policy's meaning and sharing no code with the engine.
@Suite("Access control")
struct AccessControlTests {
    static let policy = """
        {"secrets": {
          "production/*": {"read": ["engineers", "devops"], "write": ["devops"], "delete": ["admins"]},
          "production/DB_ROOT": {"read": ["admins"]},
          "staging/**": {"read": ["engineers"], "write": ["engineers"], "delete": ["engineers"]}
        }}
        """

    static let paths = ["production/API_KEY", "production/DB_ROOT", "staging/API_KEY", "development/API_KEY", "productionx/API_KEY"]
    static let users: [(name: String, roles: [String])] = [
        ("eng@example.com", ["engineers"]), ("ops@example.com", ["devops"]), ("adm@example.com", ["admins"]),
        ("nobody@example.com", []), ("both@example.com", ["engineers", "devops"]),
    ]

    /// Who may do what under `policy`, by hand: the most specific rule decides alone
    /// (production/DB_ROOT narrows production/*), `*` stays in its segment, no rule means deny.
    enum AccessReference {
        static func allowedRoles(_ path: String, _ action: AccessAction) -> Set<String> {
            let parts = path.split(separator: "/").map(String.init)
            switch (parts[0], parts[1], action) {
            case ("production", "DB_ROOT", .read): return ["admins"]
            case ("production", "DB_ROOT", _): return []
            case ("production", _, .read): return ["engineers", "devops"]
            case ("production", _, .write): return ["devops"]
            case ("production", _, .delete): return ["admins"]
            case ("staging", _, _): return ["engineers"]
            default: return []
            }
        }

        static func allows(roles: [String], action: AccessAction, path: String) -> Bool {
            !allowedRoles(path, action).isDisjoint(with: roles)
        }
    }

    /// A fixture with the five users, the policy above and one secret per path (made straight
    /// in the vault, past authorization).
    static func makeServer() async throws -> (ServerFixture, [String: String]) {
        let server = try ServerFixture.make(environments: ["development", "staging", "production", "productionx"])
        var ids: [String: String] = [:]
        for user in users {
            ids[user.name] = try await server.service.withRegistry { registry, now throws(VSecureError) in
                try registry.createUser(name: user.name, kind: .person, roles: user.roles, now: now).id
            }
        }
        for path in paths { try await ensureSecret(server, path) }
        try await server.test { client in
            let set = try await client.send(.put, "/v1/security/policy", key: server.admin, body: policy)
            #expect(set.status == .ok, "\(set)")
        }
        return (server, ids)
    }

    static func ensureSecret(_ server: ServerFixture, _ path: String) async throws {
        let parts = path.split(separator: "/").map(String.init)
        let environment = try EnvironmentName(parts[0]), name = try SecretName(parts[1])
        let value = Array("value-of-\(path)".utf8).withUnsafeBytes { SecureBytes(copying: $0) }
        let tag = try Tag("app")
        try await server.service.withVault { vault, now throws(VSecureError) in
            if (try? vault.summary(environment: environment, name: name)) != nil { return }
            _ = try value.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) throws(VSecureError) in
                try vault.create(environment: environment, name: name, value: bytes,
                                 attributes: SecretAttributes(tags: [tag]), actor: "test", now: now)
            }
        }
    }

    static func key(_ server: ServerFixture, user: String, scopes: [Scope] = [.secretsRead, .secretsWrite, .secretsDelete],
                    environments: [String]? = nil, expiresAt: Timestamp? = nil) async throws -> TestKey {
        var envs: [EnvironmentName]?
        if let environments { envs = try environments.map { try EnvironmentName($0) } }
        let limited = envs
        let (made, token) = try await server.service.withRegistry { registry, now throws(VSecureError) in
            guard let owner = try registry.user(named: user) else { throw VSecureError(.notFound, "no \(user)") }
            return try registry.createKey(name: "k", scopes: scopes.map(\.rawValue), environments: limited, expiresAt: expiresAt,
                                          userID: owner.id, now: now)
        }
        return TestKey(id: made.id, token: token)
    }

    /// One request doing `action` on `path`; the reply.
    static func attempt(_ client: some TestClientProtocol, _ key: TestKey, _ action: AccessAction, _ path: String) async throws -> Reply {
        let parts = path.split(separator: "/").map(String.init)
        let uri = "/v1/security/secrets/\(parts[1])?environment=\(parts[0])"
        switch action {
        case .read: return try await client.send(.get, uri, key: key)
        case .write: return try await client.send(.put, uri, key: key, json: ["value": "new-\(path)"])
        case .delete: return try await client.send(.delete, uri, key: key)
        }
    }

    static func check(_ reply: Reply, allowed: Bool, action: AccessAction, path: String, _ label: String,
                      sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        if allowed {
            #expect((200..<300).contains(Int(reply.status.code)), "\(label): expected success, got \(reply)", sourceLocation: sourceLocation)
        } else {
            expectError(reply, .forbidden, "PERMISSION_DENIED", sourceLocation: sourceLocation)
            expectNoLeak(reply, of: ["value-of-\(path)"], sourceLocation: sourceLocation)
        }
    }

    @Test("roles × rules × actions, with every secret scope, a missing scope, and an environment limit")
    func matrix() async throws {
        let (server, _) = try await Self.makeServer()
        try await server.test { client in
            var checked = 0
            for user in Self.users {
                let full = try await Self.key(server, user: user.name)
                let stagingOnly = try await Self.key(server, user: user.name, environments: ["staging"])
                for path in Self.paths {
                    for action in AccessAction.allCases {
                        let expected = AccessReference.allows(roles: user.roles, action: action, path: path)
                        let label = "\(user.name) \(action.rawValue) \(path)"
                        let reply = try await Self.attempt(client, full, action, path)
                        Self.check(reply, allowed: expected, action: action, path: path, label)
                        if !expected && reply.status == .forbidden {
                            #expect(reply.errorMessage == "\(action.rawValue) on \(path) is denied by the access policy", "\(label): \(reply)")
                        }
                        if expected && action == .delete { try await Self.ensureSecret(server, path) }

                        let limited = try await Self.attempt(client, stagingOnly, action, path)
                        Self.check(limited, allowed: expected && path.hasPrefix("staging/"), action: action, path: path, label + " (staging key)")
                        if expected && action == .delete && path.hasPrefix("staging/") { try await Self.ensureSecret(server, path) }

                        let lacking = try await Self.key(server, user: user.name,
                                                         scopes: [Scope.secretsRead, .secretsWrite, .secretsDelete].filter { $0 != action.scope })
                        let noScope = try await Self.attempt(client, lacking, action, path)
                        expectError(noScope, .forbidden, "PERMISSION_DENIED")
                        #expect(noScope.errorMessage == "\(action.rawValue) on \(path) is denied: this API key lacks the scope \(action.scope.rawValue)",
                                "\(label) (no scope): \(String(describing: noScope.errorMessage))")
                        checked += 3
                    }
                }
            }
            #expect(checked == Self.users.count * Self.paths.count * 3 * 3)
        }
    }

    @Test("a grant allows at T−1s and denies at T+1s; a revoked grant, key or user stops the next request")
    func grantsAndRevocations() async throws {
        let (server, _) = try await Self.makeServer()
        let key = try await Self.key(server, user: "nobody@example.com")
        try await server.test { client in
            let path = "production/API_KEY"
            Self.check(try await Self.attempt(client, key, .read, path), allowed: false, action: .read, path: path, "before the grant")
            let granted = try await client.send(.post, "/v1/security/grants", key: server.admin,
                                                json: ["user": "nobody@example.com", "name": "API_KEY", "environment": "production", "duration": "1h"])
            #expect(granted.status == .created, "\(granted)")
            let grantID = try #require(granted.string("id"))
            let expiresAt = try Timestamp(iso8601: try #require(granted.string("expiresAt")))
            #expect(expiresAt.secondsSinceEpoch == TestClock.start.secondsSinceEpoch + 3600)
            #expect(granted.string("path") == path)
            #expect(granted.string("action") == "read")

            server.clock.set(Timestamp(secondsSinceEpoch: expiresAt.secondsSinceEpoch - 1))
            let during = try await Self.attempt(client, key, .read, path)
            #expect(during.string("value") == "value-of-\(path)", "\(during)")
            // Only what the grant covers: the action and the path.
            Self.check(try await Self.attempt(client, key, .write, path), allowed: false, action: .write, path: path, "write under a read grant")
            Self.check(try await Self.attempt(client, key, .read, "production/DB_ROOT"), allowed: false, action: .read,
                       path: "production/DB_ROOT", "another secret")
            let test = try await client.send(.post, "/v1/security/policy/test", key: server.admin,
                                             json: ["user": "nobody@example.com", "action": "read", "path": path])
            #expect(test.string("decision") == "allow")
            #expect(test.string("basis") == "grant")
            #expect(test.string("grant") == grantID)

            server.clock.set(Timestamp(secondsSinceEpoch: expiresAt.secondsSinceEpoch + 1))
            Self.check(try await Self.attempt(client, key, .read, path), allowed: false, action: .read, path: path, "after expiry")
            let active = try await client.send(.get, "/v1/security/grants", key: server.admin)
            #expect(active.data.isEmpty, "\(active)")
            let all = try await client.send(.get, "/v1/security/grants?includeExpired=true", key: server.admin)
            #expect(all.data.first?["status"] as? String == "expired")

            // A path grant, revoked: allowed, then denied on the very next request.
            let staging = try await client.send(.post, "/v1/security/grants", key: server.admin,
                                                json: ["user": "nobody@example.com", "path": "staging/*", "action": "write", "duration": "10m"])
            #expect(staging.status == .created, "\(staging)")
            Self.check(try await Self.attempt(client, key, .write, "staging/API_KEY"), allowed: true, action: .write, path: "staging/API_KEY", "path grant")
            let revoked = try await client.send(.delete, "/v1/security/grants/\(staging.string("id") ?? "")", key: server.admin)
            #expect(revoked.status == .noContent, "\(revoked)")
            Self.check(try await Self.attempt(client, key, .write, "staging/API_KEY"), allowed: false, action: .write, path: "staging/API_KEY",
                       "revoked grant")
            expectError(try await client.send(.delete, "/v1/security/grants/\(staging.string("id") ?? "")", key: server.admin), .notFound, "RESOURCE_NOT_FOUND")

            // A key that is revoked or expired is a 401; a disabled user's keys are 403 everywhere.
            let engineer = try await Self.key(server, user: "eng@example.com")
            let expiring = try await Self.key(server, user: "eng@example.com",
                                              expiresAt: Timestamp(secondsSinceEpoch: server.clock.now.secondsSinceEpoch + 5))
            #expect(try await Self.attempt(client, expiring, .read, "staging/API_KEY").status == .ok)
            server.clock.advance(seconds: 5)
            expectError(try await Self.attempt(client, expiring, .read, "staging/API_KEY"), .unauthorized, "AUTHENTICATION_REQUIRED")
            #expect(try await client.send(.delete, "/v1/security/api-keys/\(engineer.id)", key: server.admin).status == .noContent)
            expectError(try await Self.attempt(client, engineer, .read, "staging/API_KEY"), .unauthorized, "AUTHENTICATION_REQUIRED")

            let ops = try await Self.key(server, user: "ops@example.com", scopes: Scope.allCases)
            #expect(try await Self.attempt(client, ops, .read, path).status == .ok)
            let disabled = try await client.send(.post, "/v1/security/users/ops%40example.com/disable", key: server.admin)
            #expect(disabled.status == .ok, "\(disabled)")
            #expect(disabled["disabled"] as? Bool == true)
            let refused = try await Self.attempt(client, ops, .read, path)
            expectError(refused, .forbidden, "PERMISSION_DENIED")
            #expect(refused.errorMessage == "the user ops@example.com is disabled")
            expectError(try await client.send(.get, "/v1/security/api-keys", key: ops), .forbidden, "PERMISSION_DENIED")
            // The key list says so: the key is not active while its owner is disabled.
            let listed = try await client.send(.get, "/v1/security/api-keys", key: server.admin).data.first { $0["id"] as? String == ops.id }
            #expect(listed?["active"] as? Bool == false && listed?["userDisabled"] as? Bool == true, "\(String(describing: listed))")

            // No key disables its own user (there is no way back): the only admin stays usable.
            let selfDisable = try await client.send(.post, "/v1/security/users/admin/disable", key: server.admin)
            expectError(selfDisable, .conflict, "CONFLICT")
            #expect(selfDisable.errorMessage?.contains("cannot disable its own user") == true, "\(selfDisable)")
            #expect(try await client.send(.get, "/v1/security/users", key: server.admin).status == .ok)
        }
    }

    @Test("listing shows only readable secrets and counts only those; a batch with one unreadable secret is refused whole")
    func listingAndBatch() async throws {
        let (server, _) = try await Self.makeServer()
        let engineer = try await Self.key(server, user: "eng@example.com")
        let ops = try await Self.key(server, user: "ops@example.com")
        let nobody = try await Self.key(server, user: "nobody@example.com")
        try await server.test { client in
            func listed(_ key: TestKey, _ query: String = "") async throws -> ([String], Int?) {
                let reply = try await client.listSecrets(key: key, query: query)
                #expect(reply.status == .ok, "\(reply)")
                let paths = reply.data.map { "\($0["environment"] as? String ?? "")/\($0["name"] as? String ?? "")" }
                return (paths.sorted(), (reply["pagination"] as? [String: Any])?["totalCount"] as? Int)
            }
            let (eng, engCount) = try await listed(engineer)
            #expect(eng == ["production/API_KEY", "staging/API_KEY"])
            #expect(engCount == 2)
            let (opsList, opsCount) = try await listed(ops)
            #expect(opsList == ["production/API_KEY"])
            #expect(opsCount == 1)
            let (none, noneCount) = try await listed(nobody)
            #expect(none.isEmpty)
            #expect(noneCount == 0)
            let (page, total) = try await listed(engineer, "limit=1")
            #expect(page.count == 1)
            #expect(total == 2)

            let named = try await client.send(.post, "/v1/security/secrets/batch/get", key: engineer,
                                              json: ["environment": "production", "names": ["API_KEY", "DB_ROOT"]])
            expectError(named, .forbidden, "PERMISSION_DENIED")
            #expect(named.errorMessage == "read on production/DB_ROOT is denied by the access policy")
            expectNoLeak(named, of: ["value-of-production/API_KEY", "value-of-production/DB_ROOT"])
            // A name that does not exist is refused like one that does.
            let missing = try await client.send(.post, "/v1/security/secrets/batch/get", key: ops,
                                                json: ["environment": "staging", "names": ["NOT_THERE"]])
            expectError(missing, .forbidden, "PERMISSION_DENIED")
            let tagged = try await client.send(.post, "/v1/security/secrets/batch/get", key: engineer,
                                               json: ["environment": "production", "tags": ["app"]])
            expectError(tagged, .forbidden, "PERMISSION_DENIED")
            expectNoLeak(tagged, of: ["value-of-production/API_KEY", "value-of-production/DB_ROOT"])
            let allowed = try await client.send(.post, "/v1/security/secrets/batch/get", key: engineer,
                                                json: ["environment": "staging", "tags": ["app"]], headers: [HTTPField.Name("VSecure-Run-Id")!: "run-1"])
            #expect(allowed.status == .ok, "\(allowed)")
            #expect(allowed.data.count == 1)
            #expect(allowed.headers[HTTPField.Name("X-Request-Id")!]?.isEmpty == false)

            let upsert = try await client.send(.post, "/v1/security/secrets/batch/upsert", key: ops,
                                               json: ["environment": "production", "secrets": [["name": "API_KEY", "value": "a"], ["name": "DB_ROOT", "value": "b"]]])
            expectError(upsert, .forbidden, "PERMISSION_DENIED")
            #expect(upsert.errorMessage == "write on production/DB_ROOT is denied by the access policy")
            #expect(try await server.versionCount("API_KEY", environment: "production") == 1)
        }
    }

    @Test("PUT /policy with a bad document is a 400 naming the line, and the policy stays")
    func badPolicy() async throws {
        let (server, _) = try await Self.makeServer()
        try await server.test { client in
            let before = try await client.send(.get, "/v1/security/policy", key: server.admin)
            #expect(before.string("source") == Self.policy, "\(before)")
            let bad = "{\"secrets\": {\n  \"production/*\": {\"read\": [\"engineers\"]},\n  \"staging/*\": {\"raed\": [\"x\"]}\n}}"
            let reply = try await client.send(.put, "/v1/security/policy", key: server.admin, body: bad)
            expectError(reply, .badRequest, "VALIDATION_ERROR")
            #expect(reply.errorMessage?.hasPrefix("line 3, column") == true, "\(reply)")
            let after = try await client.send(.get, "/v1/security/policy", key: server.admin)
            #expect(after.string("source") == Self.policy)
            // The policy still decides as before.
            let engineer = try await Self.key(server, user: "eng@example.com")
            #expect(try await Self.attempt(client, engineer, .read, "production/API_KEY").status == .ok)
            // Without policy:manage, no policy routes.
            expectError(try await client.send(.get, "/v1/security/policy", key: engineer), .forbidden, "PERMISSION_DENIED")
        }
    }

    @Test("users: create, list, update roles (effective on the next request), conflicts and validation")
    func users() async throws {
        let (server, _) = try await Self.makeServer()
        let nobody = try await Self.key(server, user: "nobody@example.com")
        try await server.test { client in
            let made = try await client.send(.post, "/v1/security/users", key: server.admin, json: ["email": "New@Example.com", "roles": ["devops"]])
            #expect(made.status == .created, "\(made)")
            #expect(made.string("name") == "new@example.com")
            #expect(made.string("kind") == "person")
            expectError(try await client.send(.post, "/v1/security/users", key: server.admin, json: ["email": "new@example.com"]), .conflict, "CONFLICT")
            expectError(try await client.send(.post, "/v1/security/users", key: server.admin, json: ["email": "no at sign"]), .badRequest, "VALIDATION_ERROR")
            expectError(try await client.send(.post, "/v1/security/users", key: server.admin, json: ["name": "Bad Name"]), .badRequest, "VALIDATION_ERROR")
            // Characters that would let one user pass for another: zero-width space, no-break
            // space, a C1 control, a direction override, a byte-order mark.
            for hidden in ["\u{200B}", "\u{00A0}", "\u{0085}", "\u{202E}", "\u{FEFF}"] {
                let email = "new" + hidden + "@example.com"
                expectError(try await client.send(.post, "/v1/security/users", key: server.admin, json: ["email": email]), .badRequest, "VALIDATION_ERROR")
                expectError(try await client.send(.post, "/v1/security/api-keys", key: server.admin, json: ["name": "ci" + hidden, "scopes": ["secrets:read"]]),
                            .badRequest, "VALIDATION_ERROR")
            }
            // Letters beyond ASCII are names like any other.
            #expect(try await client.send(.post, "/v1/security/users", key: server.admin, json: ["email": "josé@exämple.com"]).status == .created)
            #expect(try await client.send(.post, "/v1/security/api-keys", key: server.admin, json: ["name": "déploiement nocturne", "scopes": ["secrets:read"]]).status == .created)
            let service = try await client.send(.post, "/v1/security/users", key: server.admin, json: ["name": "ci-deploy", "roles": ["engineers"]])
            #expect(service.string("kind") == "service", "\(service)")
            let list = try await client.send(.get, "/v1/security/users", key: server.admin)
            #expect(Set(list.data.compactMap { $0["name"] as? String }).isSuperset(of: ["admin", "new@example.com", "ci-deploy", "eng@example.com"]))

            #expect(try await Self.attempt(client, nobody, .read, "staging/API_KEY").status == .forbidden)
            let updated = try await client.send(.put, "/v1/security/users/nobody@example.com", key: server.admin, json: ["roles": ["engineers"]])
            #expect(strings(updated["roles"]) == ["engineers"], "\(updated)")
            #expect(try await Self.attempt(client, nobody, .read, "staging/API_KEY").status == .ok)
            expectError(try await client.send(.get, "/v1/security/users/ghost@example.com", key: server.admin), .notFound, "RESOURCE_NOT_FOUND")
            expectError(try await client.send(.get, "/v1/security/users", key: nobody), .forbidden, "PERMISSION_DENIED")

            // Keys: for yourself by default; for someone else only with users:manage.
            let manager = try await Self.key(server, user: "eng@example.com", scopes: [.apiKeysManage, .secretsRead])
            let own = try await client.send(.post, "/v1/security/api-keys", key: manager, json: ["name": "mine", "scopes": ["secrets:read"]])
            #expect(own.string("user") == "eng@example.com", "\(own)")
            expectError(try await client.send(.post, "/v1/security/api-keys", key: manager,
                                              json: ["name": "theirs", "scopes": ["secrets:read"], "user": "ops@example.com"]), .forbidden, "PERMISSION_DENIED")
            let forOps = try await client.send(.post, "/v1/security/api-keys", key: server.admin,
                                               json: ["name": "ops", "scopes": ["secrets:read"], "user": "ops@example.com"])
            #expect(forOps.string("user") == "ops@example.com", "\(forOps)")
        }
    }

    @Test("an old server.db (keys without owners) is migrated: its keys keep working, owned by the admin account")
    func migration() async throws {
        let server = try ServerFixture.make()
        let path = server.directory.file("server.db")
        // Back to the schema before users: no users, policy or grants tables, api_keys without user_id.
        let old = """
            DROP TABLE users; DROP TABLE grants; DROP TABLE policy;
            ALTER TABLE api_keys DROP COLUMN user_id;
            PRAGMA user_version = 0;
            """
        let result = try runProcess("/usr/bin/sqlite3", [path, old], environment: [:])
        #expect(result.status == 0, "sqlite3: \(result.stderr)")
        let vault = try LocalVault.open(at: server.directory.file("vault.db"),
                                        keys: KeySource(keyFilePath: server.directory.file("vault.key")) { () throws(VSecureError) in
                                            throw VSecureError(.key, "a key file vault")
                                        })
        let registry = try ServerRegistry(path: path, vault: vault)
        let key = try #require(try registry.key(id: server.admin.id))
        let admin = try #require(try registry.user(named: "admin"))
        #expect(key.userID == admin.id)
        #expect(admin.roles == ["admins"])
        #expect(admin.kind == .service)
        #expect(try registry.policy().source == ServerRegistry.defaultPolicy)
        // The fixture's service reads the migrated file (its key table reloads on the change).
        try await server.test { client in
            try await client.createSecret("API_KEY", value: "migrated", key: server.admin, environment: "production")
            #expect(try await client.send(.get, "/v1/security/secrets/API_KEY?environment=production", key: server.admin).string("value") == "migrated")
        }
        // Opening it again changes nothing.
        let again = try ServerRegistry(path: path, vault: vault)
        #expect(try again.listUsers().count == 1)
    }
}
