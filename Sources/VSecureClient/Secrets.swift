#if canImport(Glibc)
import Glibc
#endif
import VSecureCore
import VSecureStore

/// The secrets of one server: `client.secrets`. Every `environment` may be left nil for the
/// server's default environment (for `create`: a tag that names an environment, else the
/// default). Names, environments and tags are checked before any request: a malformed one is
/// `.invalidRequest`.
public struct Secrets: Sendable {
    let client: VSecureClient

    // MARK: - Reads

    /// The current value of `name` (or of a past `version`). An expired secret is `.expired`
    /// unless `allowExpired`; a missing one `.notFound`.
    public func get(_ name: String, environment: String? = nil, version: Int? = nil,
                    allowExpired: Bool = false) async throws(VSecureClientError) -> SecretValue {
        try await fetch(name, environment: environment, version: version, allowExpired: allowExpired).value
    }

    /// As `get`, with the secret's attributes and the version the value belongs to.
    public func fetch(_ name: String, environment: String? = nil, version: Int? = nil,
                      allowExpired: Bool = false) async throws(VSecureClientError) -> FetchedSecret {
        let name = try Names.secret(name), environment = try Names.environment(environment)
        return try await client.perform { (store) throws(VSecureError) in
            let read = try store.get(environment: environment, name: name, version: version, allowExpired: allowExpired)
            return FetchedSecret(secret: SecretInfo(read.secret), version: read.version, value: SecretValue(locked: read.value))
        }
    }

    /// The current values of `names` in one request (1000 names per request). Missing and
    /// expired names are listed in the answer, not thrown.
    public func batchGet(_ names: [String], environment: String? = nil,
                         allowExpired: Bool = false) async throws(VSecureClientError) -> BatchSecrets {
        var parsed: [SecretName] = []
        for name in names { parsed.append(try Names.secret(name)) }
        let environment = try Names.environment(environment)
        return try await client.perform { [parsed] (store) throws(VSecureError) in
            BatchSecrets(try store.batchGet(environment: environment, names: parsed, allowExpired: allowExpired))
        }
    }

    /// A secret's attributes, without its value.
    public func info(_ name: String, environment: String? = nil) async throws(VSecureClientError) -> SecretInfo {
        let name = try Names.secret(name), environment = try Names.environment(environment)
        return try await client.perform { (store) throws(VSecureError) in
            SecretInfo(try store.summary(environment: environment, name: name))
        }
    }

    /// Live secrets that carry every one of `tags` and whose name or description contains
    /// `search` (case-insensitive), ordered by environment then name; every environment when
    /// `environment` is nil. Never values.
    public func list(environment: String? = nil, tags: [String] = [], search: String? = nil,
                     includeExpired: Bool = false) async throws(VSecureClientError) -> [SecretInfo] {
        let environment = try Names.environment(environment)
        let parsedTags: [Tag]
        do { parsedTags = try Names.tags(tags) } catch { throw VSecureClientError(error) }
        let query = SecretQuery(environment: environment, tags: parsedTags, search: search, includeExpired: includeExpired)
        return try await client.perform { (store) throws(VSecureError) in
            try store.list(query).map(SecretInfo.init)
        }
    }

    /// Every version, oldest first, without values.
    public func versions(_ name: String, environment: String? = nil) async throws(VSecureClientError) -> SecretVersions {
        let name = try Names.secret(name), environment = try Names.environment(environment)
        return try await client.perform { (store) throws(VSecureError) in
            let history = try store.versions(environment: environment, name: name)
            return SecretVersions(secret: SecretInfo(history.secret), versions: history.versions.map(VersionInfo.init))
        }
    }

    // MARK: - Writes

    /// Creates version 1 (a deleted name is revived with the next version). An existing secret
    /// is `.conflict`.
    @discardableResult
    public func create(_ name: String, value: SecretValue, environment: String? = nil, tags: [String] = [],
                       metadata: [String: String] = [:], description: String? = nil,
                       expiry: SecretExpiry? = nil) async throws(VSecureClientError) -> SecretInfo {
        let name = try Names.secret(name), environment = try Names.environment(environment)
        let expiresAt = try expiry?.timestamp()
        let attributes: SecretAttributes
        do {
            attributes = SecretAttributes(tags: try Names.tags(tags), metadata: try Names.metadata(metadata),
                                          expiresAt: expiresAt, description: description)
        } catch { throw VSecureClientError(error) }
        let secret = NewSecret(name: name, environment: environment, value: value.locked, attributes: attributes)
        return try await client.perform { (store) throws(VSecureError) in SecretInfo(try store.create(secret)) }
    }

    /// As above, with a `String` value (its UTF-8 bytes; your `String` cannot be wiped).
    @discardableResult
    public func create(_ name: String, value: String, environment: String? = nil, tags: [String] = [],
                       metadata: [String: String] = [:], description: String? = nil,
                       expiry: SecretExpiry? = nil) async throws(VSecureClientError) -> SecretInfo {
        try await create(name, value: SecretValue(copying: value), environment: environment, tags: tags, metadata: metadata,
                         description: description, expiry: expiry)
    }

    /// A new `value` makes a new version; `changes` alone change the secret in place. With
    /// `ifVersion`, nothing changes unless the current version is that one (`.conflict`).
    /// Giving neither a value nor a change is `.invalidRequest`.
    @discardableResult
    public func update(_ name: String, value: SecretValue? = nil, changes: SecretChanges = SecretChanges(),
                       environment: String? = nil, ifVersion: Int? = nil) async throws(VSecureClientError) -> SecretUpdateResult {
        let name = try Names.secret(name), environment = try Names.environment(environment)
        let change = try changes.attributeChange()
        let locked = value?.locked
        return try await client.perform { (store) throws(VSecureError) in
            SecretUpdateResult(try store.update(environment: environment, name: name, value: locked, change: change, ifVersion: ifVersion))
        }
    }

    /// A new version holding an older version's value (default: the previous one). History is
    /// never rewritten.
    @discardableResult
    public func rollback(_ name: String, to version: Int? = nil,
                         environment: String? = nil) async throws(VSecureClientError) -> SecretUpdateResult {
        let name = try Names.secret(name), environment = try Names.environment(environment)
        return try await client.perform { (store) throws(VSecureError) in
            SecretUpdateResult(try store.rollback(environment: environment, name: name, to: version))
        }
    }

    /// Stops serving `name` (its versions are kept; creating it again continues its history),
    /// or with `purge` destroys every version. Returns the environment it acted in.
    @discardableResult
    public func delete(_ name: String, environment: String? = nil, purge: Bool = false) async throws(VSecureClientError) -> String {
        let name = try Names.secret(name), environment = try Names.environment(environment)
        return try await client.perform { (store) throws(VSecureError) in
            try store.delete(environment: environment, name: name, purge: purge).rawValue
        }
    }
}

enum SecretClock {
    static var now: Timestamp { Timestamp(secondsSinceEpoch: Int64(time(nil))) }
}
