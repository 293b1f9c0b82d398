#if canImport(Glibc)
import Glibc
#endif
import Logging
import ServiceLifecycle
import Synchronization
import VSecureCore
import VSecureCrypto
import VSecureStore
import VSecureVault

/// How webhooks are delivered. Tests shrink the delays to milliseconds.
public struct WebhookSettings: Sendable {
    /// Attempts per delivery, the first included; then it is given up.
    public var maxAttempts = 5
    /// The wait before the second attempt; each later wait doubles, plus up to a quarter of
    /// jitter, never above `retryCap`. The default gives 1 s, 2 s, 4 s, 8 s.
    public var retryBase: Duration = .seconds(1)
    public var retryCap: Duration = .seconds(3600)
    /// One attempt (connect, TLS, request, status line) must finish within this.
    public var attemptTimeout: Duration = .seconds(10)
    /// How often owed deliveries are looked for when nothing rings (a `POST /webhooks/{id}/test`
    /// is picked up within this).
    public var pollInterval: Duration = .seconds(1)
    /// How often secrets are checked for `secret.expiring` and `secret.expired`.
    public var expiryScanInterval: Duration = .seconds(60)
    /// `secret.expiring` goes out this long before `expiresAt` (a rotation policy's
    /// `notifyBefore` takes precedence), as `rotation:status` warns.
    public var expiryWarning = SecretDuration(seconds: 7 * 86_400)
    /// Deliveries sent at once.
    public var concurrentDeliveries = 8
    /// Finished deliveries are kept this long (for `GET /webhooks/{id}/deliveries` and support).
    public var retention: Duration = .seconds(7 * 86_400)
    /// The certificate authorities HTTPS receivers are checked against (`--webhook-cacert`).
    public var trust = WebhookTrust.system

    public init() {}

    /// The wait after failed attempt `attempt` (1-based), jitter included.
    func retryDelayMilliseconds(after attempt: Int) -> Int64 {
        let base = retryBase.milliseconds, cap = retryCap.milliseconds
        let nominal = min(cap, base << Int64(min(attempt - 1, 40)))
        let jitter = nominal >= 4 ? Int64(Sodium.randomUniform(UInt32(min(nominal / 4, Int64(UInt32.max))))) : 0
        return max(1, min(cap, nominal + jitter))
    }
}

extension Duration {
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}

/// The webhook worker, a service beside the HTTP server: it turns rotations (from
/// `SecretRotator`, the route and the schedule alike) and expiry notices into queued deliveries
/// in `server.db`, and sends what is owed with retries. Nothing here runs on a request's path
/// except queueing a rotation's event. Deliveries go out in groups of `concurrentDeliveries`;
/// a receiver that never answers holds its group up for one `attemptTimeout` at most.
///
/// Delivery is at least once: a delivery in flight when the server stops is sent again after
/// the restart, with the same `VSecure-Delivery` id for receivers to deduplicate by.
public final class WebhookDispatcher: Service, Sendable {
    let service: SecretService
    let settings: WebhookSettings
    let logger: Logger
    /// Unix milliseconds, for scheduling attempts and signing; the real clock outside tests.
    let milliseconds: @Sendable () -> Int64
    private let doorbell = Doorbell()

    /// Attaches itself to the service's rotator, so every rotation from now on is announced.
    public init(service: SecretService, settings: WebhookSettings = WebhookSettings(), logger: Logger,
                milliseconds: @escaping @Sendable () -> Int64 = WebhookDispatcher.wallClockMilliseconds) {
        self.service = service
        self.settings = settings
        self.logger = logger
        self.milliseconds = milliseconds
        service.rotator?.events.attach { [weak self] result in await self?.rotationFinished(result) }
    }

    public static let wallClockMilliseconds: @Sendable () -> Int64 = {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.loop() }
    }

    /// Scans for expiry notices every `expiryScanInterval`, sends what is due, then sleeps until
    /// the next attempt is due, a new event rings, or `pollInterval` passes.
    func loop() async {
        let clock = ContinuousClock()
        var nextScan = clock.now
        while !Task.isCancelled {
            if clock.now >= nextScan {
                await scanExpiry()
                nextScan = clock.now.advanced(by: settings.expiryScanInterval)
                prune()
            }
            while !Task.isCancelled, await deliverDue() > 0 {}
            var pause = min(settings.pollInterval, clock.now.duration(to: nextScan))
            if let next = try? await service.withRegistry({ registry, _ throws(VSecureError) in try registry.nextWebhookAttempt() }) {
                pause = min(pause, .milliseconds(max(0, next - milliseconds())))
            }
            if pause > .zero { await doorbell.wait(upTo: pause) }
        }
    }

    private func prune() {
        let cutoff = milliseconds() - settings.retention.milliseconds
        Task { [service] in
            _ = try? await service.withRegistry { registry, _ throws(VSecureError) in try registry.pruneWebhookDeliveries(createdBefore: cutoff) }
        }
    }

    // MARK: - Events

    /// Queues `event` for every webhook that wants it; true when at least one does.
    @discardableResult
    public func publish(_ event: SecretEvent) async -> Bool {
        let body = event.body, type = event.type, path = event.path, now = milliseconds()
        do {
            let ids = try await service.withRegistry { registry, _ throws(VSecureError) in
                try registry.enqueueWebhookEvent(type, path: path, body: body, nowMilliseconds: now)
            }
            guard !ids.isEmpty else { return false }
            logger.debug("webhook event \(event.id) (\(type)) for \(path) queued for \(ids.count) webhook(s)")
            doorbell.ring()
            return true
        } catch {
            logger.error("webhook event \(event.id) (\(type)) for \(path) could not be queued: \(error.message)")
            return false
        }
    }

    /// `secret.rotated` or `secret.rotation_failed` for a finished rotation; nothing for a skip.
    func rotationFinished(_ result: RotationResult) async {
        let environment = result.environment, name = result.name
        let summary = try? await service.withVault { vault, _ throws(VSecureError) in try vault.summary(environment: environment, name: name) }
        let now = service.clock()
        switch result.outcome {
        case .rotated(let from, let to):
            await publish(SecretEvent(.rotated, at: now, environment: environment, name: name, version: to, previousVersion: from,
                                      expiresAt: summary?.attributes.expiresAt))
        case .failed(let reason):
            await publish(SecretEvent(.rotationFailed, at: now, environment: environment, name: name, version: summary?.currentVersion,
                                      expiresAt: summary?.attributes.expiresAt, reason: reason))
        case .skipped:
            break
        }
    }

    /// One pass over the secrets with an expiry or a policy: `secret.expired` once per expiry,
    /// `secret.expiring` once per expiry entering its warning window and once per rotation due
    /// time entering the policy's `notifyBefore` window. A notice that reaches no webhook is not
    /// remembered, so a webhook created later still hears it. Returns the notices sent.
    @discardableResult
    public func scanExpiry() async -> [SecretEvent] {
        let now = service.clock()
        let entries: [RotationEntry]
        do {
            entries = try await service.withVault { vault, _ throws(VSecureError) in try vault.rotationEntries(environment: nil) }
        } catch {
            logger.error("webhooks: cannot list the secrets with an expiry or a policy: \(error.message)")
            return []
        }
        var sent: [SecretEvent] = []
        for entry in entries {
            for (event, reference) in notices(entry, now: now) where await announce(event, referenceAt: reference) {
                sent.append(event)
            }
        }
        return sent
    }

    private func notices(_ entry: RotationEntry, now: Timestamp) -> [(SecretEvent, Timestamp)] {
        var notices: [(SecretEvent, Timestamp)] = []
        func event(_ kind: SecretEvent.Kind, dueAt: Timestamp? = nil, reason: String) -> SecretEvent {
            SecretEvent(kind, at: now, environment: entry.environment, name: entry.name, version: entry.currentVersion,
                        expiresAt: entry.expiresAt, dueAt: dueAt, reason: reason)
        }
        if let expiresAt = entry.expiresAt {
            let warning = entry.policy?.notifyBefore ?? settings.expiryWarning
            if expiresAt <= now {
                notices.append((event(.expired, reason: "expired at \(expiresAt.iso8601)"), expiresAt))
            } else if expiresAt.secondsSinceEpoch - now.secondsSinceEpoch <= warning.seconds {
                notices.append((event(.expiring, reason: "expires at \(expiresAt.iso8601)"), expiresAt))
            }
        }
        if let policy = entry.policy, let record = entry.record, let notifyBefore = policy.notifyBefore,
           now < record.nextDueAt, now.secondsSinceEpoch >= record.nextDueAt.secondsSinceEpoch - notifyBefore.seconds {
            notices.append((event(.expiring, dueAt: record.nextDueAt, reason: "rotation due at \(record.nextDueAt.iso8601)"), record.nextDueAt))
        }
        return notices
    }

    private func announce(_ event: SecretEvent, referenceAt: Timestamp) async -> Bool {
        let body = event.body, type = event.type, path = event.path, nowMilliseconds = milliseconds()
        let environment = event.environment, name = event.name
        do {
            let queued = try await service.withRegistry { registry, now throws(VSecureError) -> Bool in
                guard try registry.claimAnnouncement(environment: environment, name: name, event: type, referenceAt: referenceAt,
                                                     now: now) else { return false }
                let ids = try registry.enqueueWebhookEvent(type, path: path, body: body, nowMilliseconds: nowMilliseconds)
                if ids.isEmpty {
                    try registry.releaseAnnouncement(environment: environment, name: name, event: type, referenceAt: referenceAt)
                }
                return !ids.isEmpty
            }
            if queued {
                logger.info("webhook event \(event.id) (\(type)) for \(path) queued")
                doorbell.ring()
            }
            return queued
        } catch {
            logger.error("webhook notice \(type) for \(path) could not be queued: \(error.message)")
            return false
        }
    }

    // MARK: - Delivery

    /// Sends every delivery due now (up to `concurrentDeliveries`, at once) and records each
    /// outcome. Returns how many were attempted.
    @discardableResult
    public func deliverDue() async -> Int {
        let now = milliseconds(), limit = settings.concurrentDeliveries
        let due: [ServerRegistry.PendingWebhookDelivery]
        do {
            due = try await service.withWebhooks { registry, sealingKey, _ throws(VSecureError) in
                try registry.dueWebhookDeliveries(nowMilliseconds: now, limit: limit, sealingKey: sealingKey)
            }
        } catch {
            logger.error("webhooks: cannot read the deliveries owed: \(error.message)")
            return 0
        }
        await withTaskGroup(of: Void.self) { group in
            for delivery in due { group.addTask { await self.attempt(delivery) } }
        }
        return due.count
    }

    private func attempt(_ delivery: ServerRegistry.PendingWebhookDelivery) async {
        let attempt = delivery.attempts + 1
        let label = "webhook delivery \(delivery.id) (\(delivery.event)) to \(delivery.webhookID), attempt \(attempt) of \(settings.maxAttempts)"
        let outcome: WebhookPoster.Outcome
        switch WebhookURL.parse(delivery.url) {
        case .failure(let problem):
            outcome = .failed("the webhook URL \(problem.message)")
        case .success(let url):
            let timestamp = milliseconds() / 1000
            let headers = [("VSecure-Event", delivery.event), ("VSecure-Delivery", delivery.id),
                           ("VSecure-Signature", WebhookSignature.header(secret: delivery.signingSecret, timestamp: timestamp, body: delivery.body))]
            outcome = await WebhookPoster.post(url, headers: headers, body: delivery.body, timeout: settings.attemptTimeout,
                                               trust: settings.trust)
        }
        // A shutdown mid-attempt records nothing: the attempt is made again after the restart.
        if Task.isCancelled, outcome == .failed("cancelled") { return }
        let finished = milliseconds()
        var status: Int?, error: String?, deliveredAt: Int64?, next: Int64?
        switch outcome {
        case .status(let code) where (200..<300).contains(code):
            status = code
            deliveredAt = finished
            logger.info("\(label): delivered (\(code))")
        case .status(let code):
            status = code
            error = "the receiver answered \(code)"
        case .failed(let reason):
            error = reason
        }
        if deliveredAt == nil {
            if attempt < settings.maxAttempts {
                let delay = settings.retryDelayMilliseconds(after: attempt)
                next = finished + delay
                logger.warning("\(label) failed: \(error ?? ""); retrying in \(delay) ms")
            } else {
                logger.error("\(label) failed: \(error ?? ""); giving up")
            }
        }
        let record = (status, error, deliveredAt, next)
        do {
            try await service.withRegistry { registry, _ throws(VSecureError) in
                try registry.recordWebhookAttempt(id: delivery.id, status: record.0, error: record.1, deliveredAt: record.2, nextAttemptAt: record.3)
            }
        } catch {
            logger.error("\(label): the outcome could not be recorded: \(error.message)")
        }
    }
}

extension SecretService {
    /// The registry with the key that opens webhook signing secrets.
    func withWebhooks<T: Sendable>(_ body: (ServerRegistry, SecureBytes, Timestamp) throws(VSecureError) -> T) throws(VSecureError) -> T {
        try body(registry, vault.webhookSealingKey, clock())
    }
}

/// Wakes the delivery loop early. A ring with nobody waiting is kept for the next wait.
final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func ring() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.rung = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns on a ring (or one kept since the last wait), on cancellation, or after `limit`.
    func wait(upTo limit: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait() }
            group.addTask { try? await Task.sleep(for: limit) }
            await group.next()
            group.cancelAll()
        }
    }

    private func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.rung || Task.isCancelled {
                        state.rung = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            ring()
        }
    }
}
