import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import VSecureCore
@testable import VSecureServer

/// The secret lifecycle routes under /v1/security/secrets, in-process.
@Suite("Secret routes")
struct SecretRouteTests {
    @Test("POST /secrets creates version 1; GET returns the value and attributes")
    func createAndGet() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            let created = try await client.createSecret("DATABASE_URL", value: "postgres://u:pw-alpha@db/app", key: admin,
                                                        extra: ["tags": ["db", "api"], "metadata": ["owner": "team-a"],
                                                                "description": "the main database"])
            #expect(created.string("name") == "DATABASE_URL")
            #expect(created.string("environment") == "development")
            #expect(created.int("version") == 1)
            #expect(created.string("id")?.hasPrefix("sec_") == true)
            #expect(created["value"] == nil)
            expectNoLeak(created, of: ["pw-alpha"])

            let got = try await client.send(.get, "/v1/security/secrets/DATABASE_URL", key: admin)
            #expect(got.status == .ok, "\(got)")
            #expect(got.string("value") == "postgres://u:pw-alpha@db/app")
            #expect(got.string("valueEncoding") == "utf8")
            #expect(got.int("version") == 1)
            #expect(got.int("currentVersion") == 1)
            #expect(strings(got["tags"]) == ["api", "db"])
            #expect((got["metadata"] as? [String: String]) == ["owner": "team-a"])
            #expect(got.string("description") == "the main database")
            #expect(got.string("path") == "development/DATABASE_URL")
            #expect(got.headers[.eTag] == "\"1\"")
            #expect(got.headers[.contentType] == "application/json")
        }
    }

    @Test("an explicit environment, expiresIn and expiresAt are stored")
    func environmentAndExpiry() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let inOneHour = Timestamp(secondsSinceEpoch: TestClock.start.secondsSinceEpoch + 3600).iso8601
        let inOneDay = Timestamp(secondsSinceEpoch: TestClock.start.secondsSinceEpoch + 86_400).iso8601
        try await server.test { client in
            let a = try await client.createSecret("TOKEN", value: "t-1", key: admin, environment: "production", extra: ["expiresIn": "1h"])
            #expect(a.string("environment") == "production")
            #expect(a.string("expiresAt") == inOneHour)
            try await client.createSecret("OTHER", value: "t-2", key: admin, extra: ["expiresAt": inOneDay])
            let got = try await client.send(.get, "/v1/security/secrets/TOKEN?environment=production", key: admin)
            #expect(got.status == .ok)
            #expect(got.string("expiresAt") == inOneHour)
            #expect(got["expired"] as? Bool == false)
            // The same name in another environment is another secret.
            expectError(try await client.send(.get, "/v1/security/secrets/TOKEN", key: admin), .notFound, "RESOURCE_NOT_FOUND")
            // A tag naming an environment chooses it when none is given.
            let tagged = try await client.createSecret("TAGGED", value: "t-3", key: admin, extra: ["tags": ["staging"]])
            #expect(tagged.string("environment") == "staging")
        }
    }

    @Test("values that are not UTF-8 travel as valueBase64; UTF-8 text as value")
    func valueEncoding() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            let binary: [UInt8] = [0xFF, 0x00, 0x01, 0xFE, 0x80]
            let encoded = Data(binary).base64EncodedString()
            let created = try await client.send(.post, "/v1/security/secrets", key: admin, json: ["name": "BLOB", "valueBase64": encoded])
            #expect(created.status == .created, "\(created)")
            let got = try await client.send(.get, "/v1/security/secrets/BLOB", key: admin)
            #expect(got.string("valueEncoding") == "base64")
            #expect(got.string("valueBase64") == encoded)
            #expect(got["value"] == nil)

            try await client.createSecret("TEXT", value: "héllo wörld ✓\nline two", key: admin)
            let text = try await client.send(.get, "/v1/security/secrets/TEXT", key: admin)
            #expect(text.string("value") == "héllo wörld ✓\nline two")
            #expect(text.string("valueEncoding") == "utf8")
            #expect(text["valueBase64"] == nil)

            // Text sent base64-encoded comes back as text.
            try await client.send(.post, "/v1/security/secrets", key: admin, json: ["name": "VIA_B64", "valueBase64": Data("plain".utf8).base64EncodedString()])
            #expect(try await client.send(.get, "/v1/security/secrets/VIA_B64", key: admin).string("value") == "plain")

            let both = try await client.send(.post, "/v1/security/secrets", key: admin, json: ["name": "BOTH", "value": "v-both", "valueBase64": "AAAA"])
            expectError(both, .badRequest, "VALIDATION_ERROR")
            expectNoLeak(both, of: ["v-both"])
            expectError(try await client.send(.post, "/v1/security/secrets", key: admin, json: ["name": "BAD", "valueBase64": "%%%"]),
                        .badRequest, "VALIDATION_ERROR")
            expectError(try await client.send(.post, "/v1/security/secrets", key: admin, json: ["name": "NOVALUE"]),
                        .badRequest, "VALIDATION_ERROR")
        }
        #expect(try await server.storedSecrets().map(\.name.rawValue).sorted() == ["BLOB", "TEXT", "VIA_B64"])
    }

    @Test("creating an existing secret is a 409 that does not echo the value")
    func createConflict() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("API_KEY", value: "first-value-123", key: admin)
            let again = try await client.send(.post, "/v1/security/secrets", key: admin, json: ["name": "API_KEY", "value": "second-value-456"])
            expectError(again, .conflict, "CONFLICT")
            expectNoLeak(again, of: ["first-value-123", "second-value-456"])
            #expect(try await client.send(.get, "/v1/security/secrets/API_KEY", key: admin).string("value") == "first-value-123")
        }
    }

    @Test("PUT with a value makes a new version; older versions stay readable")
    func updateValue() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("API_KEY", value: "v1-secret", key: admin)
            let updated = try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["value": "v2-secret"])
            #expect(updated.status == .ok, "\(updated)")
            #expect(updated.int("version") == 2)
            #expect(updated.int("previousVersion") == 1)
            #expect(updated["valueChanged"] as? Bool == true)
            expectNoLeak(updated, of: ["v1-secret", "v2-secret"])

            let current = try await client.send(.get, "/v1/security/secrets/API_KEY", key: admin)
            #expect(current.string("value") == "v2-secret")
            #expect(current.headers[.eTag] == "\"2\"")
            let old = try await client.send(.get, "/v1/security/secrets/API_KEY?version=1", key: admin)
            #expect(old.string("value") == "v1-secret")
            #expect(old.int("version") == 1)
            #expect(old.int("currentVersion") == 2)
            #expect(old.headers[.eTag] == "\"2\"", "the ETag is the current version, what If-Match compares")
            expectError(try await client.send(.get, "/v1/security/secrets/API_KEY?version=9", key: admin), .notFound, "RESOURCE_NOT_FOUND")
            expectError(try await client.send(.get, "/v1/security/secrets/API_KEY?version=0", key: admin), .badRequest, "VALIDATION_ERROR")
        }
    }

    @Test("PUT with attributes only changes them in place, without a new version")
    func updateAttributesOnly() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("API_KEY", value: "value-x", key: admin, extra: ["tags": ["a"], "metadata": ["k": "1", "gone": "x"]])
            let updated = try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin,
                                                json: ["addTags": ["b"], "metadata": ["k": "2"], "removeMetadata": ["gone"],
                                                       "description": "described", "expiresIn": "2h"])
            #expect(updated.status == .ok, "\(updated)")
            #expect(updated.int("version") == 1)
            #expect(updated["valueChanged"] as? Bool == false)
            #expect(strings(updated["tags"]) == ["a", "b"])
            #expect((updated["metadata"] as? [String: String]) == ["k": "2"])
            #expect(updated.string("description") == "described")
            #expect(updated.string("expiresAt") != nil)
            let cleared = try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["noExpiry": true, "removeTags": ["a"]])
            #expect(cleared.status == .ok, "\(cleared)")
            #expect(cleared["expiresAt"] is NSNull)
            #expect(strings(cleared["tags"]) == ["b"])
            let replaced = try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["tags": ["x", "y"]])
            #expect(strings(replaced["tags"]) == ["x", "y"])

            expectError(try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: [String: Any]()),
                        .badRequest, "VALIDATION_ERROR")
            expectError(try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["noExpiry": true, "expiresIn": "1h"]),
                        .badRequest, "VALIDATION_ERROR")
            expectError(try await client.send(.put, "/v1/security/secrets/NOPE", key: admin, json: ["value": "v"]),
                        .notFound, "RESOURCE_NOT_FOUND")
        }
        #expect(try await server.versionCount("API_KEY") == 1)
    }

    @Test("DELETE removes a secret from reads and lists; a second DELETE is 404")
    func delete() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("API_KEY", value: "value-x", key: admin)
            try await client.createSecret("KEEP", value: "value-y", key: admin)
            let deleted = try await client.send(.delete, "/v1/security/secrets/API_KEY", key: admin)
            #expect(deleted.status == .noContent, "\(deleted)")
            #expect(deleted.text.isEmpty)
            expectError(try await client.send(.get, "/v1/security/secrets/API_KEY", key: admin), .notFound, "RESOURCE_NOT_FOUND")
            expectError(try await client.send(.delete, "/v1/security/secrets/API_KEY", key: admin), .notFound, "RESOURCE_NOT_FOUND")
            let list = try await client.listSecrets(key: admin)
            #expect(list.data.map { $0["name"] as? String } == ["KEEP"])
            // A deleted name can be created again.
            try await client.createSecret("API_KEY", value: "value-z", key: admin)
            // purge destroys it for good.
            #expect(try await client.send(.delete, "/v1/security/secrets/API_KEY?purge=true", key: admin).status == .noContent)
            expectError(try await client.send(.delete, "/v1/security/secrets/API_KEY?purge=maybe", key: admin), .badRequest, "VALIDATION_ERROR")
            expectError(try await client.send(.delete, "/v1/security/secrets/NEVER", key: admin), .notFound, "RESOURCE_NOT_FOUND")
        }
        #expect(try await server.storedSecrets().map(\.name.rawValue) == ["KEEP"])
    }

    @Test("GET /secrets/{name}/versions lists every version without values")
    func versions() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("API_KEY", value: "ver-one-value", key: admin)
            try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["value": "ver-two-value"])
            try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["value": "ver-three-value"])
            let versions = try await client.send(.get, "/v1/security/secrets/API_KEY/versions", key: admin)
            #expect(versions.status == .ok, "\(versions)")
            #expect(versions.string("name") == "API_KEY")
            #expect(versions.int("currentVersion") == 3)
            #expect(versions.data.map { $0["version"] as? Int } == [1, 2, 3])
            #expect(versions.data.map { $0["action"] as? String } == ["create", "update", "update"])
            #expect(versions.data.allSatisfy { $0["fingerprint"] is String && $0["value"] == nil })
            #expect(versions.data.first?["actor"] as? String == "admin (\(admin.id))")
            expectNoLeak(versions, of: ["ver-one-value", "ver-two-value", "ver-three-value"])
            expectError(try await client.send(.get, "/v1/security/secrets/NOPE/versions", key: admin), .notFound, "RESOURCE_NOT_FOUND")
        }
    }

    @Test("POST /secrets/{name}/rollback makes a new version with an old value")
    func rollback() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("API_KEY", value: "rb-one", key: admin)
            try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["value": "rb-two"])
            try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["value": "rb-three"])
            let rolled = try await client.send(.post, "/v1/security/secrets/API_KEY/rollback", key: admin, json: ["version": 1])
            #expect(rolled.status == .ok, "\(rolled)")
            #expect(rolled.int("version") == 4)
            #expect(rolled.int("previousVersion") == 3)
            #expect(rolled.int("restoredVersion") == 1)
            expectNoLeak(rolled, of: ["rb-one", "rb-two", "rb-three"])
            #expect(try await client.send(.get, "/v1/security/secrets/API_KEY", key: admin).string("value") == "rb-one")

            // Without a version: the one before the current one.
            let back = try await client.send(.post, "/v1/security/secrets/API_KEY/rollback", key: admin, json: [String: Any]())
            #expect(back.status == .ok, "\(back)")
            #expect(back.int("restoredVersion") == 3)
            #expect(try await client.send(.get, "/v1/security/secrets/API_KEY", key: admin).string("value") == "rb-three")

            expectError(try await client.send(.post, "/v1/security/secrets/API_KEY/rollback", key: admin, json: ["version": 5]),
                        .conflict, "CONFLICT")
            expectError(try await client.send(.post, "/v1/security/secrets/API_KEY/rollback", key: admin, json: ["version": 0]),
                        .badRequest, "VALIDATION_ERROR")
            expectError(try await client.send(.post, "/v1/security/secrets/API_KEY/rollback", key: admin, json: ["version": 42]),
                        .notFound, "RESOURCE_NOT_FOUND")
            expectError(try await client.send(.post, "/v1/security/secrets/API_KEY/rollback", key: admin, json: ["version": "1"]),
                        .badRequest, "VALIDATION_ERROR")
            expectError(try await client.send(.post, "/v1/security/secrets/NOPE/rollback", key: admin, json: ["version": 1]),
                        .notFound, "RESOURCE_NOT_FOUND")
        }
        #expect(try await server.versionCount("API_KEY") == 5)
    }

    @Test("GET /secrets/{name}/diff compares versions without values")
    func diff() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("API_KEY", value: "diff-one", key: admin, extra: ["tags": ["a"], "metadata": ["k": "1"]])
            try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["value": "diff-two-longer", "tags": ["b"], "metadata": ["k": "2"]])
            let diff = try await client.send(.get, "/v1/security/secrets/API_KEY/diff?from=1&to=2", key: admin)
            #expect(diff.status == .ok, "\(diff)")
            #expect(diff.int("from") == 1)
            #expect(diff.int("to") == 2)
            #expect(diff["valueChanged"] as? Bool == true)
            #expect(diff.int("fromLength") == 8)
            #expect(diff.int("toLength") == 15)
            #expect(strings(diff["tagsAdded"]) == ["b"])
            #expect(strings(diff["tagsRemoved"]) == ["a"])
            #expect((diff["metadataChanged"] as? [[String: Any]])?.first?["to"] as? String == "2")
            expectNoLeak(diff, of: ["diff-one", "diff-two-longer"])
            // Default: the version before the current one, and the current one.
            let byDefault = try await client.send(.get, "/v1/security/secrets/API_KEY/diff", key: admin)
            #expect(byDefault.int("from") == 1 && byDefault.int("to") == 2)
            expectError(try await client.send(.get, "/v1/security/secrets/API_KEY/diff?from=7", key: admin), .notFound, "RESOURCE_NOT_FOUND")
            expectError(try await client.send(.get, "/v1/security/secrets/API_KEY/diff?from=0", key: admin), .badRequest, "VALIDATION_ERROR")
            expectError(try await client.send(.get, "/v1/security/secrets/API_KEY/diff?to=x", key: admin), .badRequest, "VALIDATION_ERROR")
            expectError(try await client.send(.get, "/v1/security/secrets/NOPE/diff", key: admin), .notFound, "RESOURCE_NOT_FOUND")
        }
    }

    @Test("an expired secret answers 410 SECRET_EXPIRED unless allowExpired")
    func expiredSecret() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("SHORT", value: "short-lived-value", key: admin, extra: ["expiresIn": "1s"])
            #expect(try await client.send(.get, "/v1/security/secrets/SHORT", key: admin).status == .ok)
            server.clock.advance(seconds: 2)
            let expired = try await client.send(.get, "/v1/security/secrets/SHORT", key: admin)
            expectError(expired, .gone, "SECRET_EXPIRED")
            expectNoLeak(expired, of: ["short-lived-value"])
            // The refusal is recorded as a failed read.
            let reads = try await client.send(.get, "/v1/security/audit-logs?name=SHORT&action=accessed", key: admin)
            #expect(reads.data.map { $0["result"] as? String } == ["success", "failure"], "\(reads)")
            #expect((reads.data.last?["details"] as? [String: Any])?["reason"] as? String == "expired", "\(reads)")
            let allowed = try await client.send(.get, "/v1/security/secrets/SHORT?allowExpired=true", key: admin)
            #expect(allowed.status == .ok)
            #expect(allowed.string("value") == "short-lived-value")
            #expect(allowed["expired"] as? Bool == true)
            // Lists hide it unless includeExpired.
            #expect(try await client.listSecrets(key: admin).data.isEmpty)
            let all = try await client.listSecrets(key: admin, query: "includeExpired=true")
            #expect(all.data.map { $0["name"] as? String } == ["SHORT"])
            #expect(all.data.first?["expired"] as? Bool == true)
            // An expiry in the past is refused at creation.
            let past = Timestamp(secondsSinceEpoch: server.clock.now.secondsSinceEpoch - 10).iso8601
            expectError(try await client.send(.post, "/v1/security/secrets", key: admin, json: ["name": "PAST", "value": "v", "expiresAt": past]),
                        .badRequest, "VALIDATION_ERROR")
        }
    }

    @Test("GET /secrets filters by environment, tags and search, and never shows values")
    func listFilters() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("DB_URL", value: "list-v1", key: admin, extra: ["tags": ["db", "api"]])
            try await client.createSecret("DB_USER", value: "list-v2", key: admin, extra: ["tags": ["db"], "description": "login name"])
            try await client.createSecret("CACHE_URL", value: "list-v3", key: admin, environment: "production", extra: ["tags": ["api"]])
            let all = try await client.listSecrets(key: admin)
            #expect(all.status == .ok)
            #expect(all.data.map { $0["path"] as? String } == ["development/DB_URL", "development/DB_USER", "production/CACHE_URL"])
            #expect(all.data.allSatisfy { $0["value"] == nil && $0["valueBase64"] == nil })
            expectNoLeak(all, of: ["list-v1", "list-v2", "list-v3"])
            let pagination = all["pagination"] as? [String: Any]
            #expect(pagination?["totalCount"] as? Int == 3)
            #expect(pagination?["hasMore"] as? Bool == false)
            #expect(pagination?["cursor"] is NSNull)

            #expect(try await client.listSecrets(key: admin, query: "environment=production").data.map { $0["name"] as? String } == ["CACHE_URL"])
            #expect(try await client.listSecrets(key: admin, query: "tags=db,api").data.map { $0["name"] as? String } == ["DB_URL"])
            #expect(try await client.listSecrets(key: admin, query: "tags=api").data.count == 2)
            #expect(try await client.listSecrets(key: admin, query: "search=user").data.map { $0["name"] as? String } == ["DB_USER"])
            #expect(try await client.listSecrets(key: admin, query: "search=LOGIN").data.map { $0["name"] as? String } == ["DB_USER"])
            #expect(try await client.listSecrets(key: admin, query: "search=nothing").data.isEmpty)

            expectError(try await client.listSecrets(key: admin, query: "environment=moon"), .badRequest, "VALIDATION_ERROR")
            expectError(try await client.listSecrets(key: admin, query: "environment=Bad%20Env"), .badRequest, "VALIDATION_ERROR")
            expectError(try await client.listSecrets(key: admin, query: "tags=a,,b"), .badRequest, "VALIDATION_ERROR")
            expectError(try await client.listSecrets(key: admin, query: "includeExpired=perhaps"), .badRequest, "VALIDATION_ERROR")
        }
    }

    @Test("a secret named like a fixed path segment (batch) is still reachable on every route")
    func secretNamedBatch() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("batch", value: "batch-one", key: admin)
            let got = try await client.send(.get, "/v1/security/secrets/batch", key: admin)
            #expect(got.string("value") == "batch-one", "\(got)")
            #expect(try await client.send(.put, "/v1/security/secrets/batch", key: admin, json: ["value": "batch-two"]).status == .ok)
            #expect(try await client.send(.get, "/v1/security/secrets/batch/versions", key: admin).data.count == 2)
            #expect(try await client.send(.get, "/v1/security/secrets/batch/diff", key: admin).status == .ok)
            #expect(try await client.send(.post, "/v1/security/secrets/batch/rollback", key: admin, json: ["version": 1]).status == .ok)
            #expect(try await client.send(.delete, "/v1/security/secrets/batch", key: admin).status == .noContent)
        }
    }

    @Test("unknown environments and invalid names are validation errors")
    func environmentAndNameValidation() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("API_KEY", value: "v", key: admin)
            for uri in ["/v1/security/secrets/API_KEY?environment=moon", "/v1/security/secrets/API_KEY/versions?environment=moon",
                        "/v1/security/secrets/API_KEY/diff?environment=moon", "/v1/security/secrets/1ABC",
                        "/v1/security/secrets/A-B", "/v1/security/secrets/" + String(repeating: "A", count: 129)] {
                expectError(try await client.send(.get, uri, key: admin), .badRequest, "VALIDATION_ERROR")
            }
            expectError(try await client.send(.post, "/v1/security/secrets", key: admin, json: ["name": "X", "value": "v", "environment": "moon"]),
                        .badRequest, "VALIDATION_ERROR")
            expectError(try await client.send(.put, "/v1/security/secrets/API_KEY", key: admin, json: ["value": "v2", "environment": "moon"]),
                        .badRequest, "VALIDATION_ERROR")
            expectError(try await client.send(.delete, "/v1/security/secrets/API_KEY?environment=moon", key: admin), .badRequest, "VALIDATION_ERROR")
        }
        #expect(try await server.versionCount("API_KEY") == 1)
    }
}
