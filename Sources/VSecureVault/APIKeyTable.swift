import Synchronization
import VSecureCore
import VSecureCrypto

/// The API keys in memory, with their owners, the access policy and the grants, so a request
/// is authenticated and authorized without a query and without waiting for the store's actor;
/// any thread may call `authenticate`.
///
/// Before every check it looks for a commit to `server.db` by any connection: this server's own
/// writes (create, rotate, revoke) and another process's alike. It then reloads the whole table,
/// so a revoked or rotated token is refused on the very next request, whoever changed it.
///
/// The look is a comparison of the WAL index header (48 bytes of the shared `-shm` page, which
/// every commit rewrites before it returns) with the copy taken at the previous check; only when
/// it differs does the table ask its read connection for `PRAGMA data_version`, which needs a
/// read transaction (two `fcntl` locks). Without a shared index (exclusive locking after a full
/// disk) it asks on every check, as before.
public final class APIKeyTable: Sendable {
    private struct Entry {
        var key: ServerRegistry.APIKey
        var tokenHash: [UInt8]
    }

    private struct State {
        let reader: SQLiteDatabase
        var dataVersion: Int64?
        /// The reader's shared WAL index, and its header as of the last `PRAGMA data_version`.
        var walIndex: UnsafeRawPointer?
        var walHeader: WALIndexHeader?
        var entries: [String: Entry] = [:]
        var access = AccessSnapshot.empty
    }

    private let state: Mutex<State>
    private let hashKey: SecureBytes
    /// Compared against when a token's id is unknown, so that path costs the same as a real one.
    private let decoyHash: [UInt8]

    init(path: String, hashKey: SecureBytes) throws(VSecureError) {
        var initial = State(reader: try SQLiteDatabase(path: path, create: false, readOnly: true))
        try Self.reloadIfChanged(&initial)
        initial.walIndex = initial.reader.sharedWALIndex()
        state = Mutex(initial)
        self.hashKey = hashKey
        decoyHash = Sodium.randomBytes(32)
    }

    /// The active key a presented token belongs to, or nil. Every failure (malformed, unknown,
    /// wrong secret, expired, revoked) returns nil after the same hashing and one constant-time
    /// comparison of 32 bytes. Expiry is checked against `now` on every call.
    public func authenticate(_ token: UnsafeRawBufferPointer, now: Timestamp) throws(VSecureError) -> ServerRegistry.APIKey? {
        try caller(token, now: now)?.key
    }

    /// The active key a presented token belongs to, with the access snapshot it is judged by.
    public func caller(_ token: UnsafeRawBufferPointer, now: Timestamp) throws(VSecureError) -> AuthenticatedCaller? {
        let presented = KeyDerivation.keyedHash(token, key: hashKey, length: 32)
        let id = ServerRegistry.keyID(in: token)
        let decoy = decoyHash
        return try state.withLock { (state: inout State) throws(VSecureError) -> AuthenticatedCaller? in
            try Self.reloadIfChanged(&state)
            let candidate = id.flatMap { state.entries[$0] }
            let expected = candidate?.tokenHash ?? decoy
            let matches = presented.withUnsafeBytes { a in expected.withUnsafeBytes { b in Sodium.constantTimeEqual(a, b) } }
            guard matches, let key = candidate?.key, key.isActive(at: now) else { return nil }
            return AuthenticatedCaller(key: key, user: state.access.users[key.userID], access: state.access)
        }
    }

    /// The current snapshot (reloaded first if `server.db` changed).
    public func snapshot() throws(VSecureError) -> AccessSnapshot {
        try state.withLock { (state: inout State) throws(VSecureError) -> AccessSnapshot in
            try Self.reloadIfChanged(&state)
            return state.access
        }
    }

    /// The data version first, then the rows: a commit in between makes the next check reload
    /// again, never leaves the table behind.
    private static func reloadIfChanged(_ state: inout State) throws(VSecureError) {
        if let index = state.walIndex {
            // Taken before the data version: a commit in between changes the header again.
            let header = WALIndexHeader(index)
            guard header != state.walHeader else { return }
            state.walHeader = header
        }
        let version = try state.reader.scalarInt("PRAGMA data_version")
        guard version != state.dataVersion else { return }
        let statement = try state.reader.prepare("""
            SELECT \(ServerRegistry.keyColumns), token_hash FROM api_keys
            """)
        var entries: [String: Entry] = [:]
        while try statement.step() {
            let key = ServerRegistry.apiKey(statement)
            entries[key.id] = Entry(key: key, tokenHash: statement.blob(8))
        }
        state.entries = entries
        state.access = try AccessSnapshot.load(state.reader)
        state.dataVersion = version
    }
}

/// The first copy of SQLite's WAL index header (`WalIndexHdr`, 48 bytes at the start of the
/// `-shm` file). A read taken while a commit rewrites it may mix old and new words; it then
/// differs from the finished header, so the next check asks `PRAGMA data_version` again. A
/// commit has written the whole header before it returns.
struct WALIndexHeader: Equatable {
    var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)

    init(_ index: UnsafeRawPointer) {
        words = (index.loadUnaligned(fromByteOffset: 0, as: UInt64.self), index.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                 index.loadUnaligned(fromByteOffset: 16, as: UInt64.self), index.loadUnaligned(fromByteOffset: 24, as: UInt64.self),
                 index.loadUnaligned(fromByteOffset: 32, as: UInt64.self), index.loadUnaligned(fromByteOffset: 40, as: UInt64.self))
    }

    static func == (a: Self, b: Self) -> Bool {
        a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
            && a.words.4 == b.words.4 && a.words.5 == b.words.5
    }
}

/// A key that was accepted, its owner (nil only if server.db lost the row: then every secret
/// is denied) and the snapshot of users, policy and grants it is judged by.
public struct AuthenticatedCaller: Sendable {
    public let key: ServerRegistry.APIKey
    public let user: ServerRegistry.User?
    public let access: AccessSnapshot
}

/// Users, the parsed policy and the unrevoked grants, as of one `server.db` data version.
/// Immutable: a reload makes a new one, so a request sees one consistent state.
public final class AccessSnapshot: Sendable {
    public let users: [String: ServerRegistry.User]
    public let policy: AccessPolicy
    /// Unrevoked grants by subject (the user's name), oldest first; expiry is checked per request.
    public let grants: [String: [AccessGrant]]

    init(users: [String: ServerRegistry.User], policy: AccessPolicy, grants: [String: [AccessGrant]]) {
        self.users = users
        self.policy = policy
        self.grants = grants
    }

    static let empty = AccessSnapshot(users: [:], policy: .empty, grants: [:])

    public func user(named name: String) -> ServerRegistry.User? {
        users.values.first { $0.name == name }
    }

    /// The decision for `user` (the engine's rules); an unknown owner is denied like a disabled one.
    public func decide(user: ServerRegistry.User?, action: AccessAction, path: String, now: Timestamp) -> AccessDecision {
        guard let user else {
            return AccessDecision(allowed: false, basis: .disabledUser, explanation: "deny: the key has no owner")
        }
        return AccessControl.decide(subject: user.name, roles: Set(user.roles), disabled: user.isDisabled, action: action, path: path,
                                    policy: policy, grants: grants[user.name] ?? [], now: now)
    }

    static func load(_ reader: SQLiteDatabase) throws(VSecureError) -> AccessSnapshot {
        // A server.db from before users (opened read-only by an old layout) has none of these tables.
        guard try reader.scalarInt("PRAGMA user_version") >= ServerRegistry.schemaVersion else { return .empty }
        var users: [String: ServerRegistry.User] = [:]
        let userRows = try reader.prepare("SELECT \(ServerRegistry.userColumns) FROM users")
        while try userRows.step() {
            let user = ServerRegistry.user(userRows)
            users[user.id] = user
        }
        // The stored text was validated when it was set; if it no longer parses, nothing is allowed.
        let policyRow = try reader.prepare("SELECT source FROM policy WHERE id = 1")
        var policy = AccessPolicy.empty
        if try policyRow.step() { policy = (try? AccessPolicy(parsing: Array(policyRow.text(0).utf8))) ?? .empty }
        var grants: [String: [AccessGrant]] = [:]
        let grantRows = try reader.prepare("SELECT \(ServerRegistry.grantColumns) FROM grants WHERE revoked_at IS NULL ORDER BY created_at, id")
        while try grantRows.step() {
            let record = ServerRegistry.grant(grantRows)
            guard let user = users[record.userID], let grant = record.accessGrant(subject: user.name) else { continue }
            grants[user.name, default: []].append(grant)
        }
        return AccessSnapshot(users: users, policy: policy, grants: grants)
    }
}

extension ServerRegistry.GrantRecord {
    /// The engine's grant; nil if the stored pattern or action no longer parses.
    public func accessGrant(subject: String) -> AccessGrant? {
        guard let action = AccessAction(rawValue: action), let pattern = try? PathPattern(pattern) else { return nil }
        return AccessGrant(id: id, subject: subject, pattern: pattern, action: action, createdAt: createdAt, expiresAt: expiresAt,
                           revokedAt: revokedAt, createdBy: createdBy)
    }
}
