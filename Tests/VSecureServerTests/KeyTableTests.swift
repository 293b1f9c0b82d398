import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import VSecureCore
@testable import VSecureServer
import VSecureVault

/// The in-memory API key table: it must never answer from a stale copy. Changes made through
/// the API, and changes another connection (another server process on the same data directory)
/// commits to server.db, count from the very next request.
@Suite("API key table")
struct KeyTableTests {
    /// A second registry on the fixture's files, as another process would open them.
    static func otherProcessRegistry(_ server: ServerFixture) throws -> (LocalVault, ServerRegistry) {
        let vault = try LocalVault.open(at: server.directory.file("vault.db"),
                                        keys: KeySource(keyFilePath: server.directory.file("vault.key")) { () throws(VSecureError) in
                                            throw VSecureError(.key, "a key file vault")
                                        })
        return (vault, try ServerRegistry(path: server.directory.file("server.db"), vault: vault))
    }

    @Test("a key revoked, rotated or made by another process counts on the very next request")
    func changesByAnotherConnection() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let reader = try await server.makeKey(name: "reader", scopes: [.secretsRead])
        let rotating = try await server.makeKey(name: "rotating", scopes: [.secretsRead])
        try await server.test { client in
            try await client.createSecret("API_KEY", value: "table-value", key: admin)
            #expect(try await client.send(.get, "/v1/security/secrets/API_KEY", key: reader).status == .ok)
            #expect(try await client.send(.get, "/v1/security/secrets/API_KEY", key: rotating).status == .ok)

            let (_, other) = try Self.otherProcessRegistry(server)
            let now = server.clock.now
            #expect(try other.revokeKey(id: reader.id, now: now))
            expectError(try await client.send(.get, "/v1/security/secrets/API_KEY", key: reader), .unauthorized, "AUTHENTICATION_REQUIRED")

            let (_, newToken) = try #require(try other.rotateKey(id: rotating.id, now: now))
            expectError(try await client.send(.get, "/v1/security/secrets/API_KEY", key: rotating), .unauthorized, "AUTHENTICATION_REQUIRED")
            let rotated = TestKey(id: rotating.id, token: newToken)
            #expect(try await client.send(.get, "/v1/security/secrets/API_KEY", key: rotated).string("value") == "table-value")

            let (made, madeToken) = try other.createKey(name: "made-elsewhere", scopes: [Scope.secretsRead.rawValue], environments: nil,
                                                        expiresAt: nil, now: now)
            let fresh = TestKey(id: made.id, token: madeToken)
            #expect(try await client.send(.get, "/v1/security/secrets/API_KEY", key: fresh).string("value") == "table-value")
        }
    }

    @Test("a key works until the second it expires and gets 401 from then on")
    func expiryIsCheckedPerRequest() async throws {
        let server = try ServerFixture.make()
        let expiresAt = Timestamp(secondsSinceEpoch: TestClock.start.secondsSinceEpoch + 60)
        let key = try await server.makeKey(name: "short", scopes: [.secretsRead], expiresAt: expiresAt)
        try await server.test { client in
            try await client.createSecret("API_KEY", value: "expiry-value", key: server.admin)
            server.clock.set(Timestamp(secondsSinceEpoch: expiresAt.secondsSinceEpoch - 1))
            #expect(try await client.send(.get, "/v1/security/secrets/API_KEY", key: key).status == .ok)
            server.clock.set(expiresAt)
            expectError(try await client.send(.get, "/v1/security/secrets/API_KEY", key: key), .unauthorized, "AUTHENTICATION_REQUIRED")
            // Nothing about the key changed in server.db: the table alone must refuse it.
            server.clock.set(Timestamp(secondsSinceEpoch: expiresAt.secondsSinceEpoch + 3600))
            expectError(try await client.send(.get, "/v1/security/secrets/API_KEY", key: key), .unauthorized, "AUTHENTICATION_REQUIRED")
        }
    }

    @Test("under concurrent reads, every request after a revocation's answer gets 401")
    func revocationUnderLoad() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let key = try await server.makeKey(name: "busy", scopes: [.secretsRead])
        try await server.test { client in
            try await client.createSecret("API_KEY", value: "load-value", key: admin)
            let revokedAt = SharedFlag(false)
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        var lateSuccesses = 0
                        for _ in 0..<50 {
                            let revokedBefore = revokedAt.load()
                            let reply = try await client.send(.get, "/v1/security/secrets/API_KEY", key: key)
                            if revokedBefore && reply.status != .unauthorized { lateSuccesses += 1 }
                            if !revokedBefore { #expect(reply.status == .ok || reply.status == .unauthorized) }
                        }
                        return lateSuccesses
                    }
                }
                group.addTask {
                    let reply = try await client.send(.delete, "/v1/security/api-keys/\(key.id)", key: admin)
                    #expect(reply.status == .noContent)
                    revokedAt.store(true)
                    return 0
                }
                var late = 0
                for try await count in group { late += count }
                #expect(late == 0, "\(late) requests succeeded after the revocation was answered")
            }
            expectError(try await client.send(.get, "/v1/security/secrets/API_KEY", key: key), .unauthorized, "AUTHENTICATION_REQUIRED")
        }
    }

    @Test("the rate limiter counts each key on its own and refills over time")
    func rateLimiterTable() {
        let limiter = RateLimiter(rate: 1_000, burst: 2)
        #expect(limiter.admit("a") == nil)
        #expect(limiter.admit("a") == nil)
        #expect(limiter.admit("a") == 1)
        #expect(limiter.admit("b") == nil)
        Thread.sleep(forTimeInterval: 0.01)
        #expect(limiter.admit("a") == nil)
    }
}

/// A flag shared between tasks.
final class SharedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Bool
    init(_ value: Bool) { self.value = value }
    func load() -> Bool { lock.withLock { value } }
    func store(_ newValue: Bool) { lock.withLock { value = newValue } }
}
