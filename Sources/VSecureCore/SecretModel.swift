/// What made a version.
public enum VersionAction: String, Sendable, CaseIterable {
    case create, update, rollback, rotate, `import`
}

/// A secret's public attributes. None of these are secret: they are listed and audited.
public struct SecretAttributes: Equatable, Sendable {
    public var tags: [Tag]
    public var metadata: [MetadataEntry]
    public var expiresAt: Timestamp?
    public var description: String?

    public init(tags: [Tag] = [], metadata: [MetadataEntry] = [], expiresAt: Timestamp? = nil, description: String? = nil) {
        self.tags = tags.sorted()
        self.metadata = metadata.sorted { $0.key < $1.key }
        self.expiresAt = expiresAt
        self.description = description
    }

    public func metadataValue(_ key: String) -> String? { metadata.first { $0.key == key }?.value }

    public mutating func setMetadata(_ entry: MetadataEntry) {
        metadata.removeAll { $0.key == entry.key }
        metadata.append(entry)
        metadata.sort { $0.key < $1.key }
    }
}

/// A change of attributes requested by `secrets:update`; nil fields are left alone.
public struct AttributeChange: Sendable, Equatable {
    public var replaceTags: [Tag]?
    public var addTags: [Tag] = []
    public var removeTags: [Tag] = []
    public var setMetadata: [MetadataEntry] = []
    public var removeMetadata: [String] = []
    /// `.some(nil)` removes the expiry.
    public var expiresAt: Timestamp??
    /// The same expiry as a duration, when it was given as one (see `NewSecret.expiresIn`).
    public var expiresIn: SecretDuration?
    public var description: String??

    public init() {}

    public var isEmpty: Bool {
        replaceTags == nil && addTags.isEmpty && removeTags.isEmpty && setMetadata.isEmpty
            && removeMetadata.isEmpty && expiresAt == nil && description == nil
    }

    public func applied(to attributes: SecretAttributes) -> SecretAttributes {
        var result = attributes
        if let replaceTags { result.tags = replaceTags }
        for tag in addTags where !result.tags.contains(tag) { result.tags.append(tag) }
        result.tags.removeAll { removeTags.contains($0) }
        result.tags.sort()
        for entry in setMetadata { result.setMetadata(entry) }
        result.metadata.removeAll { removeMetadata.contains($0.key) }
        if let expiresAt { result.expiresAt = expiresAt }
        if let description { result.description = description }
        return result
    }
}

/// One secret as listed: never carries a value.
public struct SecretSummary: Equatable, Sendable {
    public var id: String
    public var environment: EnvironmentName
    public var name: SecretName
    public var currentVersion: Int
    public var attributes: SecretAttributes
    public var createdAt: Timestamp
    public var updatedAt: Timestamp

    public init(id: String, environment: EnvironmentName, name: SecretName, currentVersion: Int,
                attributes: SecretAttributes, createdAt: Timestamp, updatedAt: Timestamp) {
        self.id = id
        self.environment = environment
        self.name = name
        self.currentVersion = currentVersion
        self.attributes = attributes
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// `production/API_KEY`: what access policies match.
    public var path: String { "\(environment.rawValue)/\(name.rawValue)" }

    public func isExpired(at now: Timestamp) -> Bool {
        guard let expiresAt = attributes.expiresAt else { return false }
        return expiresAt <= now
    }
}

/// One immutable version as listed: the value is represented only by its length and a keyed
/// fingerprint, so equal values can be spotted without being revealed.
public struct VersionSummary: Equatable, Sendable {
    public var version: Int
    public var action: VersionAction
    public var actor: String
    public var createdAt: Timestamp
    public var valueLength: Int
    public var fingerprint: String
    /// For a rollback, the version whose value it copied.
    public var sourceVersion: Int?
    /// The attributes as they were when this version was made.
    public var attributes: SecretAttributes

    public init(version: Int, action: VersionAction, actor: String, createdAt: Timestamp, valueLength: Int,
                fingerprint: String, sourceVersion: Int?, attributes: SecretAttributes) {
        self.version = version
        self.action = action
        self.actor = actor
        self.createdAt = createdAt
        self.valueLength = valueLength
        self.fingerprint = fingerprint
        self.sourceVersion = sourceVersion
        self.attributes = attributes
    }
}

/// Limits on secret values.
public enum SecretValueRule {
    /// 120 KiB. Linux refuses a single environment string over 128 KiB (MAX_ARG_STRLEN), and a
    /// value must always fit `NAME=value` with the longest name, so every value can be exported.
    public static let maximumBytes = 122_880

    public static func check(length: Int, name: SecretName) throws(VSecureError) {
        guard length <= maximumBytes else {
            throw .usage("the value of \(name) is \(length) bytes; the limit is \(maximumBytes) bytes (120 KiB)",
                         hint: "larger material (a bundle, an archive) belongs in a file whose key is the secret")
        }
    }
}
