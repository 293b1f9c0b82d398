import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import VSecureCore
import VSecureVault

extension HTTPField.Name {
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    static let idempotentReplayed = HTTPField.Name("Idempotent-Replayed")!
}

/// The `Idempotency-Key`s (per API key) of writes that run off the service actor and have not
/// answered yet. While one holds a key, a request with the same key is refused instead of
/// running a second time between the first one's work and the recording of its answer.
final class IdempotencyClaims: Sendable {
    private struct Claim: Hashable {
        var keyID: String
        var idempotencyKey: String
    }

    private let held = Mutex<Set<Claim>>([])

    init() {}

    /// False when a request with this key is still running.
    func claim(keyID: String, idempotencyKey: String) -> Bool {
        held.withLock { $0.insert(Claim(keyID: keyID, idempotencyKey: idempotencyKey)).inserted }
    }

    func release(keyID: String, idempotencyKey: String) {
        _ = held.withLock { $0.remove(Claim(keyID: keyID, idempotencyKey: idempotencyKey)) }
    }
}

extension SecretService {
    /// Runs a change to the vault once per `Idempotency-Key`: a replay of the same request
    /// returns the first answer (and makes no second version); the same key with a different
    /// request is a 409. Lookup, operation and record happen in one actor turn, so two
    /// concurrent replays cannot both run the operation. Only answers without secret values are
    /// ever recorded.
    ///
    /// The change is audited as `change(in:)` does: the entries `operation` returns are made
    /// durable before its transaction commits, and when they cannot be, nothing changes, no
    /// answer is kept for the key, and the request gets 503. A replay changes nothing and records
    /// nothing (the first answer's entries stand).
    nonisolated func idempotent(_ request: Request, context: ServerContext, body: JSONBody,
                                _ operation: @escaping @Sendable (LocalVault, Timestamp) throws(VSecureError) -> AuditedAnswer)
        async throws -> Response {
        try await idempotent(request, context: context, bodyBytes: body.raw, in: .vault) { vault, _, now throws(VSecureError) in
            try operation(vault, now)
        }
    }

    /// The same for a write to the registry (users, grants, the policy, webhook pings): the
    /// operation gets the registry instead of the vault. `body` is the request body as received.
    nonisolated func idempotent(_ request: Request, context: ServerContext, bodyBytes body: [UInt8],
                                registry operation: @escaping @Sendable (ServerRegistry, Timestamp) throws(VSecureError) -> AuditedAnswer)
        async throws -> Response {
        try await idempotent(request, context: context, bodyBytes: body, in: .registry) { _, registry, now throws(VSecureError) in
            try operation(registry, now)
        }
    }

    private nonisolated func idempotent(_ request: Request, context: ServerContext, bodyBytes body: [UInt8], in store: ChangedStore,
                                        _ operation: @escaping @Sendable (LocalVault, ServerRegistry, Timestamp) throws(VSecureError) -> AuditedAnswer)
        async throws -> Response {
        let key = try Self.idempotencyKey(request)
        let done = try await performOnce(keyID: context.apiKey?.id ?? "", idempotencyKey: key,
                                         parts: Self.requestParts(request, body: body), in: store, operation)
        if !done.answerKept {
            context.logger.error("the answer to this Idempotency-Key could not be kept; the change is made and recorded, and a retry with the key would make it again",
                                 metadata: ["path": "\(request.uri.path)"])
        }
        return Self.response(status: done.status, bytes: done.bytes, replayed: done.replayed)
    }

    /// The same for a write whose work runs off the actor and may take long (a rotation runs a
    /// generator or a command on the rotator's own connection): the lookup and the record are
    /// two actor turns around `operation`, and `claims` keeps a second request with the same key
    /// from running while the first has not answered (it gets 409 `CONFLICT`, `details.reason`
    /// `inProgress`, and can retry). Only a successful answer is recorded; it must hold no secret
    /// value.
    nonisolated func idempotent(_ request: Request, context: ServerContext, bodyBytes body: [UInt8], claims: IdempotencyClaims,
                                running operation: @Sendable () async throws -> (HTTPResponse.Status, JSONValue))
        async throws -> Response {
        guard let key = try Self.idempotencyKey(request) else {
            let (status, value) = try await operation()
            return Self.response(status: Int(status.code), bytes: Array(value.serialized(indent: nil).utf8), replayed: false)
        }
        let keyID = context.apiKey?.id ?? ""
        guard claims.claim(keyID: keyID, idempotencyKey: key) else {
            throw APIError(.conflict, "a request with this Idempotency-Key is still running",
                           details: ["reason": "inProgress", "hint": "retry with the same key once it has answered, to get its answer"])
        }
        defer { claims.release(keyID: keyID, idempotencyKey: key) }
        // Claimed first, looked up second: a request that finished before the claim has recorded
        // its answer by now (it records before it releases), so it is found and replayed.
        let (digest, stored) = try await storedAnswer(keyID: keyID, idempotencyKey: key, parts: Self.requestParts(request, body: body))
        if let stored { return Self.response(status: stored.status, bytes: stored.body, replayed: true) }
        let (status, value) = try await operation()
        let bytes = Array(value.serialized(indent: nil).utf8)
        try await recordAnswer(keyID: keyID, idempotencyKey: key, digest: digest, status: Int(status.code), bytes: bytes)
        return Self.response(status: Int(status.code), bytes: bytes, replayed: false)
    }

    /// The request's `Idempotency-Key`, nil without one; 400 when it is malformed.
    private static func idempotencyKey(_ request: Request) throws -> String? {
        guard let header = request.headers[.idempotencyKey] else { return nil }
        guard (1...255).contains(header.utf8.count), header.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw APIError(.validationError, "Idempotency-Key must be 1 to 255 printable characters")
        }
        return header
    }

    /// What a replay must repeat exactly: the method, the URL (query included) and the body.
    private static func requestParts(_ request: Request, body: [UInt8]) -> [[UInt8]] {
        [Array(request.method.rawValue.utf8), Array(request.uri.description.utf8), body]
    }

    private static func response(status: Int, bytes: [UInt8], replayed: Bool) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if replayed { headers[.idempotentReplayed] = "true" }
        return Response(status: HTTPResponse.Status(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// The request's digest and the answer recorded for its key, if any; 409 when the key was
    /// recorded for another request.
    private func storedAnswer(keyID: String, idempotencyKey: String,
                              parts: [[UInt8]]) throws -> (digest: [UInt8], stored: ServerRegistry.StoredResponse?) {
        let digest = registry.requestDigest(parts)
        guard let stored = try APIError.wrap({ () throws(VSecureError) in try registry.storedResponse(keyID: keyID, idempotencyKey: idempotencyKey, now: clock()) }) else {
            return (digest, nil)
        }
        guard stored.requestHash == digest else { throw APIError(.conflict, "this Idempotency-Key was used for a different request") }
        return (digest, stored)
    }

    private func recordAnswer(keyID: String, idempotencyKey: String, digest: [UInt8], status: Int, bytes: [UInt8]) throws {
        let now = clock()
        try APIError.wrap { () throws(VSecureError) in
            try registry.storeResponse(keyID: keyID, idempotencyKey: idempotencyKey,
                                       response: .init(requestHash: digest, status: status, body: bytes), now: now)
        }
    }

    /// What `performOnce` answered. `answerKept` is false when the answer to an
    /// `Idempotency-Key` could not be stored after a vault change had committed.
    private struct Performed: Sendable {
        var status: Int
        var bytes: [UInt8]
        var replayed: Bool
        var answerKept = true
    }

    /// The answer for the key is kept in `server.db`: in the change's own transaction when the
    /// change is to `server.db`, so that both or neither are there; after the commit for a vault
    /// change (another file), where a failure to keep it is logged rather than answered, because
    /// the change happened and is recorded.
    private func performOnce(keyID: String, idempotencyKey: String?, parts: [[UInt8]], in store: ChangedStore,
                             _ operation: (LocalVault, ServerRegistry, Timestamp) throws(VSecureError) -> AuditedAnswer)
        throws -> Performed {
        let now = clock()
        var digest: [UInt8] = []
        if let idempotencyKey {
            let (requestDigest, stored) = try storedAnswer(keyID: keyID, idempotencyKey: idempotencyKey, parts: parts)
            if let stored { return Performed(status: stored.status, bytes: stored.body, replayed: true) }
            digest = requestDigest
        }
        let requestHash = digest
        func keep(_ status: Int, _ bytes: [UInt8]) throws(VSecureError) {
            guard let idempotencyKey else { return }
            try registry.storeResponse(keyID: keyID, idempotencyKey: idempotencyKey,
                                       response: .init(requestHash: requestHash, status: status, body: bytes), now: now)
        }
        let (status, bytes) = try commitAudited(in: store) { () throws(VSecureError) -> ((Int, [UInt8]), [AuditEvent]) in
            let answer = try operation(vault, registry, now)
            let status = Int(answer.status.code), bytes = Array(answer.body.serialized(indent: nil).utf8)
            if case .registry = store { try keep(status, bytes) }
            return ((status, bytes), answer.events)
        }
        var performed = Performed(status: status, bytes: bytes, replayed: false)
        if case .vault = store {
            do throws(VSecureError) { try keep(status, bytes) } catch { performed.answerKept = false }
        }
        return performed
    }
}

/// What a change answers, and the audit entries that record it.
struct AuditedAnswer {
    var status: HTTPResponse.Status
    var body: JSONValue
    var events: [AuditEvent]
}

extension AuditEvent {
    /// This entry as the record of a change whose commit failed after the entry was written.
    var commitFailed: AuditEvent {
        var event = self
        event.outcome = .failure
        event.details.append(("reason", "commit_failed"))
        return event
    }
}

/// Which file a change is made in: the vault (secrets) or `server.db` (keys, users, grants,
/// the policy, webhooks).
enum ChangedStore: Sendable {
    case vault
    case registry
}

extension SecretService {
    /// Runs `change` in one transaction of `store` that commits only once the audit entries it
    /// returns are durable: a change whose entries cannot be written is rolled back and the
    /// request gets 503 (`APIError.auditUnavailable`), so every change that happened is in the
    /// log. The entries join the audit writer's group commit while the transaction waits (the
    /// actor runs on a queue of its own, so the wait holds no event loop), so changes take turns
    /// and each waits for its own entries. What remains: a crash, or a commit that fails after
    /// the entries are durable, leaves entries for a change that did not happen (after a failed
    /// commit a `failure` entry follows them, when it can be written); never a change without
    /// its entries.
    func change<T: Sendable>(in store: ChangedStore,
                             _ change: (LocalVault, ServerRegistry, Timestamp) throws(VSecureError) -> (T, [AuditEvent])) throws -> T {
        try self.change(in: store, change, then: { _ in () }).0
    }

    /// `change(in:_:)`, then `after` on the vault in the same actor turn, once the change has
    /// committed (a purge learns there whether its pages may remain).
    func change<T: Sendable, U: Sendable>(in store: ChangedStore,
                                          _ change: (LocalVault, ServerRegistry, Timestamp) throws(VSecureError) -> (T, [AuditEvent]),
                                          then after: (LocalVault) -> U) throws -> (T, U) {
        let now = clock()
        let result = try commitAudited(in: store) { () throws(VSecureError) in try change(vault, registry, now) }
        return (result, after(vault))
    }

    /// The transaction of `change(in:)` and of `idempotent`; VSecureErrors come out as
    /// APIErrors, an audit failure as `APIError.auditUnavailable`.
    private func commitAudited<T>(in store: ChangedStore, _ change: () throws(VSecureError) -> (T, [AuditEvent])) throws -> T {
        var auditFailed = false
        var recorded: [AuditEvent] = []
        func body() throws(VSecureError) -> T {
            let (result, events) = try change()
            do throws(VSecureError) {
                try audit.recordNow(events)
            } catch {
                auditFailed = true
                throw error
            }
            recorded = events
            return result
        }
        do throws(VSecureError) {
            switch store {
            case .vault: return try vault.atomically(body)
            case .registry: return try registry.atomically(body)
            }
        } catch {
            if auditFailed { throw APIError.auditUnavailable }
            if !recorded.isEmpty {
                // The entries are durable but the commit failed: record that too, if the log
                // takes it (the request fails either way).
                try? audit.recordNow(recorded.map(\.commitFailed))
            }
            throw APIError(error)
        }
    }
}
