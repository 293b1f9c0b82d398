import Foundation
import Testing
import TestSupport
import VSecureCore
import VSecureCrypto
import VSecureRemote
import VSecureStore
import VSecureVault

/// One suite, run against every `SecretStore`: the local vault and a live `vsecure-server` on
/// loopback through `RemoteStore`. Both must behave the same, errors (exit statuses) included.
@Suite("SecretStore conformance", .serialized)
struct SecretStoreConformanceTests {
    enum Backend: String, CaseIterable, CustomTestStringConvertible {
        case local, remote
        var testDescription: String { rawValue }
    }

    /// A store and whatever must live as long as it (directories, the server process).
    final class Fixture: @unchecked Sendable {
        let store: any SecretStore
        private let keepAlive: [AnyObject]
        init(_ store: any SecretStore, keepAlive: [AnyObject]) {
            self.store = store
            self.keepAlive = keepAlive
        }
    }

    static func make(_ backend: Backend) throws -> Fixture {
        switch backend {
        case .local:
            let directory = try TemporaryDirectory(prefix: "vsecure-conformance")
            let vault = try LocalVault.create(at: directory.file("vault.db"), protection: .keyFile(path: directory.file("vault.key")),
                                              now: Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970)))
            let audit = try AuditLog.open(path: directory.file("vault.audit.db"), keyPath: directory.file("vault.audit.key"), create: true)
            let store = LocalSecretStore(vault: vault, actor: "tester@conformance", audit: audit) {
                Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
            }
            return Fixture(store, keepAlive: [directory])
        case .remote:
            let live = try LiveStore()
            let server = try LiveServer(store: live)
            var endpoint = RemoteEndpoint(baseURL: server.baseURL, apiKey: secure(Array(live.adminToken.utf8)))
            endpoint.timeoutMilliseconds = 10_000
            return Fixture(RemoteStore(endpoint: endpoint), keepAlive: [live, server])
        }
    }

    static func secure(_ bytes: [UInt8]) -> SecureBytes { bytes.withUnsafeBytes { SecureBytes(copying: $0) } }
    static func plain(_ value: SecureBytes) -> [UInt8] { value.withUnsafeBytes { Array($0) } }

    static let production = EnvironmentName.defaults[2]
    static let staging = EnvironmentName.defaults[1]

    static func name(_ text: String) throws -> SecretName { try SecretName(text) }
    static func tag(_ text: String) throws -> VSecureCore.Tag { try VSecureCore.Tag(text) }

    /// The status of the error `body` throws (nil when it does not throw a VSecureError).
    static func status(_ body: () throws -> Void) -> VSecureCore.ExitStatus? {
        do { try body() } catch let error as VSecureError { return error.status } catch { return nil }
        return nil
    }

    @Test("environments: the default and the configured list", arguments: Backend.allCases)
    func environments(_ backend: Backend) throws {
        let fixture = try Self.make(backend)
        defer { withExtendedLifetime(fixture) {} }
        let store = fixture.store
        let environments = try store.environments()
        #expect(environments.defaultEnvironment.rawValue == "development")
        #expect(environments.names.map(\.rawValue) == ["development", "staging", "production"])
        #expect(try store.defaultEnvironment().rawValue == "development")
        if let remote = store as? RemoteStore {
            #expect(remote.requestCount == 1, "one GET /environments, kept for the store's life")
        }
    }

    @Test("create and get: any bytes round-trip; the environment comes from a tag", arguments: Backend.allCases)
    func createAndGet(_ backend: Backend) throws {
        let fixture = try Self.make(backend)
        defer { withExtendedLifetime(fixture) {} }
        let store = fixture.store
        let value: [UInt8] = [0x00, 0xFF, 0x0A, 0x22, 0x5C, 0x41, 0xC3, 0x28] + Array("tail ✓".utf8)
        let created = try store.create(NewSecret(name: Self.name("BINARY"), environment: nil, value: Self.secure(value),
                                                 attributes: SecretAttributes(tags: [Self.tag("production"), Self.tag("api")],
                                                                              metadata: [MetadataEntry(key: "owner", value: "a=b c")],
                                                                              description: "binary \"quoted\"")))
        #expect(created.environment == Self.production)
        #expect(created.currentVersion == 1)
        #expect(created.attributes.tags.map(\.rawValue) == ["api", "production"])
        let read = try store.get(environment: Self.production, name: Self.name("BINARY"), version: nil, allowExpired: false)
        #expect(Self.plain(read.value) == value)
        #expect(read.version == 1)
        #expect(read.secret.attributes.metadataValue("owner") == "a=b c")
        #expect(read.secret.attributes.description == "binary \"quoted\"")
        let empty = try store.create(NewSecret(name: Self.name("EMPTY"), environment: Self.staging, value: Self.secure([]),
                                               attributes: SecretAttributes()))
        #expect(empty.environment == Self.staging)
        #expect(Self.plain(try store.get(environment: Self.staging, name: Self.name("EMPTY"), version: nil, allowExpired: false).value) == [])
        // A second create is a conflict; an unknown secret, version or environment is refused.
        #expect(Self.status { _ = try store.create(NewSecret(name: Self.name("BINARY"), environment: Self.production,
                                                              value: Self.secure([1]), attributes: SecretAttributes())) } == .conflict)
        #expect(Self.status { _ = try store.get(environment: Self.production, name: Self.name("NOPE"), version: nil, allowExpired: false) } == .notFound)
        #expect(Self.status { _ = try store.get(environment: Self.production, name: Self.name("BINARY"), version: 7, allowExpired: false) } == .notFound)
        #expect(Self.status { _ = try store.get(environment: EnvironmentName("nowhere"), name: Self.name("BINARY"), version: nil, allowExpired: false) } == .usage)
    }

    @Test("update: new versions, attribute-only changes, compare-and-set", arguments: Backend.allCases)
    func update(_ backend: Backend) throws {
        let fixture = try Self.make(backend)
        defer { withExtendedLifetime(fixture) {} }
        let store = fixture.store
        let name = try Self.name("ROTATED")
        _ = try store.create(NewSecret(name: name, environment: nil, value: Self.secure(Array("one".utf8)), attributes: SecretAttributes()))
        let second = try store.update(environment: nil, name: name, value: Self.secure(Array("two".utf8)), change: AttributeChange(), ifVersion: 1)
        #expect(second.previousVersion == 1 && second.newVersion == 2)
        #expect(second.secret.environment.rawValue == "development")
        var change = AttributeChange()
        change.addTags = [try Self.tag("blue")]
        change.setMetadata = [try MetadataEntry(key: "k", value: "v")]
        change.expiresAt = .some(Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970) + 86_400))
        change.description = .some("described")
        let attributesOnly = try store.update(environment: nil, name: name, value: nil, change: change, ifVersion: nil)
        #expect(attributesOnly.newVersion == nil)
        #expect(attributesOnly.secret.currentVersion == 2)
        #expect(attributesOnly.secret.attributes.tags.map(\.rawValue) == ["blue"])
        #expect(attributesOnly.secret.attributes.expiresAt != nil)
        var clear = AttributeChange()
        clear.expiresAt = .some(nil)
        clear.removeTags = [try Self.tag("blue")]
        let cleared = try store.update(environment: nil, name: name, value: nil, change: clear, ifVersion: 2)
        #expect(cleared.secret.attributes.expiresAt == nil && cleared.secret.attributes.tags.isEmpty)
        #expect(Self.status { _ = try store.update(environment: nil, name: name, value: Self.secure([1]), change: AttributeChange(), ifVersion: 1) } == .conflict)
        #expect(Self.status { _ = try store.update(environment: nil, name: Self.name("NOPE"), value: Self.secure([1]), change: AttributeChange(), ifVersion: nil) } == .notFound)
        #expect(Self.plain(try store.get(environment: nil, name: name, version: 1, allowExpired: false).value) == Array("one".utf8))
        #expect(try store.summary(environment: nil, name: name).attributes.description == "described")
    }

    @Test("versions and rollback keep history", arguments: Backend.allCases)
    func history(_ backend: Backend) throws {
        let fixture = try Self.make(backend)
        defer { withExtendedLifetime(fixture) {} }
        let store = fixture.store
        let name = try Self.name("HISTORY")
        _ = try store.create(NewSecret(name: name, environment: Self.staging, value: Self.secure(Array("a".utf8)), attributes: SecretAttributes()))
        _ = try store.update(environment: Self.staging, name: name, value: Self.secure(Array("bb".utf8)), change: AttributeChange(), ifVersion: nil)
        let rolled = try store.rollback(environment: Self.staging, name: name, to: nil)
        #expect(rolled.previousVersion == 2 && rolled.secret.currentVersion == 3)
        let history = try store.versions(environment: Self.staging, name: name)
        #expect(history.secret.currentVersion == 3)
        #expect(history.versions.map(\.version) == [1, 2, 3])
        #expect(history.versions.map(\.action) == [.create, .update, .rollback])
        #expect(history.versions.map(\.valueLength) == [1, 2, 1])
        #expect(history.versions[2].sourceVersion == 1)
        #expect(history.versions[0].fingerprint == history.versions[2].fingerprint)
        #expect(history.versions[0].fingerprint != history.versions[1].fingerprint)
        #expect(Self.plain(try store.get(environment: Self.staging, name: name, version: nil, allowExpired: false).value) == Array("a".utf8))
        #expect(Self.status { _ = try store.rollback(environment: Self.staging, name: name, to: 3) } == .conflict)
        #expect(Self.status { _ = try store.rollback(environment: Self.staging, name: name, to: 9) } == .notFound)
    }

    @Test("list filters by environment, tags, search and expiry", arguments: Backend.allCases)
    func list(_ backend: Backend) throws {
        let fixture = try Self.make(backend)
        defer { withExtendedLifetime(fixture) {} }
        let store = fixture.store
        let now = Int64(Date().timeIntervalSince1970)
        let rows: [(String, EnvironmentName, [String])] = [("ALPHA", Self.production, ["api"]), ("BETA", Self.production, ["api", "db"]),
                                                            ("GAMMA", Self.staging, ["db"]), ("SOON", Self.production, [])]
        for (text, environment, tags) in rows {
            _ = try store.create(NewSecret(name: Self.name(text), environment: environment, value: Self.secure([1]),
                                           attributes: SecretAttributes(tags: try tags.map { try Self.tag($0) },
                                                                        expiresAt: text == "SOON" ? Timestamp(secondsSinceEpoch: now + 2) : nil,
                                                                        description: text == "GAMMA" ? "the cache" : nil)))
        }
        #expect(try store.list(SecretQuery()).map(\.path) == ["production/ALPHA", "production/BETA", "production/SOON", "staging/GAMMA"])
        #expect(try store.list(SecretQuery(environment: Self.production, tags: [Self.tag("api")])).map(\.name.rawValue) == ["ALPHA", "BETA"])
        #expect(try store.list(SecretQuery(tags: [Self.tag("api"), Self.tag("db")])).map(\.name.rawValue) == ["BETA"])
        #expect(try store.list(SecretQuery(search: "CACHE")).map(\.name.rawValue) == ["GAMMA"])
        Thread.sleep(forTimeInterval: 3)
        #expect(!(try store.list(SecretQuery(environment: Self.production))).map(\.name.rawValue).contains("SOON"))
        #expect(try store.list(SecretQuery(environment: Self.production, includeExpired: true)).map(\.name.rawValue).contains("SOON"))
        #expect(Self.status { _ = try store.get(environment: Self.production, name: Self.name("SOON"), version: nil, allowExpired: false) } == .expired)
        #expect(Self.plain(try store.get(environment: Self.production, name: Self.name("SOON"), version: nil, allowExpired: true).value) == [1])
        let batch = try store.batchGet(environment: Self.production, names: [Self.name("BETA"), Self.name("NOPE"), Self.name("SOON"), Self.name("ALPHA")],
                                       allowExpired: false)
        #expect(batch.items.map(\.name.rawValue) == ["BETA", "ALPHA"])
        #expect(batch.missing.map(\.rawValue) == ["NOPE"])
        #expect(batch.expired.map(\.rawValue) == ["SOON"])
        #expect(batch.environment == Self.production)
    }

    @Test("delete hides a secret, purge destroys it, create revives it", arguments: Backend.allCases)
    func delete(_ backend: Backend) throws {
        let fixture = try Self.make(backend)
        defer { withExtendedLifetime(fixture) {} }
        let store = fixture.store
        let name = try Self.name("GONE")
        _ = try store.create(NewSecret(name: name, environment: nil, value: Self.secure([7]), attributes: SecretAttributes()))
        #expect(try store.delete(environment: nil, name: name, purge: false).rawValue == "development")
        #expect(Self.status { _ = try store.get(environment: nil, name: name, version: nil, allowExpired: false) } == .notFound)
        #expect(Self.status { try store.delete(environment: nil, name: name, purge: false) } == .notFound)
        let revived = try store.create(NewSecret(name: name, environment: nil, value: Self.secure([8]), attributes: SecretAttributes()))
        #expect(revived.currentVersion == 2)
        try store.delete(environment: nil, name: name, purge: true)
        #expect(Self.status { _ = try store.versions(environment: nil, name: name) } == .notFound)
        #expect(try store.create(NewSecret(name: name, environment: nil, value: Self.secure([9]), attributes: SecretAttributes())).currentVersion == 1)
    }

    @Test("upsert: created, updated, unchanged; tags are added; all or nothing", arguments: Backend.allCases)
    func upsert(_ backend: Backend) throws {
        let fixture = try Self.make(backend)
        defer { withExtendedLifetime(fixture) {} }
        let store = fixture.store
        _ = try store.create(NewSecret(name: Self.name("KEEP"), environment: Self.staging, value: Self.secure(Array("same".utf8)),
                                       attributes: SecretAttributes(tags: [Self.tag("old")])))
        _ = try store.create(NewSecret(name: Self.name("CHANGE"), environment: Self.staging, value: Self.secure(Array("before".utf8)),
                                       attributes: SecretAttributes()))
        let entries = [UpsertEntry(name: try Self.name("KEEP"), value: Self.secure(Array("same".utf8))),
                       UpsertEntry(name: try Self.name("CHANGE"), value: Self.secure(Array("after".utf8))),
                       UpsertEntry(name: try Self.name("FRESH"), value: Self.secure([0, 1, 2]))]
        // The tag `staging` names the environment.
        let result = try store.upsert(environment: nil, entries: entries, addTags: [Self.tag("staging"), Self.tag("imported")])
        #expect(result.environment == Self.staging)
        #expect(result.created.map(\.rawValue) == ["FRESH"])
        #expect(result.updated.map(\.rawValue) == ["CHANGE"])
        #expect(result.unchanged.map(\.rawValue) == ["KEEP"])
        #expect(try store.summary(environment: Self.staging, name: Self.name("KEEP")).attributes.tags.map(\.rawValue) == ["imported", "old", "staging"])
        #expect(try store.summary(environment: Self.staging, name: Self.name("KEEP")).currentVersion == 1)
        #expect(Self.plain(try store.get(environment: Self.staging, name: Self.name("CHANGE"), version: nil, allowExpired: false).value) == Array("after".utf8))
        let values = try store.batchGet(environment: Self.staging, names: [Self.name("FRESH"), Self.name("KEEP")], allowExpired: false)
        #expect(values.items.map { Self.plain($0.value) } == [[0, 1, 2], Array("same".utf8)])
        // An oversized value stops the whole batch before anything is written.
        let tooBig = [UpsertEntry(name: try Self.name("NEVER"), value: Self.secure([1])),
                      UpsertEntry(name: try Self.name("HUGE"), value: Self.secure([UInt8](repeating: 65, count: SecretValueRule.maximumBytes + 1)))]
        #expect(Self.status { _ = try store.upsert(environment: Self.staging, entries: tooBig, addTags: []) } == .usage)
        #expect(Self.status { _ = try store.summary(environment: Self.staging, name: Self.name("NEVER")) } == .notFound)
    }

    @Test("a remote store maps transport failures and a refused key", arguments: [Backend.remote])
    func remoteFailures(_ backend: Backend) throws {
        let live = try LiveStore()
        let server = try LiveServer(store: live)
        var wrongKey = RemoteEndpoint(baseURL: server.baseURL, apiKey: Self.secure(Array("vsec_key_0000000000000000_wrong".utf8)))
        wrongKey.timeoutMilliseconds = 5_000
        #expect(Self.status { _ = try RemoteStore(endpoint: wrongKey).list(SecretQuery()) } == .accessDenied)
        let port = try liveFreeLoopbackPort()
        var down = RemoteEndpoint(baseURL: "http://127.0.0.1:\(port)", apiKey: Self.secure(Array(live.adminToken.utf8)))
        down.timeoutMilliseconds = 2_000
        let started = Date()
        #expect(Self.status { _ = try RemoteStore(endpoint: down).list(SecretQuery()) } == .remoteUnreachable)
        #expect(Date().timeIntervalSince(started) < 5)
        var good = RemoteEndpoint(baseURL: server.baseURL, apiKey: Self.secure(Array(live.adminToken.utf8)))
        good.timeoutMilliseconds = 5_000
        #expect(try RemoteStore(endpoint: good).verifyKey() == .readsSecrets)
    }
}
