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

    @Test("invalidating one secret while another is being fetched does not pin the other")
    func invalidateDuringAnotherFetch() async throws {
        // Logic only: the fetch is a stand-in the test holds open, so the invalidation lands
        // exactly while the fetch is in flight.
        let fixture = try ClientFixture()
        let gate = FetchGate()
        let clock = ManualClock()
        let cache = SecretCache(client: fixture.client, ttl: .seconds(60), serveStaleOnError: false, maxStale: nil,
                                fetch: { (name: String, _: String?) async throws(VSecureClientError) -> SecretValue in try await gate.fetch(name) },
                                now: { clock.now })
        async let fetched = cache.value(for: "CACHED")
        await gate.waitForCalls(1)
        await cache.invalidate("OTHER")
        await gate.release()
        #expect(try await fetched.utf8String() == "value-1")
        clock.advance(.seconds(61))
        #expect(try await cache.value(for: "CACHED").utf8String() == "value-2", "after the TTL the value is fetched again")
        #expect(await gate.calls == 2)
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

/// A fetch the test controls: the first call waits until `release()`; each call answers
/// `value-N` for the N-th call.
actor FetchGate {
    private(set) var calls = 0
    private var released = false
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private var callWaiters: [(Int, CheckedContinuation<Void, Never>)] = []

    func fetch(_ name: String) async throws(VSecureClientError) -> SecretValue {
        calls += 1
        let call = calls
        for (index, waiter) in callWaiters.enumerated().reversed() where waiter.0 <= calls {
            callWaiters.remove(at: index)
            waiter.1.resume()
        }
        if call == 1 && !released { await withCheckedContinuation { waiting.append($0) } }
        return SecretValue(copying: "value-\(call)")
    }

    func waitForCalls(_ count: Int) async {
        if calls >= count { return }
        await withCheckedContinuation { callWaiters.append((count, $0)) }
    }

    func release() {
        released = true
        for continuation in waiting { continuation.resume() }
        waiting = []
    }
}
