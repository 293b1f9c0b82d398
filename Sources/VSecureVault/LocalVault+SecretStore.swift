import VSecureCore
import VSecureCrypto
import VSecureStore

/// The local vault as a `SecretStore`: a thin adapter over `LocalVault`'s own methods. It holds
/// what a store's caller does not pass but the vault records: who acts (version records name
/// them; a server names its API key instead) and the clock.
public final class LocalSecretStore: SecretStore {
    public let vault: LocalVault
    public let actor: String
    private let clock: () -> Timestamp
    /// The vault's audit log: every read of a value and every change is recorded there, right
    /// after the read or the commit (two files, so not one transaction: a crash in between loses
    /// the entry; the version record still names who changed what and when).
    public let audit: AuditLog?
    /// What happens when an entry cannot be written. nil: the operation fails with the error
    /// (a read then returns no value). Set: it is told, and the operation goes on. The CLI sets
    /// it to print a warning: a local vault's log is a record, not a barrier (whoever holds the
    /// key can read the file directly), and a full disk must not stop reads.
    public var onAuditFailure: ((VSecureError) -> Void)?
    /// Told what a caller should know about an operation that succeeded (the CLI prints it as a
    /// warning): today, a purge whose old pages may remain on disk for a while.
    public var onWarning: ((String) -> Void)?
    /// Entries of the operation in progress; written when the outermost one succeeds, so a
    /// create-with-policy that fails halfway records nothing.
    private var pendingAudit: [AuditEvent] = []
    private var auditDepth = 0

    public init(vault: LocalVault, actor: String, audit: AuditLog?, clock: @escaping () -> Timestamp) {
        self.vault = vault
        self.actor = actor
        self.audit = audit
        self.clock = clock
    }

    /// Runs `body`; on success, queues `events(result)` and, once the outermost audited
    /// operation returns, writes the queue. A failure discards the queue.
    func audited<T>(_ body: () throws(VSecureError) -> T, events: (T) -> [AuditEvent]) throws(VSecureError) -> T {
        auditDepth += 1
        let result: T
        do {
            result = try body()
        } catch {
            auditDepth -= 1
            if auditDepth == 0 { pendingAudit = [] }
            throw error
        }
        auditDepth -= 1
        pendingAudit += events(result)
        if auditDepth == 0 { try flushAudit() }
        return result
    }

    private func flushAudit() throws(VSecureError) {
        let events = pendingAudit
        pendingAudit = []
        guard !events.isEmpty else { return }
        try write(events)
    }

    /// Appends `events`, or reports the failure to `onAuditFailure` when one is set.
    func write(_ events: [AuditEvent]) throws(VSecureError) {
        guard let audit else { return }
        do {
            try audit.append(events)
        } catch {
            guard let onAuditFailure else { throw error }
            onAuditFailure(error)
        }
    }

    func event(_ action: AuditEvent.Action, _ environment: EnvironmentName, _ name: SecretName, version: Int?,
               outcome: AuditEvent.Outcome = .success, items: [AuditEvent.Item] = [], details: [(String, String)] = []) -> AuditEvent {
        AuditEvent(time: clock(), actor: AuditEvent.Actor(user: actor), resource: .secrets, action: action, outcome: outcome,
                   environment: environment.rawValue, name: name.rawValue, version: version, items: items, details: details)
    }

    public var label: String { "vault \(vault.path)" }

    /// The store's clock (a test can inject one).
    func now() -> Timestamp { clock() }

    public func environments() throws(VSecureError) -> StoreEnvironments {
        StoreEnvironments(names: vault.environments, defaultEnvironment: vault.defaultEnvironment)
    }

    private func resolve(_ environment: EnvironmentName?) throws(VSecureError) -> EnvironmentName {
        let chosen = environment ?? vault.defaultEnvironment
        try vault.checkEnvironment(chosen)
        return chosen
    }

    public func create(_ secret: NewSecret) throws(VSecureError) -> SecretSummary {
        let environment = try chooseEnvironment(explicit: secret.environment, tags: secret.attributes.tags,
                                                configured: vault.environments, default: vault.defaultEnvironment)
        return try audited({ () throws(VSecureError) in
            try secret.value.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
                try vault.create(environment: environment, name: secret.name, value: raw, attributes: secret.attributes,
                                 actor: actor, now: clock())
            }
        }, events: { [event(.created, $0.environment, $0.name, version: $0.currentVersion)] })
    }

    public func update(environment: EnvironmentName?, name: SecretName, value: SecureBytes?, change: AttributeChange,
                       ifVersion: Int?) throws(VSecureError) -> SecretUpdate {
        let environment = try resolve(environment)
        return try audited({ () throws(VSecureError) in
            let result = try vault.update(environment: environment, name: name, lockedValue: value, change: change,
                                          ifVersion: ifVersion, actor: actor, now: clock())
            return SecretUpdate(secret: result.secret, previousVersion: result.previousVersion, newVersion: result.newVersion)
        }, events: { [event(.updated, environment, name, version: $0.newVersion ?? $0.previousVersion)] })
    }

    public func summary(environment: EnvironmentName?, name: SecretName) throws(VSecureError) -> SecretSummary {
        try vault.summary(environment: try resolve(environment), name: name)
    }

    public func get(environment: EnvironmentName?, name: SecretName, version: Int?, allowExpired: Bool) throws(VSecureError) -> SecretRead {
        let environment = try resolve(environment)
        let (secret, info, value) = try vault.get(environment: environment, name: name, version: version)
        if !allowExpired, let expiresAt = secret.attributes.expiresAt, expiresAt <= clock() {
            try write([event(.accessed, environment, name, version: info.version, outcome: .failure, details: [("reason", "expired")])])
            throw VSecureError(.expired, "\(name) in \(environment) expired at \(expiresAt.iso8601)")
        }
        return try audited({ () throws(VSecureError) in SecretRead(secret: secret, version: info.version, value: value) },
                           events: { [event(.accessed, environment, name, version: $0.version)] })
    }

    public func list(_ query: SecretQuery) throws(VSecureError) -> [SecretSummary] {
        var listQuery = LocalVault.ListQuery(environment: query.environment)
        listQuery.tags = query.tags
        listQuery.search = query.search
        listQuery.includeExpired = query.includeExpired
        return try vault.list(listQuery, now: clock())
    }

    public func versions(environment: EnvironmentName?, name: SecretName) throws(VSecureError) -> SecretHistory {
        let (secret, versions) = try vault.versions(environment: try resolve(environment), name: name)
        return SecretHistory(secret: secret, versions: versions)
    }

    public func rollback(environment: EnvironmentName?, name: SecretName, to version: Int?) throws(VSecureError) -> SecretUpdate {
        let environment = try resolve(environment)
        return try audited({ () throws(VSecureError) in
            let result = try vault.rollback(environment: environment, name: name, to: version, actor: actor, now: clock())
            return SecretUpdate(secret: result.secret, previousVersion: result.previousVersion, newVersion: result.newVersion)
        }, events: { [event(.rolledBack, environment, name, version: $0.newVersion, details: version.map { [("to", String($0))] } ?? [])] })
    }

    @discardableResult
    public func delete(environment: EnvironmentName?, name: SecretName, purge: Bool) throws(VSecureError) -> EnvironmentName {
        let environment = try resolve(environment)
        let deleted = try audited({ () throws(VSecureError) in
            try vault.delete(environment: environment, name: name, purge: purge, now: clock())
            return environment
        }, events: { [event(.deleted, $0, name, version: nil, details: purge ? [("purge", "true")] : [])] })
        if purge && vault.purgedPagesMayRemain { onWarning?(Self.purgeResidueWarning(name, environment)) }
        return deleted
    }

    /// Names the secret, never a value.
    public static func purgeResidueWarning(_ name: SecretName, _ environment: EnvironmentName) -> String {
        "\(name) in \(environment) is purged, but another connection was still using the vault and kept SQLite from "
            + "truncating its write-ahead log: old encrypted copies of its versions remain in the vault's files until "
            + "the log is copied back, which the last read-write connection to close the vault does "
            + "(once no other program has it open, the next `vsecure` command will)"
    }

    public func upsert(environment: EnvironmentName?, entries: [UpsertEntry], addTags: [Tag]) throws(VSecureError) -> UpsertResult {
        let environment = try chooseEnvironment(explicit: environment, tags: addTags, configured: vault.environments,
                                                default: vault.defaultEnvironment)
        for entry in entries { try SecretValueRule.check(length: entry.count, name: entry.name) }
        let now = clock()
        return try audited({ () throws(VSecureError) -> UpsertResult in
            var result = UpsertResult(environment: environment, created: [], updated: [], unchanged: [])
            try vault.atomically { () throws(VSecureError) in
                for entry in entries {
                    try entry.withValueBytes { (value: UnsafeRawBufferPointer) throws(VSecureError) in
                        if let current = try vault.currentFingerprint(environment: environment, name: entry.name) {
                            var change = AttributeChange()
                            change.addTags = addTags
                            let same = current == vault.fingerprint(of: value)
                            _ = try vault.update(environment: environment, name: entry.name, value: same ? nil : value, change: change,
                                                 ifVersion: nil, actor: actor, now: now, action: .import)
                            if same { result.unchanged.append(entry.name) } else { result.updated.append(entry.name) }
                        } else {
                            try vault.create(environment: environment, name: entry.name, value: value,
                                             attributes: SecretAttributes(tags: addTags), actor: actor, now: now, action: .import)
                            result.created.append(entry.name)
                        }
                    }
                }
            }
            return result
        }, events: { result in
            // One entry per import, listing what it created and changed.
            let items = (result.created + result.updated).map { AuditEvent.Item(name: $0.rawValue, version: nil) }
            guard !items.isEmpty else { return [] }
            return [AuditEvent(time: now, actor: AuditEvent.Actor(user: actor), resource: .secrets, action: .updated,
                               environment: environment.rawValue, items: items,
                               details: [("via", "import"), ("created", String(result.created.count)), ("updated", String(result.updated.count))])]
        })
    }

    public func batchGet(environment: EnvironmentName?, names: [SecretName], allowExpired: Bool) throws(VSecureError) -> BatchValues {
        let environment = try resolve(environment)
        let now = clock()
        let sealed = try vault.fetchSealed(environment: environment, names: names, tagSelections: [])
        var byName: [SecretName: SealedSecret] = [:]
        for secret in sealed { byName[secret.name] = secret }
        var result = BatchValues(environment: environment, items: [], missing: [], expired: [])
        var seen = Set<SecretName>()
        for name in names where seen.insert(name).inserted {
            guard let secret = byName[name] else {
                result.missing.append(name)
                continue
            }
            if !allowExpired, let expiresAt = secret.expiresAt, expiresAt <= now {
                result.expired.append(name)
                continue
            }
            let value = SecureBytes(count: secret.valueLength)
            try value.withUnsafeMutableBytes { (raw: UnsafeMutableRawBufferPointer) throws(VSecureError) in
                try vault.open(secret, environment: environment, into: raw)
            }
            result.items.append(BatchValues.Item(name: name, version: secret.version, expiresAt: secret.expiresAt, value: value))
        }
        guard !result.items.isEmpty else { return result }
        return try audited({ () throws(VSecureError) in result }, events: { result in
            [AuditEvent(time: now, actor: AuditEvent.Actor(user: actor), resource: .secrets, action: .accessed,
                        environment: environment.rawValue,
                        items: result.items.map { AuditEvent.Item(name: $0.name.rawValue, version: $0.version) })]
        })
    }
}
