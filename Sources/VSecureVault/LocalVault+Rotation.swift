import VSecureCore
import VSecureCrypto
import VSecureStore

/// Why producing a new value failed. The reason is shown and recorded: it never holds a value.
public struct RotationFailure: Error, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}

/// Rotation policies and rotations over the `rotation` table (format 2, docs/vault-format.md).
///
/// A rotation is two short write transactions around the slow part (a rotation command may run
/// for a minute, longer than other writers wait for the lock): the first checks that the secret
/// is due and no other run holds it, and claims it until `now + claimFor`; the second checks the
/// claim is still this run's, stores the new version (action `rotate`) and releases it. A run
/// that dies leaves a claim that expires on its own.
extension LocalVault {
    struct RotationRow {
        var policy: RotationPolicy
        var record: RotationRecord
        var claim: String?
        var claimedUntil: Timestamp?
    }

    static let rotationColumns = """
        r.period, r.notify_before, r.source, r.length, r.charset, r.argv, r.last_rotated_at, r.next_due_at,
        r.failing_since, r.last_failure_at, r.last_failure, r.failure_count
        """

    /// Decodes `rotationColumns` starting at `first`; nil when the row has no policy.
    static func decodeRotation(_ statement: SQLiteStatement, from first: Int32) throws(VSecureError) -> (RotationPolicy, RotationRecord)? {
        guard let period = statement.optionalInt64(first) else { return nil }
        let damaged = VSecureError(.integrity, "a rotation policy in the vault is malformed: the vault was altered or damaged")
        let source: RotationSource
        switch statement.text(first + 2) {
        case "generate":
            guard let length = statement.optionalInt64(first + 3), let charset = statement.optionalText(first + 4).flatMap(RotationCharset.init(rawValue:)),
                  RotationSource.lengthRange.contains(Int(length)) else { throw damaged }
            source = .generate(length: Int(length), charset: charset)
        case "command":
            guard let text = statement.optionalText(first + 5), case .array(let items)? = try? JSONParser.parse(Array(text.utf8)) else { throw damaged }
            var argv: [String] = []
            for item in items {
                guard case .string(let argument) = item else { throw damaged }
                argv.append(argument)
            }
            guard !argv.isEmpty else { throw damaged }
            source = .command(argv: argv)
        case "manual":
            source = .manual
        default:
            throw damaged
        }
        guard period > 0, let policy = try? RotationPolicy(period: SecretDuration(seconds: period),
                                                            notifyBefore: statement.optionalInt64(first + 1).map(SecretDuration.init(seconds:)),
                                                            source: source)
        else { throw damaged }
        let record = RotationRecord(lastRotatedAt: Timestamp(secondsSinceEpoch: statement.int64(first + 6)),
                                    nextDueAt: Timestamp(secondsSinceEpoch: statement.int64(first + 7)),
                                    failingSince: statement.optionalInt64(first + 8).map(Timestamp.init(secondsSinceEpoch:)),
                                    lastFailureAt: statement.optionalInt64(first + 9).map(Timestamp.init(secondsSinceEpoch:)),
                                    lastFailure: statement.optionalText(first + 10), failureCount: statement.int(first + 11))
        return (policy, record)
    }

    func rotationRow(secretID: String) throws(VSecureError) -> RotationRow? {
        let statement = try db.prepare("SELECT \(Self.rotationColumns), r.claim, r.claimed_until FROM rotation r WHERE r.secret_id = ?1")
        statement.bind(1, secretID)
        guard try statement.step(), let (policy, record) = try Self.decodeRotation(statement, from: 0) else { return nil }
        return RotationRow(policy: policy, record: record, claim: statement.optionalText(12),
                           claimedUntil: statement.optionalInt64(13).map(Timestamp.init(secondsSinceEpoch:)))
    }

    /// Called for every new version: a new value, however it came, restarts the period and ends
    /// a run of failures.
    func recordNewValue(secretID: String, now: Timestamp) throws(VSecureError) {
        let statement = try db.prepare("""
            UPDATE rotation SET last_rotated_at = ?2, next_due_at = ?2 + period, failing_since = NULL, last_failure_at = NULL,
                last_failure = NULL, failure_count = 0, claim = NULL, claimed_until = NULL
            WHERE secret_id = ?1
            """)
        try statement.bind(1, secretID).bind(2, now.secondsSinceEpoch).run()
    }

    /// Sets (or with nil removes) a live secret's policy. A new policy counts the period from the
    /// current value's time; a changed one keeps the last rotation time and its failures.
    public func setRotationPolicy(environment: EnvironmentName, name: SecretName, policy: RotationPolicy?,
                                  now: Timestamp) throws(VSecureError) {
        try db.transaction(immediate: true) { () throws(VSecureError) in
            let secret = try summary(environment: environment, name: name)
            guard let policy else {
                let statement = try db.prepare("DELETE FROM rotation WHERE secret_id = ?1")
                try statement.bind(1, secret.id).run()
                return
            }
            let valueTime = try db.prepare("SELECT created_at FROM versions WHERE secret_id = ?1 AND version = ?2")
            valueTime.bind(1, secret.id).bind(2, secret.currentVersion)
            let lastRotated = try valueTime.step() ? valueTime.int64(0) : now.secondsSinceEpoch
            var length: Int64?, charset: String?, argv: String?
            switch policy.source {
            case .generate(let count, let set): length = Int64(count); charset = set.rawValue
            case .command(let arguments): argv = JSONValue.array(arguments.map(JSONValue.string)).serialized(indent: nil)
            case .manual: break
            }
            let statement = try db.prepare("""
                INSERT INTO rotation(secret_id, period, notify_before, source, length, charset, argv, last_rotated_at, next_due_at)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8 + ?2)
                ON CONFLICT(secret_id) DO UPDATE SET period = excluded.period, notify_before = excluded.notify_before,
                    source = excluded.source, length = excluded.length, charset = excluded.charset, argv = excluded.argv,
                    next_due_at = rotation.last_rotated_at + excluded.period
                """)
            statement.bind(1, secret.id).bind(2, policy.period.seconds).bind(3, policy.notifyBefore?.seconds)
                .bind(4, policy.source.kind).bind(5, length).bind(6, charset).bind(7, argv).bind(8, lastRotated)
            try statement.run()
        }
    }

    /// Live secrets with a policy or an expiry, ordered by environment then name.
    public func rotationEntries(environment: EnvironmentName?) throws(VSecureError) -> [RotationEntry] {
        if let environment { try checkEnvironment(environment) }
        let statement = try db.prepare("""
            SELECT s.environment, s.name, s.current_version, s.expires_at, \(Self.rotationColumns)
            FROM secrets s LEFT JOIN rotation r ON r.secret_id = s.id
            WHERE s.deleted_at IS NULL AND (?1 IS NULL OR s.environment = ?1) AND (r.secret_id IS NOT NULL OR s.expires_at IS NOT NULL)
            ORDER BY s.environment, s.name
            """)
        statement.bind(1, environment?.rawValue)
        var entries: [RotationEntry] = []
        while try statement.step() {
            guard let environment = try? EnvironmentName(statement.text(0)), let name = try? SecretName(statement.text(1)) else { continue }
            // One damaged row must not hide every other secret from the schedule and from
            // rotation:status: it is listed as damaged, without a policy.
            var rotation: (RotationPolicy, RotationRecord)?
            var damaged = false
            do { rotation = try Self.decodeRotation(statement, from: 4) } catch { damaged = true }
            var entry = RotationEntry(environment: environment, name: name, currentVersion: statement.int(2),
                                      expiresAt: statement.optionalInt64(3).map(Timestamp.init(secondsSinceEpoch:)),
                                      policy: rotation?.0, record: rotation?.1)
            entry.damaged = damaged
            entries.append(entry)
        }
        return entries
    }

    /// What `produce` gets: the secret, its current version, and (for a command) its value.
    public struct RotationInput {
        public var environment: EnvironmentName
        public var name: SecretName
        public var currentVersion: Int
        public var source: RotationSource
        /// Decrypted only for a command, which gets it on stdin.
        public var currentValue: SecureBytes?
    }

    /// Rotates one secret; see the type's comment for the two transactions. `claimFor` must be
    /// longer than `produce` can take.
    public func rotate(environment: EnvironmentName, name: SecretName, onlyIfDue: Bool, actor: String, now: Timestamp,
                       claimFor: SecretDuration,
                       produce: (RotationInput) throws(RotationFailure) -> SecureBytes) throws(VSecureError) -> RotationResult {
        func result(_ outcome: RotationResult.Outcome) -> RotationResult {
            RotationResult(environment: environment, name: name, outcome: outcome)
        }
        let token = hexString(Sodium.randomBytes(8))
        let claimed = try db.transaction(immediate: true) { () throws(VSecureError) -> Result<(SecretSummary, RotationInput), RotationSkip> in
            let secret = try summary(environment: environment, name: name)
            guard let row = try rotationRow(secretID: secret.id) else {
                throw VSecureError(.usage, "\(name) in \(environment) has no rotation policy",
                                   hint: "set one with `vsecure secrets:update \(name) --env \(environment) --rotation-period 30d --rotation-generate 'length=32,charset=alnum'`")
            }
            if onlyIfDue && !RotationState.isDue(now, record: row.record) {
                return .failure(RotationSkip("not due until \(row.record.nextDueAt.iso8601)"))
            }
            if case .manual = row.policy.source {
                guard onlyIfDue else {
                    throw VSecureError(.usage, "\(name) in \(environment) has a manual rotation policy: vsecure cannot make its next value",
                                       hint: "give it a new value with `vsecure secrets:update \(name) --env \(environment)`; that counts as its rotation")
                }
                return .failure(RotationSkip("manual policy, due since \(row.record.nextDueAt.iso8601): give it a new value with secrets:update"))
            }
            if let until = row.claimedUntil, until > now, row.claim != nil {
                return .failure(RotationSkip("another rotation of it is running (claimed until \(until.iso8601))"))
            }
            let claim = try db.prepare("UPDATE rotation SET claim = ?2, claimed_until = ?3 WHERE secret_id = ?1")
            try claim.bind(1, secret.id).bind(2, token).bind(3, now.adding(claimFor).secondsSinceEpoch).run()
            var input = RotationInput(environment: environment, name: name, currentVersion: secret.currentVersion,
                                      source: row.policy.source, currentValue: nil)
            if case .command = row.policy.source {
                input.currentValue = try openVersion(secretID: secret.id, environment: environment, name: name, version: secret.currentVersion)
            }
            return .success((secret, input))
        }
        let secret: SecretSummary, input: RotationInput
        switch claimed {
        case .failure(let skip): return result(.skipped(reason: skip.reason))
        case .success(let pair): (secret, input) = pair
        }

        let produced = Result { () throws(RotationFailure) -> SecureBytes in try produce(input) }
        switch produced {
        case .failure(let failure):
            return try recordFailure(secret.id, token, failure.reason, now, result)
        case .success(let value):
            if let problem = Self.valueProblem(value.count, name: name) { return try recordFailure(secret.id, token, problem, now, result) }
            return try db.transaction(immediate: true) { () throws(VSecureError) -> RotationResult in
                guard let current = try? summary(environment: environment, name: name), current.id == secret.id else {
                    return result(.failed(reason: "\(name) in \(environment) was deleted while it was being rotated; the new value was discarded"))
                }
                guard let row = try rotationRow(secretID: secret.id), row.claim == token, current.currentVersion == secret.currentVersion else {
                    return result(.failed(reason: "\(name) in \(environment) changed while it was being rotated (now version \(current.currentVersion)); the new value was discarded"))
                }
                let version = try appendVersion(secretID: current.id, environment: environment, name: name, after: current.currentVersion,
                                                attributes: current.attributes, createdAt: current.createdAt, value: value,
                                                action: .rotate, sourceVersion: nil, actor: actor, now: now)
                return result(.rotated(from: current.currentVersion, to: version))
            }
        }
    }

    private func recordFailure(_ secretID: String, _ token: String, _ reason: String, _ now: Timestamp,
                               _ result: (RotationResult.Outcome) -> RotationResult) throws(VSecureError) -> RotationResult {
        try db.transaction(immediate: true) { () throws(VSecureError) in
            let statement = try db.prepare("""
                UPDATE rotation SET failing_since = coalesce(failing_since, ?3), last_failure_at = ?3, last_failure = ?4,
                    failure_count = failure_count + 1, claim = NULL, claimed_until = NULL
                WHERE secret_id = ?1 AND claim = ?2
                """)
            try statement.bind(1, secretID).bind(2, token).bind(3, now.secondsSinceEpoch).bind(4, reason).run()
        }
        return result(.failed(reason: reason))
    }

    static func valueProblem(_ length: Int, name: SecretName) -> String? {
        if length == 0 { return "the new value of \(name) is empty" }
        if length > SecretValueRule.maximumBytes { return "the new value of \(name) is longer than \(SecretValueRule.maximumBytes) bytes (120 KiB)" }
        return nil
    }
}

struct RotationSkip: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}
