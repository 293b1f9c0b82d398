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
        let store = Self.store(on: server, timeoutMilliseconds: 5_000)
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

    @Test("writes without a key (an API key's creation or rotation, deletes) are sent once when the connection breaks, and say the outcome is unknown; reads are retried")
    func unkeyedWritesAreSentOnce() throws {
        let server = try FaultyHTTPServer(.hangUp)
        defer { server.stop() }
        let store = Self.store(on: server, timeoutMilliseconds: 5_000)
        let name = try SecretName("TOKEN"), environment = try EnvironmentName("production")
        func attempts(_ call: () throws -> Void) -> (Int, VSecureError?) {
            let before = server.requestHeads.count
            var failure: VSecureError?
            do { try call() } catch let error as VSecureError { failure = error } catch {}
            return (server.requestHeads.count - before, failure)
        }
        let writes: [(String, () throws -> Void)] = [
            ("createAPIKey", { _ = try store.createAPIKey(name: "ci", user: nil, scopes: ["secrets:read"], environments: nil, expiresIn: nil) }),
            ("rotateAPIKey", { _ = try store.rotateAPIKey("key_0123") }),
            ("revokeAPIKey", { try store.revokeAPIKey("key_0123") }),
            ("revokeGrant", { try store.revokeGrant("grant_0123") }),
            ("delete", { try store.delete(environment: environment, name: name, purge: false) }),
        ]
        for (label, call) in writes {
            let (count, failure) = attempts(call)
            #expect(count == 1, "\(label): sent \(count) times")
            #expect(failure?.status == .remoteUnreachable, "\(label)")
            #expect(failure?.message.contains("may have carried out") == true, "\(label): \(failure?.message ?? "")")
            #expect(failure?.hints.first?.contains("check the result") == true, "\(label)")
        }
        let reads: [(String, () throws -> Void)] = [
            ("listAPIKeys", { _ = try store.listAPIKeys() }),
            ("testPolicy", { _ = try store.testPolicy(user: "ana@example.com", action: "read", path: "production/TOKEN") }),
            ("verifyAudit", { _ = try store.verifyAudit() }),
        ]
        for (label, call) in reads {
            let (count, failure) = attempts(call)
            #expect(count == 3, "\(label): a read is tried three times, not \(count)")
            #expect(failure?.message.contains("may have carried out") == false, "\(label)")
        }
    }

    @Test("a 503 to a write without a key is not retried either, and says the outcome is unknown; a read's 503 is retried")
    func unkeyedWriteGets503Once() throws {
        let server = try FaultyHTTPServer(.slow503)
        defer { server.stop() }
        let store = Self.store(on: server, timeoutMilliseconds: 8_000)
        var failure: VSecureError?
        do { _ = try store.createAPIKey(name: "ci", user: nil, scopes: ["secrets:read"], environments: nil, expiresIn: nil) } catch { failure = error }
        #expect(server.requestHeads.count == 1, "sent once: \(server.requestHeads.count)")
        #expect(failure?.status == .remoteUnreachable)
        #expect(failure?.message.contains("may have carried out") == true, "\(failure?.message ?? "")")
        #expect(failure?.hints.first?.contains("check the result") == true)
        do { _ = try store.listAPIKeys() } catch {}
        #expect(server.requestHeads.count == 1 + 3, "a read is tried three times")
    }

    /// A client of the fake server, with a token the fake never checks.
    static func store(on server: FaultyHTTPServer, timeoutMilliseconds: Int) -> RemoteStore {
        let token = Array("vsec_key_0123456789abcdef_not-checked-by-the-fake".utf8)
        var endpoint = RemoteEndpoint(baseURL: server.baseURL, apiKey: token.withUnsafeBytes { SecureBytes(copying: $0) })
        endpoint.timeoutMilliseconds = timeoutMilliseconds
        return RemoteStore(endpoint: endpoint)
    }

    static func rotateToken(on server: FaultyHTTPServer, timeoutMilliseconds: Int) throws -> RotationResult {
        try store(on: server, timeoutMilliseconds: timeoutMilliseconds)
            .rotate(environment: try EnvironmentName("production"), name: try SecretName("TOKEN"), onlyIfDue: false, settings: RotationSettings())
    }

    @Test("a retry that finds its own first attempt still running waits with the same key for that attempt's answer")
    func waitsForItsOwnFirstAttempt() throws {
        let server = try FaultyHTTPServer(.rotationStillRunning)
        defer { server.stop() }
        let result = try Self.rotateToken(on: server, timeoutMilliseconds: 10_000)
        #expect(result.outcome == .rotated(from: 1, to: 2), "\(result.outcome)")
        let keys = Self.idempotencyKeys(server.requestHeads)
        #expect(keys.count == 3 && Set(keys).count == 1 && keys.first?.hasPrefix("vsecure-") == true, "\(keys)")
    }

    @Test("when the time runs out while its first attempt still runs, rotate is an error (it may yet rotate), not a skip")
    func timesOutWhileItsFirstAttemptRuns() throws {
        let server = try FaultyHTTPServer(.rotationStillRunning)
        defer { server.stop() }
        var status: VSecureCore.ExitStatus?
        var message = ""
        do {
            let result = try Self.rotateToken(on: server, timeoutMilliseconds: 300)
            message = "\(result.outcome)"
        } catch let error as VSecureError {
            status = error.status
            message = error.message
        }
        #expect(status == .conflict && message.contains("still rotating TOKEN"), "\(message)")
    }
}
