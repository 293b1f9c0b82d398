import Foundation
import Testing
import TestSupport
import VSecureCore
import VSecureCrypto
import VSecureRemote
import VSecureStore

/// The remote client retries a request whose connection broke; a write retried that way must
/// carry one `Idempotency-Key`, made for the call and sent on each of its attempts, so the
/// server runs it at most once.
@Suite("Remote writes keep their Idempotency-Key across retries", .serialized)
struct RemoteIdempotencyTests {
    /// The `Idempotency-Key` of each request head ("" where there is none). The fake server
    /// lowercases heads; the client's keys are lowercase already.
    static func idempotencyKeys(_ heads: [String]) -> [String] {
        heads.map { head in
            head.split(separator: "\r\n").first { $0.hasPrefix("idempotency-key:") }
                .map { $0.dropFirst("idempotency-key:".count).trimmingCharacters(in: .whitespaces) } ?? ""
        }
    }

    @Test("rotate and the user, policy and grant writes: three attempts after dropped connections, one key per call")
    func retriedWritesKeepTheirKey() throws {
        let server = try FaultyHTTPServer(.hangUp)
        defer { server.stop() }
        let token = Array("vsec_key_0123456789abcdef_not-checked-by-the-fake".utf8)
        var endpoint = RemoteEndpoint(baseURL: server.baseURL, apiKey: token.withUnsafeBytes { SecureBytes(copying: $0) })
        endpoint.timeoutMilliseconds = 5_000
        let store = RemoteStore(endpoint: endpoint)
        let name = try SecretName("TOKEN"), environment = try EnvironmentName("production")
        let calls: [(String, () throws -> Void)] = [
            ("rotate", { _ = try store.rotate(environment: environment, name: name, onlyIfDue: false, settings: RotationSettings()) }),
            ("rotate onlyIfDue", { _ = try store.rotate(environment: environment, name: name, onlyIfDue: true, settings: RotationSettings()) }),
            ("createUser", { _ = try store.createUser(name: "ana@example.com", service: false, roles: ["engineers"]) }),
            ("updateUser", { _ = try store.updateUser("ana@example.com", roles: ["devops"]) }),
            ("disableUser", { _ = try store.disableUser("ana@example.com") }),
            ("setPolicy", { _ = try store.setPolicy(Array(#"{"secrets": {}}"#.utf8)) }),
            ("createGrant", { _ = try store.createGrant(user: "ana@example.com", name: "TOKEN", environment: "production", path: nil,
                                                         action: "read", duration: "1h") }),
        ]
        var seen: Set<String> = []
        for (label, call) in calls {
            let before = server.requestHeads.count
            var status: VSecureCore.ExitStatus?
            do { try call() } catch let error as VSecureError { status = error.status } catch {}
            #expect(status == .remoteUnreachable, "\(label): a server that never answers")
            let keys = Self.idempotencyKeys(Array(server.requestHeads.dropFirst(before)))
            #expect(keys.count == 3, "\(label): the client tries three times: \(keys)")
            #expect(Set(keys).count == 1, "\(label): every attempt sends the same key: \(keys)")
            let key = keys.first ?? ""
            #expect(key.hasPrefix("vsecure-") && key.count == "vsecure-".count + 32, "\(label): \(key)")
            #expect(!seen.contains(key), "\(label): a new call has a new key")
            seen.insert(key)
        }
    }
}
