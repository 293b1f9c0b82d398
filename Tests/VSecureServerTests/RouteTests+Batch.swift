import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import VSecureCore
@testable import VSecureServer

/// /v1/security/secrets/batch/get and /batch/upsert.
@Suite("Batch routes")
struct BatchRouteTests {
    @Test("batch get returns every value; missing names are listed, never dropped")
    func batchGet() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("ONE", value: "batch-one", key: admin, extra: ["tags": ["api"]])
            try await client.createSecret("TWO", value: "batch-two", key: admin, extra: ["tags": ["api", "db"]])
            try await client.send(.post, "/v1/security/secrets", key: admin, json: ["name": "BIN", "valueBase64": "/wAB"])
            try await client.createSecret("ONE", value: "prod-one", key: admin, environment: "production")

            let reply = try await client.send(.post, "/v1/security/secrets/batch/get", key: admin,
                                              json: ["names": ["ONE", "TWO", "BIN", "ABSENT", "ONE"]])
            #expect(reply.status == .ok, "\(reply)")
            #expect(reply.string("environment") == "development")
            var values: [String: String] = [:]
            for item in reply.data { values[item["name"] as? String ?? "?"] = (item["value"] ?? item["valueBase64"]) as? String }
            #expect(values == ["ONE": "batch-one", "TWO": "batch-two", "BIN": "/wAB"])
            #expect(reply.data.first { $0["name"] as? String == "BIN" }?["valueEncoding"] as? String == "base64")
            #expect(reply.data.allSatisfy { $0["version"] as? Int == 1 })
            #expect(strings(reply["missing"]) == ["ABSENT"])
            #expect(strings(reply["expired"]).isEmpty)

            let prod = try await client.send(.post, "/v1/security/secrets/batch/get", key: admin,
                                             json: ["names": ["ONE", "TWO"], "environment": "production"])
            #expect(prod.data.map { $0["value"] as? String } == ["prod-one"])
            #expect(strings(prod["missing"]) == ["TWO"])

            let byTag = try await client.send(.post, "/v1/security/secrets/batch/get", key: admin, json: ["tags": ["api"]])
            #expect(Set(byTag.data.compactMap { $0["name"] as? String }) == ["ONE", "TWO"])
            let byTags = try await client.send(.post, "/v1/security/secrets/batch/get", key: admin, json: ["tags": ["api", "db"]])
            #expect(byTags.data.compactMap { $0["name"] as? String } == ["TWO"])
            let none = try await client.send(.post, "/v1/security/secrets/batch/get", key: admin, json: ["names": ["NOPE"]])
            #expect(none.status == .ok)
            #expect(none.data.isEmpty)
            #expect(strings(none["missing"]) == ["NOPE"])
        }
    }

    @Test("batch get lists expired secrets under expired unless allowExpired")
    func batchGetExpired() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("FRESH", value: "fresh-value", key: admin)
            try await client.createSecret("STALE", value: "stale-value", key: admin, extra: ["expiresIn": "1s"])
            server.clock.advance(seconds: 5)
            let reply = try await client.send(.post, "/v1/security/secrets/batch/get", key: admin, json: ["names": ["FRESH", "STALE"]])
            #expect(reply.status == .ok)
            #expect(reply.data.map { $0["name"] as? String } == ["FRESH"])
            #expect(strings(reply["expired"]) == ["STALE"])
            #expect(strings(reply["missing"]).isEmpty)
            expectNoLeak(reply, of: ["stale-value"])
            let allowed = try await client.send(.post, "/v1/security/secrets/batch/get", key: admin,
                                                json: ["names": ["FRESH", "STALE"], "allowExpired": true])
            #expect(Set(allowed.data.compactMap { $0["value"] as? String }) == ["fresh-value", "stale-value"])
            #expect(strings(allowed["expired"]).isEmpty)
        }
    }

    @Test("batch get validates its request")
    func batchGetValidation() async throws {
        var limits = ServerFixture.relaxedLimits
        limits.maxBatchSize = 3
        let server = try ServerFixture.make(limits: limits)
        let admin = server.admin
        try await server.test { client in
            let bad: [Any] = [
                [String: Any](),
                ["names": []],
                ["names": ["ok", "not a name"]],
                ["names": ["A", "B", "C", "D"]],
                ["names": "A"],
                ["names": [1]],
                ["tags": ["bad tag"]],
                ["names": ["A"], "environment": "moon"],
                ["names": ["A"], "allowExpired": "yes"],
                ["names": ["A"], "values": true],
            ]
            for body in bad {
                expectError(try await client.send(.post, "/v1/security/secrets/batch/get", key: admin, json: body), .badRequest, "VALIDATION_ERROR")
            }
            #expect(try await client.send(.post, "/v1/security/secrets/batch/get", key: admin, json: ["names": ["A", "B", "C"]]).status == .ok)
        }
    }

    @Test("batch upsert creates, updates and leaves unchanged in one request")
    func batchUpsert() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            let first = try await client.send(.post, "/v1/security/secrets/batch/upsert", key: admin, json: [
                "secrets": [["name": "A", "value": "upsert-a1", "tags": ["x"]], ["name": "B", "value": "upsert-b1"],
                            ["name": "C", "valueBase64": "/wAB", "metadata": ["k": "v"], "expiresIn": "1d", "description": "c"]],
            ])
            #expect(first.status == .ok, "\(first)")
            #expect(strings(first["created"]) == ["A", "B", "C"])
            #expect(strings(first["updated"]).isEmpty)
            expectNoLeak(first, of: ["upsert-a1", "upsert-b1"])

            let second = try await client.send(.post, "/v1/security/secrets/batch/upsert", key: admin, json: [
                "secrets": [["name": "A", "value": "upsert-a2"], ["name": "B", "value": "upsert-b1"], ["name": "D", "value": "upsert-d1"]],
            ])
            #expect(second.status == .ok, "\(second)")
            #expect(strings(second["created"]) == ["D"])
            #expect(strings(second["updated"]) == ["A"])
            #expect(strings(second["unchanged"]) == ["B"])

            let values = try await client.send(.post, "/v1/security/secrets/batch/get", key: admin, json: ["names": ["A", "B", "C", "D"]])
            var byName: [String: String] = [:]
            for item in values.data { byName[item["name"] as? String ?? "?"] = (item["value"] ?? item["valueBase64"]) as? String }
            #expect(byName == ["A": "upsert-a2", "B": "upsert-b1", "C": "/wAB", "D": "upsert-d1"])
            let c = try await client.send(.get, "/v1/security/secrets/C", key: admin)
            #expect((c["metadata"] as? [String: String]) == ["k": "v"])
            #expect(c.string("description") == "c")
            // Tags kept when an update does not name them.
            #expect(strings(try await client.send(.get, "/v1/security/secrets/A", key: admin)["tags"]) == ["x"])
            // Into another environment.
            let prod = try await client.send(.post, "/v1/security/secrets/batch/upsert", key: admin,
                                             json: ["environment": "production", "secrets": [["name": "A", "value": "prod-a"]]])
            #expect(strings(prod["created"]) == ["A"])
            #expect(prod.string("environment") == "production")
        }
        #expect(try await server.versionCount("A") == 2)
        #expect(try await server.versionCount("B") == 1)
    }

    @Test("batch upsert is all or nothing: one bad item and nothing is stored")
    func batchUpsertAtomic() async throws {
        var limits = ServerFixture.relaxedLimits
        limits.maxBatchSize = 4
        let server = try ServerFixture.make(limits: limits)
        let admin = server.admin
        let past = Timestamp(secondsSinceEpoch: TestClock.start.secondsSinceEpoch - 60).iso8601
        try await server.test { client in
            try await client.createSecret("EXISTING", value: "existing-v1", key: admin)
            let good: [String: Any] = ["name": "GOOD", "value": "good-value"]
            let change: [String: Any] = ["name": "EXISTING", "value": "existing-v2"]
            let badItems: [(String, Any)] = [
                ("invalid name", ["name": "bad name", "value": "bad-value"]),
                ("name with a slash", ["name": "a/b", "value": "bad-value"]),
                ("no value", ["name": "NOVALUE"]),
                ("no name", ["value": "bad-value"]),
                ("value not a string", ["name": "N", "value": 5]),
                ("unknown field", ["name": "N", "value": "bad-value", "colour": "red"]),
                ("bad tag", ["name": "N", "value": "bad-value", "tags": ["a b"]]),
                ("bad metadata", ["name": "N", "value": "bad-value", "metadata": ["k": 1]]),
                ("bad duration", ["name": "N", "value": "bad-value", "expiresIn": "soon"]),
                // Only found while writing, after the first items went in: the transaction rolls back.
                ("expiry in the past", ["name": "N", "value": "bad-value", "expiresAt": past]),
                ("duplicate name", ["name": "GOOD", "value": "bad-value"]),
                ("not an object", "N=bad-value"),
            ]
            for (label, bad) in badItems {
                let reply = try await client.send(.post, "/v1/security/secrets/batch/upsert", key: admin,
                                                  json: ["secrets": [good, change, bad]])
                expectError(reply, .badRequest, "VALIDATION_ERROR")
                #expect(reply.errorMessage?.contains("secrets[2]") == true || label == "expiry in the past" || label == "bad duration",
                        "\(label): \(reply)")
                expectNoLeak(reply, of: ["good-value", "existing-v2", "bad-value"])
            }
            for body in [["secrets": []], ["secrets": "x"], [String: Any](), ["secrets": [good], "environment": "moon"],
                         ["secrets": [good, good, good, good, good].enumerated().map { ["name": "N\($0.offset)", "value": "v"] }]] as [Any] {
                expectError(try await client.send(.post, "/v1/security/secrets/batch/upsert", key: admin, json: body), .badRequest, "VALIDATION_ERROR")
            }
            #expect(try await client.send(.get, "/v1/security/secrets/EXISTING", key: admin).string("value") == "existing-v1")
        }
        #expect(try await server.storedSecrets().map(\.name.rawValue) == ["EXISTING"])
        #expect(try await server.versionCount("EXISTING") == 1)
    }
}
