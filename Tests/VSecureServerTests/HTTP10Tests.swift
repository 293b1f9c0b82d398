import Foundation
import Testing
import TestSupport

/// HTTP/1.0 requests: the connection ends after the answer unless the client sent
/// `Connection: keep-alive`. Checked on both paths of the real server (the fast read path and the
/// router, `--no-fast-reads`), for a read and for /health.
@Suite("HTTP/1.0 connections", .serialized)
struct HTTP10Tests {
    /// A store holding production/`name`, and a server of each kind on it.
    static func servers(holding name: String, value: String) throws -> (store: LiveStore, servers: [LiveServer]) {
        let store = try LiveStore()
        let fast = try LiveServer(store: store)
        let slow = try LiveServer(store: store, extraArguments: ["--no-fast-reads"])
        let admin = LiveClient(baseURL: fast.baseURL, token: store.adminToken, scratch: store.directory)
        let created = try admin.post("/v1/security/secrets", liveJSON(["name": name, "value": value, "environment": "production"]))
        guard created.status == 201 else { throw TestFailure("create \(name): \(created)") }
        return (store, [fast, slow])
    }

    @Test("an HTTP/1.0 request without keep-alive gets its answer and then the connection closes", .timeLimit(.minutes(2)))
    func closesAfterAnswer() throws {
        let (store, servers) = try Self.servers(holding: "OLD_CLIENT", value: "v1.0")
        let read = "/v1/security/secrets/OLD_CLIENT?environment=production"
        for server in servers {
            for (path, id) in [(read, "read"), ("/health", "health")] {
                let connection = try RawHTTP.Connection(port: server.port)
                try connection.send("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(store.adminToken)\r\n"
                                    + "X-Request-Id: \(id)\r\n\r\n")
                let answer = try connection.receive(1)
                #expect(answer.map(\.status) == [200] && answer.map(\.requestID) == [id], "\(server.baseURL) \(path): \(answer)")
                if path == read { #expect(answer.first?.body.contains("\"value\":\"v1.0\"") == true, "\(answer)") }
                #expect(connection.waitForClose(timeout: 3), "\(server.baseURL) \(path): an HTTP/1.0 connection stays open")
            }
        }
    }

    @Test("HTTP/1.0 with Connection: keep-alive, and HTTP/1.1, keep the connection for the next request", .timeLimit(.minutes(2)))
    func keepAliveStaysOpen() throws {
        let (store, servers) = try Self.servers(holding: "KEPT", value: "kept")
        for server in servers {
            for (version, connectionField) in [("HTTP/1.0", "Connection: keep-alive\r\n"), ("HTTP/1.1", "")] {
                let connection = try RawHTTP.Connection(port: server.port)
                for index in 0..<2 {
                    try connection.send("GET /v1/security/secrets/KEPT?environment=production \(version)\r\nHost: 127.0.0.1\r\n"
                                        + "Authorization: Bearer \(store.adminToken)\r\n\(connectionField)X-Request-Id: k\(index)\r\n\r\n")
                    let answer = try connection.receive(1)
                    #expect(answer.map(\.status) == [200] && answer.map(\.requestID) == ["k\(index)"],
                            "\(server.baseURL) \(version) request \(index): \(answer)")
                }
            }
        }
    }
}
