import Foundation
import Hummingbird
import HummingbirdTesting
import HummingbirdTLS
import Logging
import NIOSSL
import Synchronization
import Testing
import VSecureCore
import VSecureCrypto
@testable import VSecureServer
import TestSupport

/// A webhook receiver: a real HTTP server on loopback (Hummingbird, live) that records every
/// request to `POST /hook` and answers with the scripted statuses in turn, then 200.
final class WebhookReceiver: Sendable {
    /// Header fields by name, any case.
    struct Headers: Sendable, CustomStringConvertible {
        var fields: [String: String] = [:]
        subscript(name: String) -> String? {
            get { fields[name.lowercased()] }
            set { fields[name.lowercased()] = newValue }
        }
        var description: String { fields.description }
    }

    struct Received: Sendable {
        var headers: Headers
        var body: String

        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
        var data: [String: Any] { json["data"] as? [String: Any] ?? [:] }
        var type: String? { json["type"] as? String }
    }

    private struct State {
        var requests: [Received] = []
        var statuses: [Int]
    }

    private let state: Mutex<State>

    init(statuses: [Int] = []) {
        state = Mutex(State(statuses: statuses))
    }

    var requests: [Received] { state.withLock { $0.requests } }

    private func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("hook") { request, _ -> Response in
            var headers = Headers()
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let body = String(buffer: try await request.body.collect(upTo: 1 << 20))
            let status = self.state.withLock { state -> Int in
                state.requests.append(Received(headers: headers, body: body))
                return state.statuses.isEmpty ? 200 : state.statuses.removeFirst()
            }
            return Response(status: .init(code: status))
        }
        return router
    }

    /// Runs `body` while the receiver listens; `body` gets the receiver's URL.
    func run<Value: Sendable>(_ body: @Sendable (String) async throws -> Value) async throws -> Value {
        try await Application(router: router(), logger: ServerFixture.quietLogger).test(.live) { client in
            try await body("http://localhost:\(try #require(client.port))/hook")
        }
    }

    /// The same over HTTPS with `pki`'s server certificate (issued by the test's CA); `body`
    /// gets `https://localhost:PORT/hook`.
    func run<Value: Sendable>(tls pki: LivePKI, _ body: @Sendable (String) async throws -> Value) async throws -> Value {
        let chain = try NIOSSLCertificate.fromPEMFile(pki.serverCertificate).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: pki.serverKey, format: .pem)
        let tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        let application = Application(router: router(), server: try .tls(.http1(), tlsConfiguration: tls), logger: ServerFixture.quietLogger)
        return try await application.test(.live) { client in
            try await body("https://localhost:\(try #require(client.port))/hook")
        }
    }

    /// Waits until `count` requests arrived. Only a guard against hanging: the test fails if
    /// they never come, but nothing is measured.
    func waitForRequests(_ count: Int, sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws {
        for _ in 0..<6000 where requests.count < count {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(requests.count >= count, "the receiver got \(requests.count) of \(count) requests", sourceLocation: sourceLocation)
    }
}

/// Unix milliseconds the test moves by hand, for the dispatcher's retry schedule.
final class MillisecondClock: Sendable {
    private let current = Mutex<Int64>(1_800_000_000_000)

    var now: Int64 { current.withLock { $0 } }
    func advance(milliseconds: Int64) { current.withLock { $0 += milliseconds } }
    var function: @Sendable () -> Int64 { { [self] in self.now } }
}

extension WebhookSettings {
    /// Retries a millisecond apart and a fast poll, for tests; a long attempt time-out, since a
    /// loaded full suite can hold an answered attempt up for many seconds.
    static var fast: WebhookSettings {
        var settings = WebhookSettings()
        settings.retryBase = .milliseconds(1)
        settings.retryCap = .milliseconds(10)
        settings.pollInterval = .milliseconds(20)
        settings.attemptTimeout = .seconds(300)
        return settings
    }
}

/// Recomputes `VSecure-Signature` as a receiver would: HMAC-SHA256 keyed with the whole
/// `whsec_…` text over `"<t>.<body>"`.
func signatureIsValid(_ header: String?, body: String, secret: String) -> Bool {
    guard let header else { return false }
    var timestamp: String?, signatures: [String] = []
    for part in header.split(separator: ",") {
        let pieces = part.split(separator: "=", maxSplits: 1).map(String.init)
        guard pieces.count == 2 else { return false }
        if pieces[0] == "t" { timestamp = pieces[1] } else if pieces[0] == "v1" { signatures.append(pieces[1]) }
    }
    guard let timestamp, Int64(timestamp) != nil else { return false }
    let key = Array(secret.utf8), message = Array("\(timestamp).\(body)".utf8)
    let expected = key.withUnsafeBytes { k in message.withUnsafeBytes { m in HMACSHA256.mac(key: k, message: m) } }
    let hex = expected.map { String(format: "%02x", $0) }.joined()
    return signatures.contains(hex)
}
