import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import TestSupport
import VSecureCore
@testable import VSecureServer
@testable import VSecureVault

/// A change to a secret commits together with its audit entries: when the entries cannot be
/// written, the change is rolled back, the caller gets 503, and an `Idempotency-Key` keeps no
/// answer (docs/audit.md, "On the server").
@Suite("Secret changes and their audit entries")
struct AuditedChangeTests {
    /// Makes the server's audit log refuse every append, as after an edit underneath it: the
    /// anchor no longer matches the chain. `restore` puts the anchor back.
    final class BrokenLog: @unchecked Sendable {
        let log: AuditLog
        let seq: Int64

        init(_ server: ServerFixture) throws {
            log = try AuditLog.open(path: server.directory.file("audit.db"), keyPath: server.directory.file("audit.key"), create: false)
            seq = try log.db.scalarInt("SELECT seq FROM audit_anchor")
            try log.db.execute("UPDATE audit_anchor SET seq = seq + 1000")
        }

        func restore() throws { try log.db.execute("UPDATE audit_anchor SET seq = \(seq)") }
        func entries() throws -> [AuditEntry] { try log.entries(AuditFilter(limit: 1000)).entries }
    }

    @Test("create, update, rollback, delete and batch upsert change nothing when their entries cannot be written")
    func changesNeedTheirEntries() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("KEPT", value: "one", key: admin)
            let second = try await client.send(.put, "/v1/security/secrets/KEPT", key: admin, json: ["value": "two"])
            #expect(second.status == .ok, "\(second)")

            let broken = try BrokenLog(server)
            let before = try broken.entries().count
            let refused: [(String, Reply)] = [
                ("create", try await client.send(.post, "/v1/security/secrets", key: admin, json: ["name": "NEW", "value": "x"])),
                ("update", try await client.send(.put, "/v1/security/secrets/KEPT", key: admin, json: ["value": "three"])),
                ("update with a key", try await client.send(.put, "/v1/security/secrets/KEPT", key: admin, json: ["value": "four"],
                                                            headers: [.idempotencyKey: "retry-me"])),
                ("rollback", try await client.send(.post, "/v1/security/secrets/KEPT/rollback", key: admin, json: ["version": 1])),
                ("delete", try await client.send(.delete, "/v1/security/secrets/KEPT", key: admin)),
                ("purge", try await client.send(.delete, "/v1/security/secrets/KEPT?purge=true", key: admin)),
                ("batch upsert", try await client.send(.post, "/v1/security/secrets/batch/upsert", key: admin,
                                                       json: ["secrets": [["name": "KEPT", "value": "five"], ["name": "OTHER", "value": "y"]]])),
            ]
            for (what, reply) in refused {
                expectError(reply, .serviceUnavailable, "SERVICE_UNAVAILABLE")
                #expect(reply.error?["message"] as? String == APIError.auditUnavailable.message, "\(what): \(reply)")
            }
            try broken.restore()
            #expect(try broken.entries().count == before, "no entry was added while the log refused")

            // Nothing changed: KEPT is at version 2 with its value, NEW and OTHER do not exist.
            #expect(try await server.versionCount("KEPT") == 2)
            #expect(try await server.storedSecrets().map(\.name.rawValue) == ["KEPT"])
            let kept = try await client.send(.get, "/v1/security/secrets/KEPT", key: admin)
            #expect(kept.string("value") == "two" && kept.int("version") == 2, "\(kept)")

            // The key kept no answer: the retry runs, once, and is recorded.
            let retried = try await client.send(.put, "/v1/security/secrets/KEPT", key: admin, json: ["value": "four"],
                                                headers: [.idempotencyKey: "retry-me"])
            #expect(retried.status == .ok && retried.int("version") == 3, "\(retried)")
            #expect(retried.headers[.idempotentReplayed] == nil)
            let updates = try broken.entries().filter { $0.event.action == .updated && $0.event.name == "KEPT" }
            #expect(updates.map(\.event.version) == [2, 3])
            #expect(try broken.log.verify().isIntact)
        }
    }

    @Test("users, grants, the policy, API keys and webhooks change nothing when their entries cannot be written")
    func registryChangesNeedTheirEntries() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            let user = try await client.send(.post, "/v1/security/users", key: admin, json: ["email": "ana@example.com", "roles": ["engineers"]])
            #expect(user.status == .created, "\(user)")
            let grant = try await client.send(.post, "/v1/security/grants", key: admin,
                                              json: ["user": "ana@example.com", "name": "API_KEY", "environment": "production", "duration": "1h"])
            let grantID = try #require(grant.string("id"), "\(grant)")
            let key = try await client.send(.post, "/v1/security/api-keys", key: admin, json: ["name": "ci", "scopes": ["secrets:read"]])
            let keyID = try #require(key.string("id"), "\(key)")
            let hook = try await client.send(.post, "/v1/security/webhooks", key: admin,
                                             json: ["url": "https://hooks.example.com/in", "events": ["secret.rotated"]])
            let hookID = try #require(hook.string("id"), "\(hook)")
            let policyBefore = try await client.send(.get, "/v1/security/policy", key: admin)
            let keysBefore = try await client.send(.get, "/v1/security/api-keys", key: admin)

            let broken = try BrokenLog(server)
            let before = try broken.entries().count
            let refused: [(String, Reply)] = [
                ("user create", try await client.send(.post, "/v1/security/users", key: admin, json: ["email": "bo@example.com", "roles": []])),
                ("user update", try await client.send(.put, "/v1/security/users/ana%40example.com", key: admin, json: ["roles": ["admins"]])),
                ("user disable", try await client.send(.post, "/v1/security/users/ana%40example.com/disable", key: admin)),
                ("grant create", try await client.send(.post, "/v1/security/grants", key: admin,
                                                       json: ["user": "ana@example.com", "name": "OTHER", "environment": "production", "duration": "1h"])),
                ("grant revoke", try await client.send(.delete, "/v1/security/grants/\(grantID)", key: admin)),
                ("policy", try await client.send(.put, "/v1/security/policy", key: admin,
                                                 body: #"{"secrets": {"production/*": {"read": ["engineers"]}}}"#)),
                ("key create", try await client.send(.post, "/v1/security/api-keys", key: admin, json: ["name": "more", "scopes": ["secrets:read"]])),
                ("key rotate", try await client.send(.post, "/v1/security/api-keys/\(keyID)/rotate", key: admin)),
                ("key revoke", try await client.send(.delete, "/v1/security/api-keys/\(keyID)", key: admin)),
                ("webhook create", try await client.send(.post, "/v1/security/webhooks", key: admin,
                                                         json: ["url": "https://hooks.example.com/two", "events": ["secret.rotated"]])),
                ("webhook delete", try await client.send(.delete, "/v1/security/webhooks/\(hookID)", key: admin)),
            ]
            for (what, reply) in refused {
                expectError(reply, .serviceUnavailable, "SERVICE_UNAVAILABLE")
                #expect(reply.error?["message"] as? String == APIError.auditUnavailable.message, "\(what): \(reply)")
                #expect(reply.string("token") == nil, "\(what) handed out no token")
            }
            try broken.restore()
            #expect(try broken.entries().count == before, "no entry was added while the log refused")

            // Everything is as it was.
            let users = try await client.send(.get, "/v1/security/users", key: admin)
            #expect(!users.data.contains { $0["name"] as? String == "bo@example.com" }, "\(users)")
            let ana = try #require(users.data.first { $0["name"] as? String == "ana@example.com" }, "\(users)")
            #expect(strings(ana["roles"]) == ["engineers"] && ana["disabled"] as? Bool == false, "\(ana)")
            let grants = try await client.send(.get, "/v1/security/grants", key: admin)
            #expect(grants.data.compactMap { $0["id"] as? String } == [grantID], "\(grants)")
            #expect(try await client.send(.get, "/v1/security/policy", key: admin).text == policyBefore.text)
            #expect(try await client.send(.get, "/v1/security/api-keys", key: admin).text == keysBefore.text, "no key made, rotated or revoked")
            let hooks = try await client.send(.get, "/v1/security/webhooks", key: admin)
            #expect(hooks.data.compactMap { $0["id"] as? String } == [hookID], "\(hooks)")
            #expect(try broken.log.verify().isIntact)
        }
    }

    @Test("batch upsert: each entry names the version written; a bad expiry names its item and stores nothing")
    func batchEntriesNameVersions() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("SAME", value: "same", key: admin)
            try await client.createSecret("CHANGED", value: "old", key: admin)
            let log = try AuditLog.open(path: server.directory.file("audit.db"), keyPath: server.directory.file("audit.key"), create: false)
            let before = try log.count()
            let batch = try await client.send(.post, "/v1/security/secrets/batch/upsert", key: admin,
                                              json: ["secrets": [["name": "SAME", "value": "same"], ["name": "CHANGED", "value": "new"],
                                                                 ["name": "FRESH", "value": "x"]]])
            #expect(batch.status == .ok, "\(batch)")
            let written = try log.entries(AuditFilter(limit: 100)).entries.filter { $0.seq > before }
            let versions = Dictionary(uniqueKeysWithValues: written.map { ($0.event.name ?? "", $0.event.version) })
            #expect(versions == ["SAME": 1, "CHANGED": 2, "FRESH": 1], "\(written.map(\.event))")

            let bad = try await client.send(.post, "/v1/security/secrets/batch/upsert", key: admin,
                                            json: ["secrets": [["name": "A1", "value": "x"], ["name": "A2", "value": "y", "expiresIn": "zz"]]])
            expectError(bad, .badRequest, "VALIDATION_ERROR")
            #expect((bad.error?["message"] as? String)?.hasPrefix("secrets[1]: ") == true, "\(bad)")
            #expect(try await server.storedSecrets().map(\.name.rawValue).sorted() == ["CHANGED", "FRESH", "SAME"])
        }
    }

    @Test("a scope or environment denial is audited on batches and listings, as on a single read")
    func denialsAudited() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let staging = try await server.makeKey(name: "stg", scopes: [.secretsRead, .secretsWrite], environments: ["staging"])
        let writeOnly = try await server.makeKey(name: "wo", scopes: [.secretsWrite])
        try await server.test { client in
            try await client.createSecret("API_KEY", value: "v", key: admin, environment: "production")
            let attempts: [(String, Reply, String, String)] = [
                ("single read", try await client.send(.get, "/v1/security/secrets/API_KEY?environment=production", key: staging),
                 "environment", "production/API_KEY"),
                ("batch get", try await client.send(.post, "/v1/security/secrets/batch/get", key: staging,
                                                    json: ["names": ["API_KEY"], "environment": "production"]), "environment", "production/*"),
                ("batch upsert", try await client.send(.post, "/v1/security/secrets/batch/upsert", key: staging,
                                                       json: ["environment": "production", "secrets": [["name": "API_KEY", "value": "x"]]]),
                 "environment", "production/*"),
                ("batch get without the scope", try await client.send(.post, "/v1/security/secrets/batch/get", key: writeOnly,
                                                                      json: ["names": ["API_KEY"], "environment": "production"]), "scope", "production/*"),
                ("list", try await client.send(.get, "/v1/security/secrets?environment=production", key: staging), "environment", "production/*"),
                ("list without the scope", try await client.send(.get, "/v1/security/secrets", key: writeOnly), "scope", "*"),
                ("list of an environment without the scope", try await client.send(.get, "/v1/security/secrets?environment=production", key: writeOnly),
                 "scope", "production/*"),
            ]
            let log = try AuditLog.open(path: server.directory.file("audit.db"), keyPath: server.directory.file("audit.key"), create: false)
            let denials = try log.entries(AuditFilter(resource: .secrets, outcome: .failure, limit: 100)).entries.sorted { $0.seq < $1.seq }
            #expect(denials.count == attempts.count, "\(denials.map(\.event))")
            for ((what, reply, check, path), entry) in zip(attempts, denials) {
                expectError(reply, .forbidden, "PERMISSION_DENIED")
                let details = Dictionary(entry.event.details, uniquingKeysWith: { first, _ in first })
                #expect(details["reason"] == "permission_denied" && details["check"] == check && details["path"] == path,
                        "\(what): \(entry.event)")
            }
        }
    }

    @Test("a refusal on an administration route is recorded too: resource, action, the scope it lacked")
    func administrationDenialsAudited() async throws {
        let server = try ServerFixture.make()
        let reader = try await server.makeKey(name: "reader", scopes: [.secretsRead])
        try await server.test { client in
            let adminKeyID = try #require(try await client.send(.get, "/v1/security/api-keys", key: server.admin).data.first?["id"] as? String)
            let attempts: [(AuditEvent.Resource, AuditEvent.Action, String?, String, Reply)] = [
                (.users, .updated, "admin", "users:manage",
                 try await client.send(.put, "/v1/security/users/admin", key: reader, json: ["roles": ["admins"]])),
                (.policy, .changed, nil, "policy:manage",
                 try await client.send(.put, "/v1/security/policy", key: reader, json: ["secrets": ["**": ["read": ["engineers"]]]])),
                (.grants, .created, nil, "grants:manage",
                 try await client.send(.post, "/v1/security/grants", key: reader, json: ["user": "admin", "path": "**", "duration": "1h"])),
                (.apiKeys, .rotated, adminKeyID, "apikeys:manage",
                 try await client.send(.post, "/v1/security/api-keys/\(adminKeyID)/rotate", key: reader)),
                (.audit, .accessed, nil, "audit:read", try await client.send(.get, "/v1/security/audit-logs", key: reader)),
                (.webhooks, .created, nil, "webhooks:manage",
                 try await client.send(.post, "/v1/security/webhooks", key: reader, json: ["url": "https://example.com/hook"])),
            ]
            let log = try AuditLog.open(path: server.directory.file("audit.db"), keyPath: server.directory.file("audit.key"), create: false)
            let denials = try log.entries(AuditFilter(outcome: .failure, limit: 100)).entries.sorted { $0.seq < $1.seq }
            #expect(denials.count == attempts.count, "\(denials.map(\.event))")
            for ((resource, action, name, scope, reply), entry) in zip(attempts, denials) {
                expectError(reply, .forbidden, "PERMISSION_DENIED")
                let details = Dictionary(entry.event.details, uniquingKeysWith: { first, _ in first })
                #expect(entry.event.resource == resource && entry.event.action == action && entry.event.name == name
                        && entry.event.actor.keyName == "reader", "\(resource): \(entry.event)")
                #expect(details["reason"] == "permission_denied" && details["check"] == "scope" && details["scope"] == scope,
                        "\(resource): \(entry.event)")
            }
        }
    }

    @Test("a denied write is recorded as what it tried: created, updated, rolled back or rotated")
    func deniedWritesNamed() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let readOnly = try await server.makeKey(name: "ro", scopes: [.secretsRead])
        try await server.test { client in
            try await client.createSecret("API_KEY", value: "v", key: admin, environment: "production")
            let attempts: [(AuditEvent.Action, Reply)] = [
                (.created, try await client.send(.post, "/v1/security/secrets", key: readOnly,
                                                 json: ["name": "NEW_KEY", "value": "x", "environment": "production"])),
                (.updated, try await client.send(.put, "/v1/security/secrets/API_KEY", key: readOnly,
                                                 json: ["value": "x", "environment": "production"])),
                (.rolledBack, try await client.send(.post, "/v1/security/secrets/API_KEY/rollback", key: readOnly,
                                                    json: ["version": 1, "environment": "production"])),
                (.rotated, try await client.send(.post, "/v1/security/secrets/API_KEY/rotate?environment=production", key: readOnly)),
            ]
            let log = try AuditLog.open(path: server.directory.file("audit.db"), keyPath: server.directory.file("audit.key"), create: false)
            let denials = try log.entries(AuditFilter(resource: .secrets, outcome: .failure, limit: 100)).entries.sorted { $0.seq < $1.seq }
            #expect(denials.map(\.event.action) == attempts.map(\.0), "\(denials.map(\.event))")
            for (_, reply) in attempts { expectError(reply, .forbidden, "PERMISSION_DENIED") }
            #expect(denials.allSatisfy { $0.event.details.contains { $0.0 == "action" && $0.1 == "write" } }, "\(denials.map(\.event))")
        }
    }
}

/// A store that runs out of space between its change's entries and its commit: the paths where
/// the log is ahead of the store. The vault or server.db sits on a small tmpfs of its own, the
/// audit log on the usual disk.
@Suite("Audited changes whose store is full", .serialized,
       .enabled(if: SmallDisk.canMount, "mounting a tmpfs needs root (CAP_SYS_ADMIN); SmallDisk.whyNot has the reason"))
struct AuditedCommitFailureTests {
    static func updates(_ server: ServerFixture, _ name: String) throws -> [AuditEntry] {
        let log = try AuditLog.open(path: server.directory.file("audit.db"), keyPath: server.directory.file("audit.key"), create: false)
        #expect(try log.verify().isIntact)
        return try log.entries(AuditFilter(action: .updated, name: name, limit: 100)).entries.sorted { $0.seq < $1.seq }
    }

    @Test("a vault commit that fails after its entry is written: an error, no new version, and a commit_failed entry after it",
          .timeLimit(.minutes(3)))
    func vaultCommitFails() async throws {
        let mount = try TemporaryDirectory(prefix: "vsecure-full-vault")
        let disk = try SmallDisk(at: mount.file("disk"), megabytes: 4)
        defer { disk.unmount() }
        let server = try ServerFixture.make(vaultDirectory: disk.path)
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("KEPT", value: "one", key: admin)
            try disk.fill()
            let refused = try await client.send(.put, "/v1/security/secrets/KEPT", key: admin, json: ["value": "two"])
            #expect(refused.status.code >= 500, "\(refused)")
            disk.free()
            #expect(try await server.versionCount("KEPT") == 1)
            let updates = try Self.updates(server, "KEPT")
            #expect(updates.map(\.event.outcome) == [.success, .failure], "\(updates.map(\.event))")
            #expect(updates.last?.event.details.contains { $0.0 == "reason" && $0.1 == "commit_failed" } == true)
            let again = try await client.send(.put, "/v1/security/secrets/KEPT", key: admin, json: ["value": "two"])
            #expect(again.status == .ok && again.int("version") == 2, "with room again: \(again)")
        }
    }

    @Test("an Idempotency-Key's answer that cannot be kept after a vault change: the change is answered as made",
          .timeLimit(.minutes(3)))
    func answerNotKept() async throws {
        let mount = try TemporaryDirectory(prefix: "vsecure-full-registry")
        let disk = try SmallDisk(at: mount.file("disk"), megabytes: 4)
        defer { disk.unmount() }
        let server = try ServerFixture.make(registryDirectory: disk.path)
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("KEPT", value: "one", key: admin)
            try disk.fill()
            let made = try await client.send(.put, "/v1/security/secrets/KEPT", key: admin, json: ["value": "two"],
                                             headers: [.idempotencyKey: "unkept"])
            #expect(made.status == .ok && made.int("version") == 2, "the change happened and is answered so: \(made)")
            disk.free()
            #expect(try await server.versionCount("KEPT") == 2)
            #expect(try Self.updates(server, "KEPT").map(\.event.version) == [2])
        }
    }
}
