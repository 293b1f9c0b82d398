import Testing
import VSecureCore
import VSecureCrypto
import VSecureVault

/// The launcher's read: one query for names and tags, then each box opened into the caller's buffer.
@Suite("LocalVault: fetchSealed and open")
struct BatchReadTests {
    static func fixture() throws -> VaultFixture {
        let fixture = try VaultFixture()
        let vault = fixture.vault
        try vault.put("API_KEY", utf8("old"), tags: tags("api", "web"))
        try vault.change("API_KEY", to: utf8("sk_live_current"))
        try vault.put("DB_URL", utf8("postgres://db"), tags: tags("db", "web"), expiresAt: time(t0 + 500))
        try vault.put("EMPTY", [], tags: tags("web"))
        try vault.put("WORKER", utf8("w"), tags: tags("api"))
        try vault.put("GONE", utf8("deleted"), tags: tags("api", "web"))
        try vault.delete(environment: env("production"), name: secretName("GONE"), purge: false, now: time(t0))
        try vault.put("API_KEY", utf8("staging value"), in: "staging", tags: tags("api", "web"))
        return fixture
    }

    /// Fetches, then opens every box into a buffer of its recorded length.
    static func read(_ vault: LocalVault, names: [String], tags tagList: [Tag], in environment: String = "production") throws -> [String: [UInt8]] {
        let fetched = try vault.fetchSealed(environment: env(environment), names: names.map(secretName), tagSelections: tagList.isEmpty ? [] : [tagList])
        #expect(Set(fetched.map(\.name)).count == fetched.count, "a secret came back twice")
        var values: [String: [UInt8]] = [:]
        for secret in fetched {
            var buffer = [UInt8](repeating: 0xEE, count: secret.valueLength)
            try buffer.withUnsafeMutableBytes { try vault.open(secret, environment: env(environment), into: $0) }
            values[secret.name.rawValue] = buffer
        }
        return values
    }

    @Test("by names: current versions only; missing and deleted names are simply absent")
    func byNames() throws {
        let fixture = try Self.fixture()
        let vault = fixture.vault
        let values = try Self.read(vault, names: ["API_KEY", "EMPTY", "MISSING", "GONE"], tags: [])
        #expect(values == ["API_KEY": utf8("sk_live_current"), "EMPTY": []])
        let fetched = try vault.fetchSealed(environment: env("production"), names: [secretName("API_KEY"), secretName("DB_URL")], tagSelections: [])
        let byName = Dictionary(uniqueKeysWithValues: fetched.map { ($0.name.rawValue, $0) })
        #expect(byName["API_KEY"]?.version == 2)
        #expect(byName["API_KEY"]?.valueLength == 15)
        #expect(byName["API_KEY"]?.expiresAt == nil)
        #expect(byName["DB_URL"]?.expiresAt == time(t0 + 500))
    }

    @Test("by tags: secrets carrying every tag; deleted excluded")
    func byTags() throws {
        let vault = try Self.fixture().vault
        #expect(try Self.read(vault, names: [], tags: tags("web")) == ["API_KEY": utf8("sk_live_current"), "DB_URL": utf8("postgres://db"), "EMPTY": []])
        #expect(try Self.read(vault, names: [], tags: tags("api", "web")) == ["API_KEY": utf8("sk_live_current")])
        #expect(try Self.read(vault, names: [], tags: tags("api")) == ["API_KEY": utf8("sk_live_current"), "WORKER": utf8("w")])
        #expect(try Self.read(vault, names: [], tags: tags("nothing")).isEmpty)
        #expect(try Self.read(vault, names: [], tags: tags("web"), in: "staging") == ["API_KEY": utf8("staging value")])
    }

    @Test("a tag listed twice means the same as once")
    func duplicateTags() throws {
        let vault = try Self.fixture().vault
        #expect(try Self.read(vault, names: [], tags: tags("api", "api")) == ["API_KEY": utf8("sk_live_current"), "WORKER": utf8("w")])
        #expect(try Self.read(vault, names: [], tags: tags("db", "web", "db")) == ["DB_URL": utf8("postgres://db")])
    }

    @Test("names and tags together: the union, each secret once")
    func both() throws {
        let vault = try Self.fixture().vault
        let values = try Self.read(vault, names: ["WORKER", "API_KEY", "GONE"], tags: tags("db"))
        #expect(values == ["WORKER": utf8("w"), "API_KEY": utf8("sk_live_current"), "DB_URL": utf8("postgres://db")])
        #expect(try Self.read(vault, names: ["API_KEY"], tags: tags("api")) == ["API_KEY": utf8("sk_live_current"), "WORKER": utf8("w")])
        let byName = try vault.fetchSealed(environment: env("production"), names: [secretName("WORKER")], tagSelections: [tags("db")])
        #expect(byName.map(\.name.rawValue).sorted() == ["DB_URL", "WORKER"])
        #expect(byName.first { $0.name.rawValue == "WORKER" }?.selectedByTags == false)
    }

    @Test("several tag selections: a secret matching any of them, each once; selectedByTags says how it was found")
    func severalSelections() throws {
        let vault = try Self.fixture().vault
        let fetched = try vault.fetchSealed(environment: env("production"), names: [secretName("EMPTY"), secretName("API_KEY")],
                                            tagSelections: [tags("db"), tags("api", "web"), [], tags("db", "web")])
        let selected = Dictionary(uniqueKeysWithValues: fetched.map { ($0.name.rawValue, $0.selectedByTags) })
        #expect(selected == ["EMPTY": false, "API_KEY": true, "DB_URL": true])
        #expect(fetched.count == 3)
        #expect(try vault.fetchSealed(environment: env("production"), names: [], tagSelections: [[], []]).isEmpty)
    }

    @Test("an empty request reads nothing; an unknown environment is refused")
    func edges() throws {
        let vault = try Self.fixture().vault
        #expect(try vault.fetchSealed(environment: env("production"), names: [], tagSelections: []).isEmpty)
        #expect(try vault.fetchSealed(environment: env("development"), names: [secretName("API_KEY")], tagSelections: [tags("api")]).isEmpty)
        let error = #expect(throws: VSecureError.self) { try vault.fetchSealed(environment: env("qa"), names: [secretName("API_KEY")], tagSelections: []) }
        #expect(error?.status == .usage)
    }

    @Test("a box opened for the wrong environment or into a buffer of the wrong size fails")
    func openMisuse() throws {
        let vault = try Self.fixture().vault
        let secret = try #require(try vault.fetchSealed(environment: env("production"), names: [secretName("API_KEY")], tagSelections: []).first)
        var buffer = [UInt8](repeating: 0, count: secret.valueLength)
        let wrongPlace = #expect(throws: VSecureError.self) {
            try buffer.withUnsafeMutableBytes { try vault.open(secret, environment: env("staging"), into: $0) }
        }
        #expect(wrongPlace?.status == .integrity)
        #expect(buffer == [UInt8](repeating: 0, count: secret.valueLength))
        var tooSmall = [UInt8](repeating: 0, count: secret.valueLength - 1)
        let wrongSize = #expect(throws: VSecureError.self) {
            try tooSmall.withUnsafeMutableBytes { try vault.open(secret, environment: env("production"), into: $0) }
        }
        #expect(wrongSize?.status == .integrity)
    }
}
