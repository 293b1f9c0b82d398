import VSecureCore
import VSecureCrypto

/// What a server keeps beside the vault: users and service accounts, API keys (only as keyed
/// hashes), the access policy, grants and idempotency records, in `server.db` next to `vault.db`. The hash key is derived from the vault's data
/// key, so a copy of `server.db` alone cannot be used to test guesses of a token.
/// Requests are authenticated against `keys`, an in-memory copy of the key table that any
/// thread may use; everything else here runs on one caller at a time.
public final class ServerRegistry {
    static let schema = """
        CREATE TABLE IF NOT EXISTS api_keys(
            id TEXT PRIMARY KEY NOT NULL,
            name TEXT NOT NULL,
            token_hash BLOB NOT NULL,
            scopes TEXT NOT NULL,
            environments TEXT,
            created_at INTEGER NOT NULL,
            expires_at INTEGER,
            revoked_at INTEGER,
            last_used_at INTEGER,
            user_id TEXT
        );
        CREATE TABLE IF NOT EXISTS idempotency(
            key_id TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            request_hash BLOB NOT NULL,
            status INTEGER NOT NULL,
            body BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            PRIMARY KEY(key_id, idempotency_key)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS audit_binding(
            id INTEGER PRIMARY KEY CHECK (id = 1),
            log_id BLOB NOT NULL,
            bound_at INTEGER NOT NULL
        );
        \(webhookSchema)
        """

    public struct APIKey: Sendable, Equatable {
        public var id: String
        public var name: String
        public var scopes: [String]
        /// nil: every environment.
        public var environments: [EnvironmentName]?
        public var createdAt: Timestamp
        public var expiresAt: Timestamp?
        public var revokedAt: Timestamp?
        /// The user or service account the key acts for (its roles decide with the policy).
        public var userID: String

        public func isActive(at now: Timestamp) -> Bool {
            revokedAt == nil && (expiresAt.map { $0 > now } ?? true)
        }
    }

    public struct StoredResponse: Sendable {
        public var requestHash: [UInt8]
        public var status: Int
        public var body: [UInt8]

        public init(requestHash: [UInt8], status: Int, body: [UInt8]) {
            self.requestHash = requestHash
            self.status = status
            self.body = body
        }
    }

    let db: SQLiteDatabase
    private let hashKey: SecureBytes
    /// The key table that authenticates requests.
    public let keys: APIKeyTable

    public init(path: String, vault: LocalVault) throws(VSecureError) {
        if PrivateFiles.kind(of: path) == .missing { try PrivateFiles.createEmptyFile(path) }
        db = try SQLiteDatabase(path: path, create: false)
        try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL")
        try db.execute(Self.schema)
        try Self.migrate(db)
        hashKey = KeyDerivation.subkey(of: vault.dataKey, id: 2, context: "vsapikey")
        keys = try APIKeyTable(path: path, hashKey: hashKey)
    }

    /// `PRAGMA user_version` of the current schema. 0: API keys only (before users); 1: users,
    /// key owners, the policy and grants.
    static let schemaVersion: Int64 = 1

    /// The service account that owns keys made before users existed, and the first key of `init`.
    public static let adminAccount = "admin"
    public static let adminRole = "admins"
    /// What a fresh or migrated server starts with: the admins may do everything, which is what
    /// every key could do before policies existed.
    public static let defaultPolicy = """
        {"secrets": {"**": {"read": ["admins"], "write": ["admins"], "delete": ["admins"]}}}

        """

    /// Runs `body` as one transaction: every change inside commits, or none does.
    public func atomically<T>(_ body: () throws(VSecureError) -> T) throws(VSecureError) -> T {
        try db.batch(body)
    }

    /// Brings `server.db` to `schemaVersion` in one write transaction; a second process opening
    /// the same file at the same time waits, then finds the work done.
    private static func migrate(_ db: SQLiteDatabase) throws(VSecureError) {
        guard try db.scalarInt("PRAGMA user_version") < Self.schemaVersion else { return }
        try db.transaction(immediate: true) { () throws(VSecureError) in
            guard try db.scalarInt("PRAGMA user_version") < Self.schemaVersion else { return }
            try db.execute("""
                CREATE TABLE IF NOT EXISTS users(
                    id TEXT PRIMARY KEY NOT NULL,
                    name TEXT NOT NULL UNIQUE,
                    kind TEXT NOT NULL,
                    roles TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    disabled_at INTEGER
                );
                CREATE TABLE IF NOT EXISTS grants(
                    id TEXT PRIMARY KEY NOT NULL,
                    user_id TEXT NOT NULL,
                    pattern TEXT NOT NULL,
                    action TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    revoked_at INTEGER,
                    created_by TEXT NOT NULL
                );
                CREATE TABLE IF NOT EXISTS policy(
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    source TEXT NOT NULL,
                    updated_at INTEGER NOT NULL,
                    updated_by TEXT NOT NULL
                );
                """)
            let columns = try db.prepare("PRAGMA table_info(api_keys)")
            var hasOwner = false
            while try columns.step() { if columns.text(1) == "user_id" { hasOwner = true } }
            if !hasOwner { try db.execute("ALTER TABLE api_keys ADD COLUMN user_id TEXT") }
            let created = try db.prepare("SELECT coalesce(min(created_at), strftime('%s','now')) FROM api_keys")
            _ = try created.step()
            let now = Timestamp(secondsSinceEpoch: created.int64(0))
            let admin = try ensureUser(db, name: Self.adminAccount, kind: .service, roles: [Self.adminRole], now: now)
            try db.prepare("UPDATE api_keys SET user_id = ?1 WHERE user_id IS NULL").bind(1, admin).run()
            try db.prepare("INSERT OR IGNORE INTO policy(id, source, updated_at, updated_by) VALUES (1, ?1, ?2, 'vsecure-server')")
                .bind(1, Self.defaultPolicy).bind(2, now.secondsSinceEpoch).run()
            try db.execute("PRAGMA user_version = \(Self.schemaVersion)")
        }
    }

    /// The id of the `admin` service account (made by the migration).
    public func adminUserID() throws(VSecureError) -> String {
        guard let admin = try Self.user(db, named: Self.adminAccount) else {
            throw VSecureError(.integrity, "server.db has no admin service account")
        }
        return admin.id
    }

    static let tokenPrefix = "vsec_"

    private func hash(_ token: UnsafeRawBufferPointer) -> [UInt8] {
        KeyDerivation.keyedHash(token, key: hashKey, length: 32)
    }

    /// Creates a key for `userID` (nil: the `admin` service account) and returns it with its
    /// token, which is shown once and never stored.
    public func createKey(name: String, scopes: [String], environments: [EnvironmentName]?, expiresAt: Timestamp?,
                          userID: String? = nil, now: Timestamp) throws(VSecureError) -> (APIKey, String) {
        let owner: String
        if let userID { owner = userID } else { owner = try adminUserID() }
        let id = "key_" + hexString(Sodium.randomBytes(8))
        let token = Self.makeToken(id: id)
        let key = APIKey(id: id, name: name, scopes: scopes, environments: environments, createdAt: now, expiresAt: expiresAt, revokedAt: nil,
                         userID: owner)
        let statement = try db.prepare("""
            INSERT INTO api_keys(id, name, token_hash, scopes, environments, created_at, expires_at, user_id)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
            """)
        let tokenHash = try token.withUTF8Bytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in hash(raw) }
        statement.bind(1, id).bind(2, name).bind(3, blob: tokenHash).bind(4, scopes.joined(separator: ","))
            .bind(5, environments.map { $0.map(\.rawValue).joined(separator: ",") }).bind(6, now.secondsSinceEpoch)
            .bind(7, expiresAt?.secondsSinceEpoch).bind(8, owner)
        try statement.run()
        return (key, token)
    }

    /// A new token for an existing, active key; the old token stops working at once.
    public func rotateKey(id: String, now: Timestamp) throws(VSecureError) -> (APIKey, String)? {
        guard let key = try key(id: id), key.isActive(at: now) else { return nil }
        let token = Self.makeToken(id: id)
        let tokenHash = try token.withUTF8Bytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in hash(raw) }
        let statement = try db.prepare("UPDATE api_keys SET token_hash = ?2 WHERE id = ?1")
        try statement.bind(1, id).bind(2, blob: tokenHash).run()
        return (key, token)
    }

    /// `vsec_<id>_<43 base64url characters of 32 random bytes>`.
    static func makeToken(id: String) -> String {
        let secret = Sodium.randomBytes(32)
        return tokenPrefix + id + "_" + base64URL(secret)
    }

    public static func base64URL(_ bytes: [UInt8]) -> String {
        let standard = bytes.withUnsafeBytes { Base64.encode($0) }
        return String(standard.compactMap { c -> Character? in
            switch c {
            case "+": return "-"
            case "/": return "_"
            case "=": return nil
            default: return c
            }
        })
    }

    /// The active key a presented token belongs to, or nil (see `APIKeyTable.authenticate`).
    public func authenticate(_ token: UnsafeRawBufferPointer, now: Timestamp) throws(VSecureError) -> APIKey? {
        try keys.authenticate(token, now: now)
    }

    /// The key id a presented token claims (`vsec_<id>_…`), for audit entries of refused tokens.
    public static func tokenKeyID(_ token: UnsafeRawBufferPointer) -> String? { keyID(in: token) }

    static func keyID(in token: UnsafeRawBufferPointer) -> String? {
        let prefix = Array(tokenPrefix.utf8)
        // vsec_ + key_ + 16 hex + _ + secret
        guard token.count > prefix.count + 21, Array(token[0..<prefix.count]) == prefix else { return nil }
        let idBytes = token[prefix.count..<(prefix.count + 20)]
        guard token[prefix.count + 20] == UInt8(ascii: "_"), idBytes.starts(with: Array("key_".utf8)),
              idBytes.dropFirst(4).allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else { return nil }
        return String(decoding: idBytes, as: UTF8.self)
    }

    public func key(id: String) throws(VSecureError) -> APIKey? {
        let statement = try db.prepare("SELECT \(Self.keyColumns) FROM api_keys WHERE id = ?1")
        statement.bind(1, id)
        guard try statement.step() else { return nil }
        return Self.apiKey(statement)
    }

    public func listKeys() throws(VSecureError) -> [APIKey] {
        let statement = try db.prepare("SELECT \(Self.keyColumns) FROM api_keys ORDER BY created_at, id")
        var keys: [APIKey] = []
        while try statement.step() { keys.append(Self.apiKey(statement)) }
        return keys
    }

    public func revokeKey(id: String, now: Timestamp) throws(VSecureError) -> Bool {
        let statement = try db.prepare("UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")
        try statement.bind(1, id).bind(2, now.secondsSinceEpoch).run()
        return try db.scalarInt("SELECT changes()") > 0
    }

    static let keyColumns = "id, name, scopes, environments, created_at, expires_at, revoked_at, user_id"

    static func apiKey(_ statement: SQLiteStatement) -> APIKey {
        APIKey(id: statement.text(0), name: statement.text(1),
               scopes: statement.text(2).split(separator: ",").map(String.init),
               environments: statement.optionalText(3).map { $0.split(separator: ",").compactMap { try? EnvironmentName(String($0)) } },
               createdAt: Timestamp(secondsSinceEpoch: statement.int64(4)),
               expiresAt: statement.optionalInt64(5).map(Timestamp.init(secondsSinceEpoch:)),
               revokedAt: statement.optionalInt64(6).map(Timestamp.init(secondsSinceEpoch:)),
               userID: statement.optionalText(7) ?? "")
    }

    // MARK: - Idempotency

    /// The answer recorded for this key within `idempotencyRetention` of `now`; an older record
    /// counts as gone (it is deleted when the next answer is recorded).
    public func storedResponse(keyID: String, idempotencyKey: String, now: Timestamp) throws(VSecureError) -> StoredResponse? {
        let statement = try db.prepare("""
            SELECT request_hash, status, body FROM idempotency WHERE key_id = ?1 AND idempotency_key = ?2 AND created_at >= ?3
            """)
        statement.bind(1, keyID).bind(2, idempotencyKey).bind(3, now.secondsSinceEpoch - Self.idempotencyRetention)
        guard try statement.step() else { return nil }
        return StoredResponse(requestHash: statement.blob(0), status: statement.int(1), body: statement.blob(2))
    }

    /// Idempotency records are kept for a day; older ones are forgotten as new ones arrive.
    public static let idempotencyRetention: Int64 = 86_400

    public func storeResponse(keyID: String, idempotencyKey: String, response: StoredResponse, now: Timestamp) throws(VSecureError) {
        try expireIdempotency(olderThan: Timestamp(secondsSinceEpoch: now.secondsSinceEpoch - Self.idempotencyRetention))
        let statement = try db.prepare("""
            INSERT OR IGNORE INTO idempotency(key_id, idempotency_key, request_hash, status, body, created_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            """)
        try statement.bind(1, keyID).bind(2, idempotencyKey).bind(3, blob: response.requestHash).bind(4, response.status)
            .bind(5, blob: response.body).bind(6, now.secondsSinceEpoch).run()
    }

    /// Idempotency records older than `age` are forgotten.
    public func expireIdempotency(olderThan cutoff: Timestamp) throws(VSecureError) {
        let statement = try db.prepare("DELETE FROM idempotency WHERE created_at < ?1")
        try statement.bind(1, cutoff.secondsSinceEpoch).run()
    }

    /// A digest of a request, to tell a true replay from a reused key.
    public func requestDigest(_ parts: [[UInt8]]) -> [UInt8] {
        var joined: [UInt8] = []
        for part in parts {
            joined += withUnsafeBytes(of: UInt64(part.count).bigEndian) { Array($0) }
            joined += part
        }
        return joined.withUnsafeBytes { KeyDerivation.keyedHash($0, key: hashKey, length: 32) }
    }
}
