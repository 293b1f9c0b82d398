import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import TestSupport
import VSecureCore
import VSecureCrypto
@testable import VSecureServer
import VSecureVault

/// Webhooks: the routes in-process, deliveries to a real receiver on loopback, signatures
/// recomputed here, retries on the dispatcher's injected millisecond clock, expiry notices on
/// the fixture's clock. Nothing here measures time.
@Suite("Webhooks")
struct WebhookTests {
    static let day: Int64 = 86_400
    static let allEvents = ["secret.expiring", "secret.expired", "secret.rotated", "secret.rotation_failed"]

    /// Creates a webhook through the API; returns its id and signing secret.
    static func createWebhook(_ client: any TestClientProtocol, key: TestKey, url: String, events: [String] = allEvents,
                              secret: String? = nil, sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws -> (id: String, secret: String) {
        var body: [String: Any] = ["url": url, "events": events]
        if let secret { body["secret"] = secret }
        let reply = try await client.send(.post, "/v1/security/webhooks", key: key, json: body)
        #expect(reply.status == .created, "\(reply)", sourceLocation: sourceLocation)
        return (try #require(reply.string("id"), sourceLocation: sourceLocation),
                try #require(reply.string("signingSecret"), sourceLocation: sourceLocation))
    }

    @Test("validation: the URL's scheme, host and user info, the event list, the filter and unknown fields are refused naming the field")
    func validation() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let cases: [([String: Any], String)] = [
            (["url": "ftp://example.com/hook", "events": ["secret.rotated"]], "url"),
            (["url": "http://example.com/hook", "events": ["secret.rotated"]], "url"),
            (["url": "https://user:hunter2@example.com/hook", "events": ["secret.rotated"]], "url"),
            (["url": "https://example.com/hook#frag", "events": ["secret.rotated"]], "url"),
            (["url": "https://", "events": ["secret.rotated"]], "url"),
            (["url": "https://example.com:99999/", "events": ["secret.rotated"]], "url"),
            (["url": "https://example.com/" + String(repeating: "a", count: 2100), "events": ["secret.rotated"]], "url"),
            (["events": ["secret.rotated"]], "url"),
            (["url": "https://example.com/hook", "events": ["secret.deleted"]], "events"),
            (["url": "https://example.com/hook", "events": [String]()], "events"),
            (["url": "https://example.com/hook"], "events"),
            (["url": "https://example.com/hook", "events": "secret.rotated"], "events"),
            (["url": "https://example.com/hook", "events": ["secret.rotated"], "secret": "production/a b"], "secret"),
            (["url": "https://example.com/hook", "events": ["secret.rotated"], "secret": "production"], "secret"),
            (["url": "https://example.com/hook", "events": ["secret.rotated"], "color": "red"], "color"),
        ]
        let bodies = cases.map { (jsonText($0.0), $0.1) }
        try await server.test { client in
            for (body, field) in bodies {
                let reply = try await client.send(.post, "/v1/security/webhooks", key: admin, body: body)
                expectError(reply, .badRequest, "VALIDATION_ERROR")
                #expect(reply.errorDetails?["field"] as? String == field, "\(body): \(reply)")
                #expect(!reply.text.contains("hunter2"), "user info is never echoed: \(reply)")
            }
            let noScope = try await server.makeKey(lacking: .webhooksManage)
            let refused = try await client.send(.post, "/v1/security/webhooks", key: noScope,
                                                json: ["url": "https://example.com/hook", "events": ["secret.rotated"]])
            expectError(refused, .forbidden, "PERMISSION_DENIED")
            for url in ["https://hooks.example.com/v1/in?team=7", "http://127.0.0.1:9/hook", "http://localhost/hook", "http://[::1]:8080/x",
                        "HTTPS://Example.COM"] {
                let ok = try await client.send(.post, "/v1/security/webhooks", key: admin, json: ["url": url, "events": ["secret.rotated"]])
                #expect(ok.status == .created, "\(url): \(ok)")
            }
        }
    }

    @Test("create shows the signing secret once; list and delete; a deleted webhook is gone and owed nothing")
    func lifecycle() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let id = try await server.test { client in
            let created = try await client.send(.post, "/v1/security/webhooks", key: admin, json: [
                "url": "https://hooks.example.com/in", "events": ["secret.rotated", "secret.expiring"], "secret": "production/*",
            ])
            #expect(created.status == .created, "\(created)")
            let id = try #require(created.string("id"))
            #expect(id.hasPrefix("wh_") && id.count == 19, "\(id)")
            #expect(created.string("signingSecret")?.hasPrefix("whsec_") == true)
            #expect(created.string("signingSecret")?.count == 6 + 43)
            #expect(strings(created["events"]) == ["secret.expiring", "secret.rotated"])
            #expect(created.string("secret") == "production/*")

            let listed = try await client.send(.get, "/v1/security/webhooks", key: admin)
            #expect(listed.status == .ok)
            #expect(listed.data.map { $0["id"] as? String } == [id])
            #expect(listed.data.first?["signingSecret"] == nil, "the signing secret is shown only once")
            #expect(!listed.text.contains(created.string("signingSecret")!))

            let noScope = try await server.makeKey(lacking: .webhooksManage)
            for (method, uri) in [(HTTPRequest.Method.get, "/v1/security/webhooks"), (.delete, "/v1/security/webhooks/\(id)"),
                                  (.post, "/v1/security/webhooks/\(id)/test"), (.get, "/v1/security/webhooks/\(id)/deliveries")] {
                let refused = try await client.send(method, uri, key: noScope)
                expectError(refused, .forbidden, "PERMISSION_DENIED")
                #expect(refused.errorDetails?["scope"] as? String == "webhooks:manage", "\(method) \(uri): \(refused)")
            }

            let ping = try await client.send(.post, "/v1/security/webhooks/\(id)/test", key: admin)
            #expect(ping.status == .accepted, "\(ping)")
            let deleted = try await client.send(.delete, "/v1/security/webhooks/\(id)", key: admin)
            #expect(deleted.status == .noContent, "\(deleted)")
            expectError(try await client.send(.delete, "/v1/security/webhooks/\(id)", key: admin), .notFound, "RESOURCE_NOT_FOUND")
            expectError(try await client.send(.post, "/v1/security/webhooks/\(id)/test", key: admin), .notFound, "RESOURCE_NOT_FOUND")
            #expect(try await client.send(.get, "/v1/security/webhooks", key: admin).data.isEmpty)
            return id
        }
        let states: [ServerRegistry.WebhookDeliveryState] = try await server.service.withRegistry { registry, _ throws(VSecureError) in
            try registry.webhookDeliveries(webhookID: id)
        }
        #expect(states.map(\.event) == ["ping"])
        #expect(states.allSatisfy { $0.nextAttemptAt == nil && $0.lastError == "the webhook was deleted" },
                "the ping queued before the delete is dropped with it")
    }

    @Test("a key limited to an environment manages only webhooks filtered to it")
    func environmentLimitedKey() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            let limited = try await server.makeKey(name: "prod-ops", scopes: [.webhooksManage], environments: ["production"])
            let body: [String: Any] = ["url": "https://hooks.example.com/in", "events": ["secret.rotated"]]
            expectError(try await client.send(.post, "/v1/security/webhooks", key: limited, json: body), .forbidden, "PERMISSION_DENIED")
            var filtered = body
            filtered["secret"] = "*/API_KEY"
            expectError(try await client.send(.post, "/v1/security/webhooks", key: limited, json: filtered), .forbidden, "PERMISSION_DENIED")
            let own = try await Self.createWebhook(client, key: limited, url: "https://hooks.example.com/in", events: ["secret.rotated"],
                                                   secret: "production/*")
            let other = try await Self.createWebhook(client, key: admin, url: "https://hooks.example.com/all")
            let seen = try await client.send(.get, "/v1/security/webhooks", key: limited)
            #expect(seen.data.map { $0["id"] as? String } == [own.id])
            expectError(try await client.send(.delete, "/v1/security/webhooks/\(other.id)", key: limited), .notFound, "RESOURCE_NOT_FOUND")
            #expect(try await client.send(.get, "/v1/security/webhooks", key: admin).data.count == 2)
        }
    }

    @Test("a rotation through the route is delivered to a loopback receiver, signed; the filter and the event list decide who hears it; no value")
    func rotatedIsDelivered() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let clock = MillisecondClock()
        let dispatcher = WebhookDispatcher(service: server.service, settings: .fast, logger: ServerFixture.quietLogger, milliseconds: clock.function)
        let receiver = WebhookReceiver()
        let canary = "canary-value-4a1f9e"
        try await receiver.run { url in
            let (hook, secret, newValue) = try await server.test { client in
                let hook = try await Self.createWebhook(client, key: admin, url: url, secret: "development/*")
                _ = try await Self.createWebhook(client, key: admin, url: url, secret: "production/*")
                _ = try await Self.createWebhook(client, key: admin, url: url, events: ["secret.expired"])
                try await client.createSecret("API_TOKEN", value: canary, key: admin,
                                              extra: ["rotationPolicy": ["period": "30d", "generate": ["length": 40]], "expiresIn": "90d"])
                let rotated = try await client.send(.post, "/v1/security/secrets/API_TOKEN/rotate", key: admin)
                #expect(rotated.status == .ok, "\(rotated)")
                let value = try await client.send(.get, "/v1/security/secrets/API_TOKEN", key: admin).string("value")
                return (hook.id, hook.secret, try #require(value))
            }
            #expect(await dispatcher.deliverDue() == 1, "only the development webhook subscribed to secret.rotated matches")
            #expect(await dispatcher.deliverDue() == 0)
            let received = try #require(receiver.requests.first)
            #expect(receiver.requests.count == 1)
            #expect(received.headers["Content-Type"] == "application/json")
            #expect(received.headers["VSecure-Event"] == "secret.rotated")
            let deliveryID = try #require(received.headers["VSecure-Delivery"])
            #expect(deliveryID.hasPrefix("dlv_"))
            #expect(signatureIsValid(received.headers["VSecure-Signature"], body: received.body, secret: secret), "\(received.headers)")
            #expect(!signatureIsValid(received.headers["VSecure-Signature"], body: received.body + " ", secret: secret))
            #expect(!signatureIsValid(received.headers["VSecure-Signature"], body: received.body, secret: secret + "x"))
            let signatureTime = received.headers["VSecure-Signature"]?.split(separator: ",").first.map(String.init)
            #expect(signatureTime == "t=\(clock.now / 1000)")

            #expect(received.type == "secret.rotated")
            #expect((received.json["id"] as? String)?.hasPrefix("evt_") == true)
            #expect(received.json["createdAt"] as? String == server.clock.now.iso8601)
            let data = received.data
            #expect(data["environment"] as? String == "development")
            #expect(data["name"] as? String == "API_TOKEN")
            #expect(data["version"] as? Int == 2)
            #expect(data["previousVersion"] as? Int == 1)
            #expect(data["expiresAt"] as? String == server.clock.now.adding(SecretDuration(seconds: 90 * Self.day)).iso8601)
            #expect(data["reason"] is NSNull)
            #expect(!received.body.contains(canary) && !received.body.contains(newValue), "a delivery never carries a value")

            let states = try await server.service.withRegistry { registry, _ throws(VSecureError) in try registry.webhookDeliveries(webhookID: hook) }
            #expect(states.map(\.id) == [deliveryID])
            #expect(states.first?.attempts == 1 && states.first?.deliveredAt != nil && states.first?.lastStatus == 200)
            try await server.test { client in
                let listed = try await client.send(.get, "/v1/security/webhooks/\(hook)/deliveries", key: admin)
                #expect(listed.data.first?["status"] as? String == "delivered", "\(listed)")
                #expect(listed.data.first?["attempts"] as? Int == 1)
                expectNoLeak(listed, of: [canary, newValue, secret])
            }
        }
    }

    @Test("a failing rotation sends secret.rotation_failed with the value-free reason and the unchanged version")
    func rotationFailed() async throws {
        let directory = try TemporaryDirectory(prefix: "vsecure-webhook-commands")
        let allowed = directory.file("bin")
        try FileManager.default.createDirectory(atPath: allowed, withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: allowed + "/sh", withDestinationPath: "/bin/sh")
        let bad = try directory.write("bad.sh", "cat >/dev/null\nexit 3\n")
        var rotation = ServerRotationSettings()
        try rotation.allowCommands(in: allowed)
        let server = try ServerFixture.make(rotation: rotation)
        let admin = server.admin
        let dispatcher = WebhookDispatcher(service: server.service, settings: .fast, logger: ServerFixture.quietLogger)
        let receiver = WebhookReceiver()
        let canary = "canary-db-password-77c2"
        try await receiver.run { url in
            let secret = try await server.test { client in
                let hook = try await Self.createWebhook(client, key: admin, url: url, events: ["secret.rotation_failed"])
                try await client.createSecret("DB_PASSWORD", value: canary, key: admin, environment: "production",
                                              extra: ["rotationPolicy": ["period": "1d", "command": [allowed + "/sh", bad]]])
                let failed = try await client.send(.post, "/v1/security/secrets/DB_PASSWORD/rotate?environment=production", key: admin)
                expectError(failed, .unprocessableContent, "ROTATION_FAILED")
                return hook.secret
            }
            #expect(await dispatcher.deliverDue() == 1)
            let received = try #require(receiver.requests.first)
            #expect(received.type == "secret.rotation_failed")
            #expect(received.headers["VSecure-Event"] == "secret.rotation_failed")
            #expect(signatureIsValid(received.headers["VSecure-Signature"], body: received.body, secret: secret))
            #expect(received.data["environment"] as? String == "production")
            #expect(received.data["version"] as? Int == 1)
            #expect(received.data["previousVersion"] is NSNull)
            #expect((received.data["reason"] as? String)?.contains("status 3") == true, "\(received.body)")
            #expect(!received.body.contains(canary))

            // The schedule goes through the same rotator: a due pass fails again, and says so.
            server.clock.advance(seconds: Self.day)
            let rotator = try #require(server.service.rotator)
            _ = await rotator.rotateDue(logger: ServerFixture.quietLogger)
            #expect(await dispatcher.deliverDue() == 1)
            #expect(receiver.requests.map(\.type) == ["secret.rotation_failed", "secret.rotation_failed"])
        }
    }

    @Test("a receiver answering 500 twice, then 200, gets three attempts of one delivery; one that never answers 2xx is given up after maxAttempts")
    func retries() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let clock = MillisecondClock()
        let settings = {
            var settings = WebhookSettings()
            settings.maxAttempts = 3
            settings.retryBase = .seconds(60)
            settings.retryCap = .seconds(600)
            // Under a loaded full suite an answered attempt can take longer than the default
            // 10 s to be seen; this test is about the retry order, not the time-out.
            settings.attemptTimeout = .seconds(300)
            return settings
        }()
        let dispatcher = WebhookDispatcher(service: server.service, settings: settings, logger: ServerFixture.quietLogger, milliseconds: clock.function)
        let receiver = WebhookReceiver(statuses: [500, 500, 200, 503, 503, 503])
        try await receiver.run { url in
            let hook = try await server.test { client in
                let hook = try await Self.createWebhook(client, key: admin, url: url)
                try await client.createSecret("TOKEN", value: "v-1", key: admin, extra: ["rotationPolicy": ["period": "30d", "generate": [String: Any]()]])
                #expect(try await client.send(.post, "/v1/security/secrets/TOKEN/rotate", key: admin).status == .ok)
                return hook
            }
            func state() async throws -> ServerRegistry.WebhookDeliveryState? {
                try await server.service.withRegistry { registry, _ throws(VSecureError) in try registry.webhookDeliveries(webhookID: hook.id) }.first
            }
            #expect(await dispatcher.deliverDue() == 1)
            let first = try await state()
            #expect(first?.attempts == 1 && first?.lastStatus == 500, "\(String(describing: first))")
            let retryAt = try #require(try await state()?.nextAttemptAt)
            #expect(retryAt >= clock.now + 60_000 && retryAt <= clock.now + 75_000, "1 minute and up to a quarter of jitter")
            #expect(await dispatcher.deliverDue() == 0, "not before the backoff")
            clock.advance(milliseconds: 75_000)
            // A new dispatcher over the same store (as after a restart) picks the retry up.
            let restarted = WebhookDispatcher(service: server.service, settings: settings, logger: ServerFixture.quietLogger, milliseconds: clock.function)
            #expect(await restarted.deliverDue() == 1)
            let second = try #require(try await state()?.nextAttemptAt)
            #expect(second >= clock.now + 120_000 && second <= clock.now + 150_000, "the wait doubles")
            clock.advance(milliseconds: 150_000)
            #expect(await restarted.deliverDue() == 1)
            let done = try #require(try await state())
            #expect(done.attempts == 3 && done.lastStatus == 200 && done.deliveredAt != nil && done.nextAttemptAt == nil)
            let ids = Set(receiver.requests.map { $0.headers["VSecure-Delivery"] })
            #expect(receiver.requests.count == 3 && ids.count == 1, "three attempts of one delivery")
            #expect(Set(receiver.requests.map(\.body)).count == 1, "the same body each time")

            // Always 503: three attempts, then given up.
            try await server.test { client in
                let rotated = try await client.send(.post, "/v1/security/secrets/TOKEN/rotate", key: admin)
                #expect(rotated.status == .ok)
            }
            for _ in 0..<5 {
                await dispatcher.deliverDue()
                clock.advance(milliseconds: 600_000)
            }
            let failed = try #require(try await state())
            #expect(failed.attempts == 3 && failed.lastStatus == 503 && failed.deliveredAt == nil && failed.nextAttemptAt == nil)
            #expect(receiver.requests.count == 6)
            try await server.test { client in
                let listed = try await client.send(.get, "/v1/security/webhooks/\(hook.id)/deliveries", key: admin)
                #expect(listed.data.map { $0["status"] as? String } == ["failed", "delivered"], "\(listed)")
            }
        }
    }

    @Test("a receiver that is not listening is retried, recorded as a connection failure")
    func unreachableReceiver() async throws {
        let server = try ServerFixture.make()
        let clock = MillisecondClock()
        let dispatcher = WebhookDispatcher(service: server.service, settings: .fast, logger: ServerFixture.quietLogger, milliseconds: clock.function)
        let port = try liveFreeLoopbackPort()
        let hook = try await server.test { client in
            let hook = try await Self.createWebhook(client, key: server.admin, url: "http://127.0.0.1:\(port)/hook")
            #expect(try await client.send(.post, "/v1/security/webhooks/\(hook.id)/test", key: server.admin).status == .accepted)
            return hook
        }
        // The ping was queued on the real clock, which is before this test clock's start.
        #expect(await dispatcher.deliverDue() == 1)
        let state = try #require(try await server.service.withRegistry { registry, _ throws(VSecureError) in
            try registry.webhookDeliveries(webhookID: hook.id)
        }.first)
        #expect(state.event == "ping" && state.attempts == 1 && state.lastStatus == nil && state.nextAttemptAt != nil)
        #expect(state.lastError?.isEmpty == false)
    }

    @Test("expiry notices: secret.expiring once inside the warning window, secret.expired once at expiry, a rotation's notice window once per due time")
    func expiryNotices() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let dispatcher = WebhookDispatcher(service: server.service, settings: .fast, logger: ServerFixture.quietLogger)
        let receiver = WebhookReceiver()
        let canary = "canary-expiring-91d0"
        try await receiver.run { url in
            try await server.test { client in
                try await client.createSecret("CERT", value: canary, key: admin, extra: ["expiresIn": "30d"])
                try await client.createSecret("MANUAL", value: canary + "-2", key: admin,
                                              extra: ["rotationPolicy": ["period": "30d", "notifyBefore": "5d"]])
            }
            // Before any webhook exists nothing is remembered, so the first webhook still hears it.
            server.clock.advance(seconds: 25 * Self.day + 1)
            #expect(await dispatcher.scanExpiry().isEmpty)
            let secret = try await server.test { client in
                try await Self.createWebhook(client, key: admin, url: url, events: ["secret.expiring", "secret.expired"]).secret
            }
            let first = await dispatcher.scanExpiry()
            #expect(first.map(\.type) == ["secret.expiring", "secret.expiring"], "\(first.map(\.path))")
            #expect(await dispatcher.scanExpiry().isEmpty, "announced once, not on every scan")
            server.clock.advance(seconds: Self.day)
            #expect(await dispatcher.scanExpiry().isEmpty)
            #expect(await dispatcher.deliverDue() == 2)
            let byName = Dictionary(uniqueKeysWithValues: receiver.requests.map { ($0.data["name"] as? String ?? "", $0) })
            let cert = try #require(byName["CERT"])
            #expect(cert.type == "secret.expiring")
            #expect(cert.data["expiresAt"] as? String == TestClock.start.adding(SecretDuration(seconds: 30 * Self.day)).iso8601)
            #expect(cert.data["dueAt"] is NSNull)
            let manual = try #require(byName["MANUAL"])
            #expect(manual.data["dueAt"] as? String == TestClock.start.adding(SecretDuration(seconds: 30 * Self.day)).iso8601)
            #expect((manual.data["reason"] as? String)?.hasPrefix("rotation due at") == true)
            for request in receiver.requests {
                #expect(signatureIsValid(request.headers["VSecure-Signature"], body: request.body, secret: secret))
                #expect(!request.body.contains(canary))
            }

            // At expiry (T = created + 30 days): expired, once.
            server.clock.set(TestClock.start.adding(SecretDuration(seconds: 30 * Self.day - 1)))
            #expect(await dispatcher.scanExpiry().isEmpty)
            server.clock.advance(seconds: 1)
            #expect(await dispatcher.scanExpiry().map(\.type) == ["secret.expired"])
            #expect(await dispatcher.scanExpiry().isEmpty)
            #expect(await dispatcher.deliverDue() == 1)
            #expect(receiver.requests.last?.type == "secret.expired")
            #expect(receiver.requests.last?.data["name"] as? String == "CERT")

            // A new value moves MANUAL's due time on: its next notice window is announced anew.
            try await server.test { client in
                let updated = try await client.send(.put, "/v1/security/secrets/MANUAL", key: admin, json: ["value": canary + "-3"])
                #expect(updated.status == .ok, "\(updated)")
            }
            #expect(await dispatcher.scanExpiry().isEmpty)
            server.clock.advance(seconds: 25 * Self.day + 1)
            #expect(await dispatcher.scanExpiry().map(\.path) == ["development/MANUAL"])
            #expect(await dispatcher.scanExpiry().isEmpty)
        }
    }

    @Test("the running service: a rotation is delivered without anyone calling deliverDue, and a 500 is retried")
    func runningService() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let dispatcher = WebhookDispatcher(service: server.service, settings: .fast, logger: ServerFixture.quietLogger)
        let receiver = WebhookReceiver(statuses: [500])
        try await receiver.run { url in
            let worker = Task { await dispatcher.loop() }
            defer { worker.cancel() }
            let secret = try await server.test { client in
                let hook = try await Self.createWebhook(client, key: admin, url: url, events: ["secret.rotated"])
                try await client.createSecret("TOKEN", value: "v-1", key: admin, extra: ["rotationPolicy": ["period": "30d", "generate": [String: Any]()]])
                #expect(try await client.send(.post, "/v1/security/secrets/TOKEN/rotate", key: admin).status == .ok)
                return hook.secret
            }
            try await receiver.waitForRequests(2)
            worker.cancel()
            await worker.value
            #expect(receiver.requests.count == 2)
            #expect(receiver.requests.allSatisfy { signatureIsValid($0.headers["VSecure-Signature"], body: $0.body, secret: secret) })
        }
    }
}
