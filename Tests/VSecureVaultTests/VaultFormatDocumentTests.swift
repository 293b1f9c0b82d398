import Foundation
import Testing
import VSecureCore
import VSecureCrypto
@testable import VSecureVault

/// Reads the checked-in vectors the way docs/vault-format.md describes, with SQL and libsodium
/// primitives only, and without LocalVault: a second reader written from the document. When the
/// code and the document disagree, this fails.
@Suite("docs/vault-format.md, checked against the vectors")
struct VaultFormatDocumentTests {
    /// "vsecure/value/v1" 0x00 vault_id(16) u16be(len) environment u16be(len) name u64be(version)
    static func valueAD(vaultID: [UInt8], environment: String, name: String, version: UInt64) -> [UInt8] {
        var ad = utf8("vsecure/value/v1") + [0] + vaultID
        ad += [UInt8(environment.utf8.count >> 8), UInt8(environment.utf8.count & 0xFF)] + utf8(environment)
        ad += [UInt8(name.utf8.count >> 8), UInt8(name.utf8.count & 0xFF)] + utf8(name)
        ad += (0..<8).map { UInt8(truncatingIfNeeded: version >> (56 - 8 * UInt64($0))) }
        return ad
    }

    /// "vsecure/data-key/v1" 0x00 vault_id(16) u16be(len) protection
    static func dataKeyAD(vaultID: [UInt8], protection: String) -> [UInt8] {
        utf8("vsecure/data-key/v1") + [0] + vaultID + [0, UInt8(protection.utf8.count)] + utf8(protection)
    }

    @Test("the worked associated-data examples in the document are what the code builds")
    func associatedDataExamples() {
        let vaultID: [UInt8] = Array(0..<16)
        let dataKeyExample = "767365637572652f646174612d6b65792f763100000102030405060708090a0b0c0d0e0f00076b657966696c65"
        let valueExample = "767365637572652f76616c75652f763100000102030405060708090a0b0c0d0e0f"
            + "000a70726f64756374696f6e00074150495f4b45590000000000000003"
        #expect(hexString(VaultFormat.dataKeyAssociatedData(vaultID: vaultID, protection: .keyFile)) == dataKeyExample)
        #expect(hexString(Self.dataKeyAD(vaultID: vaultID, protection: "keyfile")) == dataKeyExample)
        #expect(hexString(VaultFormat.valueAssociatedData(vaultID: vaultID, environment: "production", name: "API_KEY", version: 3)) == valueExample)
        #expect(hexString(Self.valueAD(vaultID: vaultID, environment: "production", name: "API_KEY", version: 3)) == valueExample)
        #expect(VaultFormat.dataKeyAssociatedData(vaultID: vaultID, protection: .passphrase) == Self.dataKeyAD(vaultID: vaultID, protection: "passphrase"))
        let long = String(repeating: "N", count: 128)
        #expect(VaultFormat.valueAssociatedData(vaultID: vaultID, environment: "e", name: long, version: 1 << 40)
                == Self.valueAD(vaultID: vaultID, environment: "e", name: long, version: 1 << 40))
    }

    @Test("every vector case is listed in the document's table, and the examples are in the text")
    func documentListsVectors() throws {
        let document = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../docs/vault-format.md").standardizedFileURL
        let text = try String(contentsOf: document, encoding: .utf8)
        for vector in try Vectors.load().cases {
            #expect(text.contains("| `\(vector.id)` | `\(vector.vault)` |"), "docs/vault-format.md lacks a row for \(vector.id)")
        }
        #expect(text.contains("767365637572652f646174612d6b65792f7631 00 000102030405060708090a0b0c0d0e0f 0007 6b657966696c65"))
        #expect(text.contains("000a 70726f64756374696f6e 0007 4150495f4b4559 0000000000000003"))
        #expect(text.contains(VaultFormat.schemaV1.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    /// A copy of a vector file, opened with plain SQLite.
    static func rawCopy(_ file: String, in scratch: ScratchDirectory) throws -> SQLiteDatabase {
        let source = try #require(Vectors.directory).appendingPathComponent(file)
        try FileManager.default.copyItem(at: source, to: URL(fileURLWithPath: scratch.child(file)))
        return try SQLiteDatabase(path: scratch.child(file), create: false)
    }

    static func rows(_ db: SQLiteDatabase, _ sql: String, columns: Int32) throws -> [[String]] {
        let statement = try db.prepare(sql)
        var rows: [[String]] = []
        while try statement.step() { rows.append((0..<columns).map { statement.text($0) }) }
        return rows
    }

    static func metaTable(_ db: SQLiteDatabase) throws -> [String: [UInt8]] {
        let statement = try db.prepare("SELECT key, value FROM vault_meta")
        var meta: [String: [UInt8]] = [:]
        while try statement.step() { meta[statement.text(0)] = statement.blob(1) }
        return meta
    }

    static func keyFile(_ name: String) throws -> SecureBytes {
        let data = try Data(contentsOf: try #require(Vectors.directory).appendingPathComponent(name))
        return Array(data).withUnsafeBytes { SecureBytes(copying: $0) }
    }

    @Test("SQLite settings, format version and schema are as documented")
    func schema() throws {
        let scratch = try ScratchDirectory()
        let db = try Self.rawCopy("good.db", in: scratch)
        #expect(try db.scalarInt("PRAGMA user_version") == 1)
        #expect(try Self.rows(db, "PRAGMA journal_mode", columns: 1) == [["wal"]])
        let documented: [String: [String]] = [
            "vault_meta": ["key", "value"],
            "secrets": ["id", "environment", "name", "current_version", "tags", "metadata", "expires_at", "description",
                        "created_at", "updated_at", "deleted_at"],
            "secret_tags": ["tag", "secret_id"],
            "versions": ["secret_id", "version", "sealed", "value_length", "fingerprint", "action", "actor", "source_version",
                         "created_at", "tags", "metadata", "expires_at", "description"],
        ]
        let tables = try Self.rows(db, "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name", columns: 1).map { $0[0] }
        #expect(tables == documented.keys.sorted())
        for (table, columns) in documented {
            #expect(try Self.rows(db, "PRAGMA table_info(\(table))", columns: 2).map { $0[1] } == columns, "\(table)")
        }
        #expect(try Self.rows(db, "SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL", columns: 1) == [["secret_tags_by_secret"]])
    }

    @Test("a key-file vault: unwrap the data key, open every version, recompute every fingerprint")
    func keyFileVault() throws {
        let scratch = try ScratchDirectory()
        let db = try Self.rawCopy("good.db", in: scratch)
        let meta = try Self.metaTable(db)
        #expect(Set(meta.keys) == ["vault_id", "created_at", "key_protection", "wrapped_data_key", "environments", "default_environment"])
        let vaultID = try #require(meta["vault_id"])
        #expect(vaultID.count == 16)
        #expect(meta["key_protection"] == utf8("keyfile"))
        #expect(meta["environments"] == utf8("development,staging,production"))
        #expect(meta["default_environment"] == utf8("development"))
        #expect(meta["created_at"] == utf8(String(t0)))
        let wrapped = try #require(meta["wrapped_data_key"])
        #expect(wrapped.count == 24 + 32 + 16)

        let dataKey = try AEAD.open(wrapped, associatedData: Self.dataKeyAD(vaultID: vaultID, protection: "keyfile"), key: try Self.keyFile("good.key"))
        #expect(dataKey.count == 32)
        try checkVersions(db, vaultID: vaultID, dataKey: dataKey)

        let expected: [(String, String, Int, [UInt8])] = [
            ("production", "API_KEY", 1, VaultVectorGenerator.apiKeyV1), ("production", "API_KEY", 2, VaultVectorGenerator.apiKeyV2),
            ("production", "API_KEY", 3, VaultVectorGenerator.apiKeyV1), ("production", "EMPTY", 1, []),
            ("production", "BINARY", 1, VaultVectorGenerator.binary), ("production", "DB_PASSWORD", 1, VaultVectorGenerator.dbPassword),
            ("development", "API_KEY", 1, VaultVectorGenerator.devKey), ("staging", "PEM", 1, VaultVectorGenerator.pem),
            ("production", "DELETED", 1, utf8("gone")),
        ]
        for (environment, name, version, value) in expected {
            let box = try sealed(db, environment, name, version)
            let ad = Self.valueAD(vaultID: vaultID, environment: environment, name: name, version: UInt64(version))
            #expect(plain(try AEAD.open(box, associatedData: ad, key: dataKey)) == value, "\(environment)/\(name) v\(version)")
        }

        // Public attributes are plain text.
        let apiKey = try Self.rows(db, "SELECT tags, metadata, current_version, expires_at, description FROM secrets WHERE environment = 'production' AND name = 'API_KEY'", columns: 5)
        #expect(apiKey == [["api,production", "docs=https://example.com/?a=b\nowner=payments team", "3", "", ""]])
        #expect(try Self.rows(db, "SELECT expires_at, description FROM secrets WHERE name = 'DB_PASSWORD'", columns: 2) == [["4070908800", "primary database"]])
        #expect(try Self.rows(db, "SELECT deleted_at FROM secrets WHERE name = 'DELETED'", columns: 1) == [[String(t0 + 600)]])
        #expect(try Self.rows(db, """
            SELECT t.tag FROM secret_tags t JOIN secrets s ON s.id = t.secret_id
            WHERE s.environment = 'production' AND s.name = 'API_KEY' ORDER BY t.tag
            """, columns: 1) == [["api"], ["production"]])
        #expect(try Self.rows(db, """
            SELECT v.version, v.action, v.actor, ifnull(v.source_version, '-'), v.created_at FROM versions v JOIN secrets s ON s.id = v.secret_id
            WHERE s.environment = 'production' AND s.name = 'API_KEY' ORDER BY v.version
            """, columns: 5) == [["1", "create", "alice", "-", String(t0 + 60)], ["2", "update", "bob", "-", String(t0 + 120)],
                                 ["3", "rollback", "alice", "1", String(t0 + 180)]])
        // Secret ids are "sec_" and 24 hex digits.
        for row in try Self.rows(db, "SELECT id FROM secrets", columns: 1) {
            #expect(row[0].hasPrefix("sec_") && row[0].count == 28 && bytesFromHex(String(row[0].dropFirst(4))) != nil)
        }
    }

    @Test("a passphrase vault: Argon2id13 with the stored salt and limits gives the key-encryption key")
    func passphraseVault() throws {
        let scratch = try ScratchDirectory()
        let db = try Self.rawCopy("passphrase.db", in: scratch)
        let meta = try Self.metaTable(db)
        #expect(Set(meta.keys) == ["vault_id", "created_at", "key_protection", "wrapped_data_key", "environments", "default_environment",
                                   "kdf_salt", "kdf_opslimit", "kdf_memlimit"])
        #expect(meta["key_protection"] == utf8("passphrase"))
        #expect(meta["kdf_opslimit"] == utf8("2"))
        #expect(meta["kdf_memlimit"] == utf8("67108864"))
        let salt = try #require(meta["kdf_salt"])
        #expect(salt.count == 16)
        let kek = try KeyDerivation.argon2id(passphrase: passphrase(VaultVectorGenerator.rightPassphrase),
                                             parameters: PassphraseParameters(opsLimit: 2, memLimit: 67_108_864, salt: salt))
        let vaultID = try #require(meta["vault_id"])
        let dataKey = try AEAD.open(try #require(meta["wrapped_data_key"]), associatedData: Self.dataKeyAD(vaultID: vaultID, protection: "passphrase"), key: kek)
        try checkVersions(db, vaultID: vaultID, dataKey: dataKey)
        // The protection is bound into the wrapped key's associated data.
        #expect(throws: AEAD.Failure.self) {
            try AEAD.open(try #require(meta["wrapped_data_key"]), associatedData: Self.dataKeyAD(vaultID: vaultID, protection: "keyfile"), key: kek)
        }
    }

    /// Every version row opens under its own place; its length and keyed fingerprint match.
    func checkVersions(_ db: SQLiteDatabase, vaultID: [UInt8], dataKey: SecureBytes) throws {
        let fingerprintKey = KeyDerivation.subkey(of: dataKey, id: 1, context: "vsfprint")
        let statement = try db.prepare("""
            SELECT s.environment, s.name, v.version, v.sealed, v.value_length, v.fingerprint
            FROM versions v JOIN secrets s ON s.id = v.secret_id
            """)
        var count = 0
        while try statement.step() {
            let ad = Self.valueAD(vaultID: vaultID, environment: statement.text(0), name: statement.text(1), version: UInt64(statement.int64(2)))
            let box = statement.blob(3)
            let value = try AEAD.open(box, associatedData: ad, key: dataKey)
            #expect(box.count == value.count + 40)
            #expect(statement.int(4) == value.count)
            let fingerprint = value.withUnsafeBytes { hexString(KeyDerivation.keyedHash($0, key: fingerprintKey, length: 8)) }
            #expect(statement.text(5) == fingerprint)
            count += 1
        }
        #expect(count > 0)
    }
}
