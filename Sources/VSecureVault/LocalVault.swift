import VSecureCore
import VSecureCrypto

/// Where the key-encryption key comes from when a vault is opened.
public struct KeySource {
    public var keyFilePath: String
    /// Asked only when the vault is protected by a passphrase.
    public var passphrase: () throws(VSecureError) -> SecureBytes

    public init(keyFilePath: String, passphrase: @escaping () throws(VSecureError) -> SecureBytes) {
        self.keyFilePath = keyFilePath
        self.passphrase = passphrase
    }
}

/// How a new (or re-keyed) vault protects its data key.
public enum NewKeyProtection {
    /// A key file: used as-is when it exists (validated), created with 32 random bytes otherwise.
    case keyFile(path: String)
    case passphrase(SecureBytes, PassphraseParameters)
}

/// The embedded encrypted vault: one SQLite file (WAL, synchronous=FULL) whose values are
/// sealed with XChaCha20-Poly1305 under a random data key. See docs/vault-format.md.
public final class LocalVault {
    public let path: String
    public let vaultID: [UInt8]
    /// Changes when `rekey` commits.
    public private(set) var protection: KeyProtection
    public let environments: [EnvironmentName]
    public let defaultEnvironment: EnvironmentName
    public let createdAt: Timestamp
    /// `VaultFormat.currentVersion`, except for a format-1 vault that a read-only opener could
    /// not migrate (a read-only file system): the launcher then reads it as format 1.
    let formatVersion: Int64
    let db: SQLiteDatabase
    let dataKey: SecureBytes
    /// Derived on first use: the launcher never needs it.
    lazy var fingerprintKey: SecureBytes = KeyDerivation.subkey(of: dataKey, id: 1, context: "vsfprint")

    private init(path: String, db: SQLiteDatabase, vaultID: [UInt8], protection: KeyProtection, dataKey: SecureBytes,
                 environments: [EnvironmentName], defaultEnvironment: EnvironmentName, createdAt: Timestamp,
                 formatVersion: Int64 = VaultFormat.currentVersion) {
        self.formatVersion = formatVersion
        self.path = path
        self.db = db
        self.vaultID = vaultID
        self.protection = protection
        self.dataKey = dataKey
        self.environments = environments
        self.defaultEnvironment = defaultEnvironment
        self.createdAt = createdAt
    }

    // MARK: - Creating

    /// Creates a new vault. Refuses an existing file or symlink at `path`; on any failure the
    /// files it created are removed again.
    public static func create(at path: String, protection newProtection: NewKeyProtection,
                              environments: [EnvironmentName] = EnvironmentName.defaults,
                              defaultEnvironment: EnvironmentName? = nil, now: Timestamp) throws(VSecureError) -> LocalVault {
        switch PrivateFiles.kind(of: path) {
        case .missing: break
        case .directory: throw VSecureError(.conflict, "\(Quoted(path)) is a directory; a vault is a file", hint: "choose a file path with --vault")
        case .symlink: throw VSecureError(.io, "\(Quoted(path)) is a symlink; refusing to create a vault through it")
        case .regular, .other:
            throw VSecureError(.conflict, "a vault already exists at \(Quoted(path)); refusing to overwrite it",
                               hint: "use `vsecure vault:status` to inspect it, or choose another path with --vault")
        }
        guard !environments.isEmpty else { throw .usage("a vault needs at least one environment") }
        let defaultEnvironment = defaultEnvironment ?? (environments.contains(EnvironmentName.defaults[0]) ? EnvironmentName.defaults[0] : environments[0])
        guard environments.contains(defaultEnvironment) else { throw unknownEnvironment(defaultEnvironment, configured: environments) }
        Sodium.initialize()
        let parent = PrivateFiles.parentDirectory(of: path)
        try PrivateFiles.ensureDirectory(parent, tighten: false)

        var createdKeyFile: String?
        var createdVault = false
        do {
            let dataKey = SecureBytes.random(count: AEAD.keyBytes)
            let vaultID = Sodium.randomBytes(VaultFormat.vaultIDBytes)
            let wrap = try keyEncryptionKey(for: newProtection, createdKeyFile: &createdKeyFile)
            let protection = wrap.protection
            let wrapped = dataKey.withUnsafeBytes {
                AEAD.seal($0, associatedData: VaultFormat.dataKeyAssociatedData(vaultID: vaultID, protection: protection), key: wrap.key)
            }
            try PrivateFiles.createEmptyFile(path)
            createdVault = true
            let db = try SQLiteDatabase(path: path, create: false)
            try db.execute("PRAGMA journal_mode=WAL")
            try configure(db)
            try db.transaction(immediate: true) { () throws(VSecureError) in
                try db.execute(VaultFormat.schema)
                let insert = try db.prepare("INSERT INTO vault_meta(key, value) VALUES (?1, ?2)")
                func put(_ key: String, _ value: [UInt8]) throws(VSecureError) {
                    insert.reset()
                    try insert.bind(1, key).bind(2, blob: value).run()
                }
                try put(VaultFormat.MetaKey.vaultID, vaultID)
                try put(VaultFormat.MetaKey.createdAt, Array(String(now.secondsSinceEpoch).utf8))
                try put(VaultFormat.MetaKey.environments, Array(environments.map(\.rawValue).joined(separator: ",").utf8))
                try put(VaultFormat.MetaKey.defaultEnvironment, Array(defaultEnvironment.rawValue.utf8))
                try writeProtection(db, protection: protection, wrapped: wrapped, parameters: wrap.parameters)
                try db.execute("PRAGMA user_version=\(VaultFormat.currentVersion)")
            }
            return LocalVault(path: path, db: db, vaultID: vaultID, protection: protection, dataKey: dataKey,
                              environments: environments, defaultEnvironment: defaultEnvironment, createdAt: now)
        } catch {
            if createdVault { removeVaultFiles(path) }
            if let createdKeyFile { removeFile(createdKeyFile) }
            throw error
        }
    }

    struct KeyWrap {
        var key: SecureBytes
        var protection: KeyProtection
        var parameters: PassphraseParameters?
    }

    private static func keyEncryptionKey(for protection: NewKeyProtection, createdKeyFile: inout String?) throws(VSecureError) -> KeyWrap {
        switch protection {
        case .keyFile(let keyPath):
            switch PrivateFiles.kind(of: keyPath) {
            case .missing:
                try PrivateFiles.ensureDirectory(PrivateFiles.parentDirectory(of: keyPath), tighten: false)
                let key = SecureBytes.random(count: PrivateFiles.keyFileBytes)
                try key.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in try PrivateFiles.createFile(keyPath, contents: raw) }
                createdKeyFile = keyPath
                return KeyWrap(key: key, protection: .keyFile, parameters: nil)
            default:
                return KeyWrap(key: try PrivateFiles.readKeyFile(keyPath), protection: .keyFile, parameters: nil)
            }
        case .passphrase(let passphrase, let parameters):
            guard passphrase.count > 0 else { throw .usage("the passphrase is empty") }
            do {
                return KeyWrap(key: try KeyDerivation.argon2id(passphrase: passphrase, parameters: parameters),
                               protection: .passphrase, parameters: parameters)
            } catch {
                throw VSecureError(.internalError, "Argon2id ran out of memory")
            }
        }
    }

    private static func writeProtection(_ db: SQLiteDatabase, protection: KeyProtection, wrapped: [UInt8],
                                        parameters: PassphraseParameters?) throws(VSecureError) {
        let upsert = try db.prepare("INSERT OR REPLACE INTO vault_meta(key, value) VALUES (?1, ?2)")
        func put(_ key: String, _ value: [UInt8]) throws(VSecureError) {
            upsert.reset()
            try upsert.bind(1, key).bind(2, blob: value).run()
        }
        try put(VaultFormat.MetaKey.keyProtection, Array(protection.rawValue.utf8))
        try put(VaultFormat.MetaKey.wrappedDataKey, wrapped)
        if let parameters {
            try put(VaultFormat.MetaKey.kdfSalt, parameters.salt)
            try put(VaultFormat.MetaKey.kdfOpsLimit, Array(String(parameters.opsLimit).utf8))
            try put(VaultFormat.MetaKey.kdfMemLimit, Array(String(parameters.memLimit).utf8))
        } else {
            try db.execute("DELETE FROM vault_meta WHERE key IN ('kdf_salt', 'kdf_opslimit', 'kdf_memlimit')")
        }
    }

    private static func configure(_ db: SQLiteDatabase) throws(VSecureError) {
        // FULL: an acknowledged write survives power loss, not only a crash of this process.
        try db.execute("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON")
    }

    static func removeVaultFiles(_ path: String) {
        for suffix in ["", "-wal", "-shm", "-journal"] { removeFile(path + suffix) }
    }

    /// True after a purge whose checkpoint could not finish (another connection still used the
    /// WAL past the busy timeout): the purged versions are gone from the vault's tables, but old
    /// copies of their pages (ciphertext) may remain in `vault.db-wal` or in `vault.db` until a
    /// later checkpoint copies the WAL back. The last read-write connection to close the vault
    /// does that. False again once a checkpoint finishes. For a purge inside `atomically`, it
    /// tells once the batch has committed.
    public var purgedPagesMayRemain: Bool { !db.lastCheckpointComplete }

    /// For tests that play a reader holding the vault past the writer's patience.
    func setBusyTimeout(milliseconds: Int32) { db.setBusyTimeout(milliseconds: milliseconds) }

    // MARK: - Opening

    /// `readOnly` is for readers that start often and write nothing (the launcher): the
    /// connection skips the writer's pragmas and leaves the WAL files in place when it closes.
    /// A vault whose format needs migrating is opened read-write once, to migrate it.
    ///
    /// `singleRead` (with `readOnly`) is for a process that reads the vault once and exits
    /// (the launcher): the connection opens SQLite's shared WAL index read-only (see
    /// `SQLiteDatabase.init`), and everything read until the vault is released, the header
    /// included, comes from one read transaction: one snapshot even if another process commits
    /// meanwhile, and one round of SQLite's locks instead of one per statement. A vault under a
    /// passphrase lets go of that snapshot while Argon2id runs, so that no checkpoint waits on
    /// it, and reads its values from a second one.
    public static func open(at path: String, readOnly: Bool = false, singleRead: Bool = false, keys: KeySource) throws(VSecureError) -> LocalVault {
        switch PrivateFiles.kind(of: path) {
        case .missing:
            throw VSecureError(.vaultMissing, "no vault at \(Quoted(path))",
                               hint: "create one with `vsecure vault:init`, or point --vault or VSECURE_VAULT at an existing vault")
        case .directory:
            throw VSecureError(.vaultMissing, "\(Quoted(path)) is a directory, not a vault file", hint: "point --vault at the vault file, e.g. \(path)/vault.db")
        case .symlink:
            throw VSecureError(.io, "vault path \(Quoted(path)) is a symlink; refusing to follow it", hint: "point --vault at the file itself")
        case .other:
            throw VSecureError(.vaultMissing, "\(Quoted(path)) is not a regular file")
        case .regular:
            break
        }
        Sodium.initialize()
        var db: SQLiteDatabase! = try SQLiteDatabase(path: path, create: false, readOnly: readOnly, readIndexOnly: singleRead)
        if !readOnly { try configure(db) }
        let holdsSnapshot = readOnly && singleRead
        if holdsSnapshot { try db.holdReadTransaction() }
        let format = try db.scalarInt("PRAGMA user_version")
        if format > VaultFormat.currentVersion {
            throw VSecureError(.integrity, "vault \(Quoted(path)) has format version \(format), newer than this vsecure reads (\(VaultFormat.currentVersion))",
                               hint: "upgrade vsecure to open it")
        }
        // 0 is a fresh SQLite file; a negative version would index the migrations out of range.
        if format <= 0 { throw VSecureError(.integrity, "\(Quoted(path)) is not a vsecure vault") }
        var openedFormat = VaultFormat.currentVersion
        if format < VaultFormat.currentVersion {
            if readOnly {
                // A vault on a read-only file system cannot be migrated; a read-only reader
                // (the launcher) still reads it in its old format.
                // Only a refusal to write falls back; a busy, damaged or failing vault is an error.
                // SQLite shares one WAL index per file within a process: opened read-only by a
                // single-read connection, it would be read-only for the writer too. That reader
                // steps aside until the migration is over.
                if singleRead { db = nil }
                var writer: SQLiteDatabase?
                do {
                    let opened = try SQLiteDatabase(path: path, create: false)
                    writer = opened
                    try configure(opened)
                    try migrate(opened, from: format)
                } catch {
                    guard writer?.refusedAsReadOnly == true else { throw error }
                    openedFormat = format
                }
                writer = nil
                if singleRead {
                    db = try SQLiteDatabase(path: path, create: false, readOnly: true, readIndexOnly: true)
                    try db.holdReadTransaction()
                }
            } else {
                try migrate(db, from: format)
            }
        }

        let meta = try readMeta(db, path: path)
        func required(_ key: String) throws(VSecureError) -> [UInt8] {
            guard let value = meta[key] else { throw VSecureError(.integrity, "vault \(Quoted(path)) is damaged: its header lacks \(key)") }
            return value
        }
        let vaultID = try required(VaultFormat.MetaKey.vaultID)
        let wrapped = try required(VaultFormat.MetaKey.wrappedDataKey)
        guard vaultID.count == VaultFormat.vaultIDBytes,
              let protection = KeyProtection(rawValue: String(decoding: try required(VaultFormat.MetaKey.keyProtection), as: UTF8.self)),
              let createdAt = Int64(String(decoding: try required(VaultFormat.MetaKey.createdAt), as: UTF8.self))
        else { throw VSecureError(.integrity, "vault \(Quoted(path)) is damaged: its header is malformed") }
        var environments: [EnvironmentName] = []
        for item in String(decoding: try required(VaultFormat.MetaKey.environments), as: UTF8.self).split(separator: ",") {
            guard let env = try? EnvironmentName(String(item)) else { throw VSecureError(.integrity, "vault \(Quoted(path)) is damaged: bad environment list") }
            environments.append(env)
        }
        guard let defaultEnvironment = try? EnvironmentName(String(decoding: try required(VaultFormat.MetaKey.defaultEnvironment), as: UTF8.self)),
              environments.contains(defaultEnvironment)
        else { throw VSecureError(.integrity, "vault \(Quoted(path)) is damaged: bad environment list") }

        let kek: SecureBytes
        switch protection {
        case .keyFile:
            kek = try PrivateFiles.readKeyFile(keys.keyFilePath)
        case .passphrase:
            guard let salt = meta[VaultFormat.MetaKey.kdfSalt],
                  let ops = meta[VaultFormat.MetaKey.kdfOpsLimit].flatMap({ UInt64(String(decoding: $0, as: UTF8.self)) }),
                  let mem = meta[VaultFormat.MetaKey.kdfMemLimit].flatMap({ UInt64(String(decoding: $0, as: UTF8.self)) })
            else { throw VSecureError(.integrity, "vault \(Quoted(path)) is damaged: its passphrase parameters are missing") }
            let parameters = PassphraseParameters(opsLimit: ops, memLimit: mem, salt: salt)
            guard parameters.isWithinSaneBounds else {
                throw VSecureError(.integrity, "vault \(Quoted(path)) is damaged: its passphrase parameters are out of range")
            }
            // Asking for the passphrase and Argon2id take a while: no snapshot may hold off
            // checkpoints meanwhile. The values come from a new one, begun below; a rekey in
            // between changes only how the data key is wrapped, not the key.
            if holdsSnapshot { try db.releaseReadTransaction() }
            let passphrase = try keys.passphrase()
            do { kek = try KeyDerivation.argon2id(passphrase: passphrase, parameters: parameters) } catch {
                throw VSecureError(.internalError, "Argon2id ran out of memory")
            }
        }
        let dataKey: SecureBytes
        do {
            dataKey = try AEAD.open(wrapped, associatedData: VaultFormat.dataKeyAssociatedData(vaultID: vaultID, protection: protection),
                                    key: kek, isKey: true)
        } catch {
            switch protection {
            case .keyFile:
                var error = VSecureError(.key, "the key file \(Quoted(keys.keyFilePath)) does not unlock the vault \(Quoted(path))",
                                         hint: "pass this vault's key with --key-file or VSECURE_KEY_FILE")
                if PrivateFiles.kind(of: keys.keyFilePath + ".new") == .regular {
                    error.hints.append("\(keys.keyFilePath).new exists: a `vault:rekey` was interrupted; that file holds the new key")
                }
                throw error
            case .passphrase:
                throw VSecureError(.key, "wrong passphrase for the vault \(Quoted(path))")
            }
        }
        guard dataKey.count == AEAD.keyBytes else { throw VSecureError(.integrity, "vault \(Quoted(path)) is damaged: bad data key") }
        // Held until the vault is released (closing the connection ends it).
        if holdsSnapshot && protection == .passphrase { try db.holdReadTransaction() }
        return LocalVault(path: path, db: db, vaultID: vaultID, protection: protection, dataKey: dataKey,
                          environments: environments, defaultEnvironment: defaultEnvironment,
                          createdAt: Timestamp(secondsSinceEpoch: createdAt), formatVersion: openedFormat)
    }

    /// The header's rows, looked up by key (a handful: a list, not a Dictionary, which would cost
    /// every launch its generic metadata; see `StringIndex`).
    private struct Meta {
        var keys: [String] = []
        var values: [[UInt8]] = []
        subscript(key: String) -> [UInt8]? { keys.lastIndex(of: key).map { values[$0] } }
    }

    private static func readMeta(_ db: SQLiteDatabase, path: String) throws(VSecureError) -> Meta {
        let statement: SQLiteStatement
        do { statement = try db.prepare("SELECT key, value FROM vault_meta") } catch {
            if error.status == .internalError { throw VSecureError(.integrity, "\(Quoted(path)) is not a vsecure vault") }
            throw error
        }
        var meta = Meta()
        while try statement.step() {
            meta.keys.append(statement.text(0))
            meta.values.append(statement.blob(1))
        }
        return meta
    }

    private static func migrate(_ db: SQLiteDatabase, from format: Int64) throws(VSecureError) {
        try db.transaction(immediate: true) { () throws(VSecureError) in
            var version = try db.scalarInt("PRAGMA user_version")
            while version < VaultFormat.currentVersion {
                try db.execute(VaultFormat.migrations[Int(version) - 1])
                version += 1
                try db.execute("PRAGMA user_version=\(version)")
            }
        }
    }

    // MARK: - Re-keying and status

    /// Re-wraps the data key under a new key file or passphrase; values are not re-encrypted.
    /// With a key file at the vault's current key path, the new key is written to `PATH.new`,
    /// the vault is committed, then the file is renamed over the old one.
    public func rekey(to newProtection: NewKeyProtection, currentKeyFile: String?) throws(VSecureError) {
        var target: NewKeyProtection = newProtection
        var replaceAfterCommit: (from: String, to: String)?
        if case .keyFile(let keyPath) = newProtection, let currentKeyFile, keyPath == currentKeyFile {
            let staging = keyPath + ".new"
            if PrivateFiles.kind(of: staging) != .missing {
                throw VSecureError(.conflict, "\(Quoted(staging)) exists, left by an interrupted rekey",
                                   hint: "check which key opens the vault, then remove the other file")
            }
            target = .keyFile(path: staging)
            replaceAfterCommit = (staging, keyPath)
        }
        var created: String?
        do {
            let wrap = try Self.keyEncryptionKey(for: target, createdKeyFile: &created)
            let wrapped = dataKey.withUnsafeBytes {
                AEAD.seal($0, associatedData: VaultFormat.dataKeyAssociatedData(vaultID: vaultID, protection: wrap.protection), key: wrap.key)
            }
            try db.transaction(immediate: true) { () throws(VSecureError) in
                try Self.writeProtection(db, protection: wrap.protection, wrapped: wrapped, parameters: wrap.parameters)
            }
            protection = wrap.protection
        } catch {
            if let created { removeFile(created) }
            throw error
        }
        if let replaceAfterCommit {
            try renameDurably(from: replaceAfterCommit.from, to: replaceAfterCommit.to)
        }
    }

    public struct Status: Sendable {
        public var path: String
        public var formatVersion: Int
        public var vaultID: String
        public var protection: KeyProtection
        public var environments: [EnvironmentName]
        public var defaultEnvironment: EnvironmentName
        public var secretCount: Int
        public var deletedCount: Int
        public var versionCount: Int
        public var createdAt: Timestamp
        public var integrityOK: Bool
    }

    public func status(checkIntegrity: Bool) throws(VSecureError) -> Status {
        let integrityOK: Bool
        if checkIntegrity {
            let statement = try db.prepare("PRAGMA integrity_check")
            integrityOK = try statement.step() && statement.text(0) == "ok"
        } else {
            integrityOK = true
        }
        return Status(path: path, formatVersion: Int(formatVersion), vaultID: hexString(vaultID), protection: protection,
                      environments: environments, defaultEnvironment: defaultEnvironment,
                      secretCount: Int(try db.scalarInt("SELECT count(*) FROM secrets WHERE deleted_at IS NULL")),
                      deletedCount: Int(try db.scalarInt("SELECT count(*) FROM secrets WHERE deleted_at IS NOT NULL")),
                      versionCount: Int(try db.scalarInt("SELECT count(*) FROM versions")),
                      createdAt: createdAt, integrityOK: integrityOK)
    }
}
