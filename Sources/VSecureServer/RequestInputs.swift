import Hummingbird
import HummingbirdCore
import VSecureCore

/// Reading names, environments and numbers out of paths and query strings, with API errors.
extension Request {
    func query(_ name: String) -> String? {
        uri.queryParameters.query(name)
    }

    func queryInt(_ name: String, range: ClosedRange<Int>) throws -> Int? {
        try uri.queryParameters.queryInt(name, range: range)
    }

    func queryBool(_ name: String) throws -> Bool {
        try uri.queryParameters.queryBool(name)
    }
}

/// The same over a query string parsed once (`request.uri.queryParameters` parses it again on
/// every use), for routes that read several parameters.
extension FlatDictionary<Substring, Substring> {
    func query(_ name: String) -> String? {
        get(name).flatMap { $0.isEmpty ? nil : $0 }
    }

    func queryInt(_ name: String, range: ClosedRange<Int>) throws -> Int? {
        guard let text = query(name) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw APIError(.validationError, "query parameter \(Quoted(name)) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    func queryBool(_ name: String) throws -> Bool {
        switch query(name) {
        case nil, "false"?, "0"?: return false
        case "true"?, "1"?: return true
        default: throw APIError(.validationError, "query parameter \(Quoted(name)) must be true or false")
        }
    }
}

extension ServerContext {
    func secretName() throws -> SecretName {
        guard let text = parameters.get("name") else { throw APIError(.validationError, "a secret name is required") }
        do { return try SecretName(text) } catch { throw APIError(error) }
    }
}

extension SecretService {
    /// The request's environment (explicit, else the default), which the vault must have.
    nonisolated func environment(_ text: String?) throws -> EnvironmentName {
        guard let text else { return defaultEnvironment }
        do throws(VSecureError) {
            let environment = try EnvironmentName(text)
            guard environments.contains(environment) else { throw unknownEnvironment(environment, configured: environments) }
            return environment
        } catch {
            throw APIError(error)
        }
    }
}

func parseExpiry(expiresIn: String?, expiresAt: String?, now: Timestamp) throws(VSecureError) -> Timestamp? {
    if expiresIn != nil && expiresAt != nil { throw VSecureError.usage("give either expiresIn or expiresAt, not both") }
    if let expiresIn { return now.adding(try SecretDuration(parsing: expiresIn)) }
    if let expiresAt {
        let time = try Timestamp(iso8601: expiresAt)
        guard time > now else { throw VSecureError.usage("expiresAt \(expiresAt) is in the past") }
        return time
    }
    return nil
}

func parseTags(_ list: [String]?) throws(VSecureError) -> [Tag] {
    guard let list else { return [] }
    var tags: [Tag] = []
    for item in list {
        let tag = try Tag(item)
        if !tags.contains(tag) { tags.append(tag) }
    }
    return tags
}

func parseMetadata(_ pairs: [(String, String)]?) throws(VSecureError) -> [MetadataEntry] {
    guard let pairs else { return [] }
    var entries: [MetadataEntry] = []
    for (key, value) in pairs { entries.append(try MetadataEntry(key: key, value: value)) }
    return entries
}
