import Testing
import TestSupport
import VSecureCore
@testable import VSecureServer
import VSecureVault

/// Failed authentications are audited, and a flood of them is cut off per client address so
/// that bad tokens cannot fill the disk through the audit log.
@Suite("Failed authentication limit")
struct AuthFailureLimitTests {
    @Test("past the burst, bad tokens get 429 and no more audit entries; a good key is unaffected")
    func floodIsCutOff() async throws {
        var limits = ServerFixture.relaxedLimits
        limits.failedAuthPerAddress = 0.001
        limits.failedAuthBurst = 5
        let server = try ServerFixture.make(limits: limits)
        let admin = server.admin
        let bad = TestKey(id: "key_0000000000000000", token: "vsec_key_0000000000000000_" + String(repeating: "A", count: 43))
        try await server.test { client in
            for attempt in 1...8 {
                let reply = try await client.send(.get, "/v1/security/secrets", key: bad)
                if attempt <= 5 {
                    expectError(reply, .unauthorized, "AUTHENTICATION_REQUIRED")
                } else {
                    expectError(reply, .tooManyRequests, "RATE_LIMIT_EXCEEDED")
                    #expect(reply.headers[.retryAfter] != nil)
                }
            }
            #expect(try await client.send(.get, "/v1/security/secrets", key: admin).status == .ok)
        }
        let failures = try server.service.audit.withLog { (log: AuditLog) throws(VSecureError) in
            try log.entries(AuditFilter(resource: .auth, outcome: .failure, limit: 100)).entries
        }
        #expect(failures.count == 5)
        #expect(failures.allSatisfy { $0.event.action == .login && $0.event.actor.keyID == "key_0000000000000000" })
        #expect(failures.allSatisfy { $0.event.detail("reason") == "invalid_api_key" })
    }

    @Test("requests without a usable key are audited too, each with its reason, and never with the token")
    func everyKindOfFailureIsAudited() async throws {
        let server = try ServerFixture.make()
        let urlToken = "vsec_key_1111111111111111_" + String(repeating: "B", count: 43)
        try await server.test { client in
            expectError(try await client.send(.get, "/v1/security/secrets"), .unauthorized, "AUTHENTICATION_REQUIRED")
            expectError(try await client.send(.get, "/v1/security/secrets", headers: [.authorization: "Basic dXNlcjpwYXNz"]),
                        .unauthorized, "AUTHENTICATION_REQUIRED")
            expectError(try await client.send(.get, "/v1/security/secrets", headers: [.authorization: "Bearer " + String(repeating: "x", count: 300)]),
                        .unauthorized, "AUTHENTICATION_REQUIRED")
            expectError(try await client.send(.get, "/v1/security/secrets?token=" + urlToken), .unauthorized, "AUTHENTICATION_REQUIRED")
            expectError(try await client.send(.get, "/v1/security/secrets",
                                              headers: [.authorization: "Bearer vsec_key_2222222222222222_" + String(repeating: "C", count: 43)]),
                        .unauthorized, "AUTHENTICATION_REQUIRED")
        }
        let failures = try server.service.audit.withLog { (log: AuditLog) throws(VSecureError) in
            try log.entries(AuditFilter(resource: .auth, outcome: .failure, limit: 100)).entries
        }
        #expect(failures.map { $0.event.detail("reason") } == ["missing_api_key", "malformed_authorization", "malformed_authorization",
                                                               "api_key_in_url", "invalid_api_key"])
        #expect(failures.allSatisfy { $0.event.action == .login })
        // Only a token in the Authorization header names the key it claims; none is stored.
        #expect(failures.map { $0.event.actor.keyID } == [nil, nil, nil, nil, "key_2222222222222222"])
        let stored = try server.service.audit.withLog { (log: AuditLog) throws(VSecureError) in
            try log.entries(AuditFilter(limit: 1000)).entries.map { String(decoding: $0.event.storedJSON(seq: 0), as: UTF8.self) }
        }.joined(separator: "\n")
        #expect(!stored.contains("BBBBBBBBBB") && !stored.contains("CCCCCCCCCC") && !stored.contains("dXNlcjpwYXNz"))
    }
}
