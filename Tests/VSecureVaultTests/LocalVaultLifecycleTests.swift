import Foundation
import Testing
import VSecureCore
import VSecureCrypto
@testable import VSecureVault

@Suite("LocalVault: creating and opening")
struct LocalVaultCreationTests {
    @Test("vault:init creates a 0600 vault and a 0600 32-byte key in a new 0700 directory")
    func createsPrivateFiles() throws {
        let fixture = try VaultFixture()
        #expect(try fileMode(fixture.vaultPath) == 0o600)
        #expect(try fileMode(fixture.keyPath) == 0o600)
        #expect(try fileMode(fixture.directory.child("home/.vsecure")) == 0o700)
        #expect(try fileMode(fixture.directory.child("home")) == 0o700)
        #expect(try FileManager.default.attributesOfItem(atPath: fixture.keyPath)[.size] as? NSNumber == 32)
        let status = try fixture.vault.status(checkIntegrity: true)
        #expect(status.formatVersion == 2)
        #expect(status.protection == .keyFile)
        #expect(status.secretCount == 0 && status.deletedCount == 0 && status.versionCount == 0)
        #expect(status.integrityOK)
        #expect(status.vaultID == hexString(fixture.vault.vaultID))
        #expect(status.environments == EnvironmentName.defaults)
        #expect(status.defaultEnvironment == env("development"))
        #expect(status.createdAt == time(t0))
        let reopened = try fixture.reopen()
        #expect(reopened.vaultID == fixture.vault.vaultID)
        #expect(reopened.createdAt == time(t0))
    }

    @Test("configured environments and default are kept")
    func environments() throws {
        let scratch = try ScratchDirectory()
        let vault = try LocalVault.create(at: scratch.child("v.db"), protection: .keyFile(path: scratch.child("v.key")),
                                          environments: [env("prod"), env("dev")], defaultEnvironment: env("dev"), now: time(t0))
        #expect(vault.environments == [env("prod"), env("dev")])
        let reopened = try LocalVault.open(at: scratch.child("v.db"), keys: keyFileSource(scratch.child("v.key")))
        #expect(reopened.defaultEnvironment == env("dev"))
        #expect(reopened.environments == [env("prod"), env("dev")])
        let error = #expect(throws: VSecureError.self) { try vault.put("X", [1], in: "production") }
        #expect(error?.status == .usage)
        #expect(error?.message == "unknown environment 'production'")
    }

    @Test("create refuses an existing vault, a directory and a symlink, and leaves them alone")
    func createRefusals() throws {
        let fixture = try VaultFixture()
        let before = try Data(contentsOf: URL(fileURLWithPath: fixture.vaultPath))
        let existing = #expect(throws: VSecureError.self) {
            try LocalVault.create(at: fixture.vaultPath, protection: .keyFile(path: fixture.directory.child("other.key")), now: time(t0))
        }
        #expect(existing?.status == .conflict)
        #expect(existing?.message.contains("a vault already exists at") == true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: fixture.vaultPath)) == before)
        #expect(PrivateFiles.kind(of: fixture.directory.child("other.key")) == .missing)

        let directory = #expect(throws: VSecureError.self) {
            try LocalVault.create(at: fixture.directory.path, protection: .keyFile(path: fixture.directory.child("d.key")), now: time(t0))
        }
        #expect(directory?.status == .conflict)
        #expect(directory?.message.contains("is a directory") == true)

        let link = fixture.directory.child("link.db")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: fixture.directory.child("target.db"))
        let symlink = #expect(throws: VSecureError.self) {
            try LocalVault.create(at: link, protection: .keyFile(path: fixture.directory.child("l.key")), now: time(t0))
        }
        #expect(symlink?.message.contains("is a symlink") == true)
        #expect(PrivateFiles.kind(of: fixture.directory.child("target.db")) == .missing)
    }

    @Test("a failed create removes what it made: a loose existing key file, an empty passphrase")
    func failedCreateCleansUp() throws {
        let scratch = try ScratchDirectory()
        let looseKey = scratch.child("loose.key")
        try Data(Sodium.randomBytes(32)).write(to: URL(fileURLWithPath: looseKey))
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: looseKey)
        let loose = #expect(throws: VSecureError.self) {
            try LocalVault.create(at: scratch.child("a.db"), protection: .keyFile(path: looseKey), now: time(t0))
        }
        #expect(loose?.status == .key)
        #expect(PrivateFiles.kind(of: scratch.child("a.db")) == .missing)
        #expect(PrivateFiles.kind(of: looseKey) == .regular)

        let empty = #expect(throws: VSecureError.self) {
            try LocalVault.create(at: scratch.child("b.db"), protection: .passphrase(passphrase(""), .interactive(salt: Array(repeating: 1, count: 16))),
                                  now: time(t0))
        }
        #expect(empty?.status == .usage)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path) == ["loose.key"])

        let noEnvironments = #expect(throws: VSecureError.self) {
            try LocalVault.create(at: scratch.child("c.db"), protection: .keyFile(path: scratch.child("c.key")), environments: [], now: time(t0))
        }
        #expect(noEnvironments?.status == .usage)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path) == ["loose.key"])
    }

    @Test("an existing valid key file is used as it is, so two vaults can share one")
    func sharedKeyFile() throws {
        let fixture = try VaultFixture()
        let keyBefore = try Data(contentsOf: URL(fileURLWithPath: fixture.keyPath))
        let second = fixture.directory.child("second.db")
        _ = try LocalVault.create(at: second, protection: .keyFile(path: fixture.keyPath), now: time(t0))
        #expect(try Data(contentsOf: URL(fileURLWithPath: fixture.keyPath)) == keyBefore)
        _ = try LocalVault.open(at: second, keys: keyFileSource(fixture.keyPath))
    }

    @Test("open refuses a missing vault, a directory, a symlink and an unsafe key file")
    func openRefusals() throws {
        let fixture = try VaultFixture()
        let missing = #expect(throws: VSecureError.self) { try LocalVault.open(at: fixture.directory.child("none.db"), keys: keyFileSource(fixture.keyPath)) }
        #expect(missing?.status == .vaultMissing)
        #expect(missing?.hints.first?.contains("vsecure vault:init") == true)

        let directory = #expect(throws: VSecureError.self) { try LocalVault.open(at: fixture.directory.path, keys: keyFileSource(fixture.keyPath)) }
        #expect(directory?.status == .vaultMissing)
        #expect(directory?.message.contains("is a directory, not a vault file") == true)

        let link = fixture.directory.child("link.db")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: fixture.vaultPath)
        let symlink = #expect(throws: VSecureError.self) { try LocalVault.open(at: link, keys: keyFileSource(fixture.keyPath)) }
        #expect(symlink?.message.contains("is a symlink") == true)

        let keyLink = fixture.directory.child("link.key")
        try FileManager.default.createSymbolicLink(atPath: keyLink, withDestinationPath: fixture.keyPath)
        let linkedKey = #expect(throws: VSecureError.self) { try LocalVault.open(at: fixture.vaultPath, keys: keyFileSource(keyLink)) }
        #expect(linkedKey?.status == .key)

        try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: fixture.keyPath)
        let loose = #expect(throws: VSecureError.self) { try fixture.reopen() }
        #expect(loose?.status == .key)
        #expect(loose?.message.contains("accessible by group or others") == true)
    }

    @Test("a wrong key names the key file and points at an interrupted rekey")
    func wrongKey() throws {
        let fixture = try VaultFixture()
        let other = fixture.directory.child("other.key")
        try Sodium.randomBytes(32).withRawBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in try PrivateFiles.createFile(other, contents: raw) }
        let error = #expect(throws: VSecureError.self) { try LocalVault.open(at: fixture.vaultPath, keys: keyFileSource(other)) }
        #expect(error?.status == .key)
        #expect(error?.message.contains("the key file '\(other)' does not unlock the vault") == true)
        #expect(error?.hints.count == 1)
        try Data(Sodium.randomBytes(32)).write(to: URL(fileURLWithPath: other + ".new"))
        let interrupted = #expect(throws: VSecureError.self) { try LocalVault.open(at: fixture.vaultPath, keys: keyFileSource(other)) }
        #expect(interrupted?.hints.last?.contains("a `vault:rekey` was interrupted") == true)
    }
}

@Suite("LocalVault: the secret lifecycle")
struct LocalVaultSecretTests {
    @Test("create, get, and values as bytes: empty, NUL, newline, invalid UTF-8, the size cap")
    func createAndGet() throws {
        let fixture = try VaultFixture()
        let vault = fixture.vault
        let summary = try vault.put("API_KEY", utf8("sk_live_1"), tags: tags("production", "api"),
                                    metadata: [try MetadataEntry(key: "owner", value: "a b=c")], expiresAt: time(t0 + 86_400),
                                    description: "stripe", at: t0 + 10)
        #expect(summary.currentVersion == 1)
        #expect(summary.path == "production/API_KEY")
        #expect(summary.id.hasPrefix("sec_"))
        #expect(summary.attributes.tags == tags("api", "production"))
        #expect(summary.createdAt == time(t0 + 10) && summary.updatedAt == time(t0 + 10))

        let (secret, version, value) = try vault.get(environment: env("production"), name: secretName("API_KEY"), version: nil)
        #expect(plain(value) == utf8("sk_live_1"))
        #expect(secret == summary)
        #expect(version.version == 1 && version.action == .create && version.actor == "tester" && version.valueLength == 9)
        #expect(version.fingerprint.count == 16)
        #expect(version.attributes == summary.attributes)

        let values: [String: [UInt8]] = ["EMPTY": [], "NUL": [0], "NEWLINE": [0x0A], "BINARY": [0xFF, 0x00, 0xC3, 0x28, 0x0D, 0x0A],
                                         "MAX": Array(repeating: 0x61, count: SecretValueRule.maximumBytes)]
        for (name, bytes) in values { try vault.put(name, bytes) }
        // SQLite gives its companions the vault's mode.
        for suffix in ["-wal", "-shm"] where PrivateFiles.kind(of: fixture.vaultPath + suffix) == .regular {
            #expect(try fileMode(fixture.vaultPath + suffix) == 0o600, "\(suffix)")
        }
        let reopened = try fixture.reopen()
        for (name, bytes) in values { #expect(try reopened.read(name) == bytes, "\(name)") }

        let tooBig = #expect(throws: VSecureError.self) { try vault.put("BIG", Array(repeating: 0, count: SecretValueRule.maximumBytes + 1)) }
        #expect(tooBig?.status == .usage)
        #expect(tooBig?.message.contains("the value of BIG is 122881 bytes") == true)
    }

    @Test("create refuses an existing secret, an unknown environment and a past expiry, changing nothing")
    func createRefusals() throws {
        let vault = try VaultFixture().vault
        try vault.put("API_KEY", utf8("one"))
        let duplicate = #expect(throws: VSecureError.self) { try vault.put("API_KEY", utf8("two")) }
        #expect(duplicate?.status == .conflict)
        #expect(duplicate?.message == "secret API_KEY already exists in production (version 1)")
        #expect(duplicate?.hints == ["use `vsecure secrets:update API_KEY --env production` to add a version"])
        #expect(try vault.read("API_KEY") == utf8("one"))

        let unknown = #expect(throws: VSecureError.self) { try vault.put("API_KEY", utf8("x"), in: "qa") }
        #expect(unknown?.status == .usage)

        // The vault's own guard refuses an expiry a minute or more in the past; closer than that
        // it may be a relative expiry computed a moment ago (the CLI and the API check absolute
        // times against their own clocks, see BadInputTests and RouteTests).
        let past = #expect(throws: VSecureError.self) { try vault.put("OLD", utf8("x"), expiresAt: time(t0 - 60)) }
        #expect(past?.status == .usage)
        #expect(past?.message.contains("is in the past") == true)
        let older = #expect(throws: VSecureError.self) { try vault.put("OLD", utf8("x"), expiresAt: time(t0 - 86_400)) }
        #expect(older?.status == .usage)
        #expect(try vault.list(.init(), now: time(t0)).map(\.name.rawValue) == ["API_KEY"])
    }

    @Test("the same name in two environments is two secrets")
    func environmentsAreSeparate() throws {
        let vault = try VaultFixture().vault
        try vault.put("API_KEY", utf8("prod"))
        try vault.put("API_KEY", utf8("dev"), in: "development")
        try vault.change("API_KEY", to: utf8("dev2"), in: "development")
        #expect(try vault.read("API_KEY") == utf8("prod"))
        #expect(try vault.read("API_KEY", in: "development") == utf8("dev2"))
        #expect(try vault.summary(environment: env("production"), name: secretName("API_KEY")).currentVersion == 1)
        let missing = #expect(throws: VSecureError.self) { try vault.read("API_KEY", in: "staging") }
        #expect(missing?.status == .notFound)
        #expect(missing?.message == "no secret API_KEY in staging")
        #expect(missing?.hints == ["API_KEY exists in development, production; pass --env development"])
    }

    @Test("update: a value makes a version; attributes alone do not; --if-version is compare-and-set")
    func update() throws {
        let vault = try VaultFixture().vault
        try vault.put("API_KEY", utf8("v1"), tags: tags("api"), at: t0)
        let second = try vault.change("API_KEY", to: utf8("v2"), at: t0 + 5, actor: "bob")
        #expect(second.previousVersion == 1 && second.newVersion == 2)
        #expect(second.secret.updatedAt == time(t0 + 5))

        var change = AttributeChange()
        change.addTags = tags("db")
        change.setMetadata = [try MetadataEntry(key: "owner", value: "ops")]
        change.expiresAt = .some(time(t0 + 1000))
        let attributesOnly = try vault.update(environment: env("production"), name: secretName("API_KEY"), value: nil, change: change,
                                              ifVersion: nil, actor: "carol", now: time(t0 + 10))
        #expect(attributesOnly.newVersion == nil)
        #expect(attributesOnly.secret.currentVersion == 2)
        #expect(attributesOnly.secret.attributes.tags == tags("api", "db"))
        #expect(try vault.versions(environment: env("production"), name: secretName("API_KEY")).1.count == 2)
        #expect(try vault.read("API_KEY") == utf8("v2"))
        #expect(try vault.list(.init(), now: time(t0 + 10)).first?.attributes.metadataValue("owner") == "ops")

        let stale = #expect(throws: VSecureError.self) { try vault.change("API_KEY", to: utf8("lost"), ifVersion: 1) }
        #expect(stale?.status == .conflict)
        #expect(stale?.message == "API_KEY in production is at version 2, not 1; nothing was changed")
        #expect(try vault.read("API_KEY") == utf8("v2"))
        #expect(try vault.change("API_KEY", to: utf8("v3"), ifVersion: 2).newVersion == 3)

        var pastExpiry = AttributeChange()
        pastExpiry.expiresAt = .some(time(t0 - 60))
        #expect(throws: VSecureError.self) {
            try vault.update(environment: env("production"), name: secretName("API_KEY"), value: nil, change: pastExpiry,
                             ifVersion: nil, actor: "x", now: time(t0))
        }
        var noExpiry = AttributeChange()
        noExpiry.expiresAt = .some(nil)
        #expect(try vault.update(environment: env("production"), name: secretName("API_KEY"), value: nil, change: noExpiry,
                                 ifVersion: nil, actor: "x", now: time(t0)).secret.attributes.expiresAt == nil)

        let missing = #expect(throws: VSecureError.self) { try vault.change("NOPE", to: utf8("x")) }
        #expect(missing?.status == .notFound)
    }

    @Test("versions and rollback: history is never rewritten; equal values have equal fingerprints")
    func versionsAndRollback() throws {
        let vault = try VaultFixture().vault
        try vault.put("API_KEY", utf8("alpha"), tags: tags("one"), at: t0, actor: "alice")
        var retag = AttributeChange()
        retag.replaceTags = tags("two")
        _ = try utf8("beta").withUnsafeBytes { raw in
            try vault.update(environment: env("production"), name: secretName("API_KEY"), value: raw, change: retag,
                             ifVersion: nil, actor: "bob", now: time(t0 + 60))
        }
        try vault.change("API_KEY", to: utf8("gamma"), at: t0 + 120)

        let back = try vault.rollback(environment: env("production"), name: secretName("API_KEY"), to: nil, actor: "carol", now: time(t0 + 180))
        #expect(back.previousVersion == 3 && back.newVersion == 4)
        #expect(try vault.read("API_KEY") == utf8("beta"))
        let toFirst = try vault.rollback(environment: env("production"), name: secretName("API_KEY"), to: 1, actor: "carol", now: time(t0 + 240))
        #expect(toFirst.newVersion == 5)
        #expect(try vault.read("API_KEY") == utf8("alpha"))

        let (summary, versions) = try vault.versions(environment: env("production"), name: secretName("API_KEY"))
        #expect(summary.currentVersion == 5)
        #expect(versions.map(\.version) == [1, 2, 3, 4, 5])
        #expect(versions.map(\.action) == [.create, .update, .update, .rollback, .rollback])
        #expect(versions.map(\.actor) == ["alice", "bob", "tester", "carol", "carol"])
        #expect(versions.map(\.sourceVersion) == [nil, nil, nil, 2, 1])
        #expect(versions.map(\.valueLength) == [5, 4, 5, 4, 5])
        #expect(versions.map(\.createdAt) == [t0, t0 + 60, t0 + 120, t0 + 180, t0 + 240].map(time))
        #expect(versions[0].attributes.tags == tags("one"))
        #expect(versions[1].attributes.tags == tags("two"))
        #expect(versions[0].fingerprint == versions[4].fingerprint)
        #expect(versions[1].fingerprint == versions[3].fingerprint)
        #expect(Set(versions.prefix(3).map(\.fingerprint)).count == 3)
        #expect(versions[0].fingerprint == utf8("alpha").withUnsafeBytes { vault.fingerprint(of: $0) })
        #expect(try vault.currentFingerprint(environment: env("production"), name: secretName("API_KEY")) == versions[4].fingerprint)
        for (index, expected) in ["alpha", "beta", "gamma", "beta", "alpha"].enumerated() {
            #expect(try vault.read("API_KEY", version: index + 1) == utf8(expected))
        }

        let current = #expect(throws: VSecureError.self) {
            try vault.rollback(environment: env("production"), name: secretName("API_KEY"), to: 5, actor: "x", now: time(t0))
        }
        #expect(current?.status == .conflict)
        let absent = #expect(throws: VSecureError.self) {
            try vault.rollback(environment: env("production"), name: secretName("API_KEY"), to: 9, actor: "x", now: time(t0))
        }
        #expect(absent?.status == .notFound)
        let missingVersion = #expect(throws: VSecureError.self) { try vault.read("API_KEY", version: 9) }
        #expect(missingVersion?.status == .notFound)
        #expect(missingVersion?.message == "API_KEY in production has no version 9 (current: 5)")

        try vault.put("SINGLE", utf8("only"))
        let nothing = #expect(throws: VSecureError.self) {
            try vault.rollback(environment: env("production"), name: secretName("SINGLE"), to: nil, actor: "x", now: time(t0))
        }
        #expect(nothing?.status == .notFound)
        #expect(nothing?.message.contains("has only version 1; there is nothing to roll back to") == true)
    }

    @Test("delete hides a secret; create revives it after its old versions; purge destroys every version")
    func deleteAndPurge() throws {
        let fixture = try VaultFixture()
        let vault = fixture.vault
        try vault.put("API_KEY", utf8("one"), tags: tags("api"))
        try vault.change("API_KEY", to: utf8("two"))
        try vault.put("KEEP", utf8("kept"), tags: tags("api"))
        try vault.delete(environment: env("production"), name: secretName("API_KEY"), purge: false, now: time(t0 + 5))

        let gone = #expect(throws: VSecureError.self) { try vault.read("API_KEY") }
        #expect(gone?.status == .notFound)
        #expect(throws: VSecureError.self) { try vault.read("API_KEY", version: 1) }
        #expect(throws: VSecureError.self) { try vault.versions(environment: env("production"), name: secretName("API_KEY")) }
        #expect(try vault.list(.init(), now: time(t0)).map(\.name.rawValue) == ["KEEP"])
        var byTag = LocalVault.ListQuery()
        byTag.tags = tags("api")
        #expect(try vault.list(byTag, now: time(t0)).map(\.name.rawValue) == ["KEEP"])
        #expect(try vault.currentFingerprint(environment: env("production"), name: secretName("API_KEY")) == nil)
        let status = try vault.status(checkIntegrity: false)
        #expect(status.secretCount == 1 && status.deletedCount == 1 && status.versionCount == 3)

        let again = #expect(throws: VSecureError.self) {
            try vault.delete(environment: env("production"), name: secretName("API_KEY"), purge: false, now: time(t0))
        }
        #expect(again?.status == .notFound)
        #expect(again?.message == "API_KEY in production is already deleted")

        let revived = try vault.put("API_KEY", utf8("three"))
        #expect(revived.currentVersion == 3)
        #expect(try vault.read("API_KEY") == utf8("three"))
        #expect(try vault.read("API_KEY", version: 1) == utf8("one"))

        let versionsBefore = try vault.versions(environment: env("production"), name: secretName("API_KEY")).1
        #expect(versionsBefore.count == 3)
        try vault.delete(environment: env("production"), name: secretName("API_KEY"), purge: true, now: time(t0 + 9))
        #expect(try vault.status(checkIntegrity: true).versionCount == 1)
        #expect(try vault.status(checkIntegrity: true).integrityOK)
        #expect(try vault.put("API_KEY", utf8("fresh")).currentVersion == 1)
        #expect(try vault.versions(environment: env("production"), name: secretName("API_KEY")).1.map(\.version) == [1])
        #expect(try vault.read("KEEP") == utf8("kept"))

        let missing = #expect(throws: VSecureError.self) {
            try vault.delete(environment: env("production"), name: secretName("NOPE"), purge: true, now: time(t0))
        }
        #expect(missing?.status == .notFound)
    }

    @Test("purge leaves no trace of the secret's name or boxes in the vault file")
    func purgeOverwrites() throws {
        let fixture = try VaultFixture()
        let vault = fixture.vault
        let marker = "PURGED_SECRET_NAME_MARKER"
        try vault.put(marker, Array(repeating: 0x41, count: 300), tags: tags("purgedtagmarker"))
        try vault.put("KEEP", utf8("kept"))
        try vault.delete(environment: env("production"), name: secretName(marker), purge: true, now: time(t0))
        for suffix in ["", "-wal"] {
            let bytes = (try? Data(contentsOf: URL(fileURLWithPath: fixture.vaultPath + suffix))) ?? Data()
            #expect(bytes.range(of: Data(marker.utf8)) == nil, "name still in \(suffix.isEmpty ? "the vault" : suffix)")
            #expect(bytes.range(of: Data("purgedtagmarker".utf8)) == nil, "tag still in \(suffix.isEmpty ? "the vault" : suffix)")
        }
        #expect(try fixture.reopen().read("KEEP") == utf8("kept"))
    }

    @Test("a purge while another connection reads: it stands, the unfinished checkpoint is reported (store warning naming the secret), and the next finished one clears it")
    func purgeWhileSomeoneReads() throws {
        let fixture = try VaultFixture()
        let vault = fixture.vault
        try vault.put("GONE", utf8("old value"))
        try vault.put("LATER", utf8("later"))
        #expect(!vault.purgedPagesMayRemain)
        var warnings: [String] = []
        let store = LocalSecretStore(vault: vault, actor: "tester", audit: nil, clock: { time(t0) })
        store.onWarning = { warnings.append($0) }
        vault.setBusyTimeout(milliseconds: 50)
        do {
            // A launcher-style reader holds one snapshot, from before the purge, until released.
            let reader = try LocalVault.open(at: fixture.vaultPath, readOnly: true, singleRead: true, keys: keyFileSource(fixture.keyPath))
            try store.delete(environment: env("production"), name: secretName("GONE"), purge: true)
            #expect(vault.purgedPagesMayRemain)
            #expect(warnings.count == 1)
            #expect(warnings.first?.contains("GONE in production is purged") == true, "\(warnings)")
            #expect(warnings.first?.contains("old value") == false)
            // It still reads its snapshot; the purge stands for everyone else.
            #expect(try BatchReadTests.read(reader, names: ["GONE"], tags: []) == ["GONE": utf8("old value")])
        }
        #expect(throws: VSecureError.self) { _ = try vault.read("GONE") }
        // The reader is gone: the next purge's checkpoint finishes, and the WAL is empty.
        try store.delete(environment: env("production"), name: secretName("LATER"), purge: true)
        #expect(!vault.purgedPagesMayRemain)
        #expect(warnings.count == 1)
        #expect(try FileManager.default.attributesOfItem(atPath: fixture.vaultPath + "-wal")[.size] as? NSNumber == 0)
    }

    @Test("list: by environment, all tags, search in name and description, expired excluded unless asked")
    func list() throws {
        let vault = try VaultFixture().vault
        try vault.put("API_KEY", utf8("a"), tags: tags("api", "payments"), description: "Stripe live key")
        try vault.put("DB_URL", utf8("b"), tags: tags("db"), expiresAt: time(t0 + 100))
        try vault.put("API_KEY", utf8("c"), in: "staging", tags: tags("api"))
        try vault.put("WEBHOOK", utf8("d"), tags: tags("api"))

        func names(_ query: LocalVault.ListQuery, at seconds: Int64 = t0) throws -> [String] {
            try vault.list(query, now: time(seconds)).map(\.path)
        }
        #expect(try names(.init()) == ["production/API_KEY", "production/DB_URL", "production/WEBHOOK", "staging/API_KEY"])
        #expect(try names(.init(environment: env("staging"))) == ["staging/API_KEY"])
        var apiTag = LocalVault.ListQuery()
        apiTag.tags = tags("api")
        #expect(try names(apiTag) == ["production/API_KEY", "production/WEBHOOK", "staging/API_KEY"])
        apiTag.tags = tags("api", "payments")
        #expect(try names(apiTag) == ["production/API_KEY"])
        apiTag.tags = tags("api", "db")
        #expect(try names(apiTag).isEmpty)
        var search = LocalVault.ListQuery()
        search.search = "stripe"
        #expect(try names(search) == ["production/API_KEY"])
        search.search = "key"
        #expect(try names(search) == ["production/API_KEY", "staging/API_KEY"])
        search.search = "%"
        #expect(try names(search).isEmpty)

        #expect(try names(.init(), at: t0 + 100) == ["production/API_KEY", "production/WEBHOOK", "staging/API_KEY"])
        var expired = LocalVault.ListQuery()
        expired.includeExpired = true
        #expect(try names(expired, at: t0 + 100).contains("production/DB_URL"))
        #expect(try vault.list(.init(), now: time(t0)).first { $0.name.rawValue == "DB_URL" }?.isExpired(at: time(t0 + 100)) == true)
        #expect(throws: VSecureError.self) { try vault.list(.init(environment: env("qa")), now: time(t0)) }
    }

    @Test("atomically: every operation commits, or none does")
    func atomically() throws {
        let fixture = try VaultFixture()
        let vault = fixture.vault
        try vault.put("EXISTING", utf8("v1"))

        let failure = #expect(throws: VSecureError.self) {
            try vault.atomically { () throws(VSecureError) in
                try utf8("new").withRawBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
                    _ = try vault.create(environment: env("production"), name: secretName("NEW"), value: raw,
                                         attributes: SecretAttributes(), actor: "t", now: time(t0))
                    _ = try vault.update(environment: env("production"), name: secretName("EXISTING"), value: raw,
                                         change: AttributeChange(), ifVersion: nil, actor: "t", now: time(t0))
                    try vault.delete(environment: env("production"), name: secretName("EXISTING"), purge: false, now: time(t0))
                    throw VSecureError(.conflict, "stop here")
                }
            }
        }
        #expect(failure?.message == "stop here")
        #expect(throws: VSecureError.self) { try vault.read("NEW") }
        #expect(try vault.read("EXISTING") == utf8("v1"))
        #expect(try vault.summary(environment: env("production"), name: secretName("EXISTING")).currentVersion == 1)
        #expect(try vault.status(checkIntegrity: false).versionCount == 1)

        // An operation that fails inside, when the body handles it, undoes only itself.
        try vault.atomically { () throws(VSecureError) in
            try utf8("x").withRawBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
                _ = try vault.create(environment: env("production"), name: secretName("A"), value: raw, attributes: SecretAttributes(), actor: "t", now: time(t0))
                do throws(VSecureError) {
                    _ = try vault.create(environment: env("production"), name: secretName("EXISTING"), value: raw,
                                         attributes: SecretAttributes(), actor: "t", now: time(t0))
                    Issue.record("a duplicate create succeeded")
                } catch {
                    #expect(error.status == .conflict)
                }
                _ = try vault.create(environment: env("production"), name: secretName("B"), value: raw, attributes: SecretAttributes(), actor: "t", now: time(t0))
            }
        }
        let reopened = try fixture.reopen()
        #expect(try reopened.list(.init(), now: time(t0)).map(\.name.rawValue) == ["A", "B", "EXISTING"])
        #expect(try reopened.read("EXISTING") == utf8("v1"))
    }

    @Test("purge inside atomically commits with the batch")
    func purgeInsideBatch() throws {
        let fixture = try VaultFixture()
        let vault = fixture.vault
        try vault.put("OLD", utf8("old"))
        try vault.atomically { () throws(VSecureError) in
            try vault.delete(environment: env("production"), name: secretName("OLD"), purge: true, now: time(t0))
            _ = try utf8("new").withRawBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
                try vault.create(environment: env("production"), name: secretName("NEW"), value: raw, attributes: SecretAttributes(), actor: "t", now: time(t0))
            }
        }
        // The WAL was checkpointed and truncated once the batch committed.
        #expect(try FileManager.default.attributesOfItem(atPath: fixture.vaultPath + "-wal")[.size] as? NSNumber == 0)
        let reopened = try fixture.reopen()
        #expect(try reopened.list(.init(), now: time(t0)).map(\.name.rawValue) == ["NEW"])
        #expect(try reopened.status(checkIntegrity: false).versionCount == 1)

        // A batch that fails after a purge purges nothing.
        try vault.put("KEPT", utf8("kept"))
        #expect(throws: VSecureError.self) {
            try vault.atomically { () throws(VSecureError) in
                try vault.delete(environment: env("production"), name: secretName("KEPT"), purge: true, now: time(t0))
                throw VSecureError(.conflict, "stop")
            }
        }
        #expect(try vault.read("KEPT") == utf8("kept"))
    }
}
