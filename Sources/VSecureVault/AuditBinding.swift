import VSecureCore

extension ServerRegistry {
    /// Ties this server's data to one audit log: the first log the server opens is recorded in
    /// `server.db`, and a later start with another log (the old one deleted with its key, or
    /// swapped for a fresh one) is refused, since starting afresh would hide what was removed.
    public func bindAuditLog(id logID: [UInt8], path: String, now: Timestamp) throws(VSecureError) {
        let statement = try db.prepare("SELECT log_id FROM audit_binding WHERE id = 1")
        if try statement.step() {
            guard statement.blob(0) == logID else {
                throw VSecureError(.integrity, "the audit log \(Quoted(path)) is not the one this server started with: it was replaced or removed",
                                   hint: "restore audit.db and audit.key from a backup; the server refuses to start on another log")
            }
            return
        }
        try db.prepare("INSERT INTO audit_binding(id, log_id, bound_at) VALUES (1, ?1, ?2)")
            .bind(1, blob: logID).bind(2, now.secondsSinceEpoch).run()
    }
}
