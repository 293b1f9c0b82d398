import VSecureCore
import VSecureCrypto

/// A server answer, read in place in locked memory: public members are materialized as
/// `JSONValue`, values are decoded straight into `SecureBytes`, and error bodies become the
/// `VSecureError` the local vault would have thrown (same exit status; the server's message,
/// which for vault errors is the vault's own message).
struct RemoteReply {
    let status: Int
    let body: LockedBuffer
    let endpoint: RemoteEndpoint
    /// See `HTTPExchange.Response.outcomeUnknown`.
    let outcomeUnknown: Bool

    init(_ response: HTTPExchange.Response, endpoint: RemoteEndpoint) {
        status = response.status
        body = response.body
        self.endpoint = endpoint
        outcomeUnknown = response.outcomeUnknown
    }

    var notOurs: VSecureError {
        VSecureError(.remoteUnreachable, "the server at \(endpoint.baseURL) did not answer like a vsecure server (HTTP \(status))",
                     hint: "check that the endpoint (--endpoint, VSECURE_ENDPOINT or `vsecure config:get endpoint`) points at a vsecure server")
    }

    /// Throws the mapped error unless the status is one of `expected`.
    func check(_ expected: Set<Int> = [200]) throws(VSecureError) {
        guard !expected.contains(status) else { return }
        throw failure()
    }

    func failure() -> VSecureError {
        let parsed: (code: String, message: String, hint: String?)? = body.withBytes { bytes in
            guard let node = try? LockedJSON.parse(bytes), let error = node["error"],
                  case .string(let code, false)? = error["code"], case .string(let message, let escaped)? = error["message"],
                  let messageBytes = try? LockedJSON.decodedBytes(message, escaped: escaped, in: bytes, failure: .response)
            else { return nil }
            var hint: String?
            if case .string(let range, let escaped)? = error["details"]?["hint"],
               let hintBytes = try? LockedJSON.decodedBytes(range, escaped: escaped, in: bytes, failure: .response) {
                hint = String(decoding: hintBytes, as: UTF8.self)
            }
            return (LockedJSON.text(code, in: bytes), String(decoding: messageBytes, as: UTF8.self), hint)
        }
        guard let parsed else { return notOurs }
        var hints = parsed.hint.map { [$0] } ?? []
        let status: ExitStatus
        var message = parsed.message
        switch self.status {
        case 400, 413, 415: status = .usage
        case 401:
            status = .accessDenied
            message = "the server at \(endpoint.baseURL) refused the API key"
            hints = ["check VSECURE_API_KEY, or store a key with `vsecure login --endpoint \(endpoint.baseURL)`"]
        case 403: status = .accessDenied
        case 404: status = .notFound
        case 409: status = .conflict
        case 410: status = .expired
        case 429:
            status = .remoteUnreachable
            message = "the server at \(endpoint.baseURL) is rate-limiting this API key"
            hints = ["retry in a moment"]
        default:
            status = .remoteUnreachable
            message = "the server at \(endpoint.baseURL) answered \(self.status): \(parsed.message)"
            if outcomeUnknown {
                message += "; it may have carried out the request all the same"
                hints.insert("check the result (a list or get) before running the command again", at: 0)
            }
        }
        return VSecureError(status, message, hints: hints)
    }

    /// The whole answer as public JSON, leaving out `value` and `valueBase64` members wherever
    /// they are (values are read with `value(in:)`).
    func json() throws(VSecureError) -> JSONValue {
        let notOurs = self.notOurs
        return try body.withBytes { (bytes) throws(VSecureError) -> JSONValue in
            guard let node = try? LockedJSON.parse(bytes) else { throw notOurs }
            return try Self.publicJSON(node, in: bytes, notOurs: notOurs)
        }
    }

    private static func publicJSON(_ node: LockedJSON.Node, in bytes: UnsafeRawBufferPointer,
                                   notOurs: VSecureError) throws(VSecureError) -> JSONValue {
        switch node {
        case .null: return .null
        case .bool(let flag): return .bool(flag)
        case .number(let range):
            guard let number = Int64(LockedJSON.text(range, in: bytes)) else { throw notOurs }
            return .int(number)
        case .string(let range, let escaped):
            guard let decoded = try? LockedJSON.decodedBytes(range, escaped: escaped, in: bytes, failure: .response) else { throw notOurs }
            return .string(String(decoding: decoded, as: UTF8.self))
        case .array(let items):
            var result: [JSONValue] = []
            for item in items { result.append(try publicJSON(item, in: bytes, notOurs: notOurs)) }
            return .array(result)
        case .object(let members):
            var result: [(String, JSONValue)] = []
            for (key, value) in members where key != "value" && key != "valueBase64" {
                result.append((key, try publicJSON(value, in: bytes, notOurs: notOurs)))
            }
            return .object(result)
        }
    }

    /// The value of the object at `path` (keys and array indices) decoded into locked memory.
    func value(at path: [JSONPathStep]) throws(VSecureError) -> SecureBytes {
        let notOurs = self.notOurs
        return try body.withBytes { (bytes) throws(VSecureError) -> SecureBytes in
            guard var node = try? LockedJSON.parse(bytes) else { throw notOurs }
            for step in path {
                switch step {
                case .key(let key):
                    guard let next = node[key] else { throw notOurs }
                    node = next
                case .index(let index):
                    guard case .array(let items) = node, items.indices.contains(index) else { throw notOurs }
                    node = items[index]
                }
            }
            if case .string(let range, let escaped)? = node["value"] {
                let length = try LockedJSON.decodedLength(range, escaped: escaped, in: bytes)
                let value = SecureBytes(count: length)
                try value.withUnsafeMutableBytes { (out: UnsafeMutableRawBufferPointer) throws(VSecureError) in
                    try LockedJSON.decode(range, escaped: escaped, in: bytes, into: out)
                }
                return value
            }
            if case .string(let range, false)? = node["valueBase64"] {
                let text = UnsafeRawBufferPointer(rebasing: bytes[range])
                guard let length = RemoteSource.base64DecodedLength(text) else { throw notOurs }
                let value = SecureBytes(count: length)
                let written = value.withUnsafeMutableBytes { RemoteSource.decodeBase64(text, into: $0) }
                guard written == length else { throw notOurs }
                return value
            }
            throw notOurs
        }
    }
}

enum JSONPathStep {
    case key(String)
    case index(Int)
}

// MARK: - Reading public JSON

extension JSONValue {
    subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    var intValue: Int? {
        if case .int(let number) = self { return Int(number) }
        return nil
    }

    var boolValue: Bool? {
        if case .bool(let flag) = self { return flag }
        return nil
    }

    var arrayValue: [JSONValue]? {
        if case .array(let items) = self { return items }
        return nil
    }
}

/// Decodes the API's shapes (docs/api.md) into the domain types; anything malformed means the
/// answer did not come from a vsecure server.
struct ShapeReader {
    let notOurs: VSecureError

    func string(_ json: JSONValue, _ key: String) throws(VSecureError) -> String {
        guard let text = json[key]?.stringValue else { throw notOurs }
        return text
    }

    func optionalString(_ json: JSONValue, _ key: String) throws(VSecureError) -> String? {
        switch json[key] {
        case nil, .null?: return nil
        case .string(let text)?: return text
        default: throw notOurs
        }
    }

    func int(_ json: JSONValue, _ key: String) throws(VSecureError) -> Int {
        guard let number = json[key]?.intValue else { throw notOurs }
        return number
    }

    func time(_ json: JSONValue, _ key: String) throws(VSecureError) -> Timestamp {
        guard let time = try? Timestamp(iso8601: try string(json, key)) else { throw notOurs }
        return time
    }

    func optionalTime(_ json: JSONValue, _ key: String) throws(VSecureError) -> Timestamp? {
        guard let text = try optionalString(json, key) else { return nil }
        guard let time = try? Timestamp(iso8601: text) else { throw notOurs }
        return time
    }

    func name(_ json: JSONValue, _ key: String = "name") throws(VSecureError) -> SecretName {
        guard let name = try? SecretName(try string(json, key)) else { throw notOurs }
        return name
    }

    func names(_ json: JSONValue, _ key: String) throws(VSecureError) -> [SecretName] {
        guard let items = json[key]?.arrayValue else { throw notOurs }
        var names: [SecretName] = []
        for item in items {
            guard let text = item.stringValue, let name = try? SecretName(text) else { throw notOurs }
            names.append(name)
        }
        return names
    }

    func environment(_ json: JSONValue, _ key: String = "environment") throws(VSecureError) -> EnvironmentName {
        guard let environment = try? EnvironmentName(try string(json, key)) else { throw notOurs }
        return environment
    }

    func tags(_ json: JSONValue) throws(VSecureError) -> [Tag] {
        guard let items = json["tags"]?.arrayValue else { throw notOurs }
        var tags: [Tag] = []
        for item in items {
            guard let text = item.stringValue, let tag = try? Tag(text) else { throw notOurs }
            tags.append(tag)
        }
        return tags
    }

    func metadata(_ json: JSONValue) throws(VSecureError) -> [MetadataEntry] {
        guard case .object(let members)? = json["metadata"] else { throw notOurs }
        var entries: [MetadataEntry] = []
        for (key, value) in members {
            guard let text = value.stringValue, let entry = try? MetadataEntry(key: key, value: text) else { throw notOurs }
            entries.append(entry)
        }
        return entries
    }

    /// A secret as the API shows it; `versionKey` is the member holding its current version.
    func summary(_ json: JSONValue, versionKey: String = "version") throws(VSecureError) -> SecretSummary {
        SecretSummary(id: try string(json, "id"), environment: try environment(json), name: try name(json),
                      currentVersion: try int(json, versionKey),
                      attributes: SecretAttributes(tags: try tags(json), metadata: try metadata(json),
                                                   expiresAt: try optionalTime(json, "expiresAt"),
                                                   description: try optionalString(json, "description")),
                      createdAt: try time(json, "createdAt"), updatedAt: try time(json, "updatedAt"))
    }

    func version(_ json: JSONValue) throws(VSecureError) -> VersionSummary {
        guard let action = VersionAction(rawValue: try string(json, "action")) else { throw notOurs }
        var source: Int?
        if let value = json["sourceVersion"], value != .null {
            guard let number = value.intValue else { throw notOurs }
            source = number
        }
        return VersionSummary(version: try int(json, "version"), action: action, actor: try string(json, "actor"),
                              createdAt: try time(json, "createdAt"), valueLength: try int(json, "valueLength"),
                              fingerprint: try string(json, "fingerprint"), sourceVersion: source,
                              attributes: SecretAttributes(tags: try tags(json), metadata: try metadata(json),
                                                           expiresAt: try optionalTime(json, "expiresAt")))
    }
}
