import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import VSecureCore
@testable import VSecureServer

/// Cross-cutting behaviour: compare-and-set, idempotency, pagination, the rate limit and the
/// validation error shape.
@Suite("API protocol")
struct ProtocolRouteTests {
    @Test("PUT with a mismatched ifVersion or If-Match is 409 and changes nothing")
    func compareAndSet() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("API_KEY", value: "cas-one", key: admin)
            try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["value": "cas-two"])

            let stale = try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["value": "cas-lost", "ifVersion": 1])
            expectError(stale, .conflict, "CONFLICT")
            expectNoLeak(stale, of: ["cas-one", "cas-two", "cas-lost"])
            let staleAttributes = try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["addTags": ["t"], "ifVersion": 3])
            expectError(staleAttributes, .conflict, "CONFLICT")
            for match in ["\"1\"", "W/\"1\"", "\"7\""] {
                let reply = try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["value": "cas-lost"],
                                                  headers: [.ifMatch: match])
                expectError(reply, .conflict, "CONFLICT")
            }
            let got = try await client.send(.get, "/v1/security/secrets/API_KEY", key: admin)
            #expect(got.string("value") == "cas-two")
            #expect(strings(got["tags"]).isEmpty)
            let etag = try #require(got.headers[.eTag])

            // The matching version goes through, in either form; the ETag of a GET is a valid If-Match.
            let viaHeader = try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["value": "cas-three"],
                                                  headers: [.ifMatch: etag])
            #expect(viaHeader.status == .ok, "\(viaHeader)")
            #expect(viaHeader.int("version") == 3)
            let viaBody = try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["value": "cas-four", "ifVersion": 3])
            #expect(viaBody.status == .ok, "\(viaBody)")
            // Both forms must agree; If-Match must hold a version.
            expectError(try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["value": "x", "ifVersion": 4],
                                              headers: [.ifMatch: "\"3\""]), .badRequest, "VALIDATION_ERROR")
            for match in ["*", "", "\"\"", "\"abc\"", "\"1\", \"2\"", "\"4\" \"5\"", "\"-4\"", "\"٤\"", "\"99999999999999999999\""] {
                expectError(try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["value": "x"],
                                                  headers: [.ifMatch: match]), .badRequest, "VALIDATION_ERROR")
            }
            expectError(try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["value": "x", "ifVersion": "4"]),
                        .badRequest, "VALIDATION_ERROR")
        }
        #expect(try await server.versionCount("API_KEY") == 4)
    }

    @Test("If-Match holds one version: a list of tags is not read as their digits run together")
    func ifMatchList() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("API_KEY", value: "v1", key: admin)
            for version in 2...12 {
                try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["value": "v\(version)"])
            }
            // Neither version 1 nor 2 is current; 12 is. Nothing may change.
            for match in ["\"1\", \"2\"", "\"1\"\"2\"", "W/\"1\", W/\"2\"", "1 2"] {
                let reply = try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["value": "sneaked-in"],
                                                  headers: [.ifMatch: match])
                #expect(reply.status != .ok, "If-Match \(match): \(reply)")
                expectError(reply, .badRequest, "VALIDATION_ERROR")
            }
            #expect(try await client.send(.get, "/v1/security/secrets/API_KEY", key: admin).string("value") == "v12")
            #expect(try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["value": "v13"],
                                          headers: [.ifMatch: " \"12\" "]).status == .ok)
        }
        #expect(try await server.versionCount("API_KEY") == 13)
    }

    @Test("an Idempotency-Key replay returns the first answer and makes no second version")
    func idempotentReplay() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            let create: [String: Any] = ["name": "API_KEY", "value": "idem-one"]
            let first = try await client.send(.post, "/v1/security/secrets", key: admin, json: create, headers: [.idempotencyKey: "create-1"])
            #expect(first.status == .created)
            #expect(first.headers[.idempotentReplayed] == nil)
            server.clock.advance(seconds: 30)
            let replay = try await client.send(.post, "/v1/security/secrets", key: admin, json: create, headers: [.idempotencyKey: "create-1"])
            #expect(replay.status == .created)
            #expect(replay.text == first.text)
            #expect(replay.headers[.idempotentReplayed] == "true")
            // Without the key the same request is a conflict: the replay really did not run again.
            expectError(try await client.send(.post, "/v1/security/secrets", key: admin, json: create), .conflict, "CONFLICT")

            let update: [String: Any] = ["value": "idem-two"]
            let put = try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: update, headers: [.idempotencyKey: "put-1"])
            #expect(put.int("version") == 2)
            for _ in 0..<3 {
                let again = try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: update, headers: [.idempotencyKey: "put-1"])
                #expect(again.status == .ok)
                #expect(again.text == put.text)
                #expect(again.headers[.idempotentReplayed] == "true")
            }
            // The same key with another body is a conflict, and runs nothing.
            let reused = try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["value": "idem-three"],
                                               headers: [.idempotencyKey: "put-1"])
            expectError(reused, .conflict, "CONFLICT")
            expectNoLeak(reused, of: ["idem-one", "idem-two", "idem-three"])
            let elsewhere = try await client.send(.put, "/v1/security/secrets/API_KEY?environment=development", key: admin, json: update,
                                                  headers: [.idempotencyKey: "put-1"])
            expectError(elsewhere, .conflict, "CONFLICT")
            // A new key runs again.
            let fresh = try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: update, headers: [.idempotencyKey: "put-2"])
            #expect(fresh.int("version") == 3)

            // Rollback and batch upsert honour it too.
            let rollback = try await client.send(.post, "/v1/security/secrets/API_KEY/rollback", key: admin, json: ["version": 1],
                                                 headers: [.idempotencyKey: "rb-1"])
            #expect(rollback.int("version") == 4)
            let rollbackAgain = try await client.send(.post, "/v1/security/secrets/API_KEY/rollback", key: admin, json: ["version": 1],
                                                      headers: [.idempotencyKey: "rb-1"])
            #expect(rollbackAgain.text == rollback.text)
            let batch: [String: Any] = ["secrets": [["name": "API_KEY", "value": "idem-batch"]]]
            let upsert = try await client.send(.post, "/v1/security/secrets/batch/upsert", key: admin, json: batch, headers: [.idempotencyKey: "b-1"])
            #expect(strings(upsert["updated"]) == ["API_KEY"])
            let upsertAgain = try await client.send(.post, "/v1/security/secrets/batch/upsert", key: admin, json: batch, headers: [.idempotencyKey: "b-1"])
            #expect(upsertAgain.text == upsert.text)
            #expect(upsertAgain.headers[.idempotentReplayed] == "true")

            // Keys are per API key: another key's "put-1" is its own.
            let other = try await server.makeKey(name: "other", scopes: Scope.allCases)
            let theirs = try await client.send(.put, "/v1/security/secrets/API_KEY", key: other, json: update, headers: [.idempotencyKey: "put-1"])
            #expect(theirs.status == .ok)
            #expect(theirs.headers[.idempotentReplayed] == nil)

            for bad in ["has space", String(repeating: "k", count: 256), "tab\tbed"] {
                expectError(try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: update, headers: [.idempotencyKey: bad]),
                            .badRequest, "VALIDATION_ERROR")
            }
        }
        #expect(try await server.versionCount("API_KEY") == 6)
    }

    @Test("an Idempotency-Key answer is replayed for 24 hours after it was recorded, and runs as new after that")
    func idempotencyRetention() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("DAILY", value: "first", key: admin)
            let update: [String: Any] = ["value": "second"]
            let put = try await client.send(.put, "/v1/security/secrets/DAILY", key: admin, json: update, headers: [.idempotencyKey: "day"])
            #expect(put.int("version") == 2)
            server.clock.advance(seconds: 86_400 - 1)
            let replay = try await client.send(.put, "/v1/security/secrets/DAILY", key: admin, json: update, headers: [.idempotencyKey: "day"])
            #expect(replay.headers[.idempotentReplayed] == "true" && replay.text == put.text, "\(replay)")
            server.clock.advance(seconds: 2)
            let late = try await client.send(.put, "/v1/security/secrets/DAILY", key: admin, json: update, headers: [.idempotencyKey: "day"])
            #expect(late.headers[.idempotentReplayed] == nil && late.int("version") == 3, "\(late)")
            // And the new answer is the one replayed from then on.
            let again = try await client.send(.put, "/v1/security/secrets/DAILY", key: admin, json: update, headers: [.idempotencyKey: "day"])
            #expect(again.headers[.idempotentReplayed] == "true" && again.text == late.text, "\(again)")
        }
        #expect(try await server.versionCount("DAILY") == 3)
    }

    @Test("a replayed create, update or rollback writes no audit entry: the first request's entry stands alone")
    func replayWritesNoAuditEntry() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            func entries(_ action: String) async throws -> Int {
                let reply = try await client.send(.get, "/v1/security/audit-logs?action=\(action)&name=AUDITED&limit=1000", key: admin)
                #expect(reply.status == .ok, "\(reply)")
                return reply.data.count
            }
            let writes: [(HTTPRequest.Method, String, [String: Any], String)] = [
                (.post, "/v1/security/secrets", ["name": "AUDITED", "value": "audited-one"], "created"),
                (.put, "/v1/security/secrets/AUDITED", ["value": "audited-two"], "updated"),
                (.post, "/v1/security/secrets/AUDITED/rollback", ["version": 1], "rolled_back"),
            ]
            for (method, path, body, action) in writes {
                let first = try await client.send(method, path, key: admin, json: body, headers: [.idempotencyKey: "audit-\(action)"])
                #expect((200..<300).contains(Int(first.status.code)), "\(first)")
                for _ in 0..<2 {
                    let replay = try await client.send(method, path, key: admin, json: body, headers: [.idempotencyKey: "audit-\(action)"])
                    #expect(replay.headers[.idempotentReplayed] == "true" && replay.text == first.text, "\(replay)")
                }
                #expect(try await entries(action) == 1, "\(action): one entry for one write and two replays")
            }
        }
        #expect(try await server.versionCount("AUDITED") == 3)
    }

    @Test("a failed request is not recorded: retrying with the same Idempotency-Key runs it")
    func idempotencyAfterFailure() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            let body: [String: Any] = ["value": "after-failure"]
            expectError(try await client.send(.put, "/v1/security/secrets/LATER", key: admin, json: body, headers: [.idempotencyKey: "k"]),
                        .notFound, "RESOURCE_NOT_FOUND")
            try await client.createSecret("LATER", value: "first", key: admin)
            let retried = try await client.send(.put, "/v1/security/secrets/LATER", key: admin, json: body, headers: [.idempotencyKey: "k"])
            #expect(retried.status == .ok)
            #expect(retried.headers[.idempotentReplayed] == nil)
        }
    }

    @Test("pagination: a cursor walk visits every secret exactly once")
    func pagination() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            let names = ["S1", "S2", "S3", "S4", "S5", "S6", "S7"]
            for (index, name) in names.enumerated() {
                try await client.createSecret(name, value: "page-\(name)", key: admin, environment: index % 2 == 0 ? "development" : "production")
            }
            var seen: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let query = "limit=3" + (cursor.map { "&cursor=" + queryEscaped($0) } ?? "")
                let page = try await client.listSecrets(key: admin, query: query)
                #expect(page.status == .ok, "\(page)")
                let pagination = try #require(page["pagination"] as? [String: Any])
                #expect(pagination["totalCount"] as? Int == 7)
                seen += page.data.compactMap { $0["name"] as? String }
                #expect(page.data.count <= 3)
                let hasMore = pagination["hasMore"] as? Bool
                cursor = pagination["cursor"] as? String
                #expect((cursor != nil) == (hasMore == true))
                pages += 1
            } while cursor != nil && pages < 10
            #expect(pages == 3)
            #expect(seen.sorted() == names)
            #expect(Set(seen).count == seen.count)
            expectNoLeak(try await client.listSecrets(key: admin, query: "limit=100"), of: names.map { "page-\($0)" })

            #expect(try await client.listSecrets(key: admin).data.count == 7) // default 50
            #expect(try await client.listSecrets(key: admin, query: "limit=100").status == .ok)
            #expect(try await client.listSecrets(key: admin, query: "limit=1").data.count == 1)
            for bad in ["limit=0", "limit=101", "limit=-1", "limit=abc", "limit=1.5", "cursor=%21%21%21", "cursor=%C3%28"] {
                expectError(try await client.listSecrets(key: admin, query: bad), .badRequest, "VALIDATION_ERROR")
            }
        }
    }

    @Test("pagination stays exact across environments whose names sort around '/'")
    func paginationAcrossEnvironmentNames() async throws {
        let server = try ServerFixture.make(environments: ["app", "app-eu", "app_us", "app2"])
        let admin = server.admin
        try await server.test { client in
            var expected: [String] = []
            for environment in ["app", "app-eu", "app_us", "app2"] {
                for name in ["A", "B"] {
                    try await client.createSecret(name, value: "v", key: admin, environment: environment)
                    expected.append("\(environment)/\(name)")
                }
            }
            for limit in 1...3 {
                var seen: [String] = []
                var cursor: String?
                var pages = 0
                repeat {
                    let page = try await client.listSecrets(key: admin, query: "limit=\(limit)" + (cursor.map { "&cursor=" + queryEscaped($0) } ?? ""))
                    seen += page.data.compactMap { $0["path"] as? String }
                    cursor = (page["pagination"] as? [String: Any])?["cursor"] as? String
                    pages += 1
                } while cursor != nil && pages < 20
                #expect(seen.sorted() == expected.sorted(), "limit \(limit)")
                #expect(Set(seen).count == seen.count, "limit \(limit)")
            }
        }
    }

    @Test("the rate limit answers 429 RATE_LIMIT_EXCEEDED with Retry-After, per key")
    func rateLimit() async throws {
        var limits = ServerLimits()
        // One token a minute after a burst of two: the third request is limited however slowly a
        // loaded machine runs the first three (they only need to fit in half a minute).
        limits.ratePerKey = 1.0 / 60
        limits.burstPerKey = 2
        let server = try ServerFixture.make(limits: limits)
        let admin = server.admin
        let other = try await server.makeKey(name: "other", scopes: [.secretsRead])
        // The bucket refills one request a minute of real time, so "quick" is checked: if the
        // machine stalls for half a minute between requests, try again on a fresh router (a
        // fresh limiter) rather than fail on timing.
        for attempt in 1...5 {
            let quick = try await server.test { client -> Bool in
                let start = ContinuousClock.now
                let first = try await client.listSecrets(key: admin)
                let second = try await client.listSecrets(key: admin)
                let limited = try await client.listSecrets(key: admin)
                guard start.duration(to: .now) < .seconds(30) else { return false }
                #expect(first.status == .ok)
                #expect(second.status == .ok)
                expectError(limited, .tooManyRequests, "RATE_LIMIT_EXCEEDED")
                let retryAfter = try #require(limited.headers[.retryAfter])
                #expect((Int(retryAfter) ?? 0) >= 1)
                #expect(limited.errorDetails?["retryAfterSeconds"] as? String == retryAfter)
                // Another key has its own bucket; health checks are not limited.
                #expect(try await client.listSecrets(key: other).status == .ok)
                for _ in 0..<5 { #expect(try await client.send(.get, "/health").status == .ok) }
                // Bad keys get 401, not 429 (the limit is per authenticated key).
                for _ in 0..<5 { expectError(try await client.send(.get, "/v1/security/secrets"), .unauthorized, "AUTHENTICATION_REQUIRED") }
                return true
            }
            if quick { break }
            if attempt == 5 { Issue.record("three requests never fitted in 30 s; the machine is too loaded to test the rate limit") }
        }
    }

    @Test("validation errors are 400 VALIDATION_ERROR in the error shape and never echo values")
    func validationErrors() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let value = "validation-secret-value"
        try await server.test { client in
            try await client.createSecret("API_KEY", value: value, key: admin)
            let creates: [[String: Any]] = [
                ["value": value],
                ["name": "", "value": value],
                ["name": "9LIVES", "value": value],
                ["name": "HAS-DASH", "value": value],
                ["name": String(repeating: "N", count: 129), "value": value],
                ["name": "X", "value": value, "environment": "Production"],
                ["name": "X", "value": value, "tags": ["-bad"]],
                ["name": "X", "value": value, "tags": ["production", "staging"]],
                ["name": "X", "value": value, "metadata": ["bad key": "v"]],
                ["name": "X", "value": value, "metadata": ["k": "line\nbreak"]],
                ["name": "X", "value": value, "expiresIn": "1 day"],
                ["name": "X", "value": value, "expiresIn": "-5m"],
                ["name": "X", "value": value, "expiresAt": "tomorrow"],
                ["name": "X", "value": value, "expiresAt": "2030-01-01T00:00:00"],
                ["name": "X", "value": value, "expiresIn": "1h", "expiresAt": "2030-01-01T00:00:00Z"],
                ["name": "X", "value": value, "rotationPolicy": ["interval": "30d"]],
                ["name": "X", "value": value, "secret": "extra"],
                ["name": "X", "value": ["nested": value]],
                ["name": "X", "value": NSNull()],
                ["name": "X", "value": value, "description": 5],
            ]
            for body in creates {
                let reply = try await client.send(.post, "/v1/security/secrets", key: admin, json: body)
                expectError(reply, .badRequest, "VALIDATION_ERROR")
                expectNoLeak(reply, of: [value])
            }
            let updates: [[String: Any]] = [
                ["value": 12],
                ["value": value, "name": "RENAMED"],
                ["addTags": "x"],
                ["removeMetadata": ["bad key"]],
                ["noExpiry": "yes"],
                ["value": value, "expiresAt": "2000-01-01T00:00:00Z"],
            ]
            for body in updates {
                let reply = try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: body)
                expectError(reply, .badRequest, "VALIDATION_ERROR")
                expectNoLeak(reply, of: [value])
            }
            // Unknown fields are named, with the allowed ones in details.
            let unknown = try await client.send(.post, "/v1/security/secrets", key: admin, json: ["name": "X", "value": value, "colour": "red"])
            #expect(unknown.errorMessage?.contains("colour") == true)
            #expect((unknown.errorDetails?["allowed"] as? String)?.contains("expiresIn") == true)
            // Unknown routes and methods answer in the same shape.
            for path in ["/v1/security/nothing-here", "/v1/security/secrets/API_KEY/nothing", "/nothing", "/v2/security/secrets"] {
                expectError(try await client.send(.get, path, key: admin), .notFound, "RESOURCE_NOT_FOUND")
            }
            let method = try await client.send(.patch, "/v1/security/secrets/API_KEY", key: admin, json: ["value": "x"])
            expectError(method, .notFound, "RESOURCE_NOT_FOUND")
        }
        #expect(try await server.storedSecrets().map(\.name.rawValue) == ["API_KEY"])
        #expect(try await server.versionCount("API_KEY") == 1)
    }
}
