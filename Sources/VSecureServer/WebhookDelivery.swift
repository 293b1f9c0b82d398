import NIOCore
import NIOPosix
import NIOSSL
import VSecureCore
import VSecureCrypto

/// A webhook's address, checked: `https://HOST[:PORT][/PATH][?QUERY]`, or `http://` to a
/// loopback host only (a receiver on the same machine). No user info, no fragment, printable
/// ASCII only, at most 2048 bytes.
struct WebhookURL: Sendable, Equatable {
    static let maxLength = 2048

    var secure: Bool
    /// Without brackets for IPv6.
    var host: String
    var port: Int
    /// The request target: path and query, at least `/`.
    var target: String

    var isIPLiteral: Bool {
        host.contains(":") || (host.split(separator: ".").count == 4 && host.split(separator: ".").allSatisfy { UInt8($0) != nil })
    }

    var isLoopback: Bool {
        if host == "localhost" || host == "::1" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.first == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    var hostHeader: String {
        let shown = host.contains(":") ? "[\(host)]" : host
        return port == (secure ? 443 : 80) ? shown : "\(shown):\(port)"
    }

    /// The URL, or what is wrong with it (without repeating it: a URL can carry a token).
    static func parse(_ text: String) -> Result<WebhookURL, WebhookURLProblem> {
        guard !text.isEmpty else { return .failure(.init("is empty")) }
        guard text.utf8.count <= maxLength else { return .failure(.init("is longer than \(maxLength) bytes")) }
        guard text.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            return .failure(.init("must be printable ASCII without spaces (percent-encode the rest)"))
        }
        let lower = text.lowercased()
        let secure: Bool
        let rest: Substring
        if lower.hasPrefix("https://") {
            secure = true
            rest = text.dropFirst("https://".count)
        } else if lower.hasPrefix("http://") {
            secure = false
            rest = text.dropFirst("http://".count)
        } else {
            return .failure(.init("must start with https:// (or http:// to a loopback address)"))
        }
        guard !rest.contains("#") else { return .failure(.init("must not have a fragment (#…)")) }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var target = String(rest[authorityEnd...])
        if target.isEmpty { target = "/" } else if target.hasPrefix("?") { target = "/" + target }
        guard !authority.contains("@") else { return .failure(.init("must not contain user info (user:password@)")) }
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return .failure(.init("has an unclosed IPv6 bracket")) }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return .failure(.init("has text after the IPv6 address")) }
                portText = after.dropFirst()
            }
            guard !host.isEmpty, host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                return .failure(.init("has an invalid IPv6 address"))
            }
        } else {
            if let colon = authority.lastIndex(of: ":") {
                host = authority[..<colon]
                portText = authority[authority.index(after: colon)...]
            } else {
                host = authority
            }
            guard !host.isEmpty else { return .failure(.init("has no host")) }
            guard host.utf8.count <= 253, host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }) else {
                return .failure(.init("has an invalid host name"))
            }
        }
        var port = secure ? 443 : 80
        if let portText {
            guard let number = Int(portText), portText.allSatisfy(\.isASCII), (1...65535).contains(number) else {
                return .failure(.init("has an invalid port"))
            }
            port = number
        }
        let url = WebhookURL(secure: secure, host: String(host).lowercased(), port: port, target: target)
        guard secure || url.isLoopback else {
            return .failure(.init("must use https:// (plain http:// is allowed only to localhost, 127.0.0.0/8 or [::1])"))
        }
        return .success(url)
    }
}

struct WebhookURLProblem: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// `VSecure-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(signing secret, "<t>.<body>")>`.
/// The key is the whole `whsec_…` text as the receiver was given it (docs/webhooks.md).
enum WebhookSignature {
    static func header(secret: SecureBytes, timestamp: Int64, body: [UInt8]) -> String {
        "t=\(timestamp),v1=" + hexString(mac(secret: secret, timestamp: timestamp, body: body))
    }

    static func mac(secret: SecureBytes, timestamp: Int64, body: [UInt8]) -> [UInt8] {
        var hmac = HMACSHA256(key: secret)
        hmac.update(Array("\(timestamp).".utf8))
        hmac.update(body)
        return hmac.finalize()
    }
}

/// Which certificate authorities HTTPS deliveries trust: the system's, plus those in a PEM file
/// given with `--webhook-cacert` (for receivers on an internal CA). Built once, when the server
/// starts, so a file that cannot be read stops the start instead of failing every delivery.
public struct WebhookTrust: Sendable {
    /// nil when the system's TLS setup cannot be loaded (HTTPS deliveries then fail).
    let context: NIOSSLContext?

    /// The system's trust store only.
    public static let system = WebhookTrust(context: try? NIOSSLContext(configuration: .makeClientConfiguration()))

    private init(context: NIOSSLContext?) { self.context = context }

    /// The system's trust store and the certificates in the PEM file at `path`.
    public init(addingCertificatesFrom path: String) throws(VSecureError) {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw VSecureError(.usage, "cannot read the webhook CA certificates in \(Quoted(path))",
                               hint: "--webhook-cacert takes a PEM file of one or more CA certificates")
        }
        guard !certificates.isEmpty else {
            throw VSecureError(.usage, "\(Quoted(path)) holds no PEM certificate",
                               hint: "--webhook-cacert takes a PEM file of one or more CA certificates")
        }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.additionalTrustRoots = [.certificates(certificates)]
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw VSecureError(.usage, "cannot use the webhook CA certificates in \(Quoted(path)): \(error)")
        }
    }
}

/// One POST of a delivery over NIO: no redirects followed, no cookies, no connection reuse; the
/// answer's status line is all that is read. HTTPS verifies the receiver's certificate against
/// the trust store (`WebhookTrust`) and its name (or, for an address literal, its IP).
enum WebhookPoster {
    enum Outcome: Sendable, Equatable {
        case status(Int)
        /// Never reached a status line: what went wrong, without the URL.
        case failed(String)
    }

    private struct Failure: Error { var reason: String }

    static func post(_ url: WebhookURL, headers: [(String, String)], body: [UInt8], timeout: Duration,
                     trust: WebhookTrust = .system) async -> Outcome {
        do {
            return .status(try await withThrowingTaskGroup(of: Int.self) { group in
                group.addTask {
                    try await exchange(url, request: request(url, headers: headers, body: body), timeout: timeout, trust: trust)
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    throw Failure(reason: "no response within \(timeout)")
                }
                defer { group.cancelAll() }
                return try await group.next()!
            })
        } catch let failure as Failure {
            return .failed(failure.reason)
        } catch is CancellationError {
            return .failed("cancelled")
        } catch let error as NIOSSLError {
            return .failed("TLS failed: \(error)")
        } catch let error as NIOSSLExtraError {
            // Such as a certificate that does not name the receiver's host.
            return .failed("TLS failed: \(error)")
        } catch let error as NIOConnectionError {
            return .failed("cannot connect: \(error.connectionErrors.first.map { "\($0.error)" } ?? "\(error)")")
        } catch {
            return .failed("\(error)")
        }
    }

    static func request(_ url: WebhookURL, headers: [(String, String)], body: [UInt8]) -> ByteBuffer {
        var head = "POST \(url.target) HTTP/1.1\r\nHost: \(url.hostHeader)\r\nUser-Agent: vsecure-server\r\n"
        head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        var buffer = ByteBuffer(string: head)
        buffer.writeBytes(body)
        return buffer
    }

    private static func exchange(_ url: WebhookURL, request: ByteBuffer, timeout: Duration, trust: WebhookTrust) async throws -> Int {
        let tls: NIOSSLContext?
        if url.secure {
            guard let context = trust.context else { throw Failure(reason: "TLS is not available on this server") }
            tls = context
        } else {
            tls = nil
        }
        let serverName = url.isIPLiteral ? nil : url.host
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000))
            .connect(host: url.host, port: url.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            do {
                try await outbound.write(request)
            } catch {
                // A refused TLS handshake closes the channel, and the write then fails with a bare
                // "I/O on closed channel" while the reason waits on the inbound side: report that.
                for try await _ in inbound {}
                throw error
            }
            var received = ByteBuffer()
            for try await part in inbound {
                received.writeImmutableBuffer(part)
                if let status = try statusLine(&received) { return status }
            }
            throw Failure(reason: "the connection closed before a response")
        }
    }

    /// The final status of `HTTP/1.x NNN …` once its line is in; interim 1xx heads are skipped.
    static func statusLine(_ buffer: inout ByteBuffer) throws -> Int? {
        while true {
            let bytes = buffer.readableBytesView
            guard bytes.count <= 16 * 1024 else { throw Failure(reason: "the response head is too large") }
            guard let lineEnd = bytes.firstRange(of: [UInt8(ascii: "\r"), UInt8(ascii: "\n")]) else { return nil }
            let line = Array(bytes[bytes.startIndex..<lineEnd.lowerBound])
            guard line.count >= 12, line.starts(with: Array("HTTP/1.".utf8)), line[8] == UInt8(ascii: " "),
                  line[9...11].allSatisfy({ (0x30...0x39).contains($0) }) else {
                throw Failure(reason: "the response is not HTTP/1")
            }
            let status = line[9...11].reduce(0) { $0 * 10 + Int($1 - 0x30) }
            guard (100..<200).contains(status) else { return status }
            // An interim response: drop its head (up to the blank line) and read on.
            guard let headEnd = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
            buffer.moveReaderIndex(forwardBy: headEnd.upperBound - bytes.startIndex)
        }
    }
}
