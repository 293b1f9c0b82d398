import Foundation
import Testing
import TestSupport
import VSecureClient

@Suite("VSecureClient: every call against a live server")
struct SecretsTests {
    @Test("create, get, fetch, info, update, versions, rollback, list, batchGet, delete")
    func lifecycle() async throws {
        let fixture = try ClientFixture()
        let secrets = fixture.client.secrets

        let before = Int64(Date().timeIntervalSince1970)
        let created = try await secrets.create("API_KEY", value: "value-one", tags: ["production", "api"],
                                               metadata: ["owner": "team"], description: "the api key", expiry: .after(.seconds(30 * 86_400)))
        #expect(created.environment == "production")
        #expect(created.path == "production/API_KEY")
        #expect(created.version == 1)
        #expect(created.tags == ["api", "production"])
        #expect(created.metadata == ["owner": "team"])
        #expect(created.description == "the api key")
        let expiry = try #require(created.expiresAt)
        let after = Int64(Date().timeIntervalSince1970)
        // The server counted 30 days from some moment during the call (which a loaded machine
        // can stretch by minutes): bracket it rather than guess a tolerance.
        #expect((before + 30 * 86_400 - 1...after + 30 * 86_400 + 1).contains(expiry.secondsSinceEpoch))

        #expect(try await secrets.get("API_KEY", environment: "production").utf8String() == "value-one")
        // The default environment is development: the secret is not there.
        #expect(await errorKind { try await secrets.get("API_KEY") } == .notFound)

        let update = try await secrets.update("API_KEY", value: SecretValue(copying: "value-two"), environment: "production")
        #expect(update.previousVersion == 1)
        #expect(update.newVersion == 2)
        let attributesOnly = try await secrets.update("API_KEY", changes: SecretChanges(addTags: ["web"], metadata: ["tier": "1"]),
                                                      environment: "production", ifVersion: 2)
        #expect(attributesOnly.newVersion == nil)
        #expect(attributesOnly.secret.tags == ["api", "production", "web"])
        #expect(attributesOnly.secret.metadata == ["owner": "team", "tier": "1"])
        #expect(await errorKind { try await secrets.update("API_KEY", value: SecretValue(copying: "x"), environment: "production", ifVersion: 1) }
                == .conflict)

        let first = try await secrets.fetch("API_KEY", environment: "production", version: 1)
        #expect(first.version == 1)
        #expect(first.secret.version == 2)
        #expect(first.value.utf8String() == "value-one")
        let info = try await secrets.info("API_KEY", environment: "production")
        #expect(info.version == 2)
        #expect(info.tags == ["api", "production", "web"])

        let rollback = try await secrets.rollback("API_KEY", environment: "production")
        #expect(rollback.previousVersion == 2)
        #expect(rollback.newVersion == 3)
        #expect(try await secrets.get("API_KEY", environment: "production").utf8String() == "value-one")

        let history = try await secrets.versions("API_KEY", environment: "production")
        #expect(history.versions.map(\.version) == [1, 2, 3])
        #expect(history.versions.map(\.action) == ["create", "update", "rollback"])
        #expect(history.versions.map(\.valueLength) == [9, 9, 9])
        #expect(history.versions[0].fingerprint == history.versions[2].fingerprint)
        #expect(history.versions[0].fingerprint != history.versions[1].fingerprint)
        #expect(history.versions[2].sourceVersion == 1)
        #expect(history.secret.version == 3)

        try await secrets.create("DB_URL", value: "postgres://x", environment: "production", tags: ["db"])
        try await secrets.create("LOCAL_ONLY", value: "dev")
        #expect(try await secrets.list(environment: "production").map(\.name) == ["API_KEY", "DB_URL"])
        #expect(try await secrets.list(tags: ["db"]).map(\.name) == ["DB_URL"])
        #expect(try await secrets.list(search: "api").map(\.name) == ["API_KEY"])
        #expect(try await secrets.list().map(\.path) == ["development/LOCAL_ONLY", "production/API_KEY", "production/DB_URL"])

        let batch = try await secrets.batchGet(["DB_URL", "MISSING", "API_KEY"], environment: "production")
        #expect(batch.environment == "production")
        #expect(batch.items.map(\.name) == ["DB_URL", "API_KEY"])
        #expect(batch.items.map(\.version) == [1, 3])
        #expect(batch["DB_URL"]?.utf8String() == "postgres://x")
        #expect(batch["API_KEY"]?.utf8String() == "value-one")
        #expect(batch.missing == ["MISSING"])
        #expect(batch.expired == [])

        #expect(try await secrets.delete("DB_URL", environment: "production") == "production")
        #expect(await errorKind { try await secrets.get("DB_URL", environment: "production") } == .notFound)
        #expect(try await secrets.delete("LOCAL_ONLY", purge: true) == "development")
        #expect(try await secrets.list().map(\.path) == ["production/API_KEY"])
    }

    @Test("any bytes round-trip exactly; non-UTF-8 has no String form")
    func binaryValues() async throws {
        let fixture = try ClientFixture()
        let bytes: [UInt8] = [0x00, 0xFF, 0x0A, 0x22, 0x5C, 0xC3, 0x28] + Array("tail ✓".utf8)
        try await fixture.client.secrets.create("BINARY", value: SecretValue(copying: bytes))
        let value = try await fixture.client.secrets.get("BINARY")
        #expect(value.bytes() == bytes)
        #expect(value.count == bytes.count)
        #expect(value.utf8String() == nil)
        #expect(value.withUnsafeBytes { Array($0) } == bytes)
        #expect(value.isEqual(to: SecretValue(copying: bytes)))
        try await fixture.client.secrets.create("EMPTY", value: "")
        #expect(try await fixture.client.secrets.get("EMPTY").count == 0)
    }

    @Test("each call is one request, except versions (two)")
    func requestCounts() async throws {
        let fixture = try ClientFixture()
        let client = fixture.client
        #expect(client.requestCount == 0)
        try await client.secrets.create("ONE", value: "1")
        _ = try await client.secrets.get("ONE")
        _ = try await client.secrets.batchGet(["ONE"])
        try await client.secrets.update("ONE", value: SecretValue(copying: "2"))
        #expect(client.requestCount == 4)
        _ = try await client.secrets.versions("ONE")
        #expect(client.requestCount == 6)
        #expect(fixture.loggedRequests("/v1/security/secrets") == 6)
    }
}
