/// Secret values kept for a while, so a program can ask for a secret on every request without
/// asking the server each time.
///
/// - Within `ttl` of a successful fetch, `value(for:)` answers from memory, without a request.
/// - After it, the next call fetches again; callers asking for the same secret meanwhile wait
///   for that one request instead of sending their own.
/// - If that fetch fails because the server cannot be reached (`.unreachable`: connection
///   refused, timeout, TLS failure, 5xx, rate limit) and `serveStaleOnError` is on, the last
///   value is returned while it is younger than `maxStale` (nil: any age); the next call tries
///   the server again. Otherwise the error is thrown. An answer from the server is never
///   overridden: `.notFound`, `.accessDenied` and `.expired` are thrown and drop the cached
///   value, stale or not, so a deleted secret or a revoked key stops working at once.
///
/// Values stay in locked memory. `invalidate(_:)` and `clear()` drop them; the memory is zeroed
/// when the last `SecretValue` that shares it is released (including any you still hold).
public actor SecretCache {
    public let client: VSecureClient
    public let ttl: Duration
    public let serveStaleOnError: Bool
    public let maxStale: Duration?

    private struct Key: Hashable {
        var name: String
        var environment: String?
    }

    private struct Entry {
        var value: SecretValue
        var fetchedAt: Duration
    }

    /// Monotonic time since some origin; tests give a clock they move by hand.
    private let now: @Sendable () -> Duration
    /// The fetch: `client.secrets.get`; unit tests of the cache logic give one they control.
    private let fetch: @Sendable (String, String?) async throws(VSecureClientError) -> SecretValue
    private var entries: [Key: Entry] = [:]
    /// One fetch per key at a time, with a ticket: only the fetch still registered under its
    /// key may store its result, so an `invalidate` or `clear` during a fetch wins, and a fetch
    /// of one key is never disowned by an invalidation of another.
    private var inFlight: [Key: (ticket: Int, task: Task<Result<SecretValue, VSecureClientError>, Never>)] = [:]
    private var nextTicket = 0

    public init(client: VSecureClient, ttl: Duration, serveStaleOnError: Bool = false, maxStale: Duration? = nil) {
        let origin = ContinuousClock.now
        self.init(client: client, ttl: ttl, serveStaleOnError: serveStaleOnError, maxStale: maxStale) { ContinuousClock.now - origin }
    }

    init(client: VSecureClient, ttl: Duration, serveStaleOnError: Bool, maxStale: Duration?,
         fetch: (@Sendable (String, String?) async throws(VSecureClientError) -> SecretValue)? = nil,
         now: @escaping @Sendable () -> Duration) {
        if let fetch {
            self.fetch = fetch
        } else {
            self.fetch = { (name: String, environment: String?) async throws(VSecureClientError) -> SecretValue in
                try await client.secrets.get(name, environment: environment)
            }
        }
        self.client = client
        self.ttl = ttl
        self.serveStaleOnError = serveStaleOnError
        self.maxStale = maxStale
        self.now = now
    }

    /// The current value of `name`: from memory within the TTL, else from the server.
    public func value(for name: String, environment: String? = nil) async throws(VSecureClientError) -> SecretValue {
        let key = Key(name: name, environment: environment)
        if let entry = entries[key], now() - entry.fetchedAt < ttl { return entry.value }
        let task: Task<Result<SecretValue, VSecureClientError>, Never>
        if let running = inFlight[key] {
            task = running.task
        } else {
            nextTicket += 1
            let ticket = nextTicket
            task = Task { await self.refresh(key, ticket: ticket) }
            inFlight[key] = (ticket, task)
        }
        return try await task.value.get()
    }

    /// Forgets one secret's value; the next call fetches it.
    public func invalidate(_ name: String, environment: String? = nil) {
        let key = Key(name: name, environment: environment)
        entries[key] = nil
        inFlight[key] = nil
    }

    /// Forgets every value.
    public func clear() {
        entries.removeAll()
        inFlight.removeAll()
    }

    /// How many values are held.
    public var count: Int { entries.count }

    private func refresh(_ key: Key, ticket: Int) async -> Result<SecretValue, VSecureClientError> {
        let result: Result<SecretValue, VSecureClientError>
        do {
            result = .success(try await fetch(key.name, key.environment))
        } catch {
            result = .failure(error)
        }
        let current = inFlight[key]?.ticket == ticket
        if current { inFlight[key] = nil }
        switch result {
        case .success(let value):
            if current { entries[key] = Entry(value: value, fetchedAt: now()) }
            return result
        case .failure(let error) where error.kind == .unreachable:
            if serveStaleOnError, current, let entry = entries[key], maxStale.map({ now() - entry.fetchedAt <= $0 }) ?? true {
                return .success(entry.value)
            }
            return result
        case .failure:
            if current { entries[key] = nil }
            return result
        }
    }
}
