import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import VSecureCore
@testable import VSecureServer

/// The fast read path (one statement on a read connection, the value opened into the reused
/// locked buffer) must answer exactly what the general path (`LocalVault.get`, used when a
/// version is named) answers, and must see every write answered before it.
@Suite("Read path")
struct ReadPathTests {
    @Test("GET of the current version answers the same bytes as GET ?version=current")
    func fastPathMatchesGeneralPath() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("FULL", value: "first \"quoted\" \\ value\n", key: admin, environment: "production",
                                          extra: ["tags": ["api", "payments"], "metadata": ["owner": "team-a", "ticket": "T-1"],
                                                  "description": "a described secret", "expiresIn": "30d"])
            for (index, value) in ["second ✓", "third\u{1}", ""].enumerated() {
                let put = try await client.send(.put, "/v1/security/secrets/FULL?environment=production", key: admin, json: ["value": value])
                #expect(put.status == .ok, "\(put)")
                let fast = try await client.send(.get, "/v1/security/secrets/FULL?environment=production", key: admin)
                let general = try await client.send(.get, "/v1/security/secrets/FULL?environment=production&version=\(index + 2)", key: admin)
                #expect(fast.status == .ok)
                #expect(fast.text == general.text)
                #expect(fast.headers[.eTag] == general.headers[.eTag])
                #expect(fast.string("value") == value)
                #expect(fast.int("version") == index + 2)
            }
            // Binary values travel as valueBase64 on both paths.
            let binary: [UInt8] = [0x00, 0xFF, 0xFE, 0x41, 0x80]
            let put = try await client.send(.put, "/v1/security/secrets/FULL?environment=production", key: admin,
                                            json: ["valueBase64": Data(binary).base64EncodedString()])
            #expect(put.status == .ok)
            let fast = try await client.send(.get, "/v1/security/secrets/FULL?environment=production", key: admin)
            let general = try await client.send(.get, "/v1/security/secrets/FULL?environment=production&version=5", key: admin)
            #expect(fast.text == general.text)
            #expect(fast.string("valueBase64") == Data(binary).base64EncodedString())
        }
    }

    @Test("a read right after an answered write, delete or rollback sees it")
    func readsSeeAnsweredWrites() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("SEEN", value: "v1", key: admin)
            for round in 2...20 {
                let put = try await client.send(.put, "/v1/security/secrets/SEEN", key: admin, json: ["value": "v\(round)"])
                #expect(put.status == .ok)
                #expect(try await client.send(.get, "/v1/security/secrets/SEEN", key: admin).string("value") == "v\(round)")
                let batch = try await client.send(.post, "/v1/security/secrets/batch/get", key: admin, json: ["names": ["SEEN"]])
                #expect(batch.data.first?["value"] as? String == "v\(round)")
            }
            #expect(try await client.send(.post, "/v1/security/secrets/SEEN/rollback", key: admin, json: ["version": 1]).status == .ok)
            #expect(try await client.send(.get, "/v1/security/secrets/SEEN", key: admin).string("value") == "v1")
            #expect(try await client.send(.delete, "/v1/security/secrets/SEEN", key: admin).status == .noContent)
            expectError(try await client.send(.get, "/v1/security/secrets/SEEN", key: admin), .notFound, "RESOURCE_NOT_FOUND")
        }
    }
}
