import Foundation
import Testing
import VSecureCore
import VSecureCrypto
import VSecureStore
@testable import VSecureVault

private let day: Int64 = 86_400

private func policy(_ period: String, notify: String? = nil, _ source: RotationSource = .generate(length: 32, charset: .alnum)) throws -> RotationPolicy {
    try RotationPolicy(period: SecretDuration(parsing: period), notifyBefore: notify.map { try SecretDuration(parsing: $0) }, source: source)
}

private func store(_ vault: LocalVault, at seconds: Int64) -> LocalSecretStore {
    LocalSecretStore(vault: vault, actor: "rotator", audit: nil) { time(seconds) }
}

private func state(_ vault: LocalVault, _ name: String, at seconds: Int64) throws -> RotationState {
    let entry = try #require(try vault.rotationEntries(environment: env("production")).first { $0.name.rawValue == name })
    return entry.state(at: time(seconds), expiryNotice: SecretDuration(seconds: 7 * day))
}

@Suite("Vault format 2: migration from format 1")
struct VaultMigrationTests {
    @Test("a format-1 vector opens, migrates to format 2 with the rotation table, and keeps every value")
    func formatOneMigrates() throws {
        let (scratch, vaultPath, keyPath) = try formatOneVaultCopy()
        defer { withExtendedLifetime(scratch) {} }
        let before = try SQLiteDatabase(path: vaultPath, create: false)
        #expect(try before.scalarInt("PRAGMA user_version") == 1)
        #expect(try before.scalarInt("SELECT count(*) FROM sqlite_schema WHERE name = 'rotation'") == 0)

        let vault = try LocalVault.open(at: vaultPath, readOnly: true, keys: keyFileSource(keyPath))
        #expect(try vault.db.scalarInt("PRAGMA user_version") == 2)
        #expect(try vault.db.scalarInt("SELECT count(*) FROM rotation") == 0)
        #expect(try vault.read("API_KEY") == VaultVectorGenerator.apiKeyV1)
        #expect(try vault.read("BINARY") == VaultVectorGenerator.binary)
        #expect(try vault.read("API_KEY", in: "development") == VaultVectorGenerator.devKey)
        #expect(try vault.status(checkIntegrity: true).integrityOK)

        // A migrated vault takes policies; the period counts from the current value's time.
        let writer = try LocalVault.open(at: vaultPath, keys: keyFileSource(keyPath))
        #expect(try writer.status(checkIntegrity: false).formatVersion == 2)
        try writer.setRotationPolicy(environment: env("production"), name: secretName("DB_PASSWORD"), policy: try policy("30d"), now: time(t0 + 9_999))
        let entry = try #require(try writer.rotationEntries(environment: env("production")).first { $0.name.rawValue == "DB_PASSWORD" })
        #expect(entry.record?.lastRotatedAt == time(t0 + 360))
        #expect(entry.record?.nextDueAt == time(t0 + 360 + 30 * day))
    }
}

@Suite("Rotation states and rotations in the vault")
struct VaultRotationTests {
    @Test("the pure state function: each rule at its exact instant")
    func stateRules() throws {
        let p = try policy("30d", notify: "7d")
        let record = RotationRecord(lastRotatedAt: time(t0), nextDueAt: time(t0 + 30 * day))
        func at(_ offset: Int64, expires: Int64? = nil, _ r: RotationRecord = record) -> RotationState {
            RotationState.at(time(t0 + offset), policy: p, record: r, expiresAt: expires.map { time(t0 + $0) }, expiryNotice: SecretDuration(seconds: 3 * day))
        }
        #expect(at(23 * day - 1) == .ok)
        #expect(at(23 * day) == .notify)
        #expect(at(30 * day - 1) == .notify)
        #expect(at(30 * day) == .due)
        #expect(at(31 * day - 1) == .due)
        #expect(at(31 * day) == .overdue)
        #expect(at(0, expires: 10 * day) == .ok)
        #expect(at(3 * day, expires: 10 * day) == .notify, "expiring within notifyBefore")
        #expect(at(10 * day, expires: 10 * day) == .expired)
        var failing = record
        failing.failingSince = time(t0 + 30 * day)
        #expect(at(30 * day, failing) == .failing)
        // Without a policy, only the expiry counts, with the caller's notice window.
        #expect(RotationState.at(time(t0), policy: nil, record: nil, expiresAt: time(t0 + 3 * day + 1), expiryNotice: SecretDuration(seconds: 3 * day)) == .ok)
        #expect(RotationState.at(time(t0), policy: nil, record: nil, expiresAt: time(t0 + 3 * day), expiryNotice: SecretDuration(seconds: 3 * day)) == .notify)
        // A short period: overdue after one period, not after a day.
        let hourly = try policy("1h")
        let hourRecord = RotationRecord(lastRotatedAt: time(t0), nextDueAt: time(t0 + 3600))
        #expect(RotationState.at(time(t0 + 7199), policy: hourly, record: hourRecord, expiresAt: nil, expiryNotice: SecretDuration(seconds: 1)) == .due)
        #expect(RotationState.at(time(t0 + 7200), policy: hourly, record: hourRecord, expiresAt: nil, expiryNotice: SecretDuration(seconds: 1)) == .overdue)
    }

    @Test("ok → notify → due → rotated at the right instants; rotation:run-style calls rotate once")
    func lifecycle() throws {
        let fixture = try VaultFixture()
        let vault = fixture.vault
        try vault.put("TOKEN", utf8("first"), at: t0)
        try vault.setRotationPolicy(environment: env("production"), name: secretName("TOKEN"), policy: try policy("30d", notify: "7d"), now: time(t0))
        #expect(try state(vault, "TOKEN", at: t0 + 23 * day - 1) == .ok)
        #expect(try state(vault, "TOKEN", at: t0 + 23 * day) == .notify)
        #expect(try state(vault, "TOKEN", at: t0 + 30 * day) == .due)

        let early = try store(vault, at: t0 + 30 * day - 1).rotate(environment: env("production"), name: secretName("TOKEN"), onlyIfDue: true, settings: RotationSettings())
        guard case .skipped = early.outcome else { Issue.record("rotated before it was due: \(early)"); return }
        #expect(try vault.summary(environment: env("production"), name: secretName("TOKEN")).currentVersion == 1)

        let due = t0 + 30 * day
        let first = try store(vault, at: due).rotate(environment: env("production"), name: secretName("TOKEN"), onlyIfDue: true, settings: RotationSettings())
        #expect(first.outcome == .rotated(from: 1, to: 2))
        let second = try store(vault, at: due).rotate(environment: env("production"), name: secretName("TOKEN"), onlyIfDue: true, settings: RotationSettings())
        guard case .skipped = second.outcome else { Issue.record("rotated twice: \(second)"); return }
        let (_, versions) = try vault.versions(environment: env("production"), name: secretName("TOKEN"))
        #expect(versions.map(\.action) == [.create, .rotate])
        #expect(versions.last?.actor == "rotator")
        #expect(try state(vault, "TOKEN", at: due) == .ok)
        let entry = try #require(try vault.rotationEntries(environment: nil).first)
        #expect(entry.record?.lastRotatedAt == time(due) && entry.record?.nextDueAt == time(due + 30 * day))

        // The generated value has the requested length and charset.
        let value = try vault.read("TOKEN")
        #expect(value.count == 32)
        #expect(value.allSatisfy { RotationCharset.alnum.alphabet.contains($0) })
        #expect(value != utf8("first"))
    }

    @Test("a run that finds the secret claimed by another run skips it: each due secret is rotated once")
    func concurrentClaim() throws {
        let fixture = try VaultFixture()
        try fixture.vault.put("DB", utf8("old"), at: t0)
        try fixture.vault.setRotationPolicy(environment: env("production"), name: secretName("DB"),
                                            policy: try policy("1d", .command(argv: ["/bin/true"])), now: time(t0))
        let other = try fixture.reopen()
        var inner: RotationResult?
        let outer = try fixture.vault.rotate(environment: env("production"), name: secretName("DB"), onlyIfDue: true, actor: "a",
                                             now: time(t0 + day), claimFor: SecretDuration(seconds: 120)) { input throws(RotationFailure) in
            #expect(input.currentValue.map(plain) == utf8("old"))
            // A second process, while the first holds the claim and runs its command.
            inner = try? other.rotate(environment: env("production"), name: secretName("DB"), onlyIfDue: true, actor: "b",
                                      now: time(t0 + day), claimFor: SecretDuration(seconds: 120)) { _ throws(RotationFailure) in
                Issue.record("the second run produced a value")
                return SecureBytes.randomCharacters(count: 8, alphabet: RotationCharset.hex.alphabet)
            }
            return utf8("new").withUnsafeBytes { SecureBytes(copying: $0) }
        }
        #expect(outer.outcome == .rotated(from: 1, to: 2))
        guard case .skipped(let reason)? = inner?.outcome else { Issue.record("second run: \(String(describing: inner))"); return }
        #expect(reason.contains("another rotation"))
        #expect(try fixture.vault.read("DB") == utf8("new"))
        #expect(try fixture.vault.versions(environment: env("production"), name: secretName("DB")).1.count == 2)
    }

    @Test("a failure changes nothing, is recorded as failing, is retried, and a success clears it")
    func failureRecorded() throws {
        let fixture = try VaultFixture()
        let vault = fixture.vault
        try vault.put("DB", utf8("old"), at: t0)
        try vault.setRotationPolicy(environment: env("production"), name: secretName("DB"), policy: try policy("1d", .command(argv: ["/bin/true"])), now: time(t0))
        let failed = try vault.rotate(environment: env("production"), name: secretName("DB"), onlyIfDue: true, actor: "a",
                                      now: time(t0 + day), claimFor: SecretDuration(seconds: 60)) { _ throws(RotationFailure) -> SecureBytes in
            throw RotationFailure("the rotation command /x exited with status 1; nothing was changed")
        }
        #expect(failed.outcome == .failed(reason: "the rotation command /x exited with status 1; nothing was changed"))
        #expect(try vault.read("DB") == utf8("old"))
        #expect(try state(vault, "DB", at: t0 + day) == .failing)
        let record = try #require(try vault.rotationEntries(environment: nil).first?.record)
        #expect(record.failureCount == 1 && record.failingSince == time(t0 + day) && record.lastFailure?.contains("status 1") == true)

        // The claim was released: the next run retries at once.
        let retried = try vault.rotate(environment: env("production"), name: secretName("DB"), onlyIfDue: true, actor: "a",
                                       now: time(t0 + day + 60), claimFor: SecretDuration(seconds: 60)) { _ throws(RotationFailure) in
            utf8("fresh").withUnsafeBytes { SecureBytes(copying: $0) }
        }
        #expect(retried.outcome == .rotated(from: 1, to: 2))
        #expect(try state(vault, "DB", at: t0 + day + 60) == .ok)
        #expect(try vault.rotationEntries(environment: nil).first?.record?.failureCount == 0)
    }

    @Test("any new value restarts the period; removing the policy removes the row; a purge removes it too")
    func newValueRestartsPeriod() throws {
        let fixture = try VaultFixture()
        let vault = fixture.vault
        try vault.put("K", utf8("a"), at: t0)
        try vault.setRotationPolicy(environment: env("production"), name: secretName("K"), policy: try policy("10d", .manual), now: time(t0))
        try vault.change("K", to: utf8("b"), at: t0 + 5 * day)
        #expect(try vault.rotationEntries(environment: nil).first?.record?.nextDueAt == time(t0 + 15 * day))
        // A manual policy cannot be rotated by vsecure.
        let error = #expect(throws: VSecureError.self) {
            try store(vault, at: t0 + 20 * day).rotate(environment: env("production"), name: secretName("K"), onlyIfDue: false, settings: RotationSettings())
        }
        #expect(error?.message.contains("manual rotation policy") == true)
        try vault.setRotationPolicy(environment: env("production"), name: secretName("K"), policy: nil, now: time(t0))
        #expect(try vault.db.scalarInt("SELECT count(*) FROM rotation") == 0)
        try vault.setRotationPolicy(environment: env("production"), name: secretName("K"), policy: try policy("10d"), now: time(t0))
        try vault.delete(environment: env("production"), name: secretName("K"), purge: true, now: time(t0))
        #expect(try vault.db.scalarInt("SELECT count(*) FROM rotation") == 0)
    }

    @Test("the launcher's batch read carries the due time and notice window in the same query")
    func batchReadCarriesPolicy() throws {
        let fixture = try VaultFixture()
        try fixture.vault.put("A", utf8("a"), at: t0)
        try fixture.vault.put("B", utf8("b"), at: t0)
        try fixture.vault.setRotationPolicy(environment: env("production"), name: secretName("A"), policy: try policy("30d", notify: "7d"), now: time(t0))
        let fetched = try fixture.vault.fetchSealed(environment: env("production"), names: [secretName("A"), secretName("B")], tagSelections: [])
        let a = try #require(fetched.first { $0.name.rawValue == "A" }), b = try #require(fetched.first { $0.name.rawValue == "B" })
        #expect(a.rotationDueAt == time(t0 + 30 * day) && a.rotationNotifyBefore == SecretDuration(seconds: 7 * day))
        #expect(b.rotationDueAt == nil && b.rotationNotifyBefore == nil)
    }
}

@Suite("Random characters")
struct RandomCharacterTests {
    @Test("each charset: the requested length, only its characters, and every character used", arguments: RotationCharset.allCases)
    func charset(_ charset: RotationCharset) {
        let alphabet = charset.alphabet
        let value = plain(SecureBytes.randomCharacters(count: 4096, alphabet: alphabet))
        #expect(value.count == 4096)
        #expect(value.allSatisfy { alphabet.contains($0) })
        // 4096 draws from at most 94 characters miss one with probability below 1e-18.
        #expect(Set(value).count == alphabet.count)
    }

    @Test func alphabets() {
        #expect(RotationCharset.alnum.alphabet.count == 62)
        #expect(RotationCharset.hex.alphabet == Array("0123456789abcdef".utf8))
        #expect(RotationCharset.base64url.alphabet.count == 64 && RotationCharset.base64url.alphabet.contains(UInt8(ascii: "_")))
        #expect(RotationCharset.asciiPrintable.alphabet.count == 94 && !RotationCharset.asciiPrintable.alphabet.contains(0x20))
    }
}
