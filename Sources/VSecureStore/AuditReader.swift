import VSecureCore

/// Where `vsecure audit:*` reads: the local vault's audit log or a server's.
public protocol AuditReader: AnyObject {
    /// Entries passing `filter`, oldest first, at most `filter.limit`, and whether more follow.
    func auditEntries(_ filter: AuditFilter) throws(VSecureError) -> (entries: [AuditEntry], hasMore: Bool)
    /// Checks the whole chain and its anchor.
    func verifyAudit() throws(VSecureError) -> AuditVerification
}
