import Foundation
import Testing
import TestSupport
import VSecureClient

/// A live `vsecure-server` on loopback (plain HTTP, logging one line per request) and an SDK
/// client holding its admin key.
final class ClientFixture: @unchecked Sendable {
    let store: LiveStore
    let server: LiveServer
    let client: VSecureClient

    init(timeout: Duration = .seconds(10)) throws {
        store = try LiveStore()
        server = try LiveServer(store: store, extraArguments: ["--log-level", "info"])
        client = try VSecureClient(endpoint: server.baseURL, apiKey: store.adminToken, timeout: timeout)
    }

    /// Another client with the same key (for changes the cache must not see yet).
    func otherClient() throws -> VSecureClient {
        try VSecureClient(endpoint: server.baseURL, apiKey: store.adminToken)
    }

    /// Requests the server logged for `path` (e.g. `GET /v1/security/secrets/NAME`). The log line
    /// may land just after the answer, so it is read until it stops changing.
    func loggedRequests(_ fragment: String) -> Int {
        var last = -1
        for _ in 0..<20 {
            let count = server.process.log.components(separatedBy: "\n").filter { $0.contains(fragment) }.count
            if count == last { return count }
            last = count
            usleep(25_000)
        }
        return last
    }

    /// Stops the server, so that calls find nothing listening.
    func stopServer() throws {
        guard server.stop(signal: SIGTERM, timeout: 20) != nil else { throw TestFailure("the server did not stop") }
    }
}

/// The kind of the error `body` throws; nil when it does not throw (an error of another type
/// is recorded as an issue).
func errorKind<T>(_ body: () async throws -> T, sourceLocation: SourceLocation = #_sourceLocation) async -> VSecureClientError.Kind? {
    await thrownError(body, sourceLocation: sourceLocation)?.kind
}

/// The error `body` throws; nil when it does not throw.
func thrownError<T>(_ body: () async throws -> T, sourceLocation: SourceLocation = #_sourceLocation) async -> VSecureClientError? {
    do {
        _ = try await body()
        return nil
    } catch let error as VSecureClientError {
        return error
    } catch {
        Issue.record("not a VSecureClientError: \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
