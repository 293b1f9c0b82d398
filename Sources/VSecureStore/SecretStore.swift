import VSecureCore
import VSecureCrypto

/// The secret lifecycle as the `vsecure secrets:*` commands use it, over any store: the local
/// vault (`LocalSecretStore` in VSecureVault) or a vsecure server (`RemoteStore` in
/// VSecureRemote). Value types go in and out; values travel only as `SecureBytes`.
///
/// **Synchronous, not async as DESIGN.md sketches.** Its callers (the CLI, the launcher) are
/// synchronous programs, and libcurl's easy API blocks; an async protocol would force a
/// runtime and a blocking bridge into both for nothing. An async facade (the SDK) can wrap a
/// store on a thread of its own.
///
/// **Environments.** Every `environment` parameter is optional: nil means the store's default
/// environment (for `create` and `upsert`: a tag that names an environment, else the default, as
/// `chooseEnvironment` decides). Results say which environment was used.
///
/// **Errors** carry the same `ExitStatus` and, where the store can, the same message whichever
/// store answered: a missing secret is `.notFound`, an existing one or a failed compare-and-set
/// `.conflict`, an expired read `.expired`, an unknown environment `.usage`. Messages name
/// secrets and environments, never values.
public protocol SecretStore: AnyObject {
    /// What the store is, for messages: `vault /path/vault.db` or `server https://host:8443`.
    var label: String { get }

    /// The environments the store accepts and its default.
    func environments() throws(VSecureError) -> StoreEnvironments

    /// The environment used when none is named (a store may know it more cheaply than the list).
    func defaultEnvironment() throws(VSecureError) -> EnvironmentName

    /// Creates version 1 (or revives a deleted secret with a new version). An existing live
    /// secret is a conflict.
    func create(_ secret: NewSecret) throws(VSecureError) -> SecretSummary

    /// A value makes a new version; attribute changes alone change the secret in place. With
    /// `ifVersion`, nothing changes unless the current version is that one (`.conflict`).
    func update(environment: EnvironmentName?, name: SecretName, value: SecureBytes?, change: AttributeChange,
                ifVersion: Int?) throws(VSecureError) -> SecretUpdate

    /// A live secret's attributes, without its value.
    func summary(environment: EnvironmentName?, name: SecretName) throws(VSecureError) -> SecretSummary

    /// A version's value (default: the current one). Unless `allowExpired`, an expired secret is
    /// refused with `.expired`.
    func get(environment: EnvironmentName?, name: SecretName, version: Int?, allowExpired: Bool) throws(VSecureError) -> SecretRead

    /// Live secrets matching every criterion, ordered by environment then name. Never values.
    func list(_ query: SecretQuery) throws(VSecureError) -> [SecretSummary]

    /// Every version, oldest first, and the secret as it is now.
    func versions(environment: EnvironmentName?, name: SecretName) throws(VSecureError) -> SecretHistory

    /// A new version holding an older version's value (default: the previous one).
    func rollback(environment: EnvironmentName?, name: SecretName, to version: Int?) throws(VSecureError) -> SecretUpdate

    /// Soft delete (no longer served or listed), or with `purge` every version destroyed.
    /// Returns the environment it acted in.
    @discardableResult
    func delete(environment: EnvironmentName?, name: SecretName, purge: Bool) throws(VSecureError) -> EnvironmentName

    /// Creates or updates every entry, all or nothing. An existing secret whose value is
    /// unchanged gets no new version. `addTags` are added to every entry (created ones get
    /// exactly these).
    func upsert(environment: EnvironmentName?, entries: [UpsertEntry], addTags: [Tag]) throws(VSecureError) -> UpsertResult

    /// The current values of `names` in one read; names that do not exist are listed as
    /// missing, expired ones as expired unless `allowExpired`.
    func batchGet(environment: EnvironmentName?, names: [SecretName], allowExpired: Bool) throws(VSecureError) -> BatchValues
}

extension SecretStore {
    public func defaultEnvironment() throws(VSecureError) -> EnvironmentName {
        try environments().defaultEnvironment
    }
}

/// The environments a store accepts.
public struct StoreEnvironments: Sendable, Equatable {
    public var names: [EnvironmentName]
    public var defaultEnvironment: EnvironmentName

    public init(names: [EnvironmentName], defaultEnvironment: EnvironmentName) {
        self.names = names
        self.defaultEnvironment = defaultEnvironment
    }
}

/// A secret to create.
public struct NewSecret: Sendable {
    public var name: SecretName
    /// nil: a tag that names an environment, else the store's default.
    public var environment: EnvironmentName?
    public var value: SecureBytes
    public var attributes: SecretAttributes
    /// When the expiry was asked for as a duration (`--expires-in`): a server counts it from its
    /// own clock (a time computed here, whole seconds, can already be past when it arrives).
    /// `attributes.expiresAt` holds the same expiry counted from this machine's clock.
    public var expiresIn: SecretDuration?

    public init(name: SecretName, environment: EnvironmentName?, value: SecureBytes, attributes: SecretAttributes) {
        self.name = name
        self.environment = environment
        self.value = value
        self.attributes = attributes
    }
}

/// What an update or a rollback did.
public struct SecretUpdate: Sendable, Equatable {
    public var secret: SecretSummary
    public var previousVersion: Int
    /// nil when only attributes changed.
    public var newVersion: Int?

    public init(secret: SecretSummary, previousVersion: Int, newVersion: Int?) {
        self.secret = secret
        self.previousVersion = previousVersion
        self.newVersion = newVersion
    }
}

/// One version's value and the secret as it is now.
public struct SecretRead: Sendable {
    public var secret: SecretSummary
    /// The version whose value this is.
    public var version: Int
    public var value: SecureBytes

    public init(secret: SecretSummary, version: Int, value: SecureBytes) {
        self.secret = secret
        self.version = version
        self.value = value
    }
}

/// What `list` selects.
public struct SecretQuery: Sendable, Equatable {
    /// nil: every environment.
    public var environment: EnvironmentName?
    /// Secrets carrying all of these.
    public var tags: [Tag]
    /// A case-insensitive substring of the name or description.
    public var search: String?
    public var includeExpired: Bool

    public init(environment: EnvironmentName? = nil, tags: [Tag] = [], search: String? = nil, includeExpired: Bool = false) {
        self.environment = environment
        self.tags = tags
        self.search = search
        self.includeExpired = includeExpired
    }
}

/// A secret's versions, oldest first.
public struct SecretHistory: Sendable, Equatable {
    public var secret: SecretSummary
    public var versions: [VersionSummary]

    public init(secret: SecretSummary, versions: [VersionSummary]) {
        self.secret = secret
        self.versions = versions
    }
}

/// One entry of an import.
public struct UpsertEntry: Sendable {
    public var name: SecretName
    /// The value is `range` of `storage`. Many entries may share one locked buffer: an import of
    /// 100,000 values must not make 100,000 `sodium_malloc` regions, because each is a separate
    /// mapping with guard pages and the kernel caps the mappings of a process (vm.max_map_count).
    private let storage: SecureBytes
    private let range: Range<Int>

    public init(name: SecretName, value: SecureBytes) {
        self.name = name
        storage = value
        range = 0..<value.count
    }

    /// An entry whose value is `range` of a buffer shared with other entries.
    public init(name: SecretName, in storage: SecureBytes, range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= storage.count)
        self.name = name
        self.storage = storage
        self.range = range
    }

    /// The value's length in bytes.
    public var count: Int { range.count }

    /// Calls `body` with the value's bytes, in locked memory.
    public func withValueBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try storage.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(E) -> R in
            try body(UnsafeRawBufferPointer(rebasing: raw[range]))
        }
    }
}

/// What an import did, name by name, in the order of the entries.
public struct UpsertResult: Sendable, Equatable {
    public var environment: EnvironmentName
    public var created: [SecretName]
    public var updated: [SecretName]
    public var unchanged: [SecretName]

    public init(environment: EnvironmentName, created: [SecretName], updated: [SecretName], unchanged: [SecretName]) {
        self.environment = environment
        self.created = created
        self.updated = updated
        self.unchanged = unchanged
    }
}

/// Current values read in one batch.
public struct BatchValues: Sendable {
    public struct Item: Sendable {
        public var name: SecretName
        public var version: Int
        public var expiresAt: Timestamp?
        public var value: SecureBytes

        public init(name: SecretName, version: Int, expiresAt: Timestamp?, value: SecureBytes) {
            self.name = name
            self.version = version
            self.expiresAt = expiresAt
            self.value = value
        }
    }

    public var environment: EnvironmentName
    /// In the order the names were asked for.
    public var items: [Item]
    public var missing: [SecretName]
    public var expired: [SecretName]

    public init(environment: EnvironmentName, items: [Item], missing: [SecretName], expired: [SecretName]) {
        self.environment = environment
        self.items = items
        self.missing = missing
        self.expired = expired
    }
}
