import VSecureCore

/// The access policy: one document, kept as the text that was validated and set (so
/// `policy:show` gives back what the admin wrote), with when and by whom.
extension ServerRegistry {
    public struct StoredPolicy: Sendable, Equatable {
        public var source: String
        public var updatedAt: Timestamp
        public var updatedBy: String
    }

    public func policy() throws(VSecureError) -> StoredPolicy {
        let statement = try db.prepare("SELECT source, updated_at, updated_by FROM policy WHERE id = 1")
        guard try statement.step() else { return StoredPolicy(source: "{\"secrets\": {}}\n", updatedAt: Timestamp(secondsSinceEpoch: 0), updatedBy: "") }
        return StoredPolicy(source: statement.text(0), updatedAt: Timestamp(secondsSinceEpoch: statement.int64(1)), updatedBy: statement.text(2))
    }

    /// Replaces the document; the caller has validated `source` with `AccessPolicy(parsing:)`.
    public func setPolicy(source: String, updatedBy: String, now: Timestamp) throws(VSecureError) {
        try db.prepare("""
            INSERT INTO policy(id, source, updated_at, updated_by) VALUES (1, ?1, ?2, ?3)
            ON CONFLICT(id) DO UPDATE SET source = excluded.source, updated_at = excluded.updated_at, updated_by = excluded.updated_by
            """).bind(1, source).bind(2, now.secondsSinceEpoch).bind(3, updatedBy).run()
    }
}
