/// What changed between two versions of a secret: attributes, and whether the value changed
/// (length and keyed fingerprint only). Shared by `vsecure secrets:diff` and the API.
public struct VersionDiff: Sendable {
    public var name: SecretName
    public var environment: EnvironmentName
    public var older: VersionSummary
    public var newer: VersionSummary
    public var tagsAdded: [Tag]
    public var tagsRemoved: [Tag]
    /// (key, before, after) for every metadata key that differs.
    public var metadata: [(String, String?, String?)]

    public var valueChanged: Bool { older.fingerprint != newer.fingerprint || older.valueLength != newer.valueLength }

    /// Compares versions `from` and `to` (default: the one before `to`, and the current one). The
    /// current version's attributes are the secret's attributes as they are now.
    public init(secret: SecretSummary, versions: [VersionSummary], from: Int?, to: Int?) throws(VSecureError) {
        let toVersion = to ?? secret.currentVersion
        let fromVersion = from ?? toVersion - 1
        func find(_ number: Int) throws(VSecureError) -> VersionSummary {
            guard var found = versions.first(where: { $0.version == number }) else {
                throw VSecureError(.notFound, "\(secret.name) in \(secret.environment) has no version \(number) (current: \(secret.currentVersion))",
                                   hint: number < 1 ? "it has only one version; there is nothing to compare"
                                                    : "`vsecure secrets:versions \(secret.name) --env \(secret.environment)` lists its versions")
            }
            if number == secret.currentVersion { found.attributes = secret.attributes }
            return found
        }
        name = secret.name
        environment = secret.environment
        let olderVersion = try find(fromVersion), newerVersion = try find(toVersion)
        older = olderVersion
        newer = newerVersion
        let before = olderVersion.attributes, after = newerVersion.attributes
        tagsAdded = after.tags.filter { !before.tags.contains($0) }
        tagsRemoved = before.tags.filter { !after.tags.contains($0) }
        let keys = Set(before.metadata.map(\.key) + after.metadata.map(\.key)).sorted()
        metadata = keys.compactMap { key in
            let a = before.metadataValue(key), b = after.metadataValue(key)
            return a == b ? nil : (key, a, b)
        }
    }

    public var json: JSONValue {
        .object([
            ("name", .string(name.rawValue)),
            ("environment", .string(environment.rawValue)),
            ("from", .int(older.version)),
            ("to", .int(newer.version)),
            ("valueChanged", .bool(valueChanged)),
            ("fromLength", .int(older.valueLength)),
            ("toLength", .int(newer.valueLength)),
            ("fromFingerprint", .string(older.fingerprint)),
            ("toFingerprint", .string(newer.fingerprint)),
            ("tagsAdded", .array(tagsAdded.map { .string($0.rawValue) })),
            ("tagsRemoved", .array(tagsRemoved.map { .string($0.rawValue) })),
            ("metadataChanged", .array(metadata.map { key, old, new in
                .object([("key", .string(key)), ("from", .optional(old)), ("to", .optional(new))])
            })),
            ("expiresAtFrom", .optional(older.attributes.expiresAt?.iso8601)),
            ("expiresAtTo", .optional(newer.attributes.expiresAt?.iso8601)),
        ])
    }
}
