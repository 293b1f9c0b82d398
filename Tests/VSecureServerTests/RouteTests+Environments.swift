import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import VSecureCore
import VSecureCrypto
import VSecureRemote
@testable import VSecureServer
import VSecureStore

/// GET /v1/security/environments.
@Suite("Environment route")
struct EnvironmentRouteTests {
    @Test("any valid key gets the environments in order with the default marked; a limited key sees its own; no key is 401; nothing is audited")
    func listEnvironments() async throws {
        let server = try ServerFixture.make(environments: ["staging", "production", "qa"])
        let admin = server.admin
        let limited = try await server.makeKey(name: "prod-only", scopes: [.secretsRead], environments: ["production"])
        let noScopes = try await server.makeKey(name: "no-scopes", scopes: [])
        try await server.test { client in
            func entries() async throws -> Int {
                let reply = try await client.send(.get, "/v1/security/audit-logs?limit=1000", key: admin)
                #expect(reply.status == .ok, "\(reply)")
                return reply.data.count
            }
            let before = try await entries()
            let all = try await client.send(.get, "/v1/security/environments", key: admin)
            #expect(try await entries() == before, "listing environments writes no audit entry")
            #expect(all.status == .ok, "\(all)")
            #expect(all.data.compactMap { $0["name"] as? String } == ["staging", "production", "qa"])
            #expect(all.data.compactMap { $0["default"] as? Bool } == [true, false, false])
            #expect(all.string("defaultEnvironment") == "staging")

            let own = try await client.send(.get, "/v1/security/environments", key: limited)
            #expect(own.status == .ok, "\(own)")
            #expect(own.data.compactMap { $0["name"] as? String } == ["production"])
            #expect(own.data.compactMap { $0["default"] as? Bool } == [false])
            #expect(own.string("defaultEnvironment") == "staging", "the default is named even when the key may not use it")

            #expect(try await client.send(.get, "/v1/security/environments", key: noScopes).status == .ok, "no scope is needed")
            expectError(try await client.send(.get, "/v1/security/environments"), .unauthorized, "AUTHENTICATION_REQUIRED")
        }
    }
}

/// The remote client against a server from before the route: the same answer, learnt the
/// older way (a fake on its own threads, answering as such a server did).
@Suite("Remote store: environments from a server without the route")
struct RemoteEnvironmentFallbackTests {
    @Test("the names and the default come out the same, in three requests instead of one")
    func fallsBack() throws {
        let server = try FaultyHTTPServer(.beforeEnvironmentsRoute)
        defer { server.stop() }
        let token = Array("vsec_key_0123456789abcdef_not-checked-by-the-fake".utf8)
        let store = RemoteStore(endpoint: RemoteEndpoint(baseURL: server.baseURL, apiKey: token.withUnsafeBytes { SecureBytes(copying: $0) }))
        let environments = try store.environments()
        #expect(environments.names.map(\.rawValue) == ["staging", "production", "qa"])
        #expect(environments.defaultEnvironment.rawValue == "staging")
        #expect(try store.defaultEnvironment().rawValue == "staging")
        #expect(store.requestCount == 3, "the 404, the batch read and the list; then kept")
        #expect(server.requestHeads.map { String($0.prefix { $0 != " " }) + " " + String($0.split(separator: " ")[1].prefix { $0 != "?" }) }
                == ["get /v1/security/environments", "post /v1/security/secrets/batch/get", "get /v1/security/secrets"])
    }
}
