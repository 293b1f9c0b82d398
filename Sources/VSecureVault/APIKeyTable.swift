import Synchronization
import VSecureCore
import VSecureCrypto

/// The API keys in memory, so a request is authenticated without a query and without waiting
/// for the store's actor; any thread may call `authenticate`.
///
/// Before every check it asks its own read connection for `PRAGMA data_version`, which changes
/// whenever any other connection has committed to `server.db`: this server's own writes (create,
/// rotate, revoke) and another process's alike. It then reloads the whole table, so a revoked
/// or rotated token is refused on the very next request, whoever changed it.
public final class APIKeyTable: Sendable {
    private struct Entry {
        var key: ServerRegistry.APIKey
        var tokenHash: [UInt8]
    }

    private struct State {
        let reader: SQLiteDatabase
        var dataVersion: Int64?
        var entries: [String: Entry] = [:]
    }

    private let state: Mutex<State>
    private let hashKey: SecureBytes
    /// Compared against when a token's id is unknown, so that path costs the same as a real one.
    private let decoyHash: [UInt8]

    init(path: String, hashKey: SecureBytes) throws(VSecureError) {
        var initial = State(reader: try SQLiteDatabase(path: path, create: false, readOnly: true))
        try Self.reloadIfChanged(&initial)
        state = Mutex(initial)
        self.hashKey = hashKey
        decoyHash = Sodium.randomBytes(32)
    }

    /// The active key a presented token belongs to, or nil. Every failure (malformed, unknown,
    /// wrong secret, expired, revoked) returns nil after the same hashing and one constant-time
    /// comparison of 32 bytes. Expiry is checked against `now` on every call.
    public func authenticate(_ token: UnsafeRawBufferPointer, now: Timestamp) throws(VSecureError) -> ServerRegistry.APIKey? {
        let presented = KeyDerivation.keyedHash(token, key: hashKey, length: 32)
        let id = ServerRegistry.keyID(in: token)
        let decoy = decoyHash
        return try state.withLock { (state: inout State) throws(VSecureError) -> ServerRegistry.APIKey? in
            try Self.reloadIfChanged(&state)
            let candidate = id.flatMap { state.entries[$0] }
            let expected = candidate?.tokenHash ?? decoy
            let matches = presented.withUnsafeBytes { a in expected.withUnsafeBytes { b in Sodium.constantTimeEqual(a, b) } }
            guard matches, let key = candidate?.key, key.isActive(at: now) else { return nil }
            return key
        }
    }

    /// The data version first, then the rows: a commit in between makes the next check reload
    /// again, never leaves the table behind.
    private static func reloadIfChanged(_ state: inout State) throws(VSecureError) {
        let version = try state.reader.scalarInt("PRAGMA data_version")
        guard version != state.dataVersion else { return }
        let statement = try state.reader.prepare("""
            SELECT id, name, scopes, environments, created_at, expires_at, revoked_at, token_hash FROM api_keys
            """)
        var entries: [String: Entry] = [:]
        while try statement.step() {
            let key = ServerRegistry.apiKey(statement)
            entries[key.id] = Entry(key: key, tokenHash: statement.blob(7))
        }
        state.entries = entries
        state.dataVersion = version
    }
}
