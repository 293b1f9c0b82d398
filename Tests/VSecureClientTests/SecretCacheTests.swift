import Foundation
import Synchronization
import Testing
import TestSupport
@testable import VSecureClient

/// A clock the test moves by hand, so TTL checks do not depend on how busy the machine is.
final class ManualClock: Sendable {
    private let elapsed = Mutex(Duration.zero)
    var now: Duration { elapsed.withLock { $0 } }
    func advance(_ duration: Duration) { elapsed.withLock { $0 += duration } }
}

extension SecretCache {
    init(client: VSecureClient, ttl: Duration, clock: ManualClock, serveStaleOnError: Bool = false, maxStale: Duration? = nil) {
        self.init(client: client, ttl: ttl, serveStaleOnError: serveStaleOnError, maxStale: maxStale) { clock.now }
    }
}

@Suite("SecretCache: TTL, refresh, stale values only when configured")
struct SecretCacheTests {
    static let ttl = Duration.milliseconds(300)
    static let path = "GET /v1/security/secrets/CACHED"

    @Test("within the TTL no request is made; after it the value is fetched again")
    func servesWithinTTLThenRefreshes() async throws {
        let fixture = try ClientFixture()
        try await fixture.otherClient().secrets.create("CACHED", value: "first")
        let clock = ManualClock()
        let cache = SecretCache(client: fixture.client, ttl: Self.ttl, clock: clock)

        #expect(try await cache.value(for: "CACHED").utf8String() == "first")
        #expect(fixture.client.requestCount == 1)
        // Changed on the server: the cache keeps the value it has until the TTL is over.
        try await fixture.otherClient().secrets.update("CACHED", value: SecretValue(copying: "second"))
        for _ in 0..<5 { #expect(try await cache.value(for: "CACHED").utf8String() == "first") }
        clock.advance(Self.ttl - .milliseconds(1))
        #expect(try await cache.value(for: "CACHED").utf8String() == "first")
        #expect(fixture.client.requestCount == 1)
        #expect(fixture.loggedRequests(Self.path) == 1)

        clock.advance(.milliseconds(1))
        #expect(try await cache.value(for: "CACHED").utf8String() == "second")
        #expect(fixture.client.requestCount == 2)
        #expect(fixture.loggedRequests(Self.path) == 2)
        #expect(try await cache.value(for: "CACHED").utf8String() == "second")
        #expect(fixture.client.requestCount == 2)
    }

    @Test("on the real clock: a 300 ms TTL runs out")
    func realClock() async throws {
        let fixture = try ClientFixture()
        try await fixture.client.secrets.create("CACHED", value: "v")
        let cache = SecretCache(client: fixture.client, ttl: Self.ttl)
        let base = fixture.client.requestCount
        _ = try await cache.value(for: "CACHED")
        #expect(fixture.client.requestCount == base + 1)
        try await Task.sleep(for: Self.ttl + .milliseconds(20))
        _ = try await cache.value(for: "CACHED")
        #expect(fixture.client.requestCount == base + 2)
        // A long TTL on the real clock: served from memory however slow this machine is.
        let long = SecretCache(client: fixture.client, ttl: .seconds(600))
        _ = try await long.value(for: "CACHED")
        _ = try await long.value(for: "CACHED")
        #expect(fixture.client.requestCount == base + 3)
    }

    @Test("environments are cached apart; invalidate and clear drop values")
    func keysAndInvalidation() async throws {
        let fixture = try ClientFixture()
        try await fixture.client.secrets.create("CACHED", value: "dev")
        try await fixture.client.secrets.create("CACHED", value: "prod", environment: "production")
        let cache = SecretCache(client: fixture.client, ttl: .seconds(60), clock: ManualClock())
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
        let cache = SecretCache(client: fixture.client, ttl: .seconds(60), clock: ManualClock())
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
        let clock = ManualClock()
        let stale = SecretCache(client: fixture.client, ttl: Self.ttl, clock: clock, serveStaleOnError: true)
        let bounded = SecretCache(client: fixture.client, ttl: Self.ttl, clock: clock, serveStaleOnError: true, maxStale: .seconds(1))
        let strict = SecretCache(client: fixture.client, ttl: Self.ttl, clock: clock)
        for cache in [bounded, stale, strict] { #expect(try await cache.value(for: "CACHED").utf8String() == "kept") }
        try fixture.stopServer()

        // Within the TTL nothing notices that the server is gone.
        let before = fixture.client.requestCount
        for cache in [bounded, stale, strict] { #expect(try await cache.value(for: "CACHED").utf8String() == "kept") }
        #expect(fixture.client.requestCount == before)

        clock.advance(Self.ttl)
        #expect(try await bounded.value(for: "CACHED").utf8String() == "kept")
        #expect(try await stale.value(for: "CACHED").utf8String() == "kept")
        #expect(await errorKind { try await strict.value(for: "CACHED") } == .unreachable)
        #expect(fixture.client.requestCount > before)
        // Each call past the TTL tries the server again.
        let tries = fixture.client.requestCount
        #expect(try await stale.value(for: "CACHED").utf8String() == "kept")
        #expect(fixture.client.requestCount > tries)

        clock.advance(.seconds(1))
        #expect(await errorKind { try await bounded.value(for: "CACHED") } == .unreachable)
        #expect(try await stale.value(for: "CACHED").utf8String() == "kept")
        // A secret that was never fetched has nothing stale to serve.
        #expect(await errorKind { try await stale.value(for: "NEVER_FETCHED") } == .unreachable)
    }

    @Test("an answer from the server is never overridden by a stale value")
    func answersWin() async throws {
        let fixture = try ClientFixture()
        try await fixture.client.secrets.create("CACHED", value: "doomed")
        let clock = ManualClock()
        let cache = SecretCache(client: fixture.client, ttl: Self.ttl, clock: clock, serveStaleOnError: true)
        #expect(try await cache.value(for: "CACHED").utf8String() == "doomed")
        try await fixture.client.secrets.delete("CACHED")
        clock.advance(Self.ttl)
        #expect(await errorKind { try await cache.value(for: "CACHED") } == .notFound)
        #expect(await cache.count == 0)
    }
}
