import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import VSecureCore
@testable import VSecureServer

/// /v1/security/api-keys: create (token shown once), list, revoke, rotate.
@Suite("API key routes")
struct APIKeyRouteTests {
    @Test("POST /api-keys shows the token once; the list never shows it; the key works as granted")
    func createAndList() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let inOneHour = Timestamp(secondsSinceEpoch: TestClock.start.secondsSinceEpoch + 3600).iso8601
        try await server.test { client in
            try await client.createSecret("STAGE_ONE", value: "stage-value", key: admin, environment: "staging")
            let created = try await client.send(.post, "/v1/security/api-keys", key: admin,
                                                json: ["name": "ci runner", "scopes": ["secrets:read", "secrets:read"],
                                                       "environments": ["staging"], "expiresIn": "1h"])
            #expect(created.status == .created, "\(created)")
            let token = try #require(created.string("key"))
            let id = try #require(created.string("id"))
            #expect(token.hasPrefix("vsec_\(id)_"))
            #expect(created.string("name") == "ci runner")
            #expect(strings(created["scopes"]) == ["secrets:read"])
            #expect(strings(created["environments"]) == ["staging"])
            #expect(created.string("expiresAt") == inOneHour)
            #expect(created["revokedAt"] is NSNull)
            #expect(created["active"] as? Bool == true)
            let key = TestKey(id: id, token: token)

            let list = try await client.send(.get, "/v1/security/api-keys", key: admin)
            #expect(list.status == .ok)
            #expect(!list.text.contains(token))
            #expect(!list.text.contains(String(token.suffix(43))))
            #expect(!list.text.contains(admin.token))
            #expect(list.data.allSatisfy { $0["key"] == nil })
            #expect(Set(list.data.compactMap { $0["id"] as? String }) == [admin.id, id])
            let listed = try #require(list.data.first { $0["id"] as? String == id })
            #expect(listed["name"] as? String == "ci runner")
            #expect(strings(listed["environments"]) == ["staging"])
            let adminListed = try #require(list.data.first { $0["id"] as? String == admin.id })
            #expect(adminListed["environments"] is NSNull)

            // The new key reads staging, and nothing else.
            #expect(try await client.send(.get, "/v1/security/secrets/STAGE_ONE?environment=staging", key: key).string("value") == "stage-value")
            expectError(try await client.send(.post, "/v1/security/secrets", key: key, json: ["name": "X", "value": "v", "environment": "staging"]),
                        .forbidden, "PERMISSION_DENIED")
            expectError(try await client.send(.get, "/v1/security/api-keys", key: key), .forbidden, "PERMISSION_DENIED")
            // It expires with the clock.
            server.clock.advance(seconds: 3601)
            expectError(try await client.send(.get, "/v1/security/secrets/STAGE_ONE?environment=staging", key: key),
                        .unauthorized, "AUTHENTICATION_REQUIRED")
            let after = try await client.send(.get, "/v1/security/api-keys", key: admin)
            #expect(after.data.first { $0["id"] as? String == id }?["active"] as? Bool == false)
        }
    }

    @Test("DELETE /api-keys/{id} revokes: the token gets 401 at once; a second revoke is 404")
    func revoke() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let key = try await server.makeKey(name: "doomed", scopes: [.secretsRead])
        try await server.test { client in
            #expect(try await client.listSecrets(key: key).status == .ok)
            let revoked = try await client.send(.delete, "/v1/security/api-keys/\(key.id)", key: admin)
            #expect(revoked.status == .noContent, "\(revoked)")
            expectError(try await client.listSecrets(key: key), .unauthorized, "AUTHENTICATION_REQUIRED")
            let list = try await client.send(.get, "/v1/security/api-keys", key: admin)
            let listed = try #require(list.data.first { $0["id"] as? String == key.id })
            #expect(listed["revokedAt"] as? String == TestClock.start.iso8601)
            #expect(listed["active"] as? Bool == false)
            expectError(try await client.send(.delete, "/v1/security/api-keys/\(key.id)", key: admin), .notFound, "RESOURCE_NOT_FOUND")
            expectError(try await client.send(.delete, "/v1/security/api-keys/key_0000000000000000", key: admin), .notFound, "RESOURCE_NOT_FOUND")
            expectError(try await client.send(.post, "/v1/security/api-keys/\(key.id)/rotate", key: admin), .notFound, "RESOURCE_NOT_FOUND")
            // A key can revoke itself; after that it is locked out.
            let manager = try await server.makeKey(name: "self", scopes: [.apiKeysManage])
            #expect(try await client.send(.delete, "/v1/security/api-keys/\(manager.id)", key: manager).status == .noContent)
            expectError(try await client.send(.get, "/v1/security/api-keys", key: manager), .unauthorized, "AUTHENTICATION_REQUIRED")
        }
    }

    @Test("POST /api-keys/{id}/rotate: the old token gets 401, the new one works with the same grants")
    func rotate() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let key = try await server.makeKey(name: "rotating", scopes: [.secretsRead], environments: ["development"])
        try await server.test { client in
            try await client.createSecret("API_KEY", value: "rotate-value", key: admin)
            #expect(try await client.send(.get, "/v1/security/secrets/API_KEY", key: key).status == .ok)
            let rotated = try await client.send(.post, "/v1/security/api-keys/\(key.id)/rotate", key: admin)
            #expect(rotated.status == .ok, "\(rotated)")
            #expect(rotated.string("id") == key.id)
            let listed = try await client.send(.get, "/v1/security/api-keys", key: admin).data.first { $0["id"] as? String == key.id }
            #expect(rotated.string("user") != nil && rotated.string("user") == listed?["user"] as? String, "the owner, as the list names it: \(rotated)")
            #expect(strings(rotated["scopes"]) == ["secrets:read"])
            #expect(strings(rotated["environments"]) == ["development"])
            let token = try #require(rotated.string("key"))
            #expect(token != key.token)
            #expect(token.hasPrefix("vsec_\(key.id)_"))
            let fresh = TestKey(id: key.id, token: token)
            expectError(try await client.send(.get, "/v1/security/secrets/API_KEY", key: key), .unauthorized, "AUTHENTICATION_REQUIRED")
            #expect(try await client.send(.get, "/v1/security/secrets/API_KEY", key: fresh).string("value") == "rotate-value")
            expectError(try await client.send(.get, "/v1/security/secrets/API_KEY?environment=staging", key: fresh), .forbidden, "PERMISSION_DENIED")
            let list = try await client.send(.get, "/v1/security/api-keys", key: admin)
            #expect(!list.text.contains(token))
            expectError(try await client.send(.post, "/v1/security/api-keys/nope/rotate", key: admin), .notFound, "RESOURCE_NOT_FOUND")
            // A key can rotate itself.
            let selfRotated = try await client.send(.post, "/v1/security/api-keys/\(admin.id)/rotate", key: admin)
            #expect(selfRotated.status == .ok)
            expectError(try await client.send(.get, "/v1/security/api-keys", key: admin), .unauthorized, "AUTHENTICATION_REQUIRED")
            let newAdmin = TestKey(id: admin.id, token: try #require(selfRotated.string("key")))
            #expect(try await client.send(.get, "/v1/security/api-keys", key: newAdmin).status == .ok)
        }
    }

    @Test("a key cannot grant scopes or environments it does not hold")
    func noEscalationOnCreate() async throws {
        let server = try ServerFixture.make()
        let manager = try await server.makeKey(name: "manager", scopes: [.apiKeysManage, .secretsRead])
        let limited = try await server.makeKey(name: "limited", scopes: [.apiKeysManage, .secretsRead], environments: ["staging"])
        try await server.test { client in
            let tooMuch = try await client.send(.post, "/v1/security/api-keys", key: manager,
                                                json: ["name": "x", "scopes": ["secrets:read", "secrets:write"]])
            expectError(tooMuch, .forbidden, "PERMISSION_DENIED")
            #expect(tooMuch.errorMessage?.contains("secrets:write") == true)
            #expect(try await client.send(.post, "/v1/security/api-keys", key: manager,
                                          json: ["name": "x", "scopes": ["secrets:read"]]).status == .created)

            // An environment-limited manager must limit what it makes to its own environments.
            expectError(try await client.send(.post, "/v1/security/api-keys", key: limited, json: ["name": "y", "scopes": ["secrets:read"]]),
                        .forbidden, "PERMISSION_DENIED")
            expectError(try await client.send(.post, "/v1/security/api-keys", key: limited,
                                              json: ["name": "y", "scopes": ["secrets:read"], "environments": ["staging", "production"]]),
                        .forbidden, "PERMISSION_DENIED")
            #expect(try await client.send(.post, "/v1/security/api-keys", key: limited,
                                          json: ["name": "y", "scopes": ["secrets:read"], "environments": ["staging"]]).status == .created)
        }
        let keys = try await server.service.withRegistry { registry, _ throws(VSecureError) in try registry.listKeys() }
        #expect(keys.count == 5)
    }

    @Test("a key cannot rotate or revoke a key that holds more than it does")
    func noEscalationOnRotateOrRevoke() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let manager = try await server.makeKey(name: "manager", scopes: [.apiKeysManage])
        let limited = try await server.makeKey(name: "limited", scopes: [.apiKeysManage, .secretsRead], environments: ["staging"])
        let reader = try await server.makeKey(name: "reader", scopes: [.secretsRead])
        let stagingReader = try await server.makeKey(name: "staging reader", scopes: [.secretsRead], environments: ["staging"])
        try await server.test { client in
            try await client.createSecret("API_KEY", value: "escalation-value", key: admin)
            // Rotating the admin key would hand the manager the admin's powers.
            let stolen = try await client.send(.post, "/v1/security/api-keys/\(admin.id)/rotate", key: manager)
            expectError(stolen, .forbidden, "PERMISSION_DENIED")
            #expect(stolen["key"] == nil && stolen.text.contains("vsec_") == false)
            expectError(try await client.send(.post, "/v1/security/api-keys/\(reader.id)/rotate", key: manager), .forbidden, "PERMISSION_DENIED")
            expectError(try await client.send(.delete, "/v1/security/api-keys/\(admin.id)", key: manager), .forbidden, "PERMISSION_DENIED")
            // An environment-limited manager cannot touch keys beyond its environments.
            expectError(try await client.send(.post, "/v1/security/api-keys/\(reader.id)/rotate", key: limited), .forbidden, "PERMISSION_DENIED")
            expectError(try await client.send(.delete, "/v1/security/api-keys/\(reader.id)", key: limited), .forbidden, "PERMISSION_DENIED")
            // The admin key still works, untouched.
            #expect(try await client.send(.get, "/v1/security/secrets/API_KEY", key: admin).string("value") == "escalation-value")
            #expect(try await client.listSecrets(key: reader).status == .ok)
            // Within its own grants it may.
            let ok = try await client.send(.post, "/v1/security/api-keys/\(stagingReader.id)/rotate", key: limited)
            #expect(ok.status == .ok, "\(ok)")
            #expect(try await client.send(.delete, "/v1/security/api-keys/\(stagingReader.id)", key: limited).status == .noContent)
        }
    }

    @Test("invalid key requests are 400 VALIDATION_ERROR and make no key")
    func validation() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            let bad: [Any] = [
                ["scopes": ["secrets:read"]],
                ["name": "", "scopes": ["secrets:read"]],
                ["name": String(repeating: "n", count: 101), "scopes": ["secrets:read"]],
                ["name": "tab\there", "scopes": ["secrets:read"]],
                ["name": "x"],
                ["name": "x", "scopes": []],
                ["name": "x", "scopes": ["secrets:everything"]],
                ["name": "x", "scopes": "secrets:read"],
                ["name": "x", "scopes": [1]],
                ["name": 7, "scopes": ["secrets:read"]],
                ["name": "x", "scopes": ["secrets:read"], "environments": ["moon"]],
                ["name": "x", "scopes": ["secrets:read"], "environments": "staging"],
                ["name": "x", "scopes": ["secrets:read"], "expiresIn": "forever"],
                ["name": "x", "scopes": ["secrets:read"], "expiresIn": "0s"],
                ["name": "x", "scopes": ["secrets:read"], "expiresAt": "2030-01-01T00:00:00Z"],
                ["name": "x", "scopes": ["secrets:read"], "key": "vsec_mine"],
            ]
            for body in bad {
                let reply = try await client.send(.post, "/v1/security/api-keys", key: admin, json: body)
                expectError(reply, .badRequest, "VALIDATION_ERROR")
            }
            let unknownScope = try await client.send(.post, "/v1/security/api-keys", key: admin, json: ["name": "x", "scopes": ["root"]])
            #expect((unknownScope.errorDetails?["allowed"] as? String)?.contains("secrets:read") == true)
        }
        let keys = try await server.service.withRegistry { registry, _ throws(VSecureError) in try registry.listKeys() }
        #expect(keys.map(\.id) == [server.admin.id])
    }
}
