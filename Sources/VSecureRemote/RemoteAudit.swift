import VSecureCore
import VSecureStore

/// `vsecure audit:*` against a server: `GET /audit-logs` with the same filters, and
/// `POST /audit-logs/verify`.
extension RemoteStore: AuditReader {
    public func auditEntries(_ filter: AuditFilter) throws(VSecureError) -> (entries: [AuditEntry], hasMore: Bool) {
        let query: [(String, String?)] = [
            ("resource", filter.resource?.rawValue), ("action", filter.action?.rawValue), ("result", filter.outcome?.rawValue),
            ("actor", filter.actor), ("environment", filter.environment), ("name", filter.name),
            ("since", filter.since?.iso8601), ("until", filter.until?.iso8601),
            ("order", filter.newestFirst ? "desc" : nil), ("cursor", (filter.newestFirst ? filter.before : filter.after).map { String($0) }),
            ("limit", String(min(max(filter.limit, 1), 1000))),
        ]
        let reply = try request("GET", "/audit-logs", query: query)
        try reply.check()
        let json = try reply.json()
        guard case .object(let members) = json, case .array(let data)? = members.first(where: { $0.0 == "data" })?.1 else {
            throw reply.notOurs
        }
        var entries: [AuditEntry] = []
        for item in data {
            guard let entry = AuditEntry(json: item) else { throw reply.notOurs }
            entries.append(entry)
        }
        var hasMore = false
        if case .object(let page)? = members.first(where: { $0.0 == "pagination" })?.1,
           case .bool(let more)? = page.first(where: { $0.0 == "hasMore" })?.1 {
            hasMore = more
        }
        return (entries, hasMore)
    }

    public func verifyAudit() throws(VSecureError) -> AuditVerification {
        let reply = try request("POST", "/audit-logs/verify", readsOnly: true)
        try reply.check()
        guard let result = AuditVerification(json: try reply.json()) else { throw reply.notOurs }
        return result
    }
}
