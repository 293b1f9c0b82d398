import Foundation
import Testing
import VSecureCore
import VSecureCrypto
@testable import VSecureVault

/// Rebuilds Tests/VSecureVaultTests/Vectors/ in the source tree. Runs only with
/// `VSECURE_REGENERATE_VECTORS=1`; rebuild the tests afterwards so the bundle copy is refreshed:
///
///     VSECURE_REGENERATE_VECTORS=1 swift test --filter VaultVectorGenerator
///
/// The checked-in vectors are format 1 files (they were made before format 2): every open of
/// one migrates a copy to format 2, which pins the migration down. Regenerating writes format 2
/// files and sets `formatVersion` in vectors.json to 2; keep a format-1 copy of good.db then.
///
/// Nonces, salts, vault ids and keys are random, so every run gives new bytes; the expected
/// results stay the same. The tampering is done with plain SQL, as an attacker holding the file would.
@Suite("Vault vector generator")
struct VaultVectorGenerator {
    static let output = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Vectors")

    // The contents of good.db.
    static let apiKeyV1 = utf8("sk_live_first")
    static let apiKeyV2 = utf8("sk_live_second")
    static let binary: [UInt8] = [0x00, 0xFF, 0x0A, 0x0D, 0x22, 0x27, 0x5C, 0x80, 0xC3, 0x28, 0x00]
    static let dbPassword = utf8("correct-horse")
    static let devKey = utf8("sk_test_dev")
    static let pem = utf8("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n")
    static let passValue = utf8("sk_live_passphrase")
    static let rightPassphrase = "correct horse battery staple"
    static let wrongPassphrase = "correct horse battery stapler"

    @Test(.enabled(if: ProcessInfo.processInfo.environment["VSECURE_REGENERATE_VECTORS"] == "1"))
    func regenerate() throws {
        let work = try ScratchDirectory()
        let fm = FileManager.default
        try fm.createDirectory(at: Self.output, withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: Self.output.path) {
            try fm.removeItem(at: Self.output.appendingPathComponent(name))
        }
        func path(_ name: String) -> String { work.child(name) }

        // good.db: several secrets and versions, an empty and a binary value, a deleted secret.
        do {
            let vault = try LocalVault.create(at: path("good.db"), protection: .keyFile(path: path("good.key")), now: time(t0))
            let owner = try MetadataEntry(key: "owner", value: "payments team")
            let url = try MetadataEntry(key: "docs", value: "https://example.com/?a=b")
            try vault.put("API_KEY", Self.apiKeyV1, tags: tags("api", "production"), metadata: [owner, url], at: t0 + 60, actor: "alice")
            try vault.change("API_KEY", to: Self.apiKeyV2, at: t0 + 120, actor: "bob")
            _ = try vault.rollback(environment: env("production"), name: secretName("API_KEY"), to: 1, actor: "alice", now: time(t0 + 180))
            try vault.put("EMPTY", [], at: t0 + 240)
            try vault.put("BINARY", Self.binary, tags: tags("binary"), at: t0 + 300)
            try vault.put("DB_PASSWORD", Self.dbPassword, tags: tags("db"), expiresAt: time(4_070_908_800),
                          description: "primary database", at: t0 + 360)
            try vault.put("API_KEY", Self.devKey, in: "development", tags: tags("api"), at: t0 + 420)
            try vault.put("PEM", Self.pem, in: "staging", at: t0 + 480)
            try vault.put("DELETED", utf8("gone"), at: t0 + 540)
            try vault.delete(environment: env("production"), name: secretName("DELETED"), purge: false, now: time(t0 + 600))
        }
        try compact(path("good.db"))
        try Sodium.randomBytes(32).withRawBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in try PrivateFiles.createFile(path("wrong.key"), contents: raw) }
        try Sodium.randomBytes(31).withRawBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in try PrivateFiles.createFile(path("short.key"), contents: raw) }

        // Tampered copies of good.db.
        try variant(work, "good.db", "flipped.db") { db in
            var box = try sealed(db, "production", "API_KEY", 3)
            box[AEAD.nonceBytes + 2] ^= 0x01
            try setSealed(db, "production", "API_KEY", 3, box)
            var v1 = try sealed(db, "production", "API_KEY", 1)
            v1[0] ^= 0x80
            try setSealed(db, "production", "API_KEY", 1, v1)
            var password = try sealed(db, "production", "DB_PASSWORD", 1)
            password[password.count - 1] ^= 0x01
            try setSealed(db, "production", "DB_PASSWORD", 1, password)
        }
        try variant(work, "good.db", "moved.db") { db in
            let apiV1 = try sealed(db, "production", "API_KEY", 1)
            let password = try sealed(db, "production", "DB_PASSWORD", 1)
            try setSealed(db, "production", "API_KEY", 2, apiV1)
            try setSealed(db, "production", "API_KEY", 3, password)
            try setSealed(db, "development", "API_KEY", 1, apiV1)
        }
        try variant(work, "good.db", "truncated.db") { db in
            let empty = try sealed(db, "production", "EMPTY", 1)
            try setSealed(db, "production", "EMPTY", 1, Array(empty.dropLast()))
            let apiV2 = try sealed(db, "production", "API_KEY", 2)
            try setSealed(db, "production", "API_KEY", 2, Array(apiV2.dropLast()))
            try setSealed(db, "production", "BINARY", 1, [])
        }
        try variant(work, "good.db", "newer-format.db") { db in try db.execute("PRAGMA user_version=3") }
        try variant(work, "good.db", "negative-format.db") { db in try db.execute("PRAGMA user_version=-1") }
        try variant(work, "good.db", "tampered-wrapped-key.db") { db in
            var wrapped = try meta(db, "wrapped_data_key")
            wrapped[AEAD.nonceBytes + 5] ^= 0x01
            try setMeta(db, "wrapped_data_key", wrapped)
        }
        try variant(work, "good.db", "protection-swapped.db") { db in try setMeta(db, "key_protection", utf8("passphrase")) }

        // A plain SQLite database that is not a vault, and a file that is not SQLite at all.
        do {
            let db = try SQLiteDatabase(path: path("plain-sqlite.db"), create: true)
            try db.execute("PRAGMA page_size=1024; CREATE TABLE notes(text TEXT); INSERT INTO notes VALUES ('hello')")
        }
        try Data("this is not a vault\n".utf8).write(to: URL(fileURLWithPath: path("not-a-vault.db")))

        // passphrase.db: Argon2id at INTERACTIVE limits, the parameters stored in the vault.
        do {
            let parameters = PassphraseParameters.interactive(salt: Sodium.randomBytes(PassphraseParameters.saltBytes))
            let vault = try LocalVault.create(at: path("passphrase.db"), protection: .passphrase(passphrase(Self.rightPassphrase), parameters),
                                              now: time(t0))
            try vault.put("API_KEY", Self.passValue, at: t0 + 60)
        }
        try compact(path("passphrase.db"))
        try variant(work, "passphrase.db", "passphrase-opslimit-changed.db") { db in try setMeta(db, "kdf_opslimit", utf8("3")) }
        try variant(work, "passphrase.db", "passphrase-memlimit-huge.db") { db in try setMeta(db, "kdf_memlimit", utf8("1099511627776")) }

        for name in try fm.contentsOfDirectory(atPath: work.path) {
            #expect(!name.hasSuffix("-wal") && !name.hasSuffix("-shm") && !name.hasSuffix("-journal"), "\(name) left behind: checkpoint failed")
            guard name.hasSuffix(".db") || name.hasSuffix(".key") else { continue }
            try fm.copyItem(at: URL(fileURLWithPath: path(name)), to: Self.output.appendingPathComponent(name))
        }
        let file = VectorFile(
            comment: "vsecure vault format test vectors; see docs/vault-format.md. Regenerate with VSECURE_REGENERATE_VECTORS=1.",
            formatVersion: Int(VaultFormat.currentVersion), cases: Self.cases)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try (encoder.encode(file) + Data("\n".utf8)).write(to: Self.output.appendingPathComponent("vectors.json"))
    }

    static func good(_ id: String, _ description: String, _ name: String, in environment: String = "production",
                     version: Int? = nil, vault: String = "good.db", _ expect: VectorExpectation) -> VectorCase {
        VectorCase(id: id, description: description, vault: vault, keyFile: "good.key", environment: environment, name: name,
                   version: version, expect: expect)
    }

    static func authentication(_ version: Int, _ name: String, _ environment: String = "production") -> VectorExpectation {
        .failure(.integrity, "version \(version) of \(name) in \(environment) failed authentication")
    }

    static var cases: [VectorCase] {
        var cases: [VectorCase] = [
            good("good-current-after-rollback", "the current version (3) is a rollback to version 1", "API_KEY", .value(apiKeyV1)),
            good("good-version-1", "an explicit old version", "API_KEY", version: 1, .value(apiKeyV1)),
            good("good-version-2", "an explicit old version", "API_KEY", version: 2, .value(apiKeyV2)),
            good("good-version-3", "the current version asked for by number", "API_KEY", version: 3, .value(apiKeyV1)),
            good("good-empty-value", "an empty value is a box of exactly 40 bytes", "EMPTY", .value([])),
            good("good-binary-value", "NUL, newline, CR, quotes, backslash and invalid UTF-8 round-trip", "BINARY", .value(binary)),
            good("good-with-attributes", "a secret with an expiry and a description", "DB_PASSWORD", .value(dbPassword)),
            good("good-other-environment", "the same name in another environment is another secret", "API_KEY", in: "development", .value(devKey)),
            good("good-multiline", "a PEM value in staging", "PEM", in: "staging", .value(pem)),
            good("good-missing-version", "a version that does not exist", "API_KEY", version: 4,
                 .failure(.notFound, "API_KEY in production has no version 4 (current: 3)")),
            good("good-missing-secret", "a name that does not exist", "NOPE", .failure(.notFound, "no secret NOPE in production")),
            good("good-deleted-secret", "a deleted secret is not served", "DELETED", .failure(.notFound, "no secret DELETED in production")),
            good("good-unknown-environment", "an environment the vault does not configure", "API_KEY", in: "qa",
                 .failure(.usage, "unknown environment 'qa'")),

            VectorCase(id: "wrong-key-file", description: "a valid key file of another vault", vault: "good.db", keyFile: "wrong.key",
                       environment: "production", name: "API_KEY", expect: .failure(.key, "does not unlock the vault")),
            VectorCase(id: "key-file-wrong-length", description: "a 31-byte key file is refused before use", vault: "good.db",
                       keyFile: "short.key", environment: "production", name: "API_KEY",
                       expect: .failure(.key, "has 31 bytes; a vsecure key file has exactly 32")),
            VectorCase(id: "key-file-readable-by-others", description: "the right key with mode 0644 is refused", vault: "good.db",
                       keyFile: "good.key", keyFileMode: "0644", environment: "production", name: "API_KEY",
                       expect: .failure(.key, "is accessible by group or others (mode 0644)")),
            VectorCase(id: "key-file-missing", description: "no key file at all", vault: "good.db", environment: "production",
                       name: "API_KEY", expect: .failure(.key, "does not exist")),

            good("flipped-ciphertext-byte", "one ciphertext byte of version 3 flipped", "API_KEY", vault: "flipped.db", authentication(3, "API_KEY")),
            good("flipped-nonce-byte", "one nonce byte of version 1 flipped", "API_KEY", version: 1, vault: "flipped.db", authentication(1, "API_KEY")),
            good("flipped-tag-byte", "the last tag byte flipped", "DB_PASSWORD", vault: "flipped.db", authentication(1, "DB_PASSWORD")),
            good("flipped-neighbour-intact", "versions that were not touched still open", "API_KEY", version: 2, vault: "flipped.db", .value(apiKeyV2)),

            good("moved-from-other-version", "version 1's box copied into version 2 of the same secret", "API_KEY", version: 2,
                 vault: "moved.db", authentication(2, "API_KEY")),
            good("moved-from-other-secret", "DB_PASSWORD's box copied into API_KEY version 3", "API_KEY", vault: "moved.db",
                 authentication(3, "API_KEY")),
            good("moved-from-other-environment", "production API_KEY's box copied into development API_KEY", "API_KEY", in: "development",
                 vault: "moved.db", authentication(1, "API_KEY", "development")),
            good("moved-source-intact", "the row a box was copied from still opens", "API_KEY", version: 1, vault: "moved.db", .value(apiKeyV1)),

            good("truncated-below-overhead", "a 39-byte box: shorter than nonce and tag", "EMPTY", vault: "truncated.db", authentication(1, "EMPTY")),
            good("truncated-by-one-byte", "a box shortened by its last byte", "API_KEY", version: 2, vault: "truncated.db", authentication(2, "API_KEY")),
            good("truncated-to-nothing", "a zero-length box", "BINARY", vault: "truncated.db", authentication(1, "BINARY")),

            good("newer-format-version", "PRAGMA user_version = 3", "API_KEY", vault: "newer-format.db",
                 .failure(.integrity, "has format version 3, newer than this vsecure reads (2)")),
            good("negative-format-version", "PRAGMA user_version = -1", "API_KEY", vault: "negative-format.db",
                 .failure(.integrity, "is not a vsecure vault")),
            good("plain-sqlite-file", "an SQLite database that is not a vault (user_version 0)", "API_KEY", vault: "plain-sqlite.db",
                 .failure(.integrity, "is not a vsecure vault")),
            good("not-sqlite", "a text file", "API_KEY", vault: "not-a-vault.db",
                 .failure(.integrity, "is not a vsecure vault or is damaged")),
            good("tampered-wrapped-data-key", "one byte of the wrapped data key flipped", "API_KEY", vault: "tampered-wrapped-key.db",
                 .failure(.key, "does not unlock the vault")),
            good("protection-swapped", "key_protection rewritten to passphrase without KDF parameters", "API_KEY",
                 vault: "protection-swapped.db", .failure(.integrity, "its passphrase parameters are missing")),
        ]
        func pass(_ id: String, _ description: String, vault: String = "passphrase.db", _ passphrase: String?, _ expect: VectorExpectation) -> VectorCase {
            VectorCase(id: id, description: description, vault: vault, passphrase: passphrase, environment: "production", name: "API_KEY",
                       expect: expect)
        }
        cases += [
            pass("passphrase-right", "Argon2id13 at INTERACTIVE limits", rightPassphrase, .value(passValue)),
            pass("passphrase-wrong", "one character more", wrongPassphrase, .failure(.key, "wrong passphrase for the vault")),
            pass("passphrase-opslimit-changed", "kdf_opslimit rewritten from 2 to 3: another key-encryption key", vault: "passphrase-opslimit-changed.db",
                 rightPassphrase, .failure(.key, "wrong passphrase for the vault")),
            pass("passphrase-memlimit-out-of-range", "kdf_memlimit rewritten to 1 TiB is refused before Argon2id runs",
                 vault: "passphrase-memlimit-huge.db", rightPassphrase, .failure(.integrity, "passphrase parameters are out of range")),
        ]
        return cases
    }

    // MARK: - Raw SQL on copies

    /// VACUUM into 1024-byte pages to keep the checked-in files small, then back to WAL; the last
    /// close checkpoints, so the vault is one file.
    func compact(_ path: String) throws {
        let db = try SQLiteDatabase(path: path, create: false)
        try db.execute("PRAGMA journal_mode=DELETE; PRAGMA page_size=1024; VACUUM; PRAGMA journal_mode=WAL")
    }

    /// Copies `source` to `name` in the work directory and edits the copy with SQL.
    func variant(_ work: ScratchDirectory, _ source: String, _ name: String, _ edit: (SQLiteDatabase) throws -> Void) throws {
        try FileManager.default.copyItem(atPath: work.child(source), toPath: work.child(name))
        let db = try SQLiteDatabase(path: work.child(name), create: false)
        try edit(db)
    }
}

/// The box of one version, found by environment, name and version.
func sealed(_ db: SQLiteDatabase, _ environment: String, _ name: String, _ version: Int) throws -> [UInt8] {
    let statement = try db.prepare("""
        SELECT v.sealed FROM versions v JOIN secrets s ON s.id = v.secret_id
        WHERE s.environment = ?1 AND s.name = ?2 AND v.version = ?3
        """)
    statement.bind(1, environment).bind(2, name).bind(3, version)
    guard try statement.step() else { throw VSecureError(.notFound, "no row \(environment)/\(name) v\(version)") }
    return statement.blob(0)
}

func setSealed(_ db: SQLiteDatabase, _ environment: String, _ name: String, _ version: Int, _ box: [UInt8]) throws {
    let statement = try db.prepare("""
        UPDATE versions SET sealed = ?4
        WHERE secret_id = (SELECT id FROM secrets WHERE environment = ?1 AND name = ?2) AND version = ?3
        """)
    try statement.bind(1, environment).bind(2, name).bind(3, version).bind(4, blob: box).run()
    #expect(try db.scalarInt("SELECT changes()") == 1)
}

func meta(_ db: SQLiteDatabase, _ key: String) throws -> [UInt8] {
    let statement = try db.prepare("SELECT value FROM vault_meta WHERE key = ?1")
    statement.bind(1, key)
    guard try statement.step() else { throw VSecureError(.notFound, "no vault_meta \(key)") }
    return statement.blob(0)
}

func setMeta(_ db: SQLiteDatabase, _ key: String, _ value: [UInt8]) throws {
    let statement = try db.prepare("UPDATE vault_meta SET value = ?2 WHERE key = ?1")
    try statement.bind(1, key).bind(2, blob: value).run()
    #expect(try db.scalarInt("SELECT changes()") == 1)
}
