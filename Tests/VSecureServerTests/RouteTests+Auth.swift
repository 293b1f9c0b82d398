import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import VSecureCore
@testable import VSecureServer

/// Authentication (one 401 for every bad key), scopes and environment limits.
@Suite("Authentication and authorization")
struct AuthRouteTests {
    @Test("missing, malformed, unknown, wrong, expired and revoked keys all get the same 401")
    func uniformUnauthorized() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let expiring = try await server.makeKey(name: "expiring", scopes: Scope.allCases,
                                                expiresAt: Timestamp(secondsSinceEpoch: TestClock.start.secondsSinceEpoch + 60))
        let revoked = try await server.makeKey(name: "revoked", scopes: Scope.allCases)
        // The admin id with another secret part; an id that does not exist; a token cut short.
        let wrongSecret = "vsec_\(admin.id)_" + String(repeating: "A", count: 43)
        let unknownID = "vsec_key_0123456789abcdef_" + String(admin.token.suffix(43))
        try await server.test { client in
            try await client.createSecret("API_KEY", value: "auth-value", key: admin)
            #expect(try await client.send(.get, "/v1/security/secrets/API_KEY", key: expiring).status == .ok)
            #expect(try await client.send(.delete, "/v1/security/api-keys/\(revoked.id)", key: admin).status == .noContent)
            server.clock.advance(seconds: 120)

            let authorizations: [(String, String?)] = [
                ("missing", nil),
                ("empty", ""),
                ("basic scheme", "Basic YWRtaW46YWRtaW4="),
                ("bearer without token", "Bearer "),
                ("malformed", "Bearer not-a-token"),
                ("prefix only", "Bearer vsec_"),
                ("truncated", "Bearer " + String(admin.token.dropLast(5))),
                ("unknown id", "Bearer " + unknownID),
                ("wrong secret", "Bearer " + wrongSecret),
                ("very long", "Bearer " + admin.token + String(repeating: "x", count: 500)),
                ("expired", "Bearer " + expiring.token),
                ("revoked", "Bearer " + revoked.token),
            ]
            var bodies: Set<String> = []
            for (label, authorization) in authorizations {
                for (method, uri) in [(HTTPRequest.Method.get, "/v1/security/secrets/API_KEY"), (.get, "/v1/security/secrets"),
                                      (.get, "/v1/security/api-keys")] {
                    var headers: HTTPFields = [:]
                    if let authorization { headers[.authorization] = authorization }
                    let reply = try await client.send(method, uri, headers: headers)
                    expectError(reply, .unauthorized, "AUTHENTICATION_REQUIRED")
                    #expect(reply.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true, "\(label)")
                    expectNoLeak(reply, of: ["auth-value", admin.token, expiring.token, revoked.token])
                    bodies.insert(reply.text)
                }
                // Writes are refused the same way, and change nothing.
                var headers: HTTPFields = [:]
                if let authorization { headers[.authorization] = authorization }
                let write = try await client.send(.put, "/v1/security/secrets/API_KEY", json: ["value": "overwritten"], headers: headers)
                expectError(write, .unauthorized, "AUTHENTICATION_REQUIRED")
                bodies.insert(write.text)
            }
            #expect(bodies.count == 1, "401 bodies differ: \(bodies)")
            #expect(try await client.send(.get, "/v1/security/secrets/API_KEY", key: admin).string("value") == "auth-value")
        }
        #expect(try await server.versionCount("API_KEY") == 1)
    }

    @Test("a token in the query string is refused, even beside a valid header")
    func queryStringToken() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            for name in ["api_key", "apiKey", "apikey", "token", "access_token", "key", "authorization",
                         "api%5Fkey", "api%5fkey", "API_KEY", "%61ccess_token", "Authorization"] {
                let alone = try await client.send(.get, "/v1/security/secrets?\(name)=\(admin.token)")
                expectError(alone, .unauthorized, "AUTHENTICATION_REQUIRED")
                expectNoLeak(alone, of: [admin.token])
                let beside = try await client.send(.get, "/v1/security/secrets?\(name)=\(admin.token)", key: admin)
                expectError(beside, .unauthorized, "AUTHENTICATION_REQUIRED")
                expectNoLeak(beside, of: [admin.token])
            }
            let write = try await client.send(.post, "/v1/security/secrets?access_token=\(admin.token)", json: ["name": "Q", "value": "v"])
            expectError(write, .unauthorized, "AUTHENTICATION_REQUIRED")
        }
        #expect(try await server.storedSecrets().isEmpty)
    }

    @Test("/health and /ready answer without a key")
    func healthAndReady() async throws {
        let server = try ServerFixture.make()
        try await server.test { client in
            let health = try await client.send(.get, "/health")
            #expect(health.status == .ok)
            #expect(health.string("status") == "ok")
            let ready = try await client.send(.get, "/ready")
            #expect(ready.status == .ok)
            #expect(ready.string("status") == "ready")
        }
    }

    /// One request per route that would succeed with every scope, and the scope it needs, in an
    /// order where each succeeds after the ones before it.
    static func scopedRequests(keyID: String) -> [(method: HTTPRequest.Method, uri: String, template: String, json: Any?, scope: Scope)] {
        [
            (.post, "/v1/security/secrets", "/v1/security/secrets", ["name": "NEW_ONE", "value": "scoped-new"], .secretsWrite),
            (.get, "/v1/security/secrets", "/v1/security/secrets", nil, .secretsRead),
            (.get, "/v1/security/secrets/API_KEY", "/v1/security/secrets/{name}", nil, .secretsRead),
            (.put, "/v1/security/secrets/API_KEY", "/v1/security/secrets/{name}", ["value": "scoped-put"], .secretsWrite),
            (.get, "/v1/security/secrets/API_KEY/versions", "/v1/security/secrets/{name}/versions", nil, .secretsRead),
            (.post, "/v1/security/secrets/API_KEY/rollback", "/v1/security/secrets/{name}/rollback", ["version": 1], .secretsWrite),
            (.get, "/v1/security/secrets/API_KEY/diff", "/v1/security/secrets/{name}/diff", nil, .secretsRead),
            (.put, "/v1/security/secrets/API_KEY", "/v1/security/secrets/{name}",
             ["rotationPolicy": ["period": "30d", "generate": ["length": 16]]], .secretsWrite),
            (.post, "/v1/security/secrets/API_KEY/rotate", "/v1/security/secrets/{name}/rotate", nil, .secretsWrite),
            (.post, "/v1/security/secrets/batch/get", "/v1/security/secrets/batch/get", ["names": ["API_KEY"]], .secretsRead),
            (.post, "/v1/security/secrets/batch/upsert", "/v1/security/secrets/batch/upsert",
             ["secrets": [["name": "API_KEY", "value": "scoped-batch"]]], .secretsWrite),
            (.post, "/v1/security/api-keys", "/v1/security/api-keys", ["name": "made", "scopes": ["secrets:read"]], .apiKeysManage),
            (.get, "/v1/security/api-keys", "/v1/security/api-keys", nil, .apiKeysManage),
            (.post, "/v1/security/api-keys/\(keyID)/rotate", "/v1/security/api-keys/{id}/rotate", nil, .apiKeysManage),
            (.delete, "/v1/security/api-keys/\(keyID)", "/v1/security/api-keys/{id}", nil, .apiKeysManage),
            (.post, "/v1/security/users", "/v1/security/users", ["email": "scoped@example.com", "roles": ["engineers"]], .usersManage),
            (.get, "/v1/security/users", "/v1/security/users", nil, .usersManage),
            (.get, "/v1/security/users/scoped@example.com", "/v1/security/users/{id}", nil, .usersManage),
            (.put, "/v1/security/users/scoped@example.com", "/v1/security/users/{id}", ["roles": ["devops"]], .usersManage),
            (.post, "/v1/security/users/scoped@example.com/disable", "/v1/security/users/{id}/disable", nil, .usersManage),
            (.get, "/v1/security/policy", "/v1/security/policy", nil, .policyManage),
            (.put, "/v1/security/policy", "/v1/security/policy",
             ["secrets": ["**": ["read": ["admins"], "write": ["admins"], "delete": ["admins"]]]], .policyManage),
            (.post, "/v1/security/policy/test", "/v1/security/policy/test",
             ["user": "admin", "action": "read", "path": "development/API_KEY"], .policyManage),
            (.post, "/v1/security/grants", "/v1/security/grants", ["user": "admin", "name": "API_KEY", "duration": "1h"], .grantsManage),
            (.get, "/v1/security/grants", "/v1/security/grants", nil, .grantsManage),
            // The grant's id is made by the server: with the scope this one is a 404, past the scope check.
            (.delete, "/v1/security/grants/grt_0000000000000000", "/v1/security/grants/{id}", nil, .grantsManage),
            (.post, "/v1/security/webhooks", "/v1/security/webhooks", ["url": "http://127.0.0.1:9/hook", "events": ["secret.rotated"]],
             .webhooksManage),
            (.get, "/v1/security/webhooks", "/v1/security/webhooks", nil, .webhooksManage),
            // Webhook ids are made by the server too: 404 past the scope check.
            (.post, "/v1/security/webhooks/wh_0000000000000000/test", "/v1/security/webhooks/{id}/test", nil, .webhooksManage),
            (.get, "/v1/security/webhooks/wh_0000000000000000/deliveries", "/v1/security/webhooks/{id}/deliveries", nil, .webhooksManage),
            (.delete, "/v1/security/webhooks/wh_0000000000000000", "/v1/security/webhooks/{id}", nil, .webhooksManage),
            (.get, "/v1/security/audit-logs?action=created", "/v1/security/audit-logs", nil, .auditRead),
            (.get, "/v1/security/audit-logs/1", "/v1/security/audit-logs/{id}", nil, .auditRead),
            (.post, "/v1/security/audit-logs/1/verify", "/v1/security/audit-logs/{id}/verify", nil, .auditRead),
            (.post, "/v1/security/audit-logs/verify", "/v1/security/audit-logs/verify", nil, .auditRead),
            (.delete, "/v1/security/secrets/API_KEY", "/v1/security/secrets/{name}", nil, .secretsDelete),
        ]
    }

    @Test("every route refuses a key without its scope: 403 PERMISSION_DENIED naming the scope")
    func scopesPerRoute() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let victim = try await server.makeKey(name: "victim", scopes: [.secretsRead])
        // The table above covers every registered route but the one that needs no scope
        // (EnvironmentRouteTests: any valid key may list the environments).
        let covered = Set(Self.scopedRequests(keyID: victim.id).map { "\($0.method.rawValue) \($0.template)" })
        let registered = Set(server.registeredRoutes().map { "\($0.method) \($0.path)" })
        #expect(covered == registered.subtracting(["GET /v1/security/environments"]))

        var lacking: [Scope: TestKey] = [:]
        for scope in Scope.allCases { lacking[scope] = try await server.makeKey(lacking: scope) }
        let keys = lacking
        try await server.test { client in
            let requests = Self.scopedRequests(keyID: victim.id)
            try await client.createSecret("API_KEY", value: "scoped-one", key: admin)
            try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["value": "scoped-two"])
            for request in requests {
                let reply = try await client.send(request.method, request.uri, key: keys[request.scope]!, json: request.json)
                expectError(reply, .forbidden, "PERMISSION_DENIED")
                #expect(reply.errorDetails?["scope"] as? String == request.scope.rawValue, "\(request.method) \(request.uri): \(reply)")
                #expect(reply.errorMessage?.contains(request.scope.rawValue) == true)
                expectNoLeak(reply, of: ["scoped-one", "scoped-two", "scoped-new", "scoped-put", "scoped-batch"])
            }
            // Nothing changed: the victim key still works, the secret is where it was.
            #expect(try await client.send(.get, "/v1/security/secrets", key: victim).status == .ok)
            #expect(try await client.send(.get, "/v1/security/secrets/API_KEY", key: admin).string("value") == "scoped-two")
            let keyList = try await client.send(.get, "/v1/security/api-keys", key: admin)
            #expect(keyList.data.count == 2 + Scope.allCases.count)
            // And with the scope, each request goes through (in an order where each can).
            for request in requests {
                let reply = try await client.send(request.method, request.uri, key: admin, json: request.json)
                let madeByServer = request.template == "/v1/security/grants/{id}" || request.template.hasPrefix("/v1/security/webhooks/{id}")
                let passedScope = reply.status.code < 300 || (madeByServer && reply.status == .notFound)
                #expect(passedScope, "\(request.method) \(request.uri): \(reply)")
            }
        }
        #expect(try await server.storedSecrets().map(\.name.rawValue) == ["NEW_ONE"])
    }

    @Test("a key limited to some environments is refused elsewhere and lists only its own")
    func environmentLimitedKey() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let staging = try await server.makeKey(name: "staging-only", scopes: [.secretsRead, .secretsWrite, .secretsDelete],
                                               environments: ["staging"])
        try await server.test { client in
            try await client.createSecret("DEV_ONE", value: "dev-value-1", key: admin)
            try await client.createSecret("DEV_TWO", value: "dev-value-2", key: admin)
            try await client.createSecret("PROD_ONE", value: "prod-value-1", key: admin, environment: "production")
            try await client.createSecret("STAGE_ONE", value: "stage-value-1", key: admin, environment: "staging")
            try await client.createSecret("STAGE_TWO", value: "stage-value-2", key: admin, environment: "staging")

            // Lists show and count only staging.
            let list = try await client.listSecrets(key: staging)
            #expect(list.status == .ok)
            #expect(list.data.map { $0["path"] as? String } == ["staging/STAGE_ONE", "staging/STAGE_TWO"])
            #expect((list["pagination"] as? [String: Any])?["totalCount"] as? Int == 2)
            let paged = try await client.listSecrets(key: staging, query: "limit=1")
            #expect((paged["pagination"] as? [String: Any])?["totalCount"] as? Int == 2)
            #expect(try await client.listSecrets(key: staging, query: "environment=staging").data.count == 2)
            expectError(try await client.listSecrets(key: staging, query: "environment=production"), .forbidden, "PERMISSION_DENIED")

            // Inside staging everything works.
            #expect(try await client.send(.get, "/v1/security/secrets/STAGE_ONE?environment=staging", key: staging).string("value") == "stage-value-1")
            #expect(try await client.createSecret("STAGE_NEW", value: "stage-new", key: staging, environment: "staging").status == .created)
            #expect(try await client.send(.put, "/v1/security/secrets/STAGE_ONE", key: staging, json: ["value": "stage-v2", "environment": "staging"]).status == .ok)
            #expect(try await client.send(.delete, "/v1/security/secrets/STAGE_TWO?environment=staging", key: staging).status == .noContent)
            let batch = try await client.send(.post, "/v1/security/secrets/batch/get", key: staging,
                                              json: ["names": ["STAGE_ONE"], "environment": "staging"])
            #expect(batch.data.count == 1)

            // Outside it: 403 naming the environment, and no values.
            let outside: [(HTTPRequest.Method, String, Any?)] = [
                (.get, "/v1/security/secrets/DEV_ONE", nil),
                (.get, "/v1/security/secrets/DEV_ONE?environment=development", nil),
                (.get, "/v1/security/secrets/PROD_ONE?environment=production", nil),
                (.get, "/v1/security/secrets/DEV_ONE/versions", nil),
                (.get, "/v1/security/secrets/DEV_ONE/diff", nil),
                (.post, "/v1/security/secrets/DEV_ONE/rollback", ["version": 1]),
                (.put, "/v1/security/secrets/DEV_ONE", ["value": "hijacked"]),
                (.put, "/v1/security/secrets/PROD_ONE", ["value": "hijacked", "environment": "production"]),
                (.delete, "/v1/security/secrets/DEV_ONE", nil),
                (.post, "/v1/security/secrets", ["name": "SNEAKY", "value": "hijacked"]),
                (.post, "/v1/security/secrets", ["name": "SNEAKY", "value": "hijacked", "environment": "production"]),
                (.post, "/v1/security/secrets", ["name": "SNEAKY", "value": "hijacked", "tags": ["production"]]),
                (.post, "/v1/security/secrets/batch/get", ["names": ["DEV_ONE", "DEV_TWO"]]),
                (.post, "/v1/security/secrets/batch/get", ["names": ["PROD_ONE"], "environment": "production"]),
                (.post, "/v1/security/secrets/batch/upsert", ["secrets": [["name": "DEV_ONE", "value": "hijacked"]]]),
            ]
            for (method, uri, json) in outside {
                let reply = try await client.send(method, uri, key: staging, json: json)
                expectError(reply, .forbidden, "PERMISSION_DENIED")
                #expect(reply.errorDetails?["environment"] != nil, "\(method) \(uri): \(reply)")
                expectNoLeak(reply, of: ["dev-value-1", "dev-value-2", "prod-value-1", "hijacked"])
            }
            #expect(try await client.send(.get, "/v1/security/secrets/DEV_ONE", key: admin).string("value") == "dev-value-1")
        }
        let stored = try await server.storedSecrets().map(\.path)
        #expect(stored == ["development/DEV_ONE", "development/DEV_TWO", "production/PROD_ONE", "staging/STAGE_NEW", "staging/STAGE_ONE"])
    }
}
