import VSecureCore

/// Limits the server enforces on every request.
public struct ServerLimits: Sendable {
    /// Request bodies larger than this are refused with 413 before they are buffered (a declared
    /// Content-Length is checked first; a chunked body is cut off as it streams in).
    public var maxBodyBytes = 1 << 20
    /// Names in a batch get, secrets in a batch upsert.
    public var maxBatchSize = 1000
    /// Requests per second per API key (token bucket) and the burst above it.
    public var ratePerKey: Double = 200
    public var burstPerKey: Double = 400
    /// Failed authentications per second per client address, and the burst above it. Each
    /// failure is an audit entry; past this a client gets 429 and no more entries, so a flood
    /// of bad tokens cannot fill the disk through the audit log.
    public var failedAuthPerAddress: Double = 5
    public var failedAuthBurst: Double = 20
    /// Header limits for the HTTP/1 decoder.
    public var maxHeaderBytes = 16 * 1024
    /// A connection idle this long is closed.
    public var idleTimeoutSeconds: Int64 = 60
    /// A request body must arrive whole within this time, however steadily it trickles in.
    public var bodyTimeoutSeconds: Int64 = 30

    public init() {}
}

public struct ServerConfiguration: Sendable {
    public var dataDirectory: String
    public var host = "127.0.0.1"
    public var port = 8443
    public var tlsCertificate: String?
    public var tlsPrivateKey: String?
    /// Plain HTTP; refused on a non-loopback address unless `allowInsecureRemote`.
    public var insecureHTTP = false
    public var allowInsecureRemote = false
    public var limits = ServerLimits()
    /// `--rotation-interval`, `--allow-rotation-commands`.
    public var rotation = ServerRotationSettings()
    /// Serve `GET /v1/security/secrets/{name}` on the event loop, past the router
    /// (`FastReadHandler`); `--no-fast-reads` sends it through the router like every other route.
    public var fastReads = true
    /// `--webhook-cacert`: a PEM file of CA certificates that HTTPS webhook receivers may also
    /// chain to, besides the system's.
    public var webhookCACertificates: String?

    public init(dataDirectory: String) { self.dataDirectory = dataDirectory }

    public var vaultPath: String { dataDirectory + "/vault.db" }
    public var keyFilePath: String { dataDirectory + "/vault.key" }
    public var registryPath: String { dataDirectory + "/server.db" }
    /// The audit log and its key (kept apart from the vault's key).
    public var auditLogPath: String { dataDirectory + "/audit.db" }
    public var auditKeyPath: String { dataDirectory + "/audit.key" }

    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Refuses combinations that would expose secrets: no TLS material without --insecure-http,
    /// plain HTTP beyond loopback without the explicit override.
    public func validate() throws(VSecureError) {
        if insecureHTTP {
            if !isLoopback && !allowInsecureRemote {
                throw VSecureError.usage("refusing plain HTTP on \(host): secrets and keys would cross the network unencrypted",
                                         hint: "serve HTTPS with --tls-cert and --tls-key, or listen on 127.0.0.1 (--allow-insecure-remote forces it)")
            }
        } else if tlsCertificate == nil || tlsPrivateKey == nil {
            throw VSecureError.usage("HTTPS needs --tls-cert and --tls-key",
                                     hint: "for local development only: --insecure-http on a loopback address")
        }
        // Port 0 asks the kernel for a free port; the "serving" line names the one it chose.
        guard (0...65535).contains(port) else { throw VSecureError.usage("port \(port) is out of range") }
    }

    /// `HOST:PORT`, `[IPv6]:PORT` or `:PORT`.
    public mutating func setListen(_ text: String) throws(VSecureError) {
        var hostPart: Substring
        var portPart: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw VSecureError.usage("--listen takes HOST:PORT, not \(Quoted(text))") }
            portPart = rest.dropFirst()
        } else if let colon = text.lastIndex(of: ":") {
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        } else {
            throw VSecureError.usage("--listen takes HOST:PORT, not \(Quoted(text))")
        }
        if hostPart.isEmpty { hostPart = "127.0.0.1" }
        guard let port = Int(portPart), (0...65535).contains(port) else { throw VSecureError.usage("invalid port in \(Quoted(text))") }
        host = String(hostPart)
        self.port = port
    }
}
