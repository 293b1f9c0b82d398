import Foundation
import Testing
import TestSupport
import VSecureClient

@Suite("SecretCache: TTL, refresh, stale values only when configured")
struct SecretCacheTests {
    static let ttl = Duration.milliseconds(300)
    static let path = "GET /v1/security/secrets/CACHED"

    @Test("within the TTL no request is made; after it the value is fetched again")
    func servesWithinTTLThenRefreshes() async throws {
        let fixture = try ClientFixture()
        try await fixture.otherClient().secrets.create("CACHED", value: "first")
        let cache = SecretCache(client: fixture.client, ttl: Self.ttl)

        let start = ContinuousClock.now
        #expect(try await cache.value(for: "CACHED").utf8String() == "first")
        #expect(fixture.client.requestCount == 1)
        // Changed on the server: the cache keeps the value it has until the TTL is over.
        try await fixture.otherClient().secrets.update("CACHED", value: SecretValue(copying: "second"))
        for _ in 0..<5 { #expect(try await cache.value(for: "CACHED").utf8String() == "first") }
        let elapsed = ContinuousClock.now - start
        try #require(elapsed < Self.ttl, "the in-TTL reads took \(elapsed); the check means nothing")
        #expect(fixture.client.requestCount == 1)
        #expect(fixture.loggedRequests(Self.path) == 1)

        try await Task.sleep(for: Self.ttl + .milliseconds(50))
        #expect(try await cache.value(for: "CACHED").utf8String() == "second")
        #expect(fixture.client.requestCount == 2)
        #expect(fixture.loggedRequests(Self.path) == 2)
        #expect(try await cache.value(for: "CACHED").utf8String() == "second")
        #expect(fixture.client.requestCount == 2)
    }

    @Test("environments are cached apart; invalidate and clear drop values")
    func keysAndInvalidation() async throws {
        let fixture = try ClientFixture()
        try await fixture.client.secrets.create("CACHED", value: "dev")
        try await fixture.client.secrets.create("CACHED", value: "prod", environment: "production")
        let cache = SecretCache(client: fixture.client, ttl: .seconds(60))
        let base = fixture.client.requestCount
        #expect(try await cache.value(for: "CACHED").utf8String() == "dev")
        #expect(try await cache.value(for: "CACHED", environment: "production").utf8String() == "prod")
        #expect(await cache.count == 2)
        #expect(fixture.client.requestCount == base + 2)
        await cache.invalidate("CACHED", environment: "production")
        #expect(await cache.count == 1)
        #expect(try await cache.value(for: "CACHED").utf8String() == "dev")
        #expect(fixture.client.requestCount == base + 2)
        #expect(try await cache.value(for: "CACHED", environment: "production").utf8String() == "prod")
        #expect(fixture.client.requestCount == base + 3)
        await cache.clear()
        #expect(await cache.count == 0)
        #expect(try await cache.value(for: "CACHED").utf8String() == "dev")
        #expect(fixture.client.requestCount == base + 4)
    }

    @Test("concurrent callers for one secret share one fetch")
    func sharedFetch() async throws {
        let fixture = try ClientFixture()
        try await fixture.client.secrets.create("CACHED", value: "shared")
        let cache = SecretCache(client: fixture.client, ttl: .seconds(60))
        let base = fixture.client.requestCount
        let values = try await withThrowingTaskGroup(of: String?.self) { group in
            for _ in 0..<8 { group.addTask { try await cache.value(for: "CACHED").utf8String() } }
            var out: [String?] = []
            for try await value in group { out.append(value) }
            return out
        }
        #expect(values == [String?](repeating: "shared", count: 8))
        #expect(fixture.client.requestCount == base + 1)
    }

    @Test("server down after the TTL: the stale value when configured, within maxStale")
    func staleWhenConfigured() async throws {
        let fixture = try ClientFixture(timeout: .seconds(3))
        try await fixture.client.secrets.create("CACHED", value: "kept")
        let stale = SecretCache(client: fixture.client, ttl: Self.ttl, serveStaleOnError: true)
        let bounded = SecretCache(client: fixture.client, ttl: Self.ttl, serveStaleOnError: true, maxStale: .milliseconds(1_500))
        let strict = SecretCache(client: fixture.client, ttl: Self.ttl)
        let fetched = ContinuousClock.now
        for cache in [bounded, stale, strict] { #expect(try await cache.value(for: "CACHED").utf8String() == "kept") }
        try fixture.stopServer()
        try await Task.sleep(for: Self.ttl + .milliseconds(50))

        // Each failed attempt takes ~300-500 ms (three tries with backoff), so this answer comes
        // from a value well under 1.5 s old.
        #expect(try await bounded.value(for: "CACHED").utf8String() == "kept")
        try #require(ContinuousClock.now - fetched < .milliseconds(1_500), "too slow for the maxStale check to mean anything")
        #expect(try await stale.value(for: "CACHED").utf8String() == "kept")
        // Each call past the TTL tries the server again.
        let before = fixture.client.requestCount
        #expect(try await stale.value(for: "CACHED").utf8String() == "kept")
        #expect(fixture.client.requestCount > before)
        #expect(await errorKind { try await strict.value(for: "CACHED") } == .unreachable)

        let age = ContinuousClock.now - fetched
        if age < .milliseconds(1_600) { try await Task.sleep(for: .milliseconds(1_600) - age) }
        #expect(await errorKind { try await bounded.value(for: "CACHED") } == .unreachable)
        #expect(try await stale.value(for: "CACHED").utf8String() == "kept")
        // A secret that was never fetched has nothing stale to serve.
        #expect(await errorKind { try await stale.value(for: "NEVER_FETCHED") } == .unreachable)
    }

    @Test("an answer from the server is never overridden by a stale value")
    func answersWin() async throws {
        let fixture = try ClientFixture()
        try await fixture.client.secrets.create("CACHED", value: "doomed")
        let cache = SecretCache(client: fixture.client, ttl: Self.ttl, serveStaleOnError: true)
        #expect(try await cache.value(for: "CACHED").utf8String() == "doomed")
        try await fixture.client.secrets.delete("CACHED")
        try await Task.sleep(for: Self.ttl + .milliseconds(50))
        #expect(await errorKind { try await cache.value(for: "CACHED") } == .notFound)
        #expect(await cache.count == 0)
    }
}
