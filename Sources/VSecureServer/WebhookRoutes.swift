import Hummingbird
import VSecureCore
import VSecureVault

/// `/v1/security/webhooks…`, behind the scope `webhooks:manage`. The signing secret is shown
/// once, in the answer that creates the webhook. A key limited to some environments manages
/// only webhooks whose `secret` filter names one of them, so it never hears of other
/// environments' secrets.
struct WebhookRoutes {
    let service: SecretService
    let limits: ServerLimits

    static let createFields: Set<String> = ["url", "events", "secret"]

    func register(_ group: RouterGroup<ServerContext>, table: RouteTable) {
        table.add(group, .post, "webhooks", create)
        table.add(group, .get, "webhooks", list)
        table.add(group, .delete, "webhooks/:id", delete)
        table.add(group, .post, "webhooks/:id/test", test)
        table.add(group, .get, "webhooks/:id/deliveries", deliveries)
    }

    static func json(_ hook: ServerRegistry.Webhook, signingSecret: String?) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("id", .string(hook.id)), ("url", .string(hook.url)), ("events", .array(hook.events.map(JSONValue.string))),
            ("secret", .optional(hook.secretFilter)), ("createdAt", .string(hook.createdAt.iso8601)),
        ]
        if let signingSecret { members.append(("signingSecret", .string(signingSecret))) }
        return .object(members)
    }

    static func invalid(_ field: String, _ problem: String) -> APIError {
        APIError(.validationError, "field \(Quoted(field)) \(problem)", details: ["field": field])
    }

    @Sendable func create(_ request: Request, context: ServerContext) async throws -> Response {
        let caller = try await context.requireRecorded(.webhooksManage, .webhooks, .created, service: service)
        let body = try await JSONBody.parse(request, limit: limits.maxBodyBytes, timeoutSeconds: limits.bodyTimeoutSeconds)
        if let unknown = body.members.first(where: { !Self.createFields.contains($0.0) }) {
            throw APIError(.validationError, "unknown field \(Quoted(unknown.0))",
                           details: ["field": unknown.0, "allowed": Self.createFields.sorted().joined(separator: ", ")])
        }
        guard let urlText = try field("url", { try body.string("url") }) else { throw Self.invalid("url", "is required") }
        if case .failure(let problem) = WebhookURL.parse(urlText) { throw Self.invalid("url", problem.message) }
        let allowedEvents = SecretEvent.Kind.allCases.map(\.rawValue)
        guard let events = try field("events", { try body.strings("events") }), !events.isEmpty else {
            throw APIError(.validationError, "field 'events' is required: a list of event types",
                           details: ["field": "events", "allowed": allowedEvents.joined(separator: ", ")])
        }
        for event in events where !allowedEvents.contains(event) {
            throw APIError(.validationError, "field 'events' has an unknown event type \(Quoted(event))",
                           details: ["field": "events", "allowed": allowedEvents.joined(separator: ", ")])
        }
        let filter = try field("secret", { try body.string("secret") })
        if let filter {
            guard filter.contains("/") || filter.contains("**") else {
                throw APIError(.validationError, "field 'secret' must be a pattern over ENVIRONMENT/NAME, such as \(filter)/* or production/\(filter)",
                               details: ["field": "secret"])
            }
            do { _ = try PathPattern(filter) } catch {
                throw APIError(.validationError, "field 'secret' " + error.message.replacingOccurrences(of: "invalid path pattern ", with: "is not a path pattern: "),
                               details: ["field": "secret", "hint": "ENVIRONMENT/NAME, where * matches within one part: production/*, staging/DB_URL"])
            }
        }
        if let allowed = caller.environments {
            guard let filter, let environment = Self.environment(of: filter), allowed.contains(where: { $0.rawValue == environment }) else {
                throw APIError(.permissionDenied, "a key limited to \(allowed.map(\.rawValue).joined(separator: ", ")) can only create webhooks whose 'secret' filter starts with one of them, such as \(allowed.first.map(\.rawValue) ?? "production")/*")
            }
        }
        let ordered = allowedEvents.filter(events.contains)
        // Never the URL in the entry: receivers such as chat webhooks carry a token in it.
        var details = [("events", ordered.joined(separator: ","))]
        if let filter { details.append(("secret", filter)) }
        let entryDetails = details
        let (hook, secret) = try await service.change(in: .registry) { vault, registry, now throws(VSecureError) in
            let (hook, secret) = try registry.createWebhook(url: urlText, events: ordered, secretFilter: filter,
                                                            sealingKey: vault.webhookSealingKey, now: now)
            return ((hook, secret), [context.auditEvent(.webhooks, .created, name: hook.id, details: entryDetails, now: now)])
        }
        context.logger.info("webhook \(hook.id) created for \(ordered.joined(separator: ","))")
        return JSONResponse.make(Self.json(hook, signingSecret: secret), status: .created)
    }

    @Sendable func list(_ request: Request, context: ServerContext) async throws -> Response {
        let caller = try await context.requireRecorded(.webhooksManage, .webhooks, .accessed, service: service)
        let hooks = try await APIError.wrap { () async throws(VSecureError) in
            try await service.withRegistry { registry, _ throws(VSecureError) in try registry.listWebhooks() }
        }
        return JSONResponse.make(.object([("data", .array(hooks.filter { Self.visible($0, to: caller) }.map { Self.json($0, signingSecret: nil) }))]))
    }

    @Sendable func delete(_ request: Request, context: ServerContext) async throws -> Response {
        let caller = try await context.requireRecorded(.webhooksManage, .webhooks, .deleted, name: context.parameters.get("id"), service: service)
        let hook = try await visibleWebhook(context, caller: caller)
        let deleted = try await service.change(in: .registry) { _, registry, now throws(VSecureError) in
            let deleted = try registry.deleteWebhook(id: hook.id, now: now)
            return (deleted, deleted ? [context.auditEvent(.webhooks, .deleted, name: hook.id, now: now)] : [])
        }
        guard deleted else { throw APIError(.resourceNotFound, "no webhook \(Quoted(hook.id))") }
        return Response(status: .noContent)
    }

    /// Queues a `ping` to the webhook (202); the worker sends it within its poll interval.
    @Sendable func test(_ request: Request, context: ServerContext) async throws -> Response {
        let caller = try await context.requireRecorded(.webhooksManage, .webhooks, .used, name: context.parameters.get("id"), service: service)
        let hook = try await visibleWebhook(context, caller: caller)
        let eventID = SecretEvent.newID()
        let now = service.clock()
        let body = SecretEvent.envelope(id: eventID, type: SecretEvent.ping, createdAt: now, data: .object([("webhookId", .string(hook.id))]))
        let milliseconds = WebhookDispatcher.wallClockMilliseconds()
        // No body: the digest covers the method and the URL. A replay queues no second ping.
        return try await service.idempotent(request, context: context, bodyBytes: []) { registry, _ throws(VSecureError) in
            let delivery = try registry.enqueueWebhookDelivery(webhookID: hook.id, event: SecretEvent.ping, body: body,
                                                               nowMilliseconds: milliseconds)
            return AuditedAnswer(status: .accepted, body: .object([("deliveryId", .string(delivery)), ("eventId", .string(eventID))]), events: [])
        }
    }

    /// The webhook's latest deliveries (at most 100): what was sent when, and how it went.
    @Sendable func deliveries(_ request: Request, context: ServerContext) async throws -> Response {
        let caller = try await context.requireRecorded(.webhooksManage, .webhooks, .accessed, name: context.parameters.get("id"), service: service)
        let hook = try await visibleWebhook(context, caller: caller)
        let states = try await APIError.wrap { () async throws(VSecureError) in
            try await service.withRegistry { registry, _ throws(VSecureError) in try registry.webhookDeliveries(webhookID: hook.id) }
        }
        func time(_ milliseconds: Int64?) -> JSONValue {
            .optional(milliseconds.map { Timestamp(secondsSinceEpoch: $0 / 1000).iso8601 })
        }
        let data = states.map { state -> JSONValue in
            let status = state.deliveredAt != nil ? "delivered" : state.nextAttemptAt != nil ? "pending" : "failed"
            return .object([
                ("id", .string(state.id)), ("event", .string(state.event)), ("status", .string(status)),
                ("attempts", .int(state.attempts)), ("lastStatus", state.lastStatus.map { .int($0) } ?? .null),
                ("lastError", .optional(state.lastError)), ("deliveredAt", time(state.deliveredAt)),
                ("nextAttemptAt", time(state.nextAttemptAt)),
            ])
        }
        return JSONResponse.make(.object([("data", .array(data))]))
    }

    private func visibleWebhook(_ context: ServerContext, caller: ServerRegistry.APIKey) async throws -> ServerRegistry.Webhook {
        let id = context.parameters.get("id") ?? ""
        let hook = try await APIError.wrap { () async throws(VSecureError) in
            try await service.withRegistry { registry, _ throws(VSecureError) in try registry.webhook(id: id) }
        }
        guard let hook, Self.visible(hook, to: caller) else { throw APIError(.resourceNotFound, "no webhook \(Quoted(id))") }
        return hook
    }

    static func visible(_ hook: ServerRegistry.Webhook, to caller: ServerRegistry.APIKey) -> Bool {
        guard let allowed = caller.environments else { return true }
        guard let environment = hook.secretFilter.flatMap(environment(of:)) else { return false }
        return allowed.contains { $0.rawValue == environment }
    }

    /// The literal environment a filter is confined to, or nil when its first part has a wildcard.
    static func environment(of filter: String) -> String? {
        guard let first = filter.split(separator: "/", omittingEmptySubsequences: false).first, !first.contains("*") else { return nil }
        return String(first)
    }

    private func field<T>(_ name: String, _ read: () throws -> T) throws -> T {
        do { return try read() } catch let error as APIError {
            var named = error
            named.details["field"] = name
            throw named
        }
    }
}
