import VSecureCore
import VSecureStore

/// A point in time, UTC, to the second (`.iso8601`, `.secondsSinceEpoch`).
public typealias SecretTimestamp = Timestamp

/// When a secret expires.
public enum SecretExpiry: Sendable, Equatable {
    case at(SecretTimestamp)
    /// From now, rounded up to whole seconds.
    case after(Duration)

    func timestamp() throws(VSecureClientError) -> Timestamp {
        switch self {
        case .at(let time): return time
        case .after(let duration):
            let (seconds, attoseconds) = duration.components
            let whole = seconds + (attoseconds > 0 ? 1 : 0)
            guard whole > 0, whole <= SecretDuration.maximumSeconds else {
                throw VSecureClientError(.invalidRequest, "an expiry must be in the future and at most 100 years away")
            }
            return SecretClock.now.adding(SecretDuration(seconds: whole))
        }
    }
}

/// A secret's public attributes; never its value.
public struct SecretInfo: Sendable, Equatable {
    public var id: String
    public var name: String
    public var environment: String
    /// `environment/NAME`.
    public var path: String
    /// The current version.
    public var version: Int
    public var tags: [String]
    public var metadata: [String: String]
    public var description: String?
    public var expiresAt: SecretTimestamp?
    public var createdAt: SecretTimestamp
    public var updatedAt: SecretTimestamp

    init(_ summary: SecretSummary) {
        id = summary.id
        name = summary.name.rawValue
        environment = summary.environment.rawValue
        path = summary.path
        version = summary.currentVersion
        tags = summary.attributes.tags.map(\.rawValue)
        metadata = Dictionary(summary.attributes.metadata.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
        description = summary.attributes.description
        expiresAt = summary.attributes.expiresAt
        createdAt = summary.createdAt
        updatedAt = summary.updatedAt
    }
}

/// A value and the secret it belongs to.
public struct FetchedSecret: Sendable {
    public var secret: SecretInfo
    /// The version whose value this is (a past one when asked for).
    public var version: Int
    public var value: SecretValue
}

/// One version as the history lists it: the value only by length and a keyed fingerprint
/// (equal fingerprints mean equal values).
public struct VersionInfo: Sendable, Equatable {
    public var version: Int
    /// `create`, `update`, `rollback`, `rotate` or `import`.
    public var action: String
    /// The API key that made it: `name (key_…)`.
    public var actor: String
    public var createdAt: SecretTimestamp
    public var valueLength: Int
    public var fingerprint: String
    /// For a rollback, the version whose value it copied.
    public var sourceVersion: Int?
    /// The tags and metadata as they were when this version was made.
    public var tags: [String]
    public var metadata: [String: String]
    public var expiresAt: SecretTimestamp?

    init(_ summary: VersionSummary) {
        version = summary.version
        action = summary.action.rawValue
        actor = summary.actor
        createdAt = summary.createdAt
        valueLength = summary.valueLength
        fingerprint = summary.fingerprint
        sourceVersion = summary.sourceVersion
        tags = summary.attributes.tags.map(\.rawValue)
        metadata = Dictionary(summary.attributes.metadata.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
        expiresAt = summary.attributes.expiresAt
    }
}

/// A secret's versions, oldest first, and the secret as it is now.
public struct SecretVersions: Sendable, Equatable {
    public var secret: SecretInfo
    public var versions: [VersionInfo]
}

/// What an update or a rollback did.
public struct SecretUpdateResult: Sendable, Equatable {
    public var secret: SecretInfo
    public var previousVersion: Int
    /// The version made; nil when only attributes changed.
    public var newVersion: Int?

    init(_ update: SecretUpdate) {
        secret = SecretInfo(update.secret)
        previousVersion = update.previousVersion
        newVersion = update.newVersion
    }
}

/// Current values read in one request.
public struct BatchSecrets: Sendable {
    public struct Item: Sendable {
        public var name: String
        public var version: Int
        public var expiresAt: SecretTimestamp?
        public var value: SecretValue
    }

    /// The environment the values come from.
    public var environment: String
    /// In the order the names were asked for.
    public var items: [Item]
    /// Names that do not exist (or were deleted).
    public var missing: [String]
    /// Names that exist but have expired (read them with `allowExpired: true`).
    public var expired: [String]

    /// The value of `name`, if it was found.
    public subscript(name: String) -> SecretValue? { items.first { $0.name == name }?.value }

    init(_ batch: BatchValues) {
        environment = batch.environment.rawValue
        items = batch.items.map { Item(name: $0.name.rawValue, version: $0.version, expiresAt: $0.expiresAt, value: SecretValue(locked: $0.value)) }
        missing = batch.missing.map(\.rawValue)
        expired = batch.expired.map(\.rawValue)
    }
}

/// Attribute changes for `update`; what is left nil or empty is not changed.
public struct SecretChanges: Sendable, Equatable {
    /// Replace the tags with these.
    public var tags: [String]?
    public var addTags: [String]
    public var removeTags: [String]
    /// Set these metadata keys.
    public var metadata: [String: String]
    public var removeMetadata: [String]
    /// `.some(nil)` removes the description.
    public var description: String??
    public var expiry: SecretExpiry?
    /// Remove the expiry (wins over `expiry`).
    public var removeExpiry: Bool

    public init(tags: [String]? = nil, addTags: [String] = [], removeTags: [String] = [], metadata: [String: String] = [:],
                removeMetadata: [String] = [], description: String?? = nil, expiry: SecretExpiry? = nil, removeExpiry: Bool = false) {
        self.tags = tags
        self.addTags = addTags
        self.removeTags = removeTags
        self.metadata = metadata
        self.removeMetadata = removeMetadata
        self.description = description
        self.expiry = expiry
        self.removeExpiry = removeExpiry
    }

    func attributeChange() throws(VSecureClientError) -> AttributeChange {
        var change = AttributeChange()
        do {
            change.replaceTags = try tags.map { (list: [String]) throws(VSecureError) in try Names.tags(list) }
            change.addTags = try Names.tags(addTags)
            change.removeTags = try Names.tags(removeTags)
            change.setMetadata = try Names.metadata(metadata)
        } catch { throw VSecureClientError(error) }
        change.removeMetadata = removeMetadata
        change.description = description
        if removeExpiry {
            change.expiresAt = .some(nil)
        } else if let expiry {
            change.expiresAt = .some(try expiry.timestamp())
        }
        return change
    }
}

/// Parsing of the public strings the SDK takes.
enum Names {
    static func secret(_ text: String) throws(VSecureClientError) -> SecretName {
        do { return try SecretName(text) } catch { throw VSecureClientError(error) }
    }

    static func environment(_ text: String?) throws(VSecureClientError) -> EnvironmentName? {
        guard let text else { return nil }
        do { return try EnvironmentName(text) } catch { throw VSecureClientError(error) }
    }

    static func tags(_ list: [String]) throws(VSecureError) -> [Tag] {
        var tags: [Tag] = []
        for text in list { tags.append(try Tag(text)) }
        return tags
    }

    static func metadata(_ entries: [String: String]) throws(VSecureError) -> [MetadataEntry] {
        var result: [MetadataEntry] = []
        for (key, value) in entries.sorted(by: { $0.key < $1.key }) { result.append(try MetadataEntry(key: key, value: value)) }
        return result
    }
}
