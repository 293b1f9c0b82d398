import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import VSecureCore
import VSecureCrypto
import VSecureRemote

/// A vsecure server, for Swift programs: `try await client.secrets.get("API_KEY")`.
///
/// Every call is one or two HTTPS requests through the same client the `vsecure` CLI uses
/// (libcurl, loaded on first use; TLS verified; bounded retries on connection errors, 429 and
/// 503; the whole call, retries included, within `timeout`). libcurl blocks, so each call runs
/// on a queue of the client's own, never on Swift concurrency's cooperative threads; the
/// awaiting task is suspended meanwhile. A call that has started is not interrupted by task
/// cancellation: it ends within the timeout.
///
/// Values travel only in locked memory, from the response buffer to the `SecretValue` you get.
public final class VSecureClient: Sendable {
    /// `https://host:port`, without a trailing slash.
    public var endpoint: String { remote.baseURL }

    let remote: RemoteEndpoint
    private let queue = DispatchQueue(label: "vsecure.client", attributes: .concurrent)
    private let requests = Mutex(0)

    /// A client for the server at `endpoint` (`https://host:port`; `http://` only for a server on
    /// loopback started with `--insecure-http`).
    ///
    /// - Parameters:
    ///   - apiKey: the API key, copied into locked memory.
    ///   - caFile: a PEM CA bundle to trust instead of the system store.
    ///   - timeout: the limit for each call, retries included (at most one hour).
    ///   - verifyTLS: `false` turns certificate checks off. Anyone on the path can then read
    ///     secrets and the key; for tests against a throw-away server only.
    public init(endpoint: String, apiKey: SecretValue, caFile: String? = nil, timeout: Duration = .seconds(10),
                verifyTLS: Bool = true) throws(VSecureClientError) {
        let url: String
        do { url = try ClientConfig.checkEndpoint(endpoint) } catch { throw VSecureClientError(error) }
        guard apiKey.count > 0 else { throw VSecureClientError(.configuration, "the API key is empty") }
        var remote = RemoteEndpoint(baseURL: url, apiKey: apiKey.locked)
        if let caFile {
            guard PrivateFiles.kind(of: caFile) == .regular else {
                throw VSecureClientError(.configuration, "no CA file at \(Quoted(caFile))", hints: ["give the path of a PEM CA bundle"])
            }
            remote.caFile = caFile
        }
        remote.verifyTLS = verifyTLS
        remote.timeoutMilliseconds = Self.milliseconds(timeout)
        self.remote = remote
    }

    /// As above, with the key as a `String` (copied into locked memory; your `String` cannot be
    /// wiped, so prefer reading the key straight into a `SecretValue`).
    public convenience init(endpoint: String, apiKey: String, caFile: String? = nil, timeout: Duration = .seconds(10),
                            verifyTLS: Bool = true) throws(VSecureClientError) {
        try self.init(endpoint: endpoint, apiKey: SecretValue(copying: apiKey), caFile: caFile, timeout: timeout, verifyTLS: verifyTLS)
    }

    /// A client configured exactly as the `vsecure` CLI finds its server: see `fromEnvironment()`.
    public convenience init() throws(VSecureClientError) {
        try self.init(configured: Self.configuredEndpoint())
    }

    /// The server the `vsecure` CLI would use, with the same settings:
    ///
    /// - endpoint: `VSECURE_ENDPOINT`, else `endpoint` in `~/.vsecure/config.json`;
    /// - API key: `VSECURE_API_KEY`, else `~/.vsecure/credentials` (written by `vsecure login`,
    ///   mode 0600, used only for the endpoint it was stored for);
    /// - CA: `VSECURE_CA_CERT`, else `caCert` in the config file;
    /// - timeout: `VSECURE_TIMEOUT` (`10s`, `1m`), else `timeout` in the config file, else 10 s;
    /// - `VSECURE_VERIFY_SSL=false` turns TLS verification off, with a warning on stderr.
    ///
    /// `VSECURE_CONFIG_DIR` replaces `~/.vsecure`. Nothing configured is a `.configuration` error.
    public static func fromEnvironment() throws(VSecureClientError) -> VSecureClient {
        try VSecureClient(configured: configuredEndpoint())
    }

    private init(configured remote: RemoteEndpoint) {
        self.remote = remote
    }

    private static func configuredEndpoint() throws(VSecureClientError) -> RemoteEndpoint {
        do {
            guard let settings = try RemoteSettings.resolveServer() else {
                throw VSecureClientError(.configuration, "no vsecure server is configured",
                                         hints: ["set VSECURE_ENDPOINT and VSECURE_API_KEY, or run `vsecure login --endpoint URL`"])
            }
            return try settings.remoteEndpoint { warning in
                let line = Array("vsecure: warning: \(warning)\n".utf8)
                _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
            }
        } catch let error as VSecureClientError {
            throw error
        } catch let error as VSecureError {
            // A bad setting, a missing key or CA file, an unsafe credentials file: all are the
            // configuration's fault, whatever status the CLI gives them.
            throw error.status == .internalError ? VSecureClientError(error) : VSecureClientError(.configuration, error.message, hints: error.hints)
        } catch {
            throw VSecureClientError(.internalError, "unexpected error while reading the configuration")
        }
    }

    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        let capped = min(max(seconds, 0), 3600)
        return max(Int(capped) * 1000 + Int(attoseconds / 1_000_000_000_000_000), 1)
    }

    /// The secrets lifecycle: get, batchGet, create, update, versions, rollback, list, delete.
    public var secrets: Secrets { Secrets(client: self) }

    /// HTTP requests this client has made (each retry of one request counts once).
    public var requestCount: Int { requests.withLock { $0 } }

    /// Runs `operation` with a store of its own on the client's queue (RemoteStore is not
    /// thread-safe, and costs nothing to make: libcurl handles are per request anyway).
    func perform<T: Sendable>(_ operation: @escaping @Sendable (RemoteStore) throws(VSecureError) -> T) async throws(VSecureClientError) -> T {
        let remote = self.remote
        let result: Result<T, VSecureClientError> = await withCheckedContinuation { continuation in
            queue.async {
                let store = RemoteStore(endpoint: remote)
                let outcome = Result { () throws(VSecureError) -> T in try operation(store) }.mapError(VSecureClientError.init)
                self.requests.withLock { $0 += store.requestCount }
                continuation.resume(returning: outcome)
            }
        }
        return try result.get()
    }
}
