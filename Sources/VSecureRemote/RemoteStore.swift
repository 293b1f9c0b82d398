#if canImport(Glibc)
import Glibc
#endif
import VSecureCore
import VSecureCrypto
import VSecureStore

/// A vsecure server as a `SecretStore`: each operation is one or two requests to the v1 API
/// (docs/api.md) through libcurl, loaded with `dlopen` on first use. Values travel only in
/// locked memory: request bodies that carry one are built in `SecureBytes`, and answers are
/// read in place in the locked response buffer.
///
/// Errors map to the exit statuses the local vault gives (404 → `.notFound`, 409 →
/// `.conflict`, 410 → `.expired`, 400 → `.usage`, 401/403 → `.accessDenied`; a server that
/// cannot be reached, times out, fails TLS or does not answer like a vsecure server →
/// `.remoteUnreachable`). The server's messages for vault errors are the vault's own, so the
/// text matches too. Writes carry an `Idempotency-Key`, so the exchange's retries run them at
/// most once.
///
/// Not thread-safe: use one instance per thread (an async facade can own one per task).
public final class RemoteStore: SecretStore {
    public let endpoint: RemoteEndpoint
    /// Requests made so far (tests and benchmarks count them).
    public private(set) var requestCount = 0
    private var cachedEnvironments: StoreEnvironments?

    public init(endpoint: RemoteEndpoint) {
        self.endpoint = endpoint
    }

    public var label: String { "server \(endpoint.baseURL)" }

    static let api = "/v1/security"
    /// The server takes at most this many names or items per batch request.
    public static let maxBatchSize = 1000

    // MARK: - Requests

    /// `readsOnly`: a read sent as a POST (a batch get), which may be sent again when the
    /// connection breaks; see `HTTPExchange`.
    func request(_ method: String, _ path: String, query: [(String, String?)] = [], body: [UInt8] = [],
                 idempotent: Bool = false, readsOnly: Bool = false) throws(VSecureError) -> RemoteReply {
        let headers = idempotent ? [Self.idempotencyHeader()] : []
        let started = HTTPExchange.monotonicMilliseconds()
        var waited = 0
        while true {
            requestCount += 1
            let response = try HTTPExchange.perform(endpoint, method: method, path: Self.api + path + Self.queryString(query),
                                                    headers: headers, body: body, readsOnly: readsOnly)
            let reply = RemoteReply(response, endpoint: endpoint)
            // A retry that reached the server while this call's first attempt (whose connection
            // broke) still runs there gets 409 inProgress: ask again with the same key, after a
            // pause, until that attempt has answered and its answer comes back as the replay.
            // (A 409 inProgress with `skipped` is another run's rotation: the caller's to report.)
            guard idempotent, reply.status == 409, reply.errorDetail("reason") == "inProgress", reply.errorDetail("skipped") == nil
            else { return reply }
            let pause = min(250 << min(waited, 3), 2_000)
            guard HTTPExchange.monotonicMilliseconds() - started + pause < endpoint.timeoutMilliseconds else { return reply }
            usleep(useconds_t(pause * 1000))
            waited += 1
        }
    }

    func request(_ method: String, _ path: String, lockedBody: SecureBytes) throws(VSecureError) -> RemoteReply {
        requestCount += 1
        let response = try HTTPExchange.perform(endpoint, method: method, path: Self.api + path,
                                                headers: [Self.idempotencyHeader()], body: lockedBody)
        return RemoteReply(response, endpoint: endpoint)
    }

    private static func idempotencyHeader() -> String {
        "Idempotency-Key: vsecure-" + hexString(Sodium.randomBytes(16))
    }

    static func queryString(_ items: [(String, String?)]) -> String {
        let present = items.compactMap { key, value in value.map { "\(key)=\(percentEncoded($0))" } }
        return present.isEmpty ? "" : "?" + present.joined(separator: "&")
    }

    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(Character(Unicode.Scalar(byte)))
            default:
                let digits = Array("0123456789ABCDEF")
                out += "%\(digits[Int(byte >> 4)])\(digits[Int(byte & 15)])"
            }
        }
        return out
    }

    func path(_ name: SecretName, _ suffix: String = "") -> String { "/secrets/\(name.rawValue)\(suffix)" }

    var reader: ShapeReader {
        ShapeReader(notOurs: VSecureError(.remoteUnreachable, "the server at \(endpoint.baseURL) did not answer like a vsecure server",
                                          hint: "check that the endpoint points at a vsecure server"))
    }

    /// What a verified key may do, as far as one request can tell.
    public enum KeyAccess: Sendable, Equatable {
        case readsSecrets
        /// The server accepted the key but refused to list secrets with it (403).
        case keyWithoutRead
    }

    /// Checks the API key with one request (a one-item list): a refused key is `.accessDenied`,
    /// an unreachable server `.remoteUnreachable`.
    public func verifyKey() throws(VSecureError) -> KeyAccess {
        let reply = try request("GET", "/secrets", query: [("limit", "1")])
        try reply.check([200, 403])
        if reply.status == 403 { return .keyWithoutRead }
        guard case .object = try reply.json() else { throw reply.notOurs }
        return .readsSecrets
    }

    // MARK: - Environments

    /// The server's environments and its default, from `GET /environments` (one request, kept
    /// for this store's life). A server without that route (404) is asked the older way:
    /// `probedEnvironments`.
    public func environments() throws(VSecureError) -> StoreEnvironments {
        if let cachedEnvironments { return cachedEnvironments }
        let reply = try request("GET", "/environments")
        let found: StoreEnvironments
        if reply.status == 404 {
            found = try probedEnvironments()
        } else {
            try reply.check()
            let json = try reply.json()
            guard case .array(let items)? = json["data"], let defaultText = json["defaultEnvironment"]?.stringValue,
                  let defaultEnvironment = try? EnvironmentName(defaultText) else { throw reply.notOurs }
            var names: [EnvironmentName] = []
            for item in items {
                guard let text = item["name"]?.stringValue, let name = try? EnvironmentName(text) else { throw reply.notOurs }
                names.append(name)
            }
            found = StoreEnvironments(names: names, defaultEnvironment: defaultEnvironment)
        }
        cachedEnvironments = found
        return found
    }

    /// The environment the server uses when none is named.
    public func defaultEnvironment() throws(VSecureError) -> EnvironmentName {
        try environments().defaultEnvironment
    }

    /// For a server without `GET /environments`: the default from a batch read that cannot
    /// match anything (a random tag; the answer names the environment it used), the list from
    /// the hint of an unknown-environment error.
    private func probedEnvironments() throws(VSecureError) -> StoreEnvironments {
        let tag = "vsecure-probe-" + hexString(Sodium.randomBytes(8))
        let body = JSONValue.object([("tags", .array([.string(tag)]))]).serialized(indent: nil)
        let batch = try request("POST", "/secrets/batch/get", body: Array(body.utf8), readsOnly: true)
        try batch.check()
        let defaultEnvironment = try reader.environment(try batch.json())
        let probe = "zz-vsecure-probe-" + hexString(Sodium.randomBytes(4))
        let reply = try request("GET", "/secrets", query: [("environment", probe), ("limit", "1")])
        var names: [EnvironmentName] = []
        if reply.status == 400, case .object = try reply.json(),
           let hint = try reply.json()["error"]?["details"]?["hint"]?.stringValue,
           let colon = hint.lastIndex(of: ":") {
            for item in hint[hint.index(after: colon)...].split(separator: ",") {
                if let environment = try? EnvironmentName(String(item.drop { $0 == " " })) { names.append(environment) }
            }
        } else if reply.status != 400 {
            try reply.check([400])
        }
        if !names.contains(defaultEnvironment) { names.insert(defaultEnvironment, at: 0) }
        return StoreEnvironments(names: names, defaultEnvironment: defaultEnvironment)
    }

    func resolve(_ environment: EnvironmentName?) throws(VSecureError) -> EnvironmentName {
        if let environment { return environment }
        return try defaultEnvironment()
    }

    /// Which of `tags` name an environment of the server, asked one tag at a time (a list of an
    /// unknown environment is a 400).
    private func environmentsNamed(by tags: [Tag]) throws(VSecureError) -> [EnvironmentName] {
        var found: [EnvironmentName] = []
        for tag in tags {
            guard let candidate = try? EnvironmentName(tag.rawValue), !found.contains(candidate) else { continue }
            let reply = try request("GET", "/secrets", query: [("environment", candidate.rawValue), ("limit", "1")])
            if reply.status == 200 { found.append(candidate) } else if reply.status != 400 { throw reply.failure() }
        }
        return found
    }

    // MARK: - Writes

    public func create(_ secret: NewSecret) throws(VSecureError) -> SecretSummary {
        try create(secret, extra: [])
    }

    /// `extra`: more public members of the body (`rotationPolicy`).
    func create(_ secret: NewSecret, extra: [(String, JSONValue)]) throws(VSecureError) -> SecretSummary {
        var members: [(String, JSONValue)] = [("name", .string(secret.name.rawValue))]
        if let environment = secret.environment { members.append(("environment", .string(environment.rawValue))) }
        members += attributeMembers(secret.attributes, expiresIn: secret.expiresIn)
        members += extra
        let body = LockedRequestBody()
        body.append("{")
        body.appendMembers(members)
        body.append(",")
        body.appendValue(secret.value)
        body.append("}")
        let reply = try request("POST", "/secrets", lockedBody: body.finish())
        if reply.status != 201 && !extra.isEmpty { throw rotationPolicyRefusal(reply, name: secret.name) }
        try reply.check([201])
        return try reader.summary(try reply.json())
    }

    /// `expiresIn`: sent instead of `expiresAt` when the expiry was a duration, so the server
    /// counts it from its own clock.
    private func attributeMembers(_ attributes: SecretAttributes, expiresIn: SecretDuration? = nil) -> [(String, JSONValue)] {
        var members: [(String, JSONValue)] = [
            ("tags", .array(attributes.tags.map { .string($0.rawValue) })),
            ("metadata", .object(attributes.metadata.map { ($0.key, .string($0.value)) })),
        ]
        if let description = attributes.description { members.append(("description", .string(description))) }
        if let expiresIn {
            members.append(("expiresIn", .string(expiresIn.description)))
        } else if let expiresAt = attributes.expiresAt {
            members.append(("expiresAt", .string(expiresAt.iso8601)))
        }
        return members
    }

    public func update(environment: EnvironmentName?, name: SecretName, value: SecureBytes?, change: AttributeChange,
                       ifVersion: Int?) throws(VSecureError) -> SecretUpdate {
        try update(environment: environment, name: name, value: value, change: change, ifVersion: ifVersion, extra: [])
    }

    /// `extra`: more public members of the body (`rotationPolicy`).
    func update(environment: EnvironmentName?, name: SecretName, value: SecureBytes?, change: AttributeChange,
                ifVersion: Int?, extra: [(String, JSONValue)]) throws(VSecureError) -> SecretUpdate {
        var members: [(String, JSONValue)] = []
        if let environment { members.append(("environment", .string(environment.rawValue))) }
        if let replace = change.replaceTags { members.append(("tags", .array(replace.map { .string($0.rawValue) }))) }
        if !change.addTags.isEmpty { members.append(("addTags", .array(change.addTags.map { .string($0.rawValue) }))) }
        if !change.removeTags.isEmpty { members.append(("removeTags", .array(change.removeTags.map { .string($0.rawValue) }))) }
        if !change.setMetadata.isEmpty {
            // Later entries for a key win, as in `AttributeChange.applied`.
            var metadata: [(String, JSONValue)] = []
            for entry in change.setMetadata {
                metadata.removeAll { $0.0 == entry.key }
                metadata.append((entry.key, .string(entry.value)))
            }
            members.append(("metadata", .object(metadata)))
        }
        if !change.removeMetadata.isEmpty { members.append(("removeMetadata", .array(change.removeMetadata.map(JSONValue.string)))) }
        switch change.expiresAt {
        case .some(.some(let time)):
            members.append(change.expiresIn.map { ("expiresIn", .string($0.description)) } ?? ("expiresAt", .string(time.iso8601)))
        case .some(.none): members.append(("noExpiry", .bool(true)))
        case .none: break
        }
        if case .some(let description) = change.description { members.append(("description", .optional(description))) }
        if let ifVersion { members.append(("ifVersion", .int(ifVersion))) }
        members += extra
        let body = LockedRequestBody()
        body.append("{")
        body.appendMembers(members)
        if let value {
            if !members.isEmpty { body.append(",") }
            body.appendValue(value)
        }
        body.append("}")
        let reply = try request("PUT", path(name), lockedBody: body.finish())
        if reply.status != 200 && !extra.isEmpty { throw rotationPolicyRefusal(reply, name: name) }
        try reply.check()
        let json = try reply.json()
        let changed = json["valueChanged"]?.boolValue ?? false
        let secret = try reader.summary(json)
        return SecretUpdate(secret: secret, previousVersion: try reader.int(json, "previousVersion"),
                            newVersion: changed ? secret.currentVersion : nil)
    }

    public func rollback(environment: EnvironmentName?, name: SecretName, to version: Int?) throws(VSecureError) -> SecretUpdate {
        var members: [(String, JSONValue)] = []
        if let environment { members.append(("environment", .string(environment.rawValue))) }
        if let version { members.append(("version", .int(version))) }
        let reply = try request("POST", path(name, "/rollback"), body: Array(JSONValue.object(members).serialized(indent: nil).utf8),
                                idempotent: true)
        try reply.check()
        let json = try reply.json()
        let secret = try reader.summary(json)
        return SecretUpdate(secret: secret, previousVersion: try reader.int(json, "previousVersion"), newVersion: secret.currentVersion)
    }

    @discardableResult
    public func delete(environment: EnvironmentName?, name: SecretName, purge: Bool) throws(VSecureError) -> EnvironmentName {
        // The answer (204) does not say which environment was used, so name it.
        let environment = try resolve(environment)
        let reply = try request("DELETE", path(name), query: [("environment", environment.rawValue), ("purge", purge ? "true" : nil)])
        try reply.check([204])
        return environment
    }

    /// All or nothing in one `batch/upsert`. Unlike the local import, the server's upsert
    /// replaces an existing secret's tags with the item's, so `addTags` is sent merged with each
    /// existing secret's tags (read just before). More than `maxBatchSize` entries cannot be
    /// written atomically and are refused.
    public func upsert(environment: EnvironmentName?, entries: [UpsertEntry], addTags: [Tag]) throws(VSecureError) -> UpsertResult {
        guard entries.count <= Self.maxBatchSize else {
            throw VSecureError.usage("a server takes at most \(Self.maxBatchSize) secrets in one import; this one has \(entries.count)",
                                     hint: "split the file")
        }
        for entry in entries { try SecretValueRule.check(length: entry.count, name: entry.name) }
        var target = environment
        if target == nil && !addTags.isEmpty {
            let named = try environmentsNamed(by: addTags)
            if named.count > 1 {
                throw .usage("tags name more than one environment (\(named.map(\.rawValue).joined(separator: ", ")))",
                             hint: "choose one with --env")
            }
            target = named.first
        }
        guard !entries.isEmpty else {
            return UpsertResult(environment: try resolve(target), created: [], updated: [], unchanged: [])
        }
        var existingTags: [SecretName: [Tag]] = [:]
        if !addTags.isEmpty {
            let resolved = try resolve(target)
            target = resolved
            for secret in try list(SecretQuery(environment: resolved, includeExpired: true)) { existingTags[secret.name] = secret.attributes.tags }
        }
        let body = LockedRequestBody()
        body.append("{")
        if let target { body.appendMembers([("environment", .string(target.rawValue))]); body.append(",") }
        body.append("\"secrets\":[")
        for (index, entry) in entries.enumerated() {
            if index > 0 { body.append(",") }
            var members: [(String, JSONValue)] = [("name", .string(entry.name.rawValue))]
            if !addTags.isEmpty {
                var tags = existingTags[entry.name] ?? []
                for tag in addTags where !tags.contains(tag) { tags.append(tag) }
                members.append(("tags", .array(tags.sorted().map { .string($0.rawValue) })))
            }
            body.append("{")
            body.appendMembers(members)
            body.append(",")
            entry.withValueBytes { body.appendValue($0) }
            body.append("}")
        }
        body.append("]}")
        let reply = try request("POST", "/secrets/batch/upsert", lockedBody: body.finish())
        try reply.check()
        let json = try reply.json()
        return UpsertResult(environment: try reader.environment(json), created: try reader.names(json, "created"),
                            updated: try reader.names(json, "updated"), unchanged: try reader.names(json, "unchanged"))
    }

    // MARK: - Reads

    /// From the list (`GET /secrets?search=NAME`), never from `GET /secrets/{name}`: that answer
    /// carries the value, and the server records it as a read of the value. The search matches
    /// part of a name or description in any case, so the exact name is picked from what it
    /// finds. When it finds nothing, the history route (no value either) gives the server's own
    /// refusal for the name: 404 with its hints, or 403 for a key that may not read it.
    public func summary(environment: EnvironmentName?, name: SecretName) throws(VSecureError) -> SecretSummary {
        let environment = try resolve(environment)
        let items = try listItems(SecretQuery(environment: environment, search: name.rawValue, includeExpired: true))
        if let item = items.first(where: { $0["name"]?.stringValue == name.rawValue }) {
            return try reader.summary(item)
        }
        let reply = try request("GET", path(name, "/versions"), query: [("environment", environment.rawValue)])
        try reply.check()
        // Listed nowhere, yet it has a history: created between the two requests.
        throw VSecureError(.notFound, "no secret \(name) in \(environment)")
    }

    public func get(environment: EnvironmentName?, name: SecretName, version: Int?, allowExpired: Bool) throws(VSecureError) -> SecretRead {
        let reply = try request("GET", path(name), query: [("environment", environment?.rawValue), ("version", version.map(String.init)),
                                                            ("allowExpired", allowExpired ? "true" : nil)])
        try reply.check()
        let json = try reply.json()
        return SecretRead(secret: try reader.summary(json, versionKey: "currentVersion"), version: try reader.int(json, "version"),
                          value: try reply.value(at: []))
    }

    /// Every page of `GET /secrets`, ordered by environment then name like the local vault.
    public func list(_ query: SecretQuery) throws(VSecureError) -> [SecretSummary] {
        var result: [SecretSummary] = []
        for item in try listItems(query) { result.append(try reader.summary(item)) }
        return result.sorted { ($0.environment, $0.name) < ($1.environment, $1.name) }
    }

    /// Every item of every page of `GET /secrets`, in the server's order, following the cursor
    /// to the end.
    func listItems(_ query: SecretQuery) throws(VSecureError) -> [JSONValue] {
        var result: [JSONValue] = []
        var cursor: String?
        repeat {
            let reply = try request("GET", "/secrets", query: [
                ("environment", query.environment?.rawValue),
                ("tags", query.tags.isEmpty ? nil : query.tags.map(\.rawValue).joined(separator: ",")),
                ("search", query.search), ("includeExpired", query.includeExpired ? "true" : nil),
                ("limit", "100"), ("cursor", cursor),
            ])
            try reply.check()
            let json = try reply.json()
            guard let items = json["data"]?.arrayValue, let pagination = json["pagination"] else { throw reader.notOurs }
            result += items
            cursor = try reader.optionalString(pagination, "cursor")
            if cursor != nil && items.isEmpty { throw reader.notOurs }
        } while cursor != nil
        return result
    }

    public func versions(environment: EnvironmentName?, name: SecretName) throws(VSecureError) -> SecretHistory {
        let reply = try request("GET", path(name, "/versions"), query: [("environment", environment?.rawValue)])
        try reply.check()
        let json = try reply.json()
        guard let items = json["data"]?.arrayValue else { throw reader.notOurs }
        var versions: [VersionSummary] = []
        for item in items { versions.append(try reader.version(item)) }
        // The history lists each version's attributes as they were; the secret's current ones
        // (an attribute-only update changes them in place) come with the secret itself.
        let secret = try summary(environment: try reader.environment(json), name: name)
        return SecretHistory(secret: secret, versions: versions)
    }

    public func batchGet(environment: EnvironmentName?, names: [SecretName], allowExpired: Bool) throws(VSecureError) -> BatchValues {
        var unique: [SecretName] = []
        var seen = Set<SecretName>()
        for name in names where seen.insert(name).inserted { unique.append(name) }
        var found: [SecretName: BatchValues.Item] = [:]
        var missing = Set<SecretName>(), expired = Set<SecretName>()
        var resolved = environment
        var start = 0
        repeat {
            let chunk = Array(unique[start..<min(start + Self.maxBatchSize, unique.count)])
            start += Self.maxBatchSize
            var members: [(String, JSONValue)] = [("names", .array(chunk.map { .string($0.rawValue) })), ("allowExpired", .bool(allowExpired))]
            if let resolved { members.append(("environment", .string(resolved.rawValue))) }
            if chunk.isEmpty {
                // The server wants names or tags; an empty read still says which environment.
                members[0] = ("tags", .array([.string("vsecure-probe-" + hexString(Sodium.randomBytes(8)))]))
            }
            let reply = try request("POST", "/secrets/batch/get", body: Array(JSONValue.object(members).serialized(indent: nil).utf8),
                                    readsOnly: true)
            try reply.check()
            let json = try reply.json()
            resolved = try reader.environment(json)
            guard let items = json["data"]?.arrayValue else { throw reader.notOurs }
            for (index, item) in items.enumerated() {
                let name = try reader.name(item)
                found[name] = BatchValues.Item(name: name, version: try reader.int(item, "version"),
                                               expiresAt: try reader.optionalTime(item, "expiresAt"),
                                               value: try reply.value(at: [.key("data"), .index(index)]))
            }
            missing.formUnion(try reader.names(json, "missing"))
            expired.formUnion(try reader.names(json, "expired"))
        } while start < unique.count
        guard let resolved else { throw reader.notOurs }
        return BatchValues(environment: resolved, items: unique.compactMap { found[$0] },
                           missing: unique.filter { missing.contains($0) }, expired: unique.filter { expired.contains($0) })
    }
}

private func < (a: (EnvironmentName, SecretName), b: (EnvironmentName, SecretName)) -> Bool {
    a.0 != b.0 ? a.0 < b.0 : a.1 < b.1
}
