#if canImport(Glibc)
import Glibc
#endif
import CCurlLoader
import VSecureCore
import VSecureCrypto

/// Where a server is and how to reach it.
public struct RemoteEndpoint: Sendable {
    /// `https://host:port` (no trailing slash).
    public var baseURL: String
    public var apiKey: SecureBytes
    /// A PEM CA bundle to trust instead of the system store.
    public var caFile: String?
    public var verifyTLS = true
    /// The whole exchange, retries included, must finish within this.
    public var timeoutMilliseconds = 10_000
    public var maxResponseBytes = 64 << 20

    public init(baseURL: String, apiKey: SecureBytes) {
        var url = baseURL
        while url.hasSuffix("/") { url.removeLast() }
        self.baseURL = url
        self.apiKey = apiKey
    }
}

/// One HTTP request over the dynamically loaded libcurl, with bounded retries (backoff with
/// jitter; never past the overall timeout). The response body lands in locked memory; the API
/// key is handed to libcurl from locked memory and libcurl's own copies are wiped when the
/// handle is freed.
///
/// What is retried: a connection that could not be made and a 429 (nothing ran), always. A
/// connection that broke after the request went out, and a 503, only for a request that may run
/// twice: a GET, a read sent as a POST (`readsOnly`), or a write with an `Idempotency-Key`
/// (the server runs it once). Any other write (an API key's creation or rotation, a delete) is
/// not sent again: it may have run, and a second run would mint a second key or report a
/// delete that happened as "not found". Its error says that the outcome is unknown.
enum HTTPExchange {
    struct Response {
        var status: Int
        var body: LockedBuffer
        /// The answer's `Retry-After`, in seconds (0 when there is none).
        var retryAfterSeconds = 0
        /// A 503 to a request that may not run twice. A vsecure server rolls a change back when
        /// its audit entry cannot be written, but a proxy in between, or an older server, may
        /// answer 503 after the change ran, so the client cannot tell.
        var outcomeUnknown = false
    }

    static func perform(_ endpoint: RemoteEndpoint, method: String, path: String, headers: [String] = [],
                        body: [UInt8], readsOnly: Bool = false) throws(VSecureError) -> Response {
        let result = body.withUnsafeBytes { raw in
            Result { () throws(VSecureError) in
                try perform(endpoint, method: method, path: path, headers: headers, rawBody: raw, readsOnly: readsOnly)
            }
        }
        return try result.get()
    }

    /// A request whose body holds a value: it stays in locked memory.
    static func perform(_ endpoint: RemoteEndpoint, method: String, path: String, headers: [String] = [],
                        body: SecureBytes) throws(VSecureError) -> Response {
        try body.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
            try perform(endpoint, method: method, path: path, headers: headers, rawBody: raw, readsOnly: false)
        }
    }

    /// `headers` are extra public header lines (`If-Match: "3"`, `Idempotency-Key: …`); every
    /// attempt sends the same ones, so a retried write with an idempotency key runs once.
    private static func perform(_ endpoint: RemoteEndpoint, method: String, path: String, headers: [String],
                                rawBody body: UnsafeRawBufferPointer, readsOnly: Bool) throws(VSecureError) -> Response {
        let repeatable = readsOnly || method == "GET" || headers.contains { $0.hasPrefix("Idempotency-Key:") }
        if let problem = vs_curl_load() {
            throw VSecureError(.remoteUnreachable, String(cString: problem), hint: "install libcurl4 to reach a vsecure server")
        }
        let start = monotonicMilliseconds()
        var attempt = 0
        while true {
            attempt += 1
            let remaining = endpoint.timeoutMilliseconds - (monotonicMilliseconds() - start)
            guard remaining > 0 else {
                throw VSecureError(.remoteUnreachable, "no answer from \(endpoint.baseURL) within \(endpoint.timeoutMilliseconds) ms")
            }
            let outcome = try once(endpoint, method: method, path: path, headers: headers, body: body, timeoutMilliseconds: remaining)
            // 100 ms, 200 ms… plus up to 100 ms of jitter, never past the deadline.
            var pause = 100 << (attempt - 1) + Int(Sodium.randomUniform(100))
            let left = endpoint.timeoutMilliseconds - (monotonicMilliseconds() - start) - 1
            switch outcome {
            case .response(let response) where response.status == 429 || (response.status == 503 && repeatable):
                guard attempt < 3 else { return response }
                // The server said when to come back: not sooner; and if that is past the
                // deadline, its answer is final now rather than after a wait that cannot pay off.
                if response.retryAfterSeconds > 0 {
                    guard response.retryAfterSeconds < left / 1000 + 1, response.retryAfterSeconds * 1000 < left else { return response }
                    pause = max(pause, response.retryAfterSeconds * 1000)
                }
            case .response(var response):
                response.outcomeUnknown = response.status == 503 && !repeatable
                return response
            case .transportFailure(var error, let retryable, let afterSending):
                if afterSending && !repeatable {
                    error.message += "; the server may have carried out the \(method) all the same"
                    error.hints.insert("check the result (a list or get) before running the command again", at: 0)
                    throw error
                }
                guard retryable, attempt < 3 else { throw error }
            }
            pause = min(pause, left)
            if pause > 0 { usleep(useconds_t(pause * 1000)) }
        }
    }

    private enum Outcome {
        case response(Response)
        /// `afterSending`: the request (or part of it) went out, so it may have run.
        case transportFailure(VSecureError, retryable: Bool, afterSending: Bool = false)
    }

    private static func once(_ endpoint: RemoteEndpoint, method: String, path: String, headers: [String],
                             body: UnsafeRawBufferPointer, timeoutMilliseconds: Int) throws(VSecureError) -> Outcome {
        guard let handle = vs_curl_new() else { throw VSecureError(.internalError, "cannot create a libcurl handle") }
        defer { vs_curl_free(handle) }
        let url = endpoint.baseURL + path
        var rc = vs_curl_prepare(handle, url, Int(min(timeoutMilliseconds, 5_000)), Int(timeoutMilliseconds), endpoint.caFile,
                                 endpoint.verifyTLS ? 1 : 0)
        guard rc == 0 else { throw VSecureError(.usage, "invalid server address \(Quoted(endpoint.baseURL)): \(String(cString: vs_curl_error_text(rc)))") }
        // "Authorization: Bearer <key>\0", built in locked memory; libcurl copies it with the
        // wiping allocator.
        let prefix = Array("Authorization: Bearer ".utf8)
        let authorization = SecureBytes(count: prefix.count + endpoint.apiKey.count + 1)
        authorization.withUnsafeMutableBytes { out in
            prefix.withUnsafeBytes { out.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: prefix.count) }
            endpoint.apiKey.withUnsafeBytes { key in
                if key.count > 0 { (out.baseAddress! + prefix.count).copyMemory(from: key.baseAddress!, byteCount: key.count) }
            }
            out[out.count - 1] = 0
        }
        rc = authorization.withUnsafeBytes { auth -> Int32 in
            let lines: [UnsafePointer<CChar>?] = [auth.baseAddress!.assumingMemoryBound(to: CChar.self)]
            return (["Content-Type: application/json", "Accept: application/json", "Expect:"] + headers).withCStrings { others in
                (lines + others).withUnsafeBufferPointer { vs_curl_set_headers(handle, $0.baseAddress!, $0.count) }
            }
        }
        guard rc == 0 else { throw VSecureError(.internalError, "libcurl refused the request headers") }
        _ = vs_curl_set_method(handle, method)
        let buffer = LockedBuffer(limit: endpoint.maxResponseBytes)
        let context = Unmanaged.passUnretained(buffer).toOpaque()
        _ = vs_curl_set_sink(handle, { bytes, count, context in
            let buffer = Unmanaged<LockedBuffer>.fromOpaque(context!).takeUnretainedValue()
            return buffer.append(UnsafeRawBufferPointer(start: bytes, count: count)) ? count : 0
        }, context)
        // POST, PUT and PATCH send the body (a custom method keeps its name with a body).
        if method != "GET" && method != "DELETE" { _ = vs_curl_set_body(handle, body.baseAddress, body.count) }
        let code = vs_curl_perform(handle)
        withExtendedLifetime(buffer) {}
        if code != 0 {
            if buffer.overflowed {
                throw VSecureError(.remoteUnreachable, "the response from \(endpoint.baseURL) is larger than \(endpoint.maxResponseBytes) bytes")
            }
            let detail = String(cString: vs_curl_error_detail(handle))
            let text = detail.isEmpty ? String(cString: vs_curl_error_text(code)) : detail
            switch code {
            case 6, 7:
                return .transportFailure(VSecureError(.remoteUnreachable, "cannot reach the server at \(endpoint.baseURL): \(text)",
                                                      hint: "check --endpoint / VSECURE_ENDPOINT and that the server runs"), retryable: true)
            case 28:
                return .transportFailure(VSecureError(.remoteUnreachable, "no answer from \(endpoint.baseURL) within \(endpoint.timeoutMilliseconds) ms (\(text))"),
                                         retryable: false, afterSending: true)
            case 35, 51, 53, 54, 58, 59, 60, 64, 66, 77, 80, 82, 83, 90, 91:
                return .transportFailure(VSecureError(.remoteUnreachable, "TLS with \(endpoint.baseURL) failed: \(text)",
                                                      hint: "trust the server's CA with --cacert or VSECURE_CA_CERT"), retryable: false)
            case 52, 55, 56, 18:
                return .transportFailure(VSecureError(.remoteUnreachable, "the connection to \(endpoint.baseURL) broke: \(text)"),
                                         retryable: true, afterSending: true)
            default:
                return .transportFailure(VSecureError(.remoteUnreachable, "request to \(endpoint.baseURL) failed: \(text)"), retryable: false)
            }
        }
        return .response(Response(status: vs_curl_status(handle), body: buffer,
                                  retryAfterSeconds: Int(clamping: vs_curl_retry_after(handle))))
    }

    static func monotonicMilliseconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int(now.tv_sec) * 1000 + Int(now.tv_nsec) / 1_000_000
    }
}

extension Array where Element == String {
    /// C strings of public text for the duration of `body`.
    func withCStrings<R>(_ body: ([UnsafePointer<CChar>?]) -> R) -> R {
        let copies = map { strdup($0) }
        defer { copies.forEach { free($0) } }
        return body(copies.map { UnsafePointer($0) })
    }
}
