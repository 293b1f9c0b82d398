#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOPosix
import Synchronization
import VSecureCore
import VSecureCrypto
import VSecureStore
import VSecureVault

/// Rotations on the server: the route that rotates now and the schedule. They run on a write
/// connection of their own, on a thread of their own, so a rotation command that takes a minute
/// holds neither the service actor (every other write), nor a cooperative thread, nor a thread
/// of NIO's shared blocking pool (two threads on two cores, which audit verification also
/// needs: two slow commands used to hold it all). Rotations queue on that one thread, as they
/// queued on the connection's lock before. The
/// due check and the claim are `LocalVault.rotate`'s, the same as `vsecure rotation:run`'s, so
/// the server and a CLI run on the same store never rotate a secret twice.
public final class SecretRotator: Sendable {
    private let connection: Mutex<LocalVault>
    let settings: ServerRotationSettings
    let clock: @Sendable () -> Timestamp
    /// Where `secret.rotated` and `secret.rotation_failed` go (webhooks), for every rotation.
    public let events = SecretEventRelay()
    /// Where the schedule's rotations and failures are recorded (the route records its own,
    /// with the caller's key).
    let audit: AuditTrail?
    /// The `Idempotency-Key`s of `POST …/rotate` requests still running (see
    /// `SecretService.idempotent(_:context:bodyBytes:claims:running:)`).
    let requestClaims = IdempotencyClaims()
    /// The thread rotations run on.
    private let worker: NIOThreadPool

    /// `open` makes the rotator's own read-write connection to the vault.
    public init(settings: ServerRotationSettings, clock: @escaping @Sendable () -> Timestamp, audit: AuditTrail? = nil,
                open: () throws(VSecureError) -> LocalVault) throws(VSecureError) {
        connection = Mutex(try open())
        self.settings = settings
        self.clock = clock
        self.audit = audit
        worker = NIOThreadPool(numberOfThreads: 1)
        worker.start()
    }

    deinit {
        worker.shutdownGracefully { _ in }
    }

    /// The audit entry of a rotation or a failed one; nil for a skipped one.
    static func auditEvent(_ result: RotationResult, actor: AuditEvent.Actor, request: AuditEvent.Request?,
                           now: Timestamp) -> AuditEvent? {
        switch result.outcome {
        case .rotated(let from, let to):
            return AuditEvent(time: now, actor: actor, resource: .secrets, action: .rotated, environment: result.environment.rawValue,
                              name: result.name.rawValue, version: to, request: request, details: [("previousVersion", String(from))])
        case .failed(let reason):
            return AuditEvent(time: now, actor: actor, resource: .secrets, action: .rotated, outcome: .failure,
                              environment: result.environment.rawValue, name: result.name.rawValue, request: request,
                              details: [("reason", reason)])
        case .skipped:
            return nil
        }
    }

    /// The actor named in version records for the schedule's rotations.
    static let scheduleActor = "vsecure-server (rotation schedule)"

    /// Runs `body` with the connection on the rotator's thread.
    private func blocking<T: Sendable>(_ body: @escaping @Sendable (LocalVault) throws(VSecureError) -> T) async throws(VSecureError) -> T {
        let outcome: Result<T, VSecureError>
        do {
            outcome = try await worker.runIfActive { [self] in
                self.connection.withLock { (vault: inout LocalVault) -> Result<T, VSecureError> in
                    Result { () throws(VSecureError) -> T in try body(vault) }
                }
            }
        } catch {
            throw VSecureError(.internalError, "the rotation worker is not running")
        }
        return try outcome.get()
    }

    /// Rotates one secret (see `LocalVault.rotate`). A failure is recorded and returned.
    public func rotate(environment: EnvironmentName, name: SecretName, onlyIfDue: Bool,
                       actor: String) async throws(VSecureError) -> RotationResult {
        let settings = settings, now = clock()
        let result = try await blocking { (vault: LocalVault) throws(VSecureError) -> RotationResult in
            try vault.rotate(environment: environment, name: name, onlyIfDue: onlyIfDue, actor: actor, now: now,
                             claimFor: SecretDuration(seconds: settings.commandTimeout.seconds + 60)) { (input: LocalVault.RotationInput) throws(RotationFailure) -> SecureBytes in
                switch input.source {
                case .generate(let length, let charset):
                    return SecureBytes.randomCharacters(count: length, alphabet: charset.alphabet)
                case .command(let argv):
                    if let refusal = settings.commandRefusal(argv) { throw RotationFailure(refusal) }
                    return try RotationCommand.run(argv: argv, environment: Self.commandEnvironment(input), input: input.currentValue,
                                                   timeout: settings.commandTimeout)
                case .manual:
                    throw RotationFailure("\(input.name) has a manual rotation policy")
                }
            }
        }
        await events.rotationFinished(result)
        return result
    }

    /// One pass of the schedule: every due secret whose policy this server can carry out,
    /// rotated once with `onlyIfDue`, each logged by name and version (never a value). Manual
    /// policies and commands this server may not run are left to people and `rotation:run`.
    public func rotateDue(logger: Logger) async -> [RotationResult] {
        let now = clock()
        let entries: [RotationEntry]
        do {
            entries = try await blocking { (vault: LocalVault) throws(VSecureError) in try vault.rotationEntries(environment: nil) }
        } catch {
            logger.error("rotation schedule: cannot list the secrets with policies", metadata: ["status": "\(error.status)"])
            return []
        }
        var results: [RotationResult] = []
        for entry in entries {
            guard let policy = entry.policy, let record = entry.record, RotationState.isDue(now, record: record) else { continue }
            switch policy.source {
            case .manual: continue
            case .command(let argv) where settings.commandRefusal(argv) != nil: continue
            default: break
            }
            let path = "\(entry.environment)/\(entry.name)"
            do {
                let result = try await rotate(environment: entry.environment, name: entry.name, onlyIfDue: true, actor: Self.scheduleActor)
                Self.log(result, logger: logger)
                results.append(result)
                if let audit, let event = Self.auditEvent(result, actor: AuditEvent.Actor(user: Self.scheduleActor), request: nil, now: clock()) {
                    do { try await audit.record(event) } catch {
                        logger.error("rotation schedule: the audit entry for \(path) could not be written: \(error.message)")
                    }
                }
            } catch {
                logger.warning("rotation schedule: \(path) could not be rotated: \(error.message)")
            }
            if Task.isCancelled { break }
        }
        return results
    }

    static func log(_ result: RotationResult, logger: Logger) {
        let path = "\(result.environment)/\(result.name)"
        switch result.outcome {
        case .rotated(let from, let to): logger.notice("rotated \(path): version \(from) → \(to)")
        case .skipped(let reason): logger.debug("rotation of \(path) skipped: \(reason)")
        case .failed(let reason): logger.warning("rotation of \(path) failed: \(reason)")
        }
    }

    /// The command's whole environment, as `vsecure rotation:run` gives it (docs/rotation.md):
    /// what it rotates, PATH and HOME; nothing of the server's own.
    static func commandEnvironment(_ input: LocalVault.RotationInput) -> [String] {
        var result = ["VSECURE_SECRET_NAME=\(input.name.rawValue)", "VSECURE_SECRET_ENVIRONMENT=\(input.environment.rawValue)",
                      "VSECURE_SECRET_VERSION=\(input.currentVersion)", "PATH=/usr/local/bin:/usr/bin:/bin"]
        if let home = getenv("HOME") { result.append("HOME=" + String(cString: home)) }
        return result
    }
}
