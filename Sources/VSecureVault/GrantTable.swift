import VSecureCore
import VSecureCrypto

/// Time-limited grants: one user may do one action on the secrets a path pattern matches,
/// until a time. Stored as text (the pattern as given, the action's name); the key table turns
/// them into the policy engine's `AccessGrant`s when it reloads.
extension ServerRegistry {
    public struct GrantRecord: Sendable, Equatable {
        public var id: String
        public var userID: String
        public var pattern: String
        public var action: String
        public var createdAt: Timestamp
        public var expiresAt: Timestamp
        public var revokedAt: Timestamp?
        /// Who made it: the acting user's name and key id.
        public var createdBy: String

        public func isActive(at now: Timestamp) -> Bool { revokedAt == nil && now < expiresAt }
    }

    static let grantColumns = "id, user_id, pattern, action, created_at, expires_at, revoked_at, created_by"

    static func grant(_ statement: SQLiteStatement) -> GrantRecord {
        GrantRecord(id: statement.text(0), userID: statement.text(1), pattern: statement.text(2), action: statement.text(3),
                    createdAt: Timestamp(secondsSinceEpoch: statement.int64(4)),
                    expiresAt: Timestamp(secondsSinceEpoch: statement.int64(5)),
                    revokedAt: statement.optionalInt64(6).map(Timestamp.init(secondsSinceEpoch:)), createdBy: statement.text(7))
    }

    /// The caller validates the pattern and action (the policy engine's rules).
    public func createGrant(userID: String, pattern: String, action: String, expiresAt: Timestamp, createdBy: String,
                            now: Timestamp) throws(VSecureError) -> GrantRecord {
        let record = GrantRecord(id: "grt_" + hexString(Sodium.randomBytes(8)), userID: userID, pattern: pattern, action: action,
                                 createdAt: now, expiresAt: expiresAt, revokedAt: nil, createdBy: createdBy)
        try db.prepare("""
            INSERT INTO grants(id, user_id, pattern, action, created_at, expires_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
            """)
            .bind(1, record.id).bind(2, userID).bind(3, pattern).bind(4, action).bind(5, now.secondsSinceEpoch)
            .bind(6, expiresAt.secondsSinceEpoch).bind(7, createdBy).run()
        return record
    }

    public func grant(id: String) throws(VSecureError) -> GrantRecord? {
        let statement = try db.prepare("SELECT \(Self.grantColumns) FROM grants WHERE id = ?1")
        statement.bind(1, id)
        return try statement.step() ? Self.grant(statement) : nil
    }

    /// Every grant, oldest first (revoked and expired included; callers filter).
    public func listGrants() throws(VSecureError) -> [GrantRecord] {
        let statement = try db.prepare("SELECT \(Self.grantColumns) FROM grants ORDER BY created_at, id")
        var grants: [GrantRecord] = []
        while try statement.step() { grants.append(Self.grant(statement)) }
        return grants
    }

    /// False when there is no such grant or it was revoked already.
    public func revokeGrant(id: String, now: Timestamp) throws(VSecureError) -> Bool {
        try db.prepare("UPDATE grants SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL").bind(1, id).bind(2, now.secondsSinceEpoch).run()
        return try db.scalarInt("SELECT changes()") > 0
    }
}
