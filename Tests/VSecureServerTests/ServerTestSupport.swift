import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
import TestSupport
import VSecureCore
@testable import VSecureServer
import VSecureVault

// The shared in-process fixture for VSecureServerTests: a fresh store in a temporary
// directory, an admin key holding every scope, a clock the test moves, and the router run
// through HummingbirdTesting's `.router` setup (no sockets). Other test files use it; keep its
// surface stable.

/// A clock the test moves by hand. Starts at a fixed instant so expiry arithmetic is exact.
final class TestClock: @unchecked Sendable {
    static let start = Timestamp(secondsSinceEpoch: 1_800_000_000) // 2027-01-15T08:00:00Z

    private let lock = NSLock()
    private var current: Timestamp

    init(_ start: Timestamp = TestClock.start) { current = start }

    var now: Timestamp { lock.withLock { current } }

    func advance(seconds: Int64) {
        lock.withLock { current = Timestamp(secondsSinceEpoch: current.secondsSinceEpoch + seconds) }
    }

    func set(_ time: Timestamp) { lock.withLock { current = time } }

    /// For `SecretService(clock:)`.
    var function: @Sendable () -> Timestamp { { [self] in self.now } }
}

/// An API key made for a test: its id and the token shown once.
struct TestKey: Sendable {
    var id: String
    var token: String
    var authorization: HTTPFields { [.authorization: "Bearer \(token)"] }
}

/// One server over a fresh store. `LocalVault` and `ServerRegistry` are not Sendable: they are
/// made inside `make` and live on from there only inside the `SecretService` actor.
final class ServerFixture: Sendable {
    /// Limits for tests that do not test limits: the rate limit is out of the way.
    static var relaxedLimits: ServerLimits {
        var limits = ServerLimits()
        limits.ratePerKey = 1_000_000
        limits.burstPerKey = 1_000_000
        limits.failedAuthPerAddress = 1_000_000
        limits.failedAuthBurst = 1_000_000
        return limits
    }

    let directory: TemporaryDirectory
    let clock: TestClock
    let service: SecretService
    let limits: ServerLimits
    /// Holds every scope, in every environment, never expires.
    let admin: TestKey
    let environments: [EnvironmentName]

    private init(directory: TemporaryDirectory, clock: TestClock, service: SecretService, limits: ServerLimits,
                 admin: TestKey, environments: [EnvironmentName]) {
        self.directory = directory
        self.clock = clock
        self.service = service
        self.limits = limits
        self.admin = admin
        self.environments = environments
    }

    /// A new store in a temporary directory (vault.db, vault.key, server.db, audit.db) with an
    /// admin key. With `vaultDirectory`, vault.db and vault.key go there instead, and with
    /// `registryDirectory` server.db (a test can put them on a disk of their own).
    static func make(limits: ServerLimits = ServerFixture.relaxedLimits,
                     environments: [String] = ["development", "staging", "production"],
                     rotation: ServerRotationSettings = ServerRotationSettings(),
                     vaultDirectory: String? = nil, registryDirectory: String? = nil) throws -> ServerFixture {
        let directory = try TemporaryDirectory(prefix: "vsecure-server-test")
        let vaultPath = (vaultDirectory ?? directory.path) + "/vault.db", keyPath = (vaultDirectory ?? directory.path) + "/vault.key"
        let clock = TestClock()
        var envs: [EnvironmentName] = []
        for text in environments { envs.append(try EnvironmentName(text)) }
        let vault = try LocalVault.create(at: vaultPath, protection: .keyFile(path: keyPath), environments: envs, now: clock.now)
        let registry = try ServerRegistry(path: (registryDirectory ?? directory.path) + "/server.db", vault: vault)
        let (key, token) = try registry.createKey(name: "admin", scopes: Scope.allCases.map(\.rawValue), environments: nil,
                                                  expiresAt: nil, now: clock.now)
        let readers = try VaultReaders(count: 2) { () throws(VSecureError) in
            try LocalVault.open(at: vaultPath, readOnly: true,
                                keys: KeySource(keyFilePath: keyPath) { () throws(VSecureError) in
                                    throw VSecureError(.key, "a key file vault")
                                })
        }
        let audit = try AuditTrail(path: directory.file("audit.db"), keyPath: directory.file("audit.key"))
        let rotator = try SecretRotator(settings: rotation, clock: clock.function, audit: audit) { () throws(VSecureError) in
            try LocalVault.open(at: vaultPath,
                                keys: KeySource(keyFilePath: keyPath) { () throws(VSecureError) in
                                    throw VSecureError(.key, "a key file vault")
                                })
        }
        let service = SecretService(vault: vault, readers: readers, registry: registry, clock: clock.function,
                                    rotationSettings: rotation, rotator: rotator, audit: audit)
        return ServerFixture(directory: directory, clock: clock, service: service, limits: limits,
                             admin: TestKey(id: key.id, token: token), environments: envs)
    }

    /// Builds the router afresh (a new rate limiter each time) and runs `body` against it in-process.
    func test<Value: Sendable>(_ body: @Sendable (any TestClientProtocol) async throws -> Value) async throws -> Value {
        let router = buildRouter(service: service, limits: limits)
        return try await Application(router: router, logger: Self.quietLogger).test(.router, body)
    }

    /// Like `test`, but the request reaches the router without its Content-Length header, as a
    /// chunked upload does (HummingbirdTesting's router client always sets one).
    func testWithoutContentLength<Value: Sendable>(_ body: @Sendable (any TestClientProtocol) async throws -> Value) async throws -> Value {
        let router = buildRouter(service: service, limits: limits)
        let responder = DroppingContentLength(inner: router.buildResponder())
        return try await Application(responder: responder, logger: Self.quietLogger).test(.router, body)
    }

    /// Request lines only at warning and above (set VSECURE_TEST_LOG=info to see every request).
    static var quietLogger: Logger {
        var logger = Logger(label: "vsecure-server-test")
        logger.logLevel = ProcessInfo.processInfo.environment["VSECURE_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        return logger
    }

    /// The routes `buildRouter` registers, as (method, path template) pairs.
    func registeredRoutes() -> [(method: String, path: String)] {
        let table = RouteTable()
        _ = buildRouter(service: service, limits: limits, table: table)
        return table.routes
    }

    /// A key with exactly these scopes (and, when given, environments and expiry).
    func makeKey(name: String = "test", scopes: [Scope], environments: [String]? = nil,
                 expiresAt: Timestamp? = nil) async throws -> TestKey {
        var envs: [EnvironmentName]?
        if let environments {
            envs = []
            for text in environments { envs!.append(try EnvironmentName(text)) }
        }
        let limited = envs
        let (key, token) = try await service.withRegistry { registry, now throws(VSecureError) in
            try registry.createKey(name: name, scopes: scopes.map(\.rawValue), environments: limited, expiresAt: expiresAt, now: now)
        }
        return TestKey(id: key.id, token: token)
    }

    /// A key holding every scope except `missing`.
    func makeKey(lacking missing: Scope) async throws -> TestKey {
        try await makeKey(name: "lacks-\(missing.rawValue)", scopes: Scope.allCases.filter { $0 != missing })
    }

    /// Secrets stored right now (every environment, expired included), read straight from the vault.
    func storedSecrets() async throws -> [SecretSummary] {
        try await service.withVault { vault, now throws(VSecureError) in
            var query = LocalVault.ListQuery(environment: nil)
            query.includeExpired = true
            return try vault.list(query, now: now)
        }
    }

    /// Versions of a secret, straight from the vault.
    func versionCount(_ name: String, environment: String = "development") async throws -> Int {
        let secretName = try SecretName(name)
        let env = try EnvironmentName(environment)
        return try await service.withVault { vault, _ throws(VSecureError) in
            try vault.versions(environment: env, name: secretName).1.count
        }
    }
}

/// Forwards to the router with the Content-Length header removed.
struct DroppingContentLength<Inner: HTTPResponder>: HTTPResponder {
    typealias Context = Inner.Context
    let inner: Inner

    func respond(to request: Request, context: Context) async throws -> Response {
        var head = request.head
        head.headerFields[.contentLength] = nil
        return try await inner.respond(to: Request(head: head, body: request.body), context: context)
    }
}

// MARK: - Requests and replies

/// A response, with its body as text and (when it is JSON) parsed by JSONSerialization.
struct Reply: @unchecked Sendable, CustomStringConvertible {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var text: String
    /// The parsed body, or nil when it is empty or not JSON.
    var json: Any?

    init(_ response: TestResponse) {
        status = response.status
        headers = response.headers
        text = String(buffer: response.body)
        json = text.isEmpty ? nil : try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    }

    var object: [String: Any] { json as? [String: Any] ?? [:] }
    subscript(key: String) -> Any? { object[key] }
    func string(_ key: String) -> String? { object[key] as? String }
    func int(_ key: String) -> Int? { object[key] as? Int }
    func array(_ key: String) -> [Any] { object[key] as? [Any] ?? [] }
    /// `data` as objects (lists, versions).
    var data: [[String: Any]] { object["data"] as? [[String: Any]] ?? [] }
    var error: [String: Any]? { object["error"] as? [String: Any] }
    var errorCode: String? { error?["code"] as? String }
    var errorMessage: String? { error?["message"] as? String }
    var errorDetails: [String: Any]? { error?["details"] as? [String: Any] }

    var description: String { "\(status.code) \(text)" }
}

/// JSON text from a literal built of dictionaries, arrays, strings, numbers, booleans and NSNull.
func jsonText(_ value: Any, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> String {
    jsonLiteral(value, sourceLocation: sourceLocation)
}

/// Strings in a JSON array.
func strings(_ value: Any?) -> [String] { (value as? [Any])?.compactMap { $0 as? String } ?? [] }

/// Percent-encodes a query parameter value.
func queryEscaped(_ text: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
}

extension TestClientProtocol {
    /// Sends a request. `json` is serialized with JSONSerialization; `body` is sent as-is.
    /// A body gets `Content-Type: application/json` unless `headers` names another.
    @discardableResult
    func send(_ method: HTTPRequest.Method, _ uri: String, key: TestKey? = nil, json: Any? = nil, body: String? = nil,
              headers: HTTPFields = [:]) async throws -> Reply {
        var fields = headers
        if let key, fields[.authorization] == nil { fields[.authorization] = "Bearer \(key.token)" }
        var buffer: ByteBuffer?
        if let json { buffer = ByteBuffer(string: jsonText(json)) }
        if let body { buffer = ByteBuffer(string: body) }
        if buffer != nil, fields[.contentType] == nil { fields[.contentType] = "application/json" }
        return try await execute(uri: uri, method: method, headers: fields, body: buffer) { Reply($0) }
    }

    /// Sends raw bytes as the body.
    @discardableResult
    func send(_ method: HTTPRequest.Method, _ uri: String, key: TestKey?, bytes: [UInt8],
              headers: HTTPFields = [:]) async throws -> Reply {
        var fields = headers
        if let key, fields[.authorization] == nil { fields[.authorization] = "Bearer \(key.token)" }
        if fields[.contentType] == nil { fields[.contentType] = "application/json" }
        return try await execute(uri: uri, method: method, headers: fields, body: ByteBuffer(bytes: bytes)) { Reply($0) }
    }

    /// POST /v1/security/secrets with a text value; expects 201.
    @discardableResult
    func createSecret(_ name: String, value: String, key: TestKey, environment: String? = nil, extra: [String: Any] = [:],
                      sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws -> Reply {
        var body: [String: Any] = ["name": name, "value": value]
        if let environment { body["environment"] = environment }
        for (k, v) in extra { body[k] = v }
        let reply = try await send(.post, "/v1/security/secrets", key: key, json: body)
        #expect(reply.status == .created, "creating \(name): \(reply)", sourceLocation: sourceLocation)
        return reply
    }

    /// GET /v1/security/secrets (the query string is given as-is).
    func listSecrets(key: TestKey, query: String = "") async throws -> Reply {
        try await send(.get, "/v1/security/secrets" + (query.isEmpty ? "" : "?" + query), key: key)
    }
}

/// Checks an error reply: the status, the code, and exactly the shape
/// `{"error": {"code": String, "message": String, "details": {String: String}}}` served as JSON.
func expectError(_ reply: Reply, _ status: HTTPResponse.Status, _ code: String,
                 sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    #expect(reply.status == status, "expected \(status.code) \(code), got \(reply)", sourceLocation: sourceLocation)
    #expect(reply.headers[.contentType]?.hasPrefix("application/json") == true, "content type of \(reply)", sourceLocation: sourceLocation)
    #expect(Set(reply.object.keys) == ["error"], "top-level keys of \(reply)", sourceLocation: sourceLocation)
    guard let error = reply.error else {
        Issue.record("no error object in \(reply)", sourceLocation: sourceLocation)
        return
    }
    #expect(Set(error.keys) == ["code", "message", "details"], "error keys of \(reply)", sourceLocation: sourceLocation)
    #expect(error["code"] as? String == code, "code of \(reply)", sourceLocation: sourceLocation)
    let message = error["message"] as? String
    #expect(message?.isEmpty == false, "message of \(reply)", sourceLocation: sourceLocation)
    guard let details = error["details"] as? [String: Any] else {
        Issue.record("details is not an object in \(reply)", sourceLocation: sourceLocation)
        return
    }
    #expect(details.values.allSatisfy { $0 is String }, "details values of \(reply)", sourceLocation: sourceLocation)
}

/// Checks that no text in `secrets` appears anywhere in the reply (body or header values).
func expectNoLeak(_ reply: Reply, of secrets: [String], sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    for secret in secrets where !secret.isEmpty {
        #expect(!reply.text.contains(secret), "a secret value appears in \(reply.status.code) body", sourceLocation: sourceLocation)
        for field in reply.headers {
            #expect(!field.value.contains(secret), "a secret value appears in header \(field.name)", sourceLocation: sourceLocation)
        }
    }
}
