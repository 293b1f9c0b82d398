import HTTPTypes
import Hummingbird
import VSecureCore
import VSecureCrypto
import VSecureVault

/// `/v1/security/secrets/batch/…`: many secrets in one request.
struct BatchRoutes {
    let service: SecretService
    let limits: ServerLimits

    /// The launcher's run id (`VSECURE_RUN_ID`), written into the batch's audit entry.
    static let runIDHeader = HTTPField.Name("VSecure-Run-Id")!

    func register(_ group: RouterGroup<ServerContext>, table: RouteTable) {
        table.add(group, .post, "secrets/batch/get", batchGet)
        table.add(group, .post, "secrets/batch/upsert", batchUpsert)
    }

    /// Every value in one response; a name that does not exist is listed under `missing` and an
    /// expired one under `expired` (unless allowExpired), never dropped silently. A secret the
    /// caller may not read, named or matched by tags, refuses the whole batch (403 naming the
    /// first such path): a launcher must never start with part of its secrets.
    @Sendable func batchGet(_ request: Request, context: ServerContext) async throws -> Response {
        let body = try await JSONBody.parse(request, limit: limits.maxBodyBytes, timeoutSeconds: limits.bodyTimeoutSeconds)
        try body.rejectUnknown(["names", "environment", "tags", "tagSelections", "allowExpired"])
        let environment = try service.environment(try body.string("environment"))
        try await context.requireScope(.read, environment: environment, service: service)
        let runID = request.headers[Self.runIDHeader].flatMap { RequestIDMiddleware.isValidID($0) ? $0 : nil }
        var names: [SecretName] = []
        let nameTexts = try body.strings("names") ?? []
        let tagTexts = try body.strings("tags")
        try APIError.wrap { () throws(VSecureError) in
            for text in nameTexts {
                let name = try SecretName(text)
                if !names.contains(name) { names.append(name) }
            }
        }
        let tags = try APIError.wrap { () throws(VSecureError) in try parseTags(tagTexts) }
        // tagSelections: several AND-groups, unioned (what vsecure-run sends for select.tags + --tags).
        var selections: [[VSecureCore.Tag]] = tags.isEmpty ? [] : [tags]
        if case .array(let groups)? = body["tagSelections"] {
            for (index, group) in groups.enumerated() {
                guard case .array(let items) = group else { throw APIError(.validationError, "tagSelections[\(index)] must be a list of tags") }
                var texts: [String] = []
                for item in items {
                    guard case .string(let text) = item else { throw APIError(.validationError, "tagSelections[\(index)] must be a list of tags") }
                    texts.append(text)
                }
                let parsed = try APIError.wrap { () throws(VSecureError) in try parseTags(texts) }
                if !parsed.isEmpty { selections.append(parsed) }
            }
        } else if body.has("tagSelections"), body["tagSelections"] != .null {
            throw APIError(.validationError, "field 'tagSelections' must be a list of lists of tags")
        }
        guard names.count <= limits.maxBatchSize else {
            throw APIError(.validationError, "at most \(limits.maxBatchSize) names per batch")
        }
        if names.isEmpty && selections.isEmpty { throw APIError(.validationError, "give names, tags, or both") }
        let allowExpired = try body.bool("allowExpired") ?? false
        // Named secrets are checked whether or not they exist, so a refusal does not tell which do.
        try await context.authorize(.read, environment: environment, names: names, service: service)
        let now = service.clock()
        let read = try service.readBatch(environment: environment, names: names, tagSelections: selections, allowExpired: allowExpired,
                                         permits: { context.mayRead(environment, $0, now: now) })
        switch consume read {
        case .denied(let name):
            let path = secretPath(environment, name)
            try await context.deny(.read, path: path, decision: context.decide(.read, path: path, now: now), service: service)
        case .served(let body, let items):
            // Without its audit entry the answer is wiped, not sent (503).
            let response = try await body.afterAudit {
                try await service.record(context.auditEvent(.secrets, .accessed, environment: environment, items: items,
                                                            details: runID.map { [("runId", $0)] } ?? [], now: service.clock()))
            }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: response))
        }
    }

    struct UpsertItem: Sendable {
        var name: SecretName
        var value: SecureBytes
        var tags: [Tag]?
        var metadata: [MetadataEntry]
        var description: String?
        var expiresIn: String?
        var expiresAt: String?
    }

    /// All or nothing: every item is validated first, then all are written in one transaction.
    @Sendable func batchUpsert(_ request: Request, context: ServerContext) async throws -> Response {
        let body = try await JSONBody.parse(request, limit: limits.maxBodyBytes, timeoutSeconds: limits.bodyTimeoutSeconds)
        try body.rejectUnknown(["environment", "secrets"])
        let environment = try service.environment(try body.string("environment"))
        try await context.requireScope(.write, environment: environment, service: service)
        guard case .array(let entries)? = body["secrets"], !entries.isEmpty else {
            throw APIError(.validationError, "field 'secrets' must be a non-empty list")
        }
        guard entries.count <= limits.maxBatchSize else { throw APIError(.validationError, "at most \(limits.maxBatchSize) secrets per batch") }
        var items: [UpsertItem] = []
        for (index, entry) in entries.enumerated() {
            guard case .object(let members) = entry else { throw APIError(.validationError, "secrets[\(index)] must be an object") }
            let item = JSONBody(members: members)
            do {
                try item.rejectUnknown(["name", "value", "valueBase64", "tags", "metadata", "description", "expiresIn", "expiresAt"])
                guard let nameText = try item.string("name") else { throw APIError(.validationError, "field 'name' is required") }
                let name = try APIError.wrap { () throws(VSecureError) in try SecretName(nameText) }
                guard !items.contains(where: { $0.name == name }) else { throw APIError(.validationError, "\(name) appears twice") }
                let tagList = try item.strings("tags")
                let metadataPairs = try item.stringMap("metadata")
                items.append(UpsertItem(
                    name: name, value: try item.secretValue(required: true)!,
                    tags: try tagList.map { list in try APIError.wrap { () throws(VSecureError) in try parseTags(list) } },
                    metadata: try APIError.wrap { () throws(VSecureError) in try parseMetadata(metadataPairs) },
                    description: try item.string("description"), expiresIn: try item.string("expiresIn"), expiresAt: try item.string("expiresAt")))
            } catch let error as APIError {
                throw APIError(error.code, "secrets[\(index)]: \(error.message)", details: error.details)
            }
        }
        try await context.authorize(.write, environment: environment, names: items.map(\.name), service: service)
        let batch = items
        let template = context.auditEvent(.secrets, .updated, environment: environment, now: service.clock())
        // All or nothing, with its entries: `idempotent` runs it in one transaction.
        return try await service.idempotent(request, context: context, body: body) { vault, now throws(VSecureError) in
            var created: [JSONValue] = [], updated: [JSONValue] = [], unchanged: [JSONValue] = []
            var createdEntries: [AuditEvent] = [], updatedEntries: [AuditEvent] = [], unchangedEntries: [AuditEvent] = []
            // Each entry names the version the secret is at after the batch.
            func entry(_ action: AuditEvent.Action, _ name: SecretName, version: Int) -> AuditEvent {
                var event = template
                event.action = action
                event.name = name.rawValue
                event.version = version
                event.time = now
                return event
            }
            for (index, item) in batch.enumerated() {
                let expiry: Timestamp?
                do throws(VSecureError) {
                    expiry = try parseExpiry(expiresIn: item.expiresIn, expiresAt: item.expiresAt, now: now)
                } catch {
                    throw VSecureError(error.status, "secrets[\(index)]: \(error.message)", hints: error.hints)
                }
                try item.value.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
                    if let current = try vault.currentFingerprint(environment: environment, name: item.name) {
                        var change = AttributeChange()
                        change.replaceTags = item.tags
                        change.setMetadata = item.metadata
                        if let expiry { change.expiresAt = .some(expiry) }
                        if let description = item.description { change.description = .some(description) }
                        let same = current == vault.fingerprint(of: raw)
                        let result = try vault.update(environment: environment, name: item.name, value: same ? nil : raw, change: change,
                                                      ifVersion: nil, actor: context.actorName, now: now)
                        if same {
                            unchanged.append(.string(item.name.rawValue))
                            unchangedEntries.append(entry(.updated, item.name, version: result.secret.currentVersion))
                        } else {
                            updated.append(.string(item.name.rawValue))
                            updatedEntries.append(entry(.updated, item.name, version: result.secret.currentVersion))
                        }
                    } else {
                        let secret = try vault.create(environment: environment, name: item.name, value: raw,
                                                      attributes: SecretAttributes(tags: item.tags ?? [], metadata: item.metadata, expiresAt: expiry,
                                                                                   description: item.description),
                                                      actor: context.actorName, now: now)
                        created.append(.string(item.name.rawValue))
                        createdEntries.append(entry(.created, item.name, version: secret.currentVersion))
                    }
                }
            }
            return AuditedAnswer(status: .ok,
                                 body: .object([("environment", .string(environment.rawValue)), ("created", .array(created)),
                                                ("updated", .array(updated)), ("unchanged", .array(unchanged))]),
                                 events: createdEntries + updatedEntries + unchangedEntries)
        }
    }
}
