import Foundation
import Testing
import TestSupport
import VSecureCore
import VSecureVault
@testable import VSecureServer

/// Deliveries to an HTTPS receiver whose certificate comes from a CA made by the test: refused
/// while only the system's trust store is used, delivered once `--webhook-cacert` adds the CA,
/// and refused again when the certificate does not name the host.
@Suite("Webhooks over HTTPS")
struct WebhookHTTPSTests {
    /// Queues a ping to a new webhook at `url` and returns the webhook's id and signing secret.
    static func queuePing(_ server: ServerFixture, url: String) async throws -> (id: String, secret: String) {
        try await server.test { client in
            let hook = try await WebhookTests.createWebhook(client, key: server.admin, url: url)
            #expect(try await client.send(.post, "/v1/security/webhooks/\(hook.id)/test", key: server.admin).status == .accepted)
            return hook
        }
    }

    static func deliveries(_ server: ServerFixture, _ id: String) async throws -> [ServerRegistry.WebhookDeliveryState] {
        try await server.service.withRegistry { registry, _ throws(VSecureError) in try registry.webhookDeliveries(webhookID: id) }
    }

    @Test("a receiver on a private CA: refused with system trust only, delivered once --webhook-cacert adds the CA")
    func privateCA() async throws {
        let directory = try TemporaryDirectory(prefix: "vsecure-webhook-tls")
        let pki = try LivePKI(in: directory)
        let caFile = pki.caCertificate
        let server = try ServerFixture.make()
        let clock = MillisecondClock()
        let receiver = WebhookReceiver()
        try await receiver.run(tls: pki) { url in
            let hook = try await Self.queuePing(server, url: url)

            let systemOnly = WebhookDispatcher(service: server.service, settings: .fast, logger: ServerFixture.quietLogger,
                                               milliseconds: clock.function)
            #expect(await systemOnly.deliverDue() == 1)
            #expect(receiver.requests.isEmpty, "a certificate from an untrusted CA was accepted")
            let refused = try #require(try await Self.deliveries(server, hook.id).first)
            #expect(refused.attempts == 1 && refused.lastStatus == nil, "\(refused)")
            #expect(refused.lastError?.contains("TLS") == true, "\(refused)")

            var settings = WebhookSettings.fast
            settings.trust = try WebhookTrust(addingCertificatesFrom: caFile)
            let trusting = WebhookDispatcher(service: server.service, settings: settings, logger: ServerFixture.quietLogger,
                                             milliseconds: clock.function)
            clock.advance(milliseconds: 1000) // past the retry delay
            #expect(await trusting.deliverDue() == 1)
            let received = try #require(receiver.requests.first)
            #expect(received.headers["VSecure-Event"] == "ping")
            #expect(signatureIsValid(received.headers["VSecure-Signature"], body: received.body, secret: hook.secret))
            let delivered = try #require(try await Self.deliveries(server, hook.id).first)
            #expect(delivered.attempts == 2 && delivered.lastStatus == 200, "\(delivered)")
        }
    }

    @Test("a trusted CA does not excuse a certificate for another host name")
    func wrongHostName() async throws {
        let directory = try TemporaryDirectory(prefix: "vsecure-webhook-tls-name")
        let pki = try LivePKI(in: directory, subjectAltName: "DNS:receiver.example")
        let caFile = pki.caCertificate
        let server = try ServerFixture.make()
        let receiver = WebhookReceiver()
        try await receiver.run(tls: pki) { url in
            let hook = try await Self.queuePing(server, url: url)
            var settings = WebhookSettings.fast
            settings.trust = try WebhookTrust(addingCertificatesFrom: caFile)
            let dispatcher = WebhookDispatcher(service: server.service, settings: settings, logger: ServerFixture.quietLogger)
            #expect(await dispatcher.deliverDue() == 1)
            #expect(receiver.requests.isEmpty, "a certificate for receiver.example was accepted for localhost")
            let refused = try #require(try await Self.deliveries(server, hook.id).first)
            #expect(refused.lastStatus == nil && refused.lastError?.contains("TLS") == true, "\(refused)")
        }
    }

    @Test("--webhook-cacert naming a missing or non-PEM file is refused, naming the file")
    func badCAFile() throws {
        let directory = try TemporaryDirectory(prefix: "vsecure-webhook-cacert")
        let missing = directory.file("missing.pem")
        let notPEM = try directory.write("not.pem", "hello\n")
        for path in [missing, notPEM] {
            do {
                _ = try WebhookTrust(addingCertificatesFrom: path)
                Issue.record("\(path) was accepted")
            } catch {
                #expect(error.status == .usage && error.message.contains(path), "\(error.message)")
            }
        }
    }
}
