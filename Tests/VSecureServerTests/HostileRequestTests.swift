import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import VSecureCore
@testable import VSecureServer

/// Requests built to break the server: oversized, malformed, deeply nested, ambiguous, with
/// path tricks or the wrong content type. Each must be a 4xx in the error shape, and nothing
/// may be stored.
@Suite("Hostile requests")
struct HostileRequestTests {
    static let cap = 2048

    static func smallBodyServer() throws -> ServerFixture {
        var limits = ServerFixture.relaxedLimits
        limits.maxBodyBytes = cap
        return try ServerFixture.make(limits: limits)
    }

    /// Every route that reads a body, with a body that would be valid apart from its size.
    static func bodyRoutes(padding: String) -> [(HTTPRequest.Method, String, String)] {
        [
            (.post, "/v1/security/secrets", jsonText(["name": "BIG", "value": padding])),
            (.put, "/v1/security/secrets/EXISTING", jsonText(["value": padding])),
            (.post, "/v1/security/secrets/EXISTING/rollback", jsonText(["version": 1, "environment": "development", "pad": padding])),
            (.post, "/v1/security/secrets/batch/get", jsonText(["names": ["EXISTING"], "pad": padding])),
            (.post, "/v1/security/secrets/batch/upsert", jsonText(["secrets": [["name": "BIG", "value": padding]]])),
            (.post, "/v1/security/api-keys", jsonText(["name": padding, "scopes": ["secrets:read"]])),
            (.put, "/v1/security/policy", jsonText(["secrets": [String: Any](), "pad": padding])),
        ]
    }

    @Test("routes that take no body refuse a declared Content-Length over the cap, and change nothing")
    func oversizedOnRoutesWithoutBody() async throws {
        let server = try Self.smallBodyServer()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("EXISTING", value: "existing-value", key: admin)
            let user = try await client.send(.post, "/v1/security/users", key: admin, json: ["email": "ana@example.com", "roles": []])
            #expect(user.status == .created, "\(user)")
            let padding = String(repeating: "z", count: Self.cap + 1)
            for (method, uri) in [(HTTPRequest.Method.delete, "/v1/security/secrets/EXISTING"),
                                  (.post, "/v1/security/users/ana%40example.com/disable"),
                                  (.post, "/v1/security/audit-logs/verify")] {
                let reply = try await client.send(method, uri, key: admin, body: padding, headers: [.contentType: "text/plain"])
                expectError(reply, .contentTooLarge, "PAYLOAD_TOO_LARGE")
            }
            let users = try await client.send(.get, "/v1/security/users", key: admin)
            #expect(users.data.first { $0["name"] as? String == "ana@example.com" }?["disabled"] as? Bool == false, "\(users)")
        }
        #expect(try await server.storedSecrets().map(\.name.rawValue) == ["EXISTING"])
    }

    /// The stream never ends, so without the time-out the test would never finish; the time
    /// limit turns that into a failure. No bound on the answer's time beyond it: in a full test
    /// run the cooperative pool, which wakes the 1 s timer, can be busy for minutes (measured
    /// 210 s under CI).
    @Test("a JSON body that stops arriving is 408 REQUEST_TIMEOUT after the body time-out", .timeLimit(.minutes(10)))
    func stalledBody() async throws {
        let stalled = AsyncStream<ByteBuffer> { continuation in continuation.yield(ByteBuffer(string: "{\"secrets\": {")) }
        let request = Request(head: HTTPRequest(method: .put, scheme: "http", authority: "localhost", path: "/v1/security/policy",
                                                headerFields: [.contentType: "application/json"]),
                              body: RequestBody(asyncSequence: stalled))
        await #expect(throws: APIError.self) {
            do {
                _ = try await JSONBody.collect(request, limit: 1 << 20, timeoutSeconds: 1)
            } catch let error as APIError {
                #expect(error.code == .requestTimeout, "\(error)")
                throw error
            }
        }
    }

    @Test("bodies over the cap are 413 PAYLOAD_TOO_LARGE, with a Content-Length")
    func oversizedWithContentLength() async throws {
        let server = try Self.smallBodyServer()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("EXISTING", value: "existing-value", key: admin)
            for (method, uri, body) in Self.bodyRoutes(padding: String(repeating: "p", count: Self.cap + 1)) {
                let reply = try await client.send(method, uri, key: admin, body: body)
                expectError(reply, .contentTooLarge, "PAYLOAD_TOO_LARGE")
                #expect(!reply.text.contains("ppppp"))
            }
            // Far over the cap: refused on the declared length.
            let huge = try await client.send(.post, "/v1/security/secrets", key: admin,
                                             body: jsonText(["name": "HUGE", "value": String(repeating: "h", count: 4 << 20)]))
            expectError(huge, .contentTooLarge, "PAYLOAD_TOO_LARGE")
            // Just under the cap is fine.
            let fits = jsonText(["name": "FITS", "value": String(repeating: "f", count: Self.cap - 40)])
            #expect(fits.utf8.count <= Self.cap)
            #expect(try await client.send(.post, "/v1/security/secrets", key: admin, body: fits).status == .created)
        }
        #expect(try await server.storedSecrets().map(\.name.rawValue) == ["EXISTING", "FITS"])
        #expect(try await server.versionCount("EXISTING") == 1)
    }

    @Test("bodies over the cap are 413 without a Content-Length too (as a chunked upload arrives)")
    func oversizedWithoutContentLength() async throws {
        let server = try Self.smallBodyServer()
        let admin = server.admin
        _ = try await server.test { client in
            try await client.createSecret("EXISTING", value: "existing-value", key: admin)
        }
        try await server.testWithoutContentLength { client in
            for (method, uri, body) in Self.bodyRoutes(padding: String(repeating: "q", count: Self.cap * 3)) {
                let reply = try await client.send(method, uri, key: admin, body: body)
                expectError(reply, .contentTooLarge, "PAYLOAD_TOO_LARGE")
            }
            // 100 KiB arriving in 32 KiB chunks.
            let big = try await client.send(.post, "/v1/security/secrets", key: admin,
                                            body: jsonText(["name": "HUGE", "value": String(repeating: "h", count: 100 * 1024)]))
            expectError(big, .contentTooLarge, "PAYLOAD_TOO_LARGE")
            // A small body still goes through this way.
            #expect(try await client.send(.post, "/v1/security/secrets", key: admin, json: ["name": "SMALL", "value": "s"]).status == .created)
        }
        #expect(try await server.storedSecrets().map(\.name.rawValue) == ["EXISTING", "SMALL"])
        #expect(try await server.versionCount("EXISTING") == 1)
    }

    @Test("malformed JSON is 400 VALIDATION_ERROR")
    func malformedJSON() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let bodies: [String] = [
            "",
            " ",
            "{",
            "{\"name\": \"A\", \"value\": ",
            "{\"name\": \"A\", \"value\": \"unterminated}",
            "{\"name\": \"A\" \"value\": \"v\"}",
            "{\"name\": \"A\", \"value\": \"v\",}",
            "{name: \"A\", value: \"v\"}",
            "{'name': 'A', 'value': 'v'}",
            "{\"name\": \"A\", \"value\": \"v\"} trailing",
            "{\"name\": \"A\", \"value\": \"v\"}{}",
            "{\"name\": \"A\", \"value\": \"bad \\q escape\"}",
            "{\"name\": \"A\", \"value\": \"\\ud800\"}",
            "{\"name\": \"A\", \"value\": NaN}",
            "{\"name\": \"A\", \"value\": 1e999}",
            "{\"name\": \"A\", \"value\": \"v\u{0}\"}",
            "[\"name\", \"A\"]",
            "\"just a string\"",
            "null",
            "42",
            "\u{FEFF}{\"name\": \"A\", \"value\": \"v\"}",
        ]
        try await server.test { client in
            for body in bodies {
                let reply = try await client.send(.post, "/v1/security/secrets", key: admin, body: body)
                expectError(reply, .badRequest, "VALIDATION_ERROR")
            }
            // Bytes that are not UTF-8.
            var bytes = Array("{\"name\": \"A\", \"value\": \"".utf8)
            bytes += [0xC3, 0x28, 0xFF]
            bytes += Array("\"}".utf8)
            expectError(try await client.send(.post, "/v1/security/secrets", key: admin, bytes: bytes), .badRequest, "VALIDATION_ERROR")
            expectError(try await client.send(.put, "/v1/security/secrets/A", key: admin, body: "{\"value\":"), .badRequest, "VALIDATION_ERROR")
            expectError(try await client.send(.post, "/v1/security/secrets/batch/upsert", key: admin, body: "{\"secrets\": [}"),
                        .badRequest, "VALIDATION_ERROR")
            expectError(try await client.send(.post, "/v1/security/api-keys", key: admin, body: "{\"name\": }"), .badRequest, "VALIDATION_ERROR")
        }
        #expect(try await server.storedSecrets().isEmpty)
    }

    @Test("deeply nested JSON (1000 levels) is refused without harm")
    func deeplyNested() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let depth = 1000
        let arrays = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        let objects = String(repeating: "{\"a\":", count: depth) + "1" + String(repeating: "}", count: depth)
        try await server.test { client in
            let bodies = [
                "{\"name\": \"DEEP\", \"value\": \"v\", \"metadata\": \(arrays)}",
                "{\"name\": \"DEEP\", \"value\": \"v\", \"metadata\": \(objects)}",
                "{\"name\": \"DEEP\", \"value\": \(arrays)}",
                arrays,
                objects,
                // Unbalanced: never closed.
                String(repeating: "[", count: 100_000),
            ]
            for body in bodies {
                for (method, uri) in [(HTTPRequest.Method.post, "/v1/security/secrets"), (.put, "/v1/security/secrets/DEEP"),
                                      (.post, "/v1/security/secrets/batch/upsert"), (.post, "/v1/security/secrets/batch/get")] {
                    let reply = try await client.send(method, uri, key: admin, body: body)
                    expectError(reply, .badRequest, "VALIDATION_ERROR")
                }
            }
            // The server is still fine.
            #expect(try await client.send(.get, "/health").status == .ok)
        }
        #expect(try await server.storedSecrets().isEmpty)
    }

    @Test("duplicate keys in an object are refused, at any depth, without echoing values")
    func duplicateKeys() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("EXISTING", value: "existing-value", key: admin)
            let cases: [(HTTPRequest.Method, String, String)] = [
                (.post, "/v1/security/secrets", #"{"name": "DUP", "value": "dup-first", "value": "dup-second"}"#),
                (.post, "/v1/security/secrets", #"{"name": "DUP", "name": "OTHER", "value": "dup-first"}"#),
                (.post, "/v1/security/secrets", #"{"name": "DUP", "value": "dup-first", "metadata": {"k": "1", "k": "2"}}"#),
                (.post, "/v1/security/secrets", #"{"name": "DUP", "value": "dup-first", "environment": "development", "environment": "production"}"#),
                (.post, "/v1/security/secrets", #"{"name": "DUP", "value": "dup-first", "n\u0061me": "X"}"#),
                (.put, "/v1/security/secrets/EXISTING", #"{"value": "dup-first", "ifVersion": 1, "ifVersion": 1}"#),
                (.post, "/v1/security/secrets/batch/upsert", #"{"secrets": [{"name": "DUP", "value": "dup-first", "value": "dup-second"}]}"#),
                (.post, "/v1/security/api-keys", #"{"name": "k", "scopes": ["secrets:read"], "scopes": ["apikeys:manage"]}"#),
            ]
            for (method, uri, body) in cases {
                let reply = try await client.send(method, uri, key: admin, body: body)
                expectError(reply, .badRequest, "VALIDATION_ERROR")
                expectNoLeak(reply, of: ["dup-first", "dup-second", "existing-value"])
            }
        }
        #expect(try await server.storedSecrets().map(\.name.rawValue) == ["EXISTING"])
        #expect(try await server.versionCount("EXISTING") == 1)
        let keys = try await server.service.withRegistry { registry, _ throws(VSecureError) in try registry.listKeys() }
        #expect(keys.count == 1)
    }

    @Test("names with /, .., encoded separators or spaces are refused, in bodies and in paths")
    func pathTricks() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("EXISTING", value: "existing-value", key: admin)
            try await client.createSecret("EXISTING", value: "prod-value", key: admin, environment: "production")
            let names = ["a/b", "../EXISTING", "..", ".", "EXISTING/..", "%2F", "A%2FB", "A B", " EXISTING", "EXISTING ", "A\\B",
                         "A\u{0}B", "A\nB", "production/EXISTING", "ＡＢＣ", "A;B", "A?B", "A#B", "A%00B"]
            for name in names {
                let body = try await client.send(.post, "/v1/security/secrets", key: admin, json: ["name": name, "value": "trick-value"])
                expectError(body, .badRequest, "VALIDATION_ERROR")
                expectNoLeak(body, of: ["trick-value", "existing-value", "prod-value"])
                let batch = try await client.send(.post, "/v1/security/secrets/batch/upsert", key: admin,
                                                  json: ["secrets": [["name": name, "value": "trick-value"]]])
                expectError(batch, .badRequest, "VALIDATION_ERROR")
            }
            let paths = [
                "/v1/security/secrets/..", "/v1/security/secrets/.", "/v1/security/secrets/%2E%2E", "/v1/security/secrets/A%2FB",
                "/v1/security/secrets/A%2fB", "/v1/security/secrets/..%2FEXISTING", "/v1/security/secrets/%2E%2E%2FEXISTING",
                "/v1/security/secrets/production%2FEXISTING", "/v1/security/secrets/A%20B", "/v1/security/secrets/%20EXISTING",
                "/v1/security/secrets/EXISTING%00", "/v1/security/secrets/A%5CB", "/v1/security/secrets/%252F",
                "/v1/security/secrets/a/b", "/v1/security/secrets/../secrets/EXISTING",
                "/v1/security/secrets/EXISTING/../../api-keys",
            ]
            // (Empty segments collapse, as in most routers: /secrets//EXISTING is /secrets/EXISTING.)
            for path in paths {
                for (method, json) in [(HTTPRequest.Method.get, nil), (.put, ["value": "trick-value"]), (.delete, nil)] as [(HTTPRequest.Method, [String: String]?)] {
                    let reply = try await client.send(method, path, key: admin, json: json)
                    #expect((400..<500).contains(reply.status.code), "\(method) \(path): \(reply)")
                    #expect(reply.errorCode != nil, "\(method) \(path): \(reply)")
                    expectNoLeak(reply, of: ["trick-value", "existing-value", "prod-value"])
                }
            }
            // Environments with separators are refused too.
            for environment in ["../production", "production/..", "production%2F..", "prod uction"] {
                let reply = try await client.send(.get, "/v1/security/secrets/EXISTING?environment=" + queryEscaped(environment), key: admin)
                expectError(reply, .badRequest, "VALIDATION_ERROR")
                expectNoLeak(reply, of: ["existing-value", "prod-value"])
            }
            #expect(try await client.send(.get, "/v1/security/secrets/EXISTING", key: admin).string("value") == "existing-value")
        }
        #expect(try await server.storedSecrets().map(\.path) == ["development/EXISTING", "production/EXISTING"])
        #expect(try await server.versionCount("EXISTING") == 1)
        #expect(try await server.versionCount("EXISTING", environment: "production") == 1)
    }

    @Test("a body that is not application/json is 415")
    func wrongContentType() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let body = jsonText(["name": "TYPED", "value": "typed-value"])
        try await server.test { client in
            for type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml",
                         "text/json", "", "application/octet-stream"] {
                let headers: HTTPFields = type.isEmpty ? [:] : [.contentType: type]
                let reply: Reply
                if type.isEmpty {
                    // No Content-Type at all.
                    reply = try await client.execute(uri: "/v1/security/secrets", method: .post,
                                                     headers: [.authorization: "Bearer \(admin.token)"],
                                                     body: .init(string: body)) { Reply($0) }
                } else {
                    reply = try await client.send(.post, "/v1/security/secrets", key: admin, body: body, headers: headers)
                }
                expectError(reply, .unsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE")
                expectNoLeak(reply, of: ["typed-value"])
            }
            let form = try await client.send(.post, "/v1/security/secrets", key: admin, body: "name=TYPED&value=typed-value",
                                             headers: [.contentType: "application/x-www-form-urlencoded"])
            expectError(form, .unsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE")
            for (method, uri) in [(HTTPRequest.Method.put, "/v1/security/secrets/TYPED"), (.post, "/v1/security/secrets/batch/get"),
                                  (.post, "/v1/security/secrets/batch/upsert"), (.post, "/v1/security/api-keys"),
                                  (.post, "/v1/security/secrets/TYPED/rollback")] {
                expectError(try await client.send(method, uri, key: admin, body: "{}", headers: [.contentType: "text/plain"]),
                            .unsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE")
            }
            // Parameters and case are fine.
            #expect(try await client.send(.post, "/v1/security/secrets", key: admin, body: body,
                                          headers: [.contentType: "Application/JSON; charset=utf-8"]).status == .created)
        }
        #expect(try await server.storedSecrets().map(\.name.rawValue) == ["TYPED"])
    }

    @Test("unknown fields and wrong types are 400, and nothing is stored")
    func unknownFieldsAndWrongTypes() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("EXISTING", value: "existing-value", key: admin)
            let cases: [(HTTPRequest.Method, String, Any)] = [
                (.post, "/v1/security/secrets", ["name": "T", "value": "typed", "admin": true]),
                (.post, "/v1/security/secrets", ["name": "T", "value": "typed", "Value": "other"]),
                (.post, "/v1/security/secrets", ["name": "T", "value": "typed", "__proto__": [String: Any]()]),
                (.post, "/v1/security/secrets", ["name": 1, "value": "typed"]),
                (.post, "/v1/security/secrets", ["name": ["T"], "value": "typed"]),
                (.post, "/v1/security/secrets", ["name": "T", "value": true]),
                (.post, "/v1/security/secrets", ["name": "T", "value": 3]),
                (.post, "/v1/security/secrets", ["name": "T", "value": ["typed"]]),
                (.post, "/v1/security/secrets", ["name": "T", "valueBase64": 3]),
                (.post, "/v1/security/secrets", ["name": "T", "value": "typed", "tags": "a,b"]),
                (.post, "/v1/security/secrets", ["name": "T", "value": "typed", "tags": [["a"]]]),
                (.post, "/v1/security/secrets", ["name": "T", "value": "typed", "metadata": ["k", "v"]]),
                (.post, "/v1/security/secrets", ["name": "T", "value": "typed", "metadata": ["k": ["v"]]]),
                (.post, "/v1/security/secrets", ["name": "T", "value": "typed", "environment": ["development"]]),
                (.post, "/v1/security/secrets", ["name": "T", "value": "typed", "expiresIn": 3600]),
                (.post, "/v1/security/secrets", ["name": "T", "value": "typed", "expiresAt": 1_900_000_000]),
                (.put, "/v1/security/secrets/EXISTING", ["value": "typed", "ifVersion": "1"]),
                (.put, "/v1/security/secrets/EXISTING", ["value": "typed", "ifVersion": 1.5]),
                (.put, "/v1/security/secrets/EXISTING", ["value": "typed", "ifVersion": true]),
                (.put, "/v1/security/secrets/EXISTING", ["value": "typed", "ifVersion": 1e20]),
                (.put, "/v1/security/secrets/EXISTING", ["value": "typed", "noExpiry": 1]),
                (.put, "/v1/security/secrets/EXISTING", ["value": "typed", "version": 2]),
                (.post, "/v1/security/secrets/EXISTING/rollback", ["version": "1"]),
                (.post, "/v1/security/secrets/EXISTING/rollback", ["version": -1]),
                (.post, "/v1/security/secrets/EXISTING/rollback", ["to": 1]),
                (.post, "/v1/security/secrets/batch/get", ["names": ["EXISTING"], "environment": 1]),
                (.post, "/v1/security/secrets/batch/upsert", ["secrets": ["name": "T", "value": "typed"]]),
                (.post, "/v1/security/secrets/batch/upsert", ["secrets": [["name": "T", "value": "typed"]], "atomic": false]),
            ]
            for (method, uri, json) in cases {
                let reply = try await client.send(method, uri, key: admin, json: json)
                expectError(reply, .badRequest, "VALIDATION_ERROR")
                expectNoLeak(reply, of: ["typed", "existing-value"])
            }
        }
        #expect(try await server.storedSecrets().map(\.name.rawValue) == ["EXISTING"])
        #expect(try await server.versionCount("EXISTING") == 1)
    }

    @Test("oversized fields inside a body under the cap are refused")
    func oversizedFields() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            let longTag = String(repeating: "t", count: 65)
            let longMeta = String(repeating: "m", count: 1025)
            let cases: [[String: Any]] = [
                ["name": "N", "value": "v", "tags": [longTag]],
                ["name": "N", "value": "v", "metadata": ["k": longMeta]],
                ["name": "N", "value": "v", "metadata": [String(repeating: "k", count: 65): "v"]],
                ["name": "N", "value": "v", "environment": String(repeating: "e", count: 65)],
            ]
            for json in cases {
                expectError(try await client.send(.post, "/v1/security/secrets", key: admin, json: json), .badRequest, "VALIDATION_ERROR")
            }
            // Headers that are too long for a key are just a bad key.
            expectError(try await client.send(.get, "/v1/security/secrets",
                                              headers: [.authorization: "Bearer " + String(repeating: "x", count: 10_000)]),
                        .unauthorized, "AUTHENTICATION_REQUIRED")
        }
        #expect(try await server.storedSecrets().isEmpty)
    }
}
