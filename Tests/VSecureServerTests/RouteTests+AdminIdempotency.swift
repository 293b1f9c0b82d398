import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import VSecureCore
@testable import VSecureServer

/// `Idempotency-Key` on the administration writes that answer without a token or a signing
/// secret: users, grants, the policy and webhook pings (docs/api.md, "Idempotency").
@Suite("Idempotent administration writes")
struct AdminIdempotencyTests {
    /// Sends `method uri` twice with the same key; the second answer must be the first, replayed.
    static func replayed(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, key: TestKey,
                         json: Any? = nil, body: String? = nil, idempotencyKey: String, status: HTTPResponse.Status,
                         sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws -> Reply {
        let first = try await client.send(method, uri, key: key, json: json, body: body, headers: [.idempotencyKey: idempotencyKey])
        #expect(first.status == status, "\(method) \(uri): \(first)", sourceLocation: sourceLocation)
        #expect(first.headers[.idempotentReplayed] == nil, sourceLocation: sourceLocation)
        let again = try await client.send(method, uri, key: key, json: json, body: body, headers: [.idempotencyKey: idempotencyKey])
        #expect(again.status == status, "\(method) \(uri) replayed: \(again)", sourceLocation: sourceLocation)
        #expect(again.text == first.text, sourceLocation: sourceLocation)
        #expect(again.headers[.idempotentReplayed] == "true", "\(method) \(uri)", sourceLocation: sourceLocation)
        return first
    }

    static func auditCount(_ client: any TestClientProtocol, _ query: String, key: TestKey) async throws -> Int {
        let reply = try await client.send(.get, "/v1/security/audit-logs?limit=1000&" + query, key: key)
        #expect(reply.status == .ok, "\(reply)")
        return reply.data.count
    }

    @Test("users: create, roles and disable run once per key; the same key with another body is 409")
    func users() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            let created = try await Self.replayed(client, .post, "/v1/security/users", key: admin,
                                                  json: ["email": "ana@example.com", "roles": ["engineers"]], idempotencyKey: "u-1", status: .created)
            let id = try #require(created.string("id"))
            // Without the key the same request conflicts: the replay did not create a second user.
            expectError(try await client.send(.post, "/v1/security/users", key: admin, json: ["email": "ana@example.com"]),
                        .conflict, "CONFLICT")
            expectError(try await client.send(.post, "/v1/security/users", key: admin, json: ["email": "bo@example.com"],
                                              headers: [.idempotencyKey: "u-1"]), .conflict, "CONFLICT")
            #expect(try await client.send(.get, "/v1/security/users/bo%40example.com", key: admin).status == .notFound)

            _ = try await Self.replayed(client, .put, "/v1/security/users/\(id)", key: admin, json: ["roles": ["devops"]],
                                        idempotencyKey: "u-2", status: .ok)
            let disabled = try await Self.replayed(client, .post, "/v1/security/users/\(id)/disable", key: admin,
                                                   idempotencyKey: "u-3", status: .ok)
            #expect(disabled["disabled"] as? Bool == true)
            // A failure is not recorded: an unknown user is 404 each time.
            for _ in 0..<2 {
                expectError(try await client.send(.post, "/v1/security/users/nobody%40example.com/disable", key: admin,
                                                  headers: [.idempotencyKey: "u-4"]), .notFound, "RESOURCE_NOT_FOUND")
            }
            #expect(try await Self.auditCount(client, "resource=users&action=created", key: admin) == 1)
            #expect(try await Self.auditCount(client, "resource=users&action=updated", key: admin) == 1)
            #expect(try await Self.auditCount(client, "resource=users&action=disabled", key: admin) == 1)
        }
    }

    @Test("grants, the policy and webhook pings: a replay makes no second grant, change or delivery")
    func grantsPolicyWebhooks() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            #expect(try await client.send(.post, "/v1/security/users", key: admin, json: ["email": "ana@example.com"]).status == .created)
            let grant: [String: Any] = ["user": "ana@example.com", "name": "API_KEY", "environment": "production", "duration": "1h"]
            _ = try await Self.replayed(client, .post, "/v1/security/grants", key: admin, json: grant, idempotencyKey: "g-1", status: .created)
            #expect(try await client.send(.get, "/v1/security/grants", key: admin).data.count == 1)

            let policy = #"{"secrets": {"production/*": {"read": ["engineers"]}}}"#
            let set = try await Self.replayed(client, .put, "/v1/security/policy", key: admin, body: policy, idempotencyKey: "p-1", status: .ok)
            #expect(set.string("source") == policy)
            let other = try await client.send(.put, "/v1/security/policy", key: admin, body: #"{"secrets": {}}"#,
                                              headers: [.idempotencyKey: "p-1"])
            expectError(other, .conflict, "CONFLICT")
            #expect(try await client.send(.get, "/v1/security/policy", key: admin).string("source") == policy)
            #expect(try await Self.auditCount(client, "resource=policy", key: admin) == 1)
            #expect(try await Self.auditCount(client, "resource=grants&action=created", key: admin) == 1)

            let hook = try await client.send(.post, "/v1/security/webhooks", key: admin,
                                             json: ["url": "https://hooks.example.com/in", "events": ["secret.rotated"]])
            let id = try #require(hook.string("id"), "\(hook)")
            let ping = try await Self.replayed(client, .post, "/v1/security/webhooks/\(id)/test", key: admin,
                                               idempotencyKey: "w-1", status: .accepted)
            let deliveries = try await client.send(.get, "/v1/security/webhooks/\(id)/deliveries", key: admin)
            #expect(deliveries.data.map { $0["id"] as? String } == [ping.string("deliveryId")], "\(deliveries)")
        }
    }
}
