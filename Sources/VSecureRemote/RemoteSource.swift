import VSecureCore
import VSecureCrypto

/// A vsecure server as the launcher's source: exactly one `POST /v1/security/secrets/batch/get`
/// per launch. The response stays in locked memory; each value is unescaped (or base64-decoded)
/// straight into the launcher's environment block. Expiry is checked by the launcher itself, so
/// the request asks for expired secrets too.
public final class RemoteSource {
    struct Entry {
        var name: SecretName
        var version: Int
        var expiresAt: Timestamp?
        var value: Range<Int>
        var escaped: Bool
        var base64: Bool
        var length: Int
    }

    private let endpoint: RemoteEndpoint
    private var response: LockedBuffer?
    private var entries: [Entry] = []
    public private(set) var requestCount = 0

    public init(endpoint: RemoteEndpoint) {
        self.endpoint = endpoint
    }

    public var label: String { "server \(endpoint.baseURL)" }

    public func fetch(environment: EnvironmentName, names: [SecretName], tagSelections: [[Tag]]) throws(VSecureError) -> [(name: SecretName, version: Int, expiresAt: Timestamp?, valueLength: Int, selectedByTags: Bool, slot: Int)] {
        let request = JSONValue.object([
            ("environment", .string(environment.rawValue)),
            ("names", .array(names.map { .string($0.rawValue) })),
            ("tagSelections", .array(tagSelections.map { .array($0.map { .string($0.rawValue) }) })),
            ("allowExpired", .bool(true)),
        ])
        requestCount += 1
        let reply = try HTTPExchange.perform(endpoint, method: "POST", path: "/v1/security/secrets/batch/get",
                                             body: Array(request.serialized(indent: nil).utf8))
        try Self.check(reply, endpoint: endpoint)
        response = reply.body
        let requested = Set(names)
        entries = try reply.body.withBytes { (bytes) throws(VSecureError) -> [Entry] in try Self.decode(bytes) }
        return entries.enumerated().map { slot, entry in
            (entry.name, entry.version, entry.expiresAt, entry.length, !requested.contains(entry.name), slot)
        }
    }

    public func writeValue(slot: Int, into destination: UnsafeMutableRawBufferPointer) throws(VSecureError) {
        guard let response, entries.indices.contains(slot) else { throw VSecureError(.internalError, "the response is gone") }
        let entry = entries[slot]
        try response.withBytes { (bytes) throws(VSecureError) in
            if entry.base64 {
                guard Self.decodeBase64(UnsafeRawBufferPointer(rebasing: bytes[entry.value]), into: destination) == entry.length else {
                    throw VSecureError(.remoteUnreachable, "the server sent a malformed value for \(entry.name)")
                }
            } else {
                try LockedJSON.decode(entry.value, escaped: entry.escaped, in: bytes, into: destination)
            }
        }
    }

    /// Frees (and so wipes) the response.
    public func close() {
        response = nil
        entries = []
    }

    static func check(_ reply: HTTPExchange.Response, endpoint: RemoteEndpoint) throws(VSecureError) {
        guard reply.status != 200 else { return }
        // Error bodies carry codes and messages, never values; show the server's message.
        let message = reply.body.withBytes { bytes -> String? in
            guard let node = try? LockedJSON.parse(bytes), case .string(let range, _)? = node["error"]?["message"] else { return nil }
            return LockedJSON.text(range, in: bytes)
        }
        switch reply.status {
        case 401:
            throw VSecureError(.accessDenied, "the server at \(endpoint.baseURL) refused the API key" + (message.map { ": \($0)" } ?? ""),
                               hint: "check VSECURE_API_KEY")
        case 403:
            throw VSecureError(.accessDenied, "the server refused: \(message ?? "permission denied")")
        case 400, 404, 409, 410, 413:
            throw VSecureError(.usage, "the server refused the request: \(message ?? "status \(reply.status)")")
        default:
            throw VSecureError(.remoteUnreachable, "the server at \(endpoint.baseURL) answered \(reply.status)" + (message.map { ": \($0)" } ?? ""))
        }
    }

    static func decode(_ bytes: UnsafeRawBufferPointer) throws(VSecureError) -> [Entry] {
        let notOurs = VSecureError(.remoteUnreachable, "the server's answer is not a vsecure batch response",
                                   hint: "check that --endpoint points at a vsecure server")
        guard let document = try? LockedJSON.parse(bytes), case .array(let items)? = document["data"] else { throw notOurs }
        var entries: [Entry] = []
        for item in items {
            guard case .string(let nameRange, false)? = item["name"],
                  let name = try? SecretName(LockedJSON.text(nameRange, in: bytes)),
                  case .number(let versionRange)? = item["version"], let version = Int(LockedJSON.text(versionRange, in: bytes))
            else { throw notOurs }
            var expiresAt: Timestamp?
            if case .string(let range, false)? = item["expiresAt"] {
                expiresAt = try? Timestamp(iso8601: LockedJSON.text(range, in: bytes))
                if expiresAt == nil { throw notOurs }
            }
            if case .string(let range, let escaped)? = item["value"] {
                entries.append(Entry(name: name, version: version, expiresAt: expiresAt, value: range, escaped: escaped, base64: false,
                                     length: try LockedJSON.decodedLength(range, escaped: escaped, in: bytes)))
            } else if case .string(let range, false)? = item["valueBase64"] {
                guard let length = base64DecodedLength(UnsafeRawBufferPointer(rebasing: bytes[range])) else { throw notOurs }
                entries.append(Entry(name: name, version: version, expiresAt: expiresAt, value: range, escaped: false, base64: true, length: length))
            } else {
                throw notOurs
            }
        }
        return entries
    }

    static func base64DecodedLength(_ text: UnsafeRawBufferPointer) -> Int? {
        var n = text.count
        while n > 0 && text[n - 1] == UInt8(ascii: "=") { n -= 1 }
        guard n % 4 != 1 else { return nil }
        return n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1)
    }

    /// Decodes standard base64 into `destination`; returns the byte count, or -1 when malformed.
    static func decodeBase64(_ text: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Int {
        var accumulator: UInt32 = 0, bits = 0, out = 0
        for c in text {
            let v: UInt32
            switch c {
            case 0x41...0x5A: v = UInt32(c - 0x41)
            case 0x61...0x7A: v = UInt32(c - 0x61 + 26)
            case 0x30...0x39: v = UInt32(c - 0x30 + 52)
            case UInt8(ascii: "+"): v = 62
            case UInt8(ascii: "/"): v = 63
            case UInt8(ascii: "="): continue
            default: return -1
            }
            accumulator = accumulator << 6 | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                guard out < destination.count else { return -1 }
                destination[out] = UInt8(truncatingIfNeeded: accumulator >> UInt32(bits))
                out += 1
            }
        }
        return out
    }
}
