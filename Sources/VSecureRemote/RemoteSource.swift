#if canImport(Glibc)
import Glibc
#endif
import VSecureCore
import VSecureCrypto

/// `--fallback`: where the offline cache lives and how old it may be.
public struct FallbackPolicy: Sendable {
    public var directory: String
    public var maxStaleSeconds: Int64

    public init(directory: String, maxStaleSeconds: Int64) {
        self.directory = directory
        self.maxStaleSeconds = maxStaleSeconds
    }
}

/// What the launcher tells the user (and the program, through VSECURE_STALE=1) when the
/// secrets came from the offline cache.
public struct StaleNotice: Sendable {
    public let fetchedAt: Timestamp
    public let age: Int64
    /// Why the server could not be used (no values in it).
    public let reason: String
}

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
    private let fallback: FallbackPolicy?
    private var response: LockedBuffer?
    private var entries: [Entry] = []
    public private(set) var requestCount = 0
    /// Set when the secrets came from the offline cache instead of the server.
    public private(set) var stale: StaleNotice?
    /// Set when the offline cache could not be written after a successful fetch (the launch
    /// goes on; the caller warns).
    public private(set) var cacheProblem: String?

    /// The launch's run id, sent as `VSecure-Run-Id` so the server's audit entry for this batch
    /// names it (the program gets it as VSECURE_RUN_ID).
    public var runID: String?

    public init(endpoint: RemoteEndpoint, fallback: FallbackPolicy? = nil, runID: String? = nil) {
        self.endpoint = endpoint
        self.fallback = fallback
        self.runID = runID
    }

    public var label: String { "server \(endpoint.baseURL)" }

    public func fetch(environment: EnvironmentName, names: [SecretName], tagSelections: [[Tag]]) throws(VSecureError) -> [(name: SecretName, version: Int, expiresAt: Timestamp?, valueLength: Int, selectedByTags: Bool, slot: Int)] {
        let request = JSONValue.object([
            ("environment", .string(environment.rawValue)),
            ("names", .array(names.map { .string($0.rawValue) })),
            ("tagSelections", .array(tagSelections.map { .array($0.map { .string($0.rawValue) }) })),
            ("allowExpired", .bool(true)),
        ])
        let body = Array(request.serialized(indent: nil).utf8)
        let cache = fallback.map { OfflineCache(directory: $0.directory, endpoint: endpoint, request: body) }
        requestCount += 1
        let reply: HTTPExchange.Response
        do {
            reply = try HTTPExchange.perform(endpoint, method: "POST", path: "/v1/security/secrets/batch/get",
                                             headers: runID.map { ["VSecure-Run-Id: " + $0] } ?? [], body: body, readsOnly: true)
        } catch {
            // Only "cannot be reached" falls back; libcurl errors all arrive as remoteUnreachable.
            guard let cache, let fallback, error.status == .remoteUnreachable else { throw error }
            return try fromCache(cache, fallback, because: error, names: names)
        }
        do {
            try Self.check(reply, endpoint: endpoint)
        } catch {
            // A server that answers 5xx (after the retries) is down for this purpose; a 4xx,
            // 401 and 403 above all, is an answer and never falls back.
            guard let cache, let fallback, (500...599).contains(reply.status) else { throw error }
            return try fromCache(cache, fallback, because: error, names: names)
        }
        let decoded = try reply.body.withBytes { (bytes) throws(VSecureError) -> [Entry] in try Self.decode(bytes) }
        response = reply.body
        entries = decoded
        if let cache {
            do {
                try cache.store(reply.body, fetchedAt: Int64(time(nil)))
            } catch {
                cacheProblem = "the offline cache was not updated: \(error.message)"
            }
        }
        return slots(for: names)
    }

    private func slots(for names: [SecretName]) -> [(name: SecretName, version: Int, expiresAt: Timestamp?, valueLength: Int, selectedByTags: Bool, slot: Int)] {
        let requested = Set(names)
        return entries.enumerated().map { slot, entry in
            (entry.name, entry.version, entry.expiresAt, entry.length, !requested.contains(entry.name), slot)
        }
    }

    /// The server could not be reached: the offline cache, if it is there, opens with this API
    /// key, and is young enough.
    private func fromCache(_ cache: OfflineCache, _ fallback: FallbackPolicy, because failure: VSecureError,
                           names: [SecretName]) throws(VSecureError) -> [(name: SecretName, version: Int, expiresAt: Timestamp?, valueLength: Int, selectedByTags: Bool, slot: Int)] {
        func refuse(_ reason: String, hint: String) -> VSecureError {
            var error = failure
            error.message += "; the offline cache cannot stand in: \(reason)"
            error.hints.append(hint)
            return error
        }
        let loaded: (body: LockedBuffer, fetchedAt: Int64)
        do {
            loaded = try cache.load(limit: endpoint.maxResponseBytes, now: Int64(time(nil)))
        } catch {
            switch error {
            case .missing:
                throw refuse("there is none yet for this server, environment and manifest",
                             hint: "the cache is written after a successful fetch made with --fallback (or source.fallback: true)")
            case .unreadable(let reason):
                throw refuse("\(Quoted(cache.path)) is unusable (\(reason))", hint: "remove it; the next successful fetch writes a new one")
            case .wrongKeyOrDamaged:
                throw refuse("\(Quoted(cache.path)) does not open with this API key (rotated?) or is damaged",
                             hint: "the next successful fetch with this key writes a new one")
            }
        }
        let now = Int64(time(nil))
        let age = max(0, now - loaded.fetchedAt)
        guard age <= fallback.maxStaleSeconds else {
            throw refuse("it is \(SecretDuration.approximate(seconds: age)) old, older than the allowed \(SecretDuration.approximate(seconds: fallback.maxStaleSeconds))",
                         hint: "--max-stale DURATION (or source.maxStale) allows an older cache")
        }
        let decoded: [Entry]
        do {
            decoded = try loaded.body.withBytes { (bytes) throws(VSecureError) -> [Entry] in try Self.decode(bytes) }
        } catch {
            throw refuse("\(Quoted(cache.path)) does not hold a batch response", hint: "remove it; the next successful fetch writes a new one")
        }
        response = loaded.body
        entries = decoded
        stale = StaleNotice(fetchedAt: Timestamp(secondsSinceEpoch: loaded.fetchedAt), age: age, reason: failure.message)
        return slots(for: names)
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
