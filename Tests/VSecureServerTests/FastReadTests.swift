import Foundation
import Testing
import TestSupport

/// `GET /v1/security/secrets/{name}` is answered on the event loop, past the router
/// (`FastReadHandler`). These tests run the real `vsecure-server` twice on one data directory,
/// once as shipped and once with `--no-fast-reads`, and hold the two to the same answers: status,
/// headers and body, for reads that succeed and for every kind of refusal (which the fast path
/// hands to the router), the same audit entries, HTTP/1.1 pipelining in order, and one rate
/// allowance per request.
@Suite("Fast reads: the same answers as the router", .serialized)
struct FastReadTests {
    /// A store with users, a policy, a grant and secrets, and a server of each kind on it.
    final class Fixture: @unchecked Sendable {
        let store: LiveStore
        let fast: LiveServer
        let slow: LiveServer
        /// For `populate`: `fast`, or a third server without a tight rate limit.
        let setup: LiveServer
        var tokens: [String: String] = [:]

        init(rateLimit: Int = 1_000_000) throws {
            store = try LiveStore()
            fast = try LiveServer(store: store, extraArguments: ["--log-level", "info"], rateLimit: rateLimit)
            slow = try LiveServer(store: store, extraArguments: ["--log-level", "info", "--no-fast-reads"], rateLimit: rateLimit)
            setup = rateLimit >= 1000 ? fast : try LiveServer(store: store)
        }

        func client(_ server: LiveServer, token: String? = nil) -> LiveClient {
            LiveClient(baseURL: server.baseURL, token: token ?? store.adminToken, scratch: store.directory)
        }

        /// Users ana (engineers), bo (interns, with a grant on production/OTHER) and cy
        /// (disabled); keys for them; DB_PASS at version 2, OTHER, SOON (expired) and a staging
        /// DB_PASS.
        func populate() throws {
            let admin = client(setup)
            func ok(_ result: LiveCurlResult, _ what: String) throws {
                guard (200..<300).contains(result.status) else { throw TestFailure("\(what): \(result)") }
            }
            try ok(admin.put("/v1/security/policy", liveJSON(["secrets": [
                "**": ["read": ["admins"], "write": ["admins"], "delete": ["admins"]],
                "production/*": ["read": ["admins", "engineers"], "write": ["admins"], "delete": ["admins"]],
                "staging/*": ["read": ["admins", "engineers"], "write": ["admins"], "delete": ["admins"]],
            ]])), "policy")
            for (email, roles) in [("ana@example.com", ["engineers"]), ("bo@example.com", ["interns"]), ("cy@example.com", ["engineers"])] {
                try ok(admin.post("/v1/security/users", liveJSON(["email": email, "roles": roles])), "user \(email)")
            }
            func key(_ name: String, user: String, scopes: [String], environments: [String]? = nil) throws {
                var body: [String: Any] = ["name": name, "user": user, "scopes": scopes]
                if let environments { body["environments"] = environments }
                let created = try admin.post("/v1/security/api-keys", liveJSON(body))
                try ok(created, "key \(name)")
                tokens[name] = created.json["key"] as? String
            }
            try key("ana", user: "ana@example.com", scopes: ["secrets:read"])
            try key("ana-staging", user: "ana@example.com", scopes: ["secrets:read"], environments: ["staging"])
            try key("ana-audit", user: "ana@example.com", scopes: ["audit:read"])
            try key("bo", user: "bo@example.com", scopes: ["secrets:read"])
            try key("cy", user: "cy@example.com", scopes: ["secrets:read"])
            try ok(admin.post("/v1/security/users/cy@example.com/disable", "{}"), "disable cy")
            try ok(admin.post("/v1/security/grants", liveJSON(["user": "bo@example.com", "name": "OTHER", "environment": "production",
                                                              "action": "read", "duration": "1h"])), "grant")
            for (name, environment, value) in [("DB_PASS", "production", "first \"value\"\nline"), ("OTHER", "production", "other=1"),
                                               ("DB_PASS", "staging", "staging-value")] {
                try ok(admin.post("/v1/security/secrets", liveJSON(["name": name, "value": value, "environment": environment,
                                                                   "tags": ["app"], "metadata": ["owner": "team"]])), "create \(name)")
            }
            try ok(admin.put("/v1/security/secrets/DB_PASS?environment=production", liveJSON(["value": "second value ü"])), "update")
            try ok(admin.post("/v1/security/secrets", liveJSON(["name": "ROTATED", "value": "rotated", "environment": "production",
                                                               "rotationPolicy": ["period": "30d", "notifyBefore": "7d",
                                                                                  "generate": ["length": 32, "charset": "hex"]]])), "create ROTATED")
            try ok(admin.post("/v1/security/secrets", liveJSON(["name": "SOON", "value": "soon", "environment": "production",
                                                               "expiresIn": "1s"])), "create SOON")
            Thread.sleep(forTimeInterval: 1.5)
        }
    }

    /// One request, as sent to each server.
    struct Case: CustomStringConvertible {
        var path: String
        var key: String? = "admin"
        var headers: [String: String] = [:]
        /// Something about the request (an unknown or repeated parameter, percent-encoding, a
        /// `Connection` header) sends it to the router even when it succeeds.
        var routed = false
        var description: String { "\(key ?? "no key") GET \(path) \(headers)" }
    }

    static let cases: [Case] = [
        Case(path: "/v1/security/secrets/DB_PASS?environment=production"),
        Case(path: "/v1/security/secrets/DB_PASS?environment=production&version=1"),
        Case(path: "/v1/security/secrets/DB_PASS?version=2&environment=production"),
        Case(path: "/v1/security/secrets/DB_PASS?environment=production&version=9"),
        Case(path: "/v1/security/secrets/DB_PASS?environment=production&version=0"),
        Case(path: "/v1/security/secrets/DB_PASS?environment=production&version=x"),
        Case(path: "/v1/security/secrets/DB_PASS?environment=staging"),
        Case(path: "/v1/security/secrets/DB_PASS"),
        Case(path: "/v1/security/secrets/DB_PASS?environment=nowhere"),
        Case(path: "/v1/security/secrets/DB_PASS?environment="),
        Case(path: "/v1/security/secrets/DB_PASS?environment=production&environment=staging", routed: true),
        Case(path: "/v1/security/secrets/DB_PASS?environment=production&extra=1", routed: true),
        Case(path: "/v1/security/secrets/DB%5FPASS?environment=production", routed: true),
        Case(path: "/v1/security/secrets/ROTATED?environment=production"),
        Case(path: "/v1/security/secrets/ROTATED?environment=production&version=1"),
        Case(path: "/v1/security/secrets/NOPE?environment=production"),
        Case(path: "/v1/security/secrets/bad..name?environment=production"),
        Case(path: "/v1/security/secrets/SOON?environment=production"),
        Case(path: "/v1/security/secrets/SOON?environment=production&allowExpired=true"),
        Case(path: "/v1/security/secrets/SOON?environment=production&allowExpired=1"),
        Case(path: "/v1/security/secrets/SOON?environment=production&allowExpired=perhaps"),
        Case(path: "/v1/security/secrets/DB_PASS?environment=production", key: "ana"),
        Case(path: "/v1/security/secrets/DB_PASS?environment=staging", key: "ana"),
        Case(path: "/v1/security/secrets/DB_PASS?environment=production", key: "ana-staging"),
        Case(path: "/v1/security/secrets/DB_PASS?environment=staging", key: "ana-staging"),
        Case(path: "/v1/security/secrets/DB_PASS?environment=production", key: "ana-audit"),
        Case(path: "/v1/security/secrets/DB_PASS?environment=production", key: "bo"),
        Case(path: "/v1/security/secrets/OTHER?environment=production", key: "bo"),
        Case(path: "/v1/security/secrets/OTHER?environment=production", key: "cy"),
        Case(path: "/v1/security/secrets/DB_PASS?environment=production", key: nil),
        Case(path: "/v1/security/secrets/DB_PASS?environment=production", key: "vsec_key_0000000000000000_notavalidtokenatall"),
        Case(path: "/v1/security/secrets/DB_PASS?environment=production&token=abc"),
        Case(path: "/v1/security/secrets/DB_PASS?environment=production", headers: ["X-Request-Id": "client-id.1"]),
        Case(path: "/v1/security/secrets/DB_PASS?environment=production", headers: ["X-Request-Id": "not valid!"]),
        Case(path: "/v1/security/secrets/DB_PASS?environment=production", headers: ["User-Agent": "fast-read-test/1"]),
        Case(path: "/v1/security/secrets/DB_PASS?environment=production", headers: ["Connection": "close"], routed: true),
    ]

    /// Headers whose values differ between any two answers.
    static let varying: Set<String> = ["date", "x-request-id"]

    @Test("every case gets the same status, headers and body from both paths", .timeLimit(.minutes(4)))
    func sameAnswers() throws {
        let fixture = try Fixture()
        try fixture.populate()
        var served = 0
        for item in Self.cases {
            let token: String?? = item.key.map { fixture.tokens[$0] ?? ($0 == "admin" ? fixture.store.adminToken : $0) }.map { .some($0) } ?? .some(nil)
            let fast = try fixture.client(fixture.fast).request("GET", item.path, headers: item.headers, token: token)
            let slow = try fixture.client(fixture.slow).request("GET", item.path, headers: item.headers, token: token)
            #expect(fast.exitCode == 0 && slow.exitCode == 0, "\(item): \(fast) / \(slow)")
            #expect(fast.status == slow.status, "\(item): fast \(fast) / router \(slow)")
            #expect(fast.body == slow.body, "\(item): fast \(fast.text) / router \(slow.text)")
            #expect(Set(fast.headers.keys) == Set(slow.headers.keys), "\(item): \(fast.headers) / \(slow.headers)")
            for (name, value) in fast.headers where !Self.varying.contains(name) {
                #expect(slow.headers[name] == value, "\(item): header \(name): \(value) / \(slow.headers[name] ?? "none")")
            }
            if let given = item.headers["X-Request-Id"], given == "client-id.1" {
                #expect(fast.header("X-Request-Id") == given && slow.header("X-Request-Id") == given, "\(item)")
            }
            #expect(fast.header("X-Request-Id")?.isEmpty == false, "\(item)")
            if fast.status == 200 && !item.routed { served += 1 }
        }
        #expect(served >= 8, "the cases include successful reads: \(served)")
        // The fast server logs the reads it answered itself without Hummingbird's request id;
        // the router's lines carry one. So the fast path did serve, and the other server never.
        let fastLines = fixture.fast.process.log.split(separator: "\n").filter { $0.contains("GET /v1/security/secrets/") && $0.contains(" 200 ") }
        let slowLines = fixture.slow.process.log.split(separator: "\n").filter { $0.contains("GET /v1/security/secrets/") && $0.contains(" 200 ") }
        #expect(fastLines.filter { !$0.contains("hb.request.id=") }.count == served,
                "reads the fast server answered itself:\n\(fastLines.joined(separator: "\n"))")
        #expect(!slowLines.isEmpty && slowLines.allSatisfy { $0.contains("hb.request.id=") }, "\(slowLines)")
        // Refusals are logged too, with their status.
        for server in [fixture.fast, fixture.slow] {
            for line in ["GET /v1/security/secrets/NOPE 404 ", "GET /v1/security/secrets/DB_PASS 401 ", "GET /v1/security/secrets/DB_PASS 403 "] {
                #expect(server.process.log.contains(line), "\(server.baseURL) logged no \(line)")
            }
        }
    }

    @Test("a read answered by either path leaves the same audit entry", .timeLimit(.minutes(2)))
    func sameAuditEntries() throws {
        let fixture = try Fixture()
        try fixture.populate()
        let token = fixture.tokens["ana"]!
        for (server, id) in [(fixture.fast, "audit-fast"), (fixture.slow, "audit-slow")] {
            let read = try fixture.client(server, token: token).request("GET", "/v1/security/secrets/DB_PASS?environment=production&version=1",
                                                                         headers: ["X-Request-Id": id, "User-Agent": "audit-check/2"])
            #expect(read.status == 200, "\(read)")
        }
        let listed = try fixture.client(fixture.slow).get("/v1/security/audit-logs?action=accessed&name=DB_PASS&limit=1000")
        #expect(listed.status == 200, "\(listed)")
        let entries = listed.json.liveObjects("data")
        func entry(_ id: String) -> [String: Any]? {
            entries.first { ($0.liveObject("request")?["requestId"] as? String) == id }
        }
        let fast = try #require(entry("audit-fast"), "\(listed.text)")
        let slow = try #require(entry("audit-slow"), "\(listed.text)")
        let ignored: Set<String> = ["seq", "time", "mac", "request"]
        let fastFields = fast.filter { !ignored.contains($0.key) }, slowFields = slow.filter { !ignored.contains($0.key) }
        #expect(NSDictionary(dictionary: fastFields).isEqual(to: slowFields), "fast \(fast)\nrouter \(slow)")
        var fastRequest = fast.liveObject("request") ?? [:], slowRequest = slow.liveObject("request") ?? [:]
        fastRequest["requestId"] = nil
        slowRequest["requestId"] = nil
        #expect(NSDictionary(dictionary: fastRequest).isEqual(to: slowRequest), "\(fastRequest) / \(slowRequest)")
        #expect(fast["version"] as? Int == 1 && (fast.liveObject("actor")?["user"] as? String) == "ana@example.com", "\(fast)")
        let verify = try fixture.client(fixture.slow).post("/v1/security/audit-logs/verify", "{}")
        #expect(verify.status == 200 && verify.json.liveBool("intact") == true, "\(verify)")
    }

    @Test("pipelined requests are answered in order, whichever path serves each", .timeLimit(.minutes(2)))
    func pipelining() throws {
        let fixture = try Fixture()
        try fixture.populate()
        let token = fixture.store.adminToken
        func request(_ path: String, _ id: String) -> String {
            "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nX-Request-Id: \(id)\r\n\r\n"
        }
        let read = "/v1/security/secrets/DB_PASS?environment=production"
        let sequence = [(read, "p1", 200), ("/v1/security/secrets?environment=production", "p2", 200), (read, "p3", 200),
                        ("/v1/security/secrets/NOPE?environment=production", "p4", 404), (read, "p5", 200), (read, "p6", 200),
                        ("/health", "p7", 200), (read, "p8", 200)]
        let answers = try RawHTTP.exchange(port: fixture.fast.port, bytes: sequence.map { request($0.0, $0.1) }.joined(), answers: sequence.count)
        #expect(answers.map(\.requestID) == sequence.map(\.1), "\(answers)")
        #expect(answers.map(\.status) == sequence.map(\.2), "\(answers)")
        for (answer, item) in zip(answers, sequence) where item.0 == read {
            #expect(answer.body.contains("\"value\":\"second value ü\""), "\(answer)")
        }
        // Many at once, more than one read from the socket holds: every answer, in order.
        let many = (0..<300).map { index in
            index % 3 == 2 ? ("/v1/security/secrets/NOPE?environment=production", "m\(index)", 404) : (read, "m\(index)", 200)
        }
        let manyAnswers = try RawHTTP.exchange(port: fixture.fast.port, bytes: many.map { request($0.0, $0.1) }.joined(), answers: many.count)
        #expect(manyAnswers.map(\.requestID) == many.map(\.1))
        #expect(manyAnswers.map(\.status) == many.map(\.2))
        // A client that closes its sending side after its requests still gets every answer.
        for ending in [[(read, "h1", 200)], [(read, "h2", 200), (read, "h3", 200)], Array(sequence.prefix(3))] {
            let answers = try RawHTTP.exchange(port: fixture.fast.port, bytes: ending.map { request($0.0, $0.1) }.joined(),
                                               answers: ending.count, halfClose: true)
            #expect(answers.map(\.requestID) == ending.map(\.1) && answers.map(\.status) == ending.map(\.2), "\(answers)")
        }
    }

    @Test("a request the fast path hands to the router uses one rate allowance, not two", .timeLimit(.minutes(2)))
    func oneAllowancePerRequest() throws {
        // One request per second, bursts of two: two requests pass, the third is refused.
        let fixture = try Fixture(rateLimit: 1)
        try fixture.populate()
        Thread.sleep(forTimeInterval: 2.5) // the setup's requests used the allowance of the admin key
        let token = fixture.tokens["ana"]!
        for server in [fixture.fast, fixture.slow] {
            let client = fixture.client(server, token: token)
            let missing = try client.get("/v1/security/secrets/NOPE?environment=production")
            let read = try client.get("/v1/security/secrets/DB_PASS?environment=production")
            let refused = try client.get("/v1/security/secrets/DB_PASS?environment=production")
            let statuses: [Int] = [missing.status, read.status, refused.status]
            #expect(statuses == [404, 200, 429],
                    "\(server.baseURL): \(missing.status) \(read.status) \(refused.status)")
            #expect(refused.header("Retry-After") != nil, "\(refused)")
            Thread.sleep(forTimeInterval: 2.5)
        }
    }
}

extension FastReadTests {
    @Test("a connection kept busy by fast reads outlives the idle time-out; an idle one is closed", .timeLimit(.minutes(2)))
    func idleTimeout() throws {
        let store = try LiveStore()
        let server = try LiveServer(store: store, extraArguments: ["--idle-timeout", "1s"])
        let client = LiveClient(baseURL: server.baseURL, token: store.adminToken, scratch: store.directory)
        let created = try client.post("/v1/security/secrets", liveJSON(["name": "IDLE", "value": "v", "environment": "production"]))
        #expect(created.status == 201, "\(created)")
        let connection = try RawHTTP.Connection(port: server.port)
        // Six reads 400 ms apart: 2.4 s on one connection whose idle time-out is 1 s.
        for index in 0..<6 {
            try connection.send("GET /v1/security/secrets/IDLE?environment=production HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                + "Authorization: Bearer \(store.adminToken)\r\nX-Request-Id: idle-\(index)\r\n\r\n")
            let answer = try connection.receive(1)
            #expect(answer.map(\.status) == [200] && answer.map(\.requestID) == ["idle-\(index)"], "\(answer)")
            usleep(400_000)
        }
        // Then nothing: the server closes the connection about a second later.
        let started = Date()
        #expect(connection.waitForClose(timeout: 5), "an idle connection stays open")
        #expect(Date().timeIntervalSince(started) < 4)
    }
}

/// Raw HTTP/1.1 over one TCP connection: requests sent as given (several at once to pipeline
/// them), answers read until enough complete ones (Content-Length framed) have arrived.
enum RawHTTP {
    final class Connection {
        private let socketFD: Int32
        private var received: [UInt8] = []

        init(port: Int) throws {
            socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard socketFD >= 0 else { throw TestFailure("socket failed") }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                close(socketFD)
                throw TestFailure("connect failed: \(errno)")
            }
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(socketFD, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(socketFD) }

        func send(_ text: String) throws {
            let payload = Array(text.utf8)
            var sent = 0
            while sent < payload.count {
                let written = payload[sent...].withUnsafeBytes { Glibc.send(socketFD, $0.baseAddress, $0.count, 0) }
                guard written > 0 else { throw TestFailure("send failed: \(errno)") }
                sent += written
            }
        }

        /// Shuts the sending side, as some clients do after their last request.
        func halfClose() { shutdown(socketFD, Int32(SHUT_WR)) }

        func receive(_ count: Int) throws -> [Answer] {
            var answers: [Answer] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                while answers.count < count, let answer = RawHTTP.parseOne(&received) { answers.append(answer) }
                if answers.count == count { return answers }
                let got = recv(socketFD, &buffer, buffer.count, 0)
                guard got > 0 else { throw TestFailure("connection ended after \(answers.count) answers: \(answers)") }
                received += buffer[0..<got]
            }
        }

        /// Whether the server closes the connection within `timeout` seconds.
        func waitForClose(timeout: Int) -> Bool {
            var limit = timeval(tv_sec: timeout, tv_usec: 0)
            setsockopt(socketFD, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            var byte: UInt8 = 0
            return recv(socketFD, &byte, 1, 0) == 0
        }
    }

    struct Answer: CustomStringConvertible {
        var status: Int
        var requestID: String
        var body: String
        var description: String { "\(status) \(requestID) \(body.prefix(80))" }
    }

    /// Sends `bytes` on a new connection and reads `count` answers. `halfClose`: shut the
    /// sending side once everything is sent, as some clients do.
    static func exchange(port: Int, bytes: String, answers count: Int, halfClose: Bool = false) throws -> [Answer] {
        let connection = try Connection(port: port)
        try connection.send(bytes)
        if halfClose { connection.halfClose() }
        return try connection.receive(count)
    }

    /// Takes one complete answer off the front of `data`, if there is one.
    static func parseOne(_ data: inout [UInt8]) -> Answer? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = (0...max(0, data.count - 4)).first(where: { data.count >= $0 + 4 && Array(data[$0..<$0 + 4]) == separator }) else { return nil }
        let head = String(decoding: data[..<end], as: UTF8.self)
        let lines = head.components(separatedBy: "\r\n")
        var fields: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = Int(fields["content-length"] ?? "0") ?? 0
        guard data.count >= end + 4 + length else { return nil }
        let body = String(decoding: data[(end + 4)..<(end + 4 + length)], as: UTF8.self)
        data.removeFirst(end + 4 + length)
        let status = Int(lines[0].split(separator: " ").dropFirst().first ?? "") ?? 0
        return Answer(status: status, requestID: fields["x-request-id"] ?? "", body: body)
    }
}
