#if canImport(Glibc)
import Glibc
#endif
import VSecureCore
import VSecureCrypto

/// The secret lifecycle over the vault: every write is one IMMEDIATE transaction, every value
/// change makes a new immutable version, and history is never rewritten (except `purge`).
extension LocalVault {
    struct Row {
        var id: String
        var currentVersion: Int
        var attributes: SecretAttributes
        var createdAt: Timestamp
        var updatedAt: Timestamp
        var deletedAt: Timestamp?
    }

    public struct UpdateResult: Sendable {
        public var secret: SecretSummary
        public var previousVersion: Int
        /// nil when only attributes changed.
        public var newVersion: Int?
    }

    public func checkEnvironment(_ environment: EnvironmentName) throws(VSecureError) {
        guard environments.contains(environment) else { throw unknownEnvironment(environment, configured: environments) }
    }

    /// Callers check absolute times against their own clock; this is the last guard. An expiry
    /// up to a minute old is let through: a relative expiry (`--expires-in 1s`) was computed
    /// from a clock read a moment before this one, and on a busy machine that moment can pass a
    /// second boundary or two.
    private func checkExpiry(_ expiresAt: Timestamp?, now: Timestamp) throws(VSecureError) {
        if let expiresAt, expiresAt.secondsSinceEpoch + 60 <= now.secondsSinceEpoch {
            throw .usage("expiry \(expiresAt.iso8601) is in the past", hint: "give a future time, or a duration with --expires-in")
        }
    }

    private func row(_ environment: EnvironmentName, _ name: SecretName) throws(VSecureError) -> Row? {
        let statement = try db.prepare("""
            SELECT id, current_version, tags, metadata, expires_at, description, created_at, updated_at, deleted_at
            FROM secrets WHERE environment = ?1 AND name = ?2
            """)
        statement.bind(1, environment.rawValue).bind(2, name.rawValue)
        guard try statement.step() else { return nil }
        return Row(id: statement.text(0), currentVersion: statement.int(1),
                   attributes: SecretAttributes(tags: VaultFormat.decodeTags(statement.text(2)),
                                                metadata: VaultFormat.decodeMetadata(statement.text(3)),
                                                expiresAt: statement.optionalInt64(4).map(Timestamp.init(secondsSinceEpoch:)),
                                                description: statement.optionalText(5)),
                   createdAt: Timestamp(secondsSinceEpoch: statement.int64(6)),
                   updatedAt: Timestamp(secondsSinceEpoch: statement.int64(7)),
                   deletedAt: statement.optionalInt64(8).map(Timestamp.init(secondsSinceEpoch:)))
    }

    private func liveRow(_ environment: EnvironmentName, _ name: SecretName) throws(VSecureError) -> Row {
        try checkEnvironment(environment)
        guard let row = try row(environment, name), row.deletedAt == nil else {
            throw notFound(environment, name)
        }
        return row
    }

    func notFound(_ environment: EnvironmentName, _ name: SecretName) -> VSecureError {
        var error = VSecureError(.notFound, "no secret \(name) in \(environment)")
        let elsewhere = (try? db.prepare("SELECT environment FROM secrets WHERE name = ?1 AND deleted_at IS NULL ORDER BY environment"))
            .flatMap { statement -> [String]? in
                statement.bind(1, name.rawValue)
                var found: [String] = []
                while (try? statement.step()) == true { found.append(statement.text(0)) }
                return found
            } ?? []
        if let other = elsewhere.first {
            error.hints.append("\(name) exists in \(elsewhere.joined(separator: ", ")); pass --env \(other)")
        } else {
            error.hints.append("`vsecure secrets:list --env \(environment)` shows the secrets of that environment")
        }
        return error
    }

    private func summary(_ environment: EnvironmentName, _ name: SecretName, _ row: Row) -> SecretSummary {
        SecretSummary(id: row.id, environment: environment, name: name, currentVersion: row.currentVersion,
                      attributes: row.attributes, createdAt: row.createdAt, updatedAt: row.updatedAt)
    }

    func insertVersion(secretID: String, environment: EnvironmentName, name: SecretName, version: Int,
                               value: UnsafeRawBufferPointer, action: VersionAction, actor: String, sourceVersion: Int?,
                               attributes: SecretAttributes, now: Timestamp) throws(VSecureError) {
        let ad = VaultFormat.valueAssociatedData(vaultID: vaultID, environment: environment.rawValue, name: name.rawValue, version: version)
        let sealed = AEAD.seal(value, associatedData: ad, key: dataKey)
        let statement = try db.prepare("""
            INSERT INTO versions(secret_id, version, sealed, value_length, fingerprint, action, actor, source_version,
                                 created_at, tags, metadata, expires_at, description)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
            """)
        statement.bind(1, secretID).bind(2, version).bind(3, blob: sealed).bind(4, value.count).bind(5, fingerprint(of: value))
            .bind(6, action.rawValue).bind(7, actor).bind(8, sourceVersion.map(Int64.init))
            .bind(9, now.secondsSinceEpoch).bind(10, VaultFormat.encodeTags(attributes.tags))
            .bind(11, VaultFormat.encodeMetadata(attributes.metadata)).bind(12, attributes.expiresAt?.secondsSinceEpoch)
            .bind(13, attributes.description)
        try statement.run()
        try recordNewValue(secretID: secretID, now: now)
    }

    /// A new version of an existing secret holding `value`, with the secret's attributes as they
    /// are, and the secret moved to it (rollback and rotation). Returns the new version.
    func appendVersion(secretID: String, environment: EnvironmentName, name: SecretName, after currentVersion: Int,
                       attributes: SecretAttributes, createdAt: Timestamp, value: SecureBytes, action: VersionAction,
                       sourceVersion: Int?, actor: String, now: Timestamp) throws(VSecureError) -> Int {
        let version = currentVersion + 1
        try value.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
            try insertVersion(secretID: secretID, environment: environment, name: name, version: version, value: raw,
                              action: action, actor: actor, sourceVersion: sourceVersion, attributes: attributes, now: now)
        }
        try writeSecretRow(id: secretID, environment: environment, name: name, currentVersion: version,
                           attributes: attributes, createdAt: createdAt, now: now)
        return version
    }

    func writeSecretRow(id: String, environment: EnvironmentName, name: SecretName, currentVersion: Int,
                                attributes: SecretAttributes, createdAt: Timestamp, now: Timestamp) throws(VSecureError) {
        let statement = try db.prepare("""
            INSERT INTO secrets(id, environment, name, current_version, tags, metadata, expires_at, description,
                                created_at, updated_at, deleted_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL)
            ON CONFLICT(id) DO UPDATE SET current_version = excluded.current_version, tags = excluded.tags,
                metadata = excluded.metadata, expires_at = excluded.expires_at, description = excluded.description,
                updated_at = excluded.updated_at, deleted_at = NULL
            """)
        statement.bind(1, id).bind(2, environment.rawValue).bind(3, name.rawValue).bind(4, currentVersion)
            .bind(5, VaultFormat.encodeTags(attributes.tags)).bind(6, VaultFormat.encodeMetadata(attributes.metadata))
            .bind(7, attributes.expiresAt?.secondsSinceEpoch).bind(8, attributes.description)
            .bind(9, createdAt.secondsSinceEpoch).bind(10, now.secondsSinceEpoch)
        try statement.run()
        let clear = try db.prepare("DELETE FROM secret_tags WHERE secret_id = ?1")
        try clear.bind(1, id).run()
        let insert = try db.prepare("INSERT INTO secret_tags(tag, secret_id) VALUES (?1, ?2)")
        for tag in attributes.tags {
            insert.reset()
            try insert.bind(1, tag.rawValue).bind(2, id).run()
        }
    }

    // MARK: - Writes

    /// Creates a secret at version 1. An existing secret is a conflict; a deleted one is
    /// revived with a new version after its old ones.
    @discardableResult
    public func create(environment: EnvironmentName, name: SecretName, value: UnsafeRawBufferPointer,
                       attributes: SecretAttributes, actor: String, now: Timestamp,
                       action: VersionAction = .create) throws(VSecureError) -> SecretSummary {
        try checkEnvironment(environment)
        try SecretValueRule.check(length: value.count, name: name)
        try checkExpiry(attributes.expiresAt, now: now)
        return try db.transaction(immediate: true) { () throws(VSecureError) -> SecretSummary in
            let existing = try row(environment, name)
            if let existing, existing.deletedAt == nil {
                throw VSecureError(.conflict, "secret \(name) already exists in \(environment) (version \(existing.currentVersion))",
                                   hint: "use `vsecure secrets:update \(name) --env \(environment)` to add a version")
            }
            let id = existing?.id ?? Self.newSecretID()
            let version = (existing?.currentVersion ?? 0) + 1
            let createdAt = existing?.createdAt ?? now
            try writeSecretRow(id: id, environment: environment, name: name, currentVersion: version,
                               attributes: attributes, createdAt: createdAt, now: now)
            try insertVersion(secretID: id, environment: environment, name: name, version: version, value: value,
                              action: action, actor: actor, sourceVersion: nil, attributes: attributes, now: now)
            return SecretSummary(id: id, environment: environment, name: name, currentVersion: version,
                                 attributes: attributes, createdAt: createdAt, updatedAt: now)
        }
    }

    /// A new value makes a new version; attribute changes alone change the secret in place.
    /// With `ifVersion`, nothing changes unless the current version is that one.
    public func update(environment: EnvironmentName, name: SecretName, value: UnsafeRawBufferPointer?,
                       change: AttributeChange, ifVersion: Int?, actor: String, now: Timestamp,
                       action: VersionAction = .update) throws(VSecureError) -> UpdateResult {
        if let value { try SecretValueRule.check(length: value.count, name: name) }
        if let expiry = change.expiresAt { try checkExpiry(expiry, now: now) }
        return try db.transaction(immediate: true) { () throws(VSecureError) -> UpdateResult in
            let current = try liveRow(environment, name)
            if let ifVersion, ifVersion != current.currentVersion {
                throw VSecureError(.conflict, "\(name) in \(environment) is at version \(current.currentVersion), not \(ifVersion); nothing was changed",
                                   hint: "read the current version with `vsecure secrets:get \(name) --env \(environment) --output json` and retry")
            }
            let attributes = change.applied(to: current.attributes)
            var version = current.currentVersion
            if let value {
                version += 1
                try insertVersion(secretID: current.id, environment: environment, name: name, version: version, value: value,
                                  action: action, actor: actor, sourceVersion: nil, attributes: attributes, now: now)
            }
            try writeSecretRow(id: current.id, environment: environment, name: name, currentVersion: version,
                               attributes: attributes, createdAt: current.createdAt, now: now)
            return UpdateResult(secret: SecretSummary(id: current.id, environment: environment, name: name, currentVersion: version,
                                                      attributes: attributes, createdAt: current.createdAt, updatedAt: now),
                                previousVersion: current.currentVersion, newVersion: value == nil ? nil : version)
        }
    }

    /// Makes a new version holding an older version's value (default: the previous one).
    public func rollback(environment: EnvironmentName, name: SecretName, to target: Int?, actor: String,
                         now: Timestamp) throws(VSecureError) -> UpdateResult {
        try db.transaction(immediate: true) { () throws(VSecureError) -> UpdateResult in
            let current = try liveRow(environment, name)
            let targetVersion = target ?? current.currentVersion - 1
            guard targetVersion >= 1 else {
                throw VSecureError(.notFound, "\(name) in \(environment) has only version \(current.currentVersion); there is nothing to roll back to")
            }
            guard targetVersion != current.currentVersion else {
                throw VSecureError(.conflict, "\(name) in \(environment) is already at version \(targetVersion)")
            }
            let value = try openVersion(secretID: current.id, environment: environment, name: name, version: targetVersion)
            let newVersion = try appendVersion(secretID: current.id, environment: environment, name: name, after: current.currentVersion,
                                               attributes: current.attributes, createdAt: current.createdAt, value: value,
                                               action: .rollback, sourceVersion: targetVersion, actor: actor, now: now)
            return UpdateResult(secret: SecretSummary(id: current.id, environment: environment, name: name, currentVersion: newVersion,
                                                      attributes: current.attributes, createdAt: current.createdAt, updatedAt: now),
                                previousVersion: current.currentVersion, newVersion: newVersion)
        }
    }

    /// Soft delete: the secret is no longer served or listed, its versions stay. `purge`
    /// destroys every version (SQLite's secure_delete overwrites the freed pages, and the WAL is
    /// checkpointed and truncated). When another connection's read keeps the checkpoint from
    /// finishing, the purge still stands, and `purgedPagesMayRemain` says so.
    public func delete(environment: EnvironmentName, name: SecretName, purge: Bool, now: Timestamp) throws(VSecureError) {
        try checkEnvironment(environment)
        try db.transaction(immediate: true) { () throws(VSecureError) in
            guard let current = try row(environment, name) else { throw notFound(environment, name) }
            if purge {
                let statement = try db.prepare("DELETE FROM secrets WHERE id = ?1")
                try statement.bind(1, current.id).run()
            } else {
                guard current.deletedAt == nil else {
                    throw VSecureError(.notFound, "\(name) in \(environment) is already deleted",
                                       hint: "`vsecure secrets:delete \(name) --env \(environment) --purge` destroys its versions for good")
                }
                let statement = try db.prepare("UPDATE secrets SET deleted_at = ?2, updated_at = ?2 WHERE id = ?1")
                try statement.bind(1, current.id).bind(2, now.secondsSinceEpoch).run()
            }
        }
        if purge { try db.checkpointAndTruncateWAL() }
    }

    // MARK: - Reads

    /// The value of a version (default: the current one), in locked memory.
    public func get(environment: EnvironmentName, name: SecretName, version: Int?) throws(VSecureError) -> (SecretSummary, VersionSummary, SecureBytes) {
        try db.transaction(immediate: false) { () throws(VSecureError) -> (SecretSummary, VersionSummary, SecureBytes) in
            let current = try liveRow(environment, name)
            let wanted = version ?? current.currentVersion
            guard let info = try versionRows(secretID: current.id, only: wanted).first else {
                throw VSecureError(.notFound, "\(name) in \(environment) has no version \(wanted) (current: \(current.currentVersion))",
                                   hint: "`vsecure secrets:versions \(name) --env \(environment)` lists its versions")
            }
            let value = try openVersion(secretID: current.id, environment: environment, name: name, version: wanted)
            return (summary(environment, name, current), info, value)
        }
    }

    public func summary(environment: EnvironmentName, name: SecretName) throws(VSecureError) -> SecretSummary {
        summary(environment, name, try liveRow(environment, name))
    }

    public func versions(environment: EnvironmentName, name: SecretName) throws(VSecureError) -> (SecretSummary, [VersionSummary]) {
        try db.transaction(immediate: false) { () throws(VSecureError) -> (SecretSummary, [VersionSummary]) in
            let current = try liveRow(environment, name)
            return (summary(environment, name, current), try versionRows(secretID: current.id, only: nil))
        }
    }

    private func versionRows(secretID: String, only: Int?) throws(VSecureError) -> [VersionSummary] {
        let statement = try db.prepare("""
            SELECT version, action, actor, created_at, value_length, fingerprint, source_version, tags, metadata, expires_at, description
            FROM versions WHERE secret_id = ?1 AND (?2 IS NULL OR version = ?2) ORDER BY version
            """)
        statement.bind(1, secretID).bind(2, only.map(Int64.init))
        var result: [VersionSummary] = []
        while try statement.step() {
            result.append(VersionSummary(
                version: statement.int(0), action: VersionAction(rawValue: statement.text(1)) ?? .update, actor: statement.text(2),
                createdAt: Timestamp(secondsSinceEpoch: statement.int64(3)), valueLength: statement.int(4),
                fingerprint: statement.text(5), sourceVersion: statement.optionalInt64(6).map { Int($0) },
                attributes: SecretAttributes(tags: VaultFormat.decodeTags(statement.text(7)),
                                             metadata: VaultFormat.decodeMetadata(statement.text(8)),
                                             expiresAt: statement.optionalInt64(9).map(Timestamp.init(secondsSinceEpoch:)),
                                             description: statement.optionalText(10))))
        }
        return result
    }

    func openVersion(secretID: String, environment: EnvironmentName, name: SecretName, version: Int) throws(VSecureError) -> SecureBytes {
        let statement = try db.prepare("SELECT sealed FROM versions WHERE secret_id = ?1 AND version = ?2")
        statement.bind(1, secretID).bind(2, version)
        guard try statement.step() else { throw VSecureError(.notFound, "\(name) in \(environment) has no version \(version)") }
        let ad = VaultFormat.valueAssociatedData(vaultID: vaultID, environment: environment.rawValue, name: name.rawValue, version: version)
        do {
            return try AEAD.open(statement.blob(0), associatedData: ad, key: dataKey)
        } catch {
            throw tampered(environment, name, version)
        }
    }

    func tampered(_ environment: EnvironmentName, _ name: SecretName, _ version: Int) -> VSecureError {
        VSecureError(.integrity, "version \(version) of \(name) in \(environment) failed authentication: the vault was altered or damaged",
                     hint: "restore the vault from a backup; other secrets are unaffected")
    }

    public struct ListQuery: Sendable {
        public var environment: EnvironmentName?
        public var tags: [Tag] = []
        public var search: String?
        public var includeExpired = false
        public init(environment: EnvironmentName? = nil) { self.environment = environment }
    }

    /// Live secrets matching every criterion, ordered by environment and name. Never values.
    public func list(_ query: ListQuery, now: Timestamp) throws(VSecureError) -> [SecretSummary] {
        if let environment = query.environment { try checkEnvironment(environment) }
        var sql = """
            SELECT id, environment, name, current_version, tags, metadata, expires_at, description, created_at, updated_at
            FROM secrets WHERE deleted_at IS NULL AND (?1 IS NULL OR environment = ?1)
              AND (?2 IS NULL OR instr(lower(name), lower(?2)) > 0 OR instr(lower(ifnull(description, '')), lower(?2)) > 0)
              AND (?3 = 1 OR expires_at IS NULL OR expires_at > ?4)
            """
        for index in query.tags.indices {
            sql += " AND id IN (SELECT secret_id FROM secret_tags WHERE tag = ?\(5 + index))"
        }
        sql += " ORDER BY environment, name"
        let statement = try db.prepare(sql)
        statement.bind(1, query.environment?.rawValue).bind(2, query.search).bind(3, query.includeExpired ? 1 : 0).bind(4, now.secondsSinceEpoch)
        for (index, tag) in query.tags.enumerated() { statement.bind(Int32(5 + index), tag.rawValue) }
        var result: [SecretSummary] = []
        while try statement.step() {
            guard let environment = try? EnvironmentName(statement.text(1)), let name = try? SecretName(statement.text(2)) else { continue }
            result.append(SecretSummary(
                id: statement.text(0), environment: environment, name: name, currentVersion: statement.int(3),
                attributes: SecretAttributes(tags: VaultFormat.decodeTags(statement.text(4)),
                                             metadata: VaultFormat.decodeMetadata(statement.text(5)),
                                             expiresAt: statement.optionalInt64(6).map(Timestamp.init(secondsSinceEpoch:)),
                                             description: statement.optionalText(7)),
                createdAt: Timestamp(secondsSinceEpoch: statement.int64(8)), updatedAt: Timestamp(secondsSinceEpoch: statement.int64(9))))
        }
        return result
    }
}

extension LocalVault {
    /// Runs `body` as one transaction: every operation inside commits, or none does.
    public func atomically<T>(_ body: () throws(VSecureError) -> T) throws(VSecureError) -> T {
        try db.batch(body)
    }

    /// The keyed fingerprint `secrets:versions` shows, for comparing a candidate value with a
    /// stored version without decrypting it.
    public func fingerprint(of value: UnsafeRawBufferPointer) -> String {
        hexString(KeyDerivation.keyedHash(value, key: fingerprintKey, length: 8))
    }
}

extension LocalVault {
    /// The fingerprint of a live secret's current value, or nil when there is no such secret.
    public func currentFingerprint(environment: EnvironmentName, name: SecretName) throws(VSecureError) -> String? {
        let statement = try db.prepare("""
            SELECT v.fingerprint FROM secrets s JOIN versions v ON v.secret_id = s.id AND v.version = s.current_version
            WHERE s.environment = ?1 AND s.name = ?2 AND s.deleted_at IS NULL
            """)
        statement.bind(1, environment.rawValue).bind(2, name.rawValue)
        return try statement.step() ? statement.text(0) : nil
    }
}

extension LocalVault {
    /// `update` with the new value (if any) in locked memory, as the CLI and the server hold it.
    public func update(environment: EnvironmentName, name: SecretName, lockedValue: SecureBytes?, change: AttributeChange,
                       ifVersion: Int?, actor: String, now: Timestamp) throws(VSecureError) -> UpdateResult {
        guard let lockedValue else {
            return try update(environment: environment, name: name, value: nil, change: change, ifVersion: ifVersion, actor: actor, now: now)
        }
        return try lockedValue.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
            try update(environment: environment, name: name, value: raw, change: change, ifVersion: ifVersion, actor: actor, now: now)
        }
    }
}

extension LocalVault {
    /// A new secret's id: `sec_` and 24 hex digits, the creation time in milliseconds (48 bits)
    /// and then 48 random bits. Ids sort by creation time, and a secret's version rows are keyed
    /// by its id, so the rows of secrets created together (one import, one service's set) share
    /// pages: a launch that reads them from a large vault touches a few pages instead of one per
    /// secret. The time is not secret (`createdAt` is stored beside it in the clear).
    static func newSecretID() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let milliseconds = UInt64(max(0, now.tv_sec)) &* 1000 &+ UInt64(max(0, now.tv_nsec) / 1_000_000)
        let time = (0..<6).map { UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - $0))) }
        return "sec_" + hexString(time + Sodium.randomBytes(6))
    }
}
