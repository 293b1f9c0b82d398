import Hummingbird
import NIOPosix
import VSecureCore
import VSecureVault

/// `/v1/security/audit-logs…` (scope `audit:read`): the entries with the filters of
/// `vsecure audit:logs`, one entry, and verification of the chain.
struct AuditRoutes {
    let service: SecretService

    func register(_ group: RouterGroup<ServerContext>, table: RouteTable) {
        table.add(group, .get, "audit-logs", list)
        table.add(group, .post, "audit-logs/verify", verifyAll)
        table.add(group, .get, "audit-logs/:id", entry)
        table.add(group, .post, "audit-logs/:id/verify", verifyEntry)
    }

    /// Runs a query on the audit trail's read connection on NIO's blocking pool: a long
    /// verification must not hold a cooperative thread.
    private func query<T: Sendable>(_ body: @escaping @Sendable (AuditLog) throws(VSecureError) -> T) async throws -> T {
        let audit = service.audit
        let outcome = try await NIOThreadPool.singleton.runIfActive {
            Result { () throws(VSecureError) -> T in try audit.withLog(body) }
        }
        do { return try outcome.get() } catch { throw APIError(error) }
    }

    @Sendable func list(_ request: Request, context: ServerContext) async throws -> Response {
        _ = try await context.requireRecorded(.auditRead, .audit, .accessed, service: service)
        var filter = AuditFilter()
        let now = service.clock()
        for field in AuditFilter.fields {
            guard let text = request.query(field) else { continue }
            do { try filter.set(field, text, now: now) } catch {
                throw APIError(.validationError, "query parameter \(Quoted(field)): \(error.message)", details: ["parameter": field])
            }
        }
        filter.limit = try request.queryInt("limit", range: 1...1000) ?? 100
        switch request.query("order") {
        case nil, "asc"?: break
        case "desc"?: filter.newestFirst = true
        default: throw APIError(.validationError, "query parameter \"order\" must be asc or desc", details: ["parameter": "order"])
        }
        if let cursor = request.query("cursor") {
            guard let seq = Int64(cursor), seq >= 0 else { throw APIError(.validationError, "the cursor is malformed") }
            if filter.newestFirst { filter.before = seq } else { filter.after = seq }
        }
        let requested = filter
        let (entries, hasMore) = try await query { (log: AuditLog) throws(VSecureError) in try log.entries(requested) }
        return JSONResponse.make(.object([
            ("data", .array(entries.map(\.json))),
            ("pagination", .object([("cursor", hasMore ? .string(String(entries.last!.seq)) : .null), ("hasMore", .bool(hasMore))])),
        ]))
    }

    private func seq(_ context: ServerContext) throws -> Int64 {
        guard let text = context.parameters.get("id"), let seq = Int64(text), seq > 0 else {
            throw APIError(.validationError, "an audit entry id is a positive whole number")
        }
        return seq
    }

    @Sendable func entry(_ request: Request, context: ServerContext) async throws -> Response {
        _ = try await context.requireRecorded(.auditRead, .audit, .accessed, name: context.parameters.get("id"), service: service)
        let seq = try seq(context)
        guard let entry = try await query({ (log: AuditLog) throws(VSecureError) in try log.entry(seq: seq) }) else {
            throw APIError(.resourceNotFound, "there is no audit entry \(seq)")
        }
        return JSONResponse.make(entry.json)
    }

    /// Verifies the chain from the first entry through this one: an entry is only as
    /// trustworthy as every entry before it.
    @Sendable func verifyEntry(_ request: Request, context: ServerContext) async throws -> Response {
        _ = try await context.requireRecorded(.auditRead, .audit, .accessed, name: context.parameters.get("id"), service: service)
        let seq = try seq(context)
        let result = try await query { (log: AuditLog) throws(VSecureError) -> AuditVerification? in
            guard try log.contains(seq: seq) else { return nil }
            return try log.verify(through: seq)
        }
        guard let result else { throw APIError(.resourceNotFound, "there is no audit entry \(seq)") }
        return JSONResponse.make(result.json)
    }

    @Sendable func verifyAll(_ request: Request, context: ServerContext) async throws -> Response {
        _ = try await context.requireRecorded(.auditRead, .audit, .accessed, service: service)
        let result = try await query { (log: AuditLog) throws(VSecureError) in try log.verify() }
        return JSONResponse.make(result.json)
    }
}
