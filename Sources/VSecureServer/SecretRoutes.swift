import Hummingbird
import VSecureCore
import VSecureCrypto
import VSecureStore
import VSecureVault

/// `/v1/security/secrets…`: the secret lifecycle over HTTP.
struct SecretRoutes {
    let service: SecretService
    let limits: ServerLimits

    func register(_ group: RouterGroup<ServerContext>, table: RouteTable) {
        table.add(group, .post, "secrets", create)
        table.add(group, .get, "secrets", list)
        table.add(group, .get, "secrets/:name", get)
        table.add(group, .put, "secrets/:name", update)
        table.add(group, .delete, "secrets/:name", delete)
        table.add(group, .get, "secrets/:name/versions", versions)
        table.add(group, .post, "secrets/:name/rollback", rollback)
        table.add(group, .get, "secrets/:name/diff", diff)
        table.add(group, .post, "secrets/:name/rotate", rotate)
        // `secrets/batch/…` is also where the batch routes live, and the router does not fall back
        // from the fixed segment `batch` to `:name`: without these, a secret named `batch` could
        // be created but never read, changed or deleted. Same templates, so not in the table.
        let named: [(HTTPRequest.Method, String, @Sendable (Request, ServerContext) async throws -> Response)] = [
            (.get, "", get), (.put, "", update), (.delete, "", delete),
            (.get, "/versions", versions), (.post, "/rollback", rollback), (.get, "/diff", diff), (.post, "/rotate", rotate),
        ]
        for (method, suffix, handler) in named {
            group.on(RouterPath("secrets/batch" + suffix), method: method) { request, context in
                var context = context
                context.coreContext.parameters.append(key: "name", value: "batch")
                return try await handler(request, context)
            }
        }
    }

    static let createFields: Set<String> = ["name", "value", "valueBase64", "environment", "tags", "metadata", "description",
                                            "expiresIn", "expiresAt", "rotationPolicy"]

    @Sendable func create(_ request: Request, context: ServerContext) async throws -> Response {
        let body = try await JSONBody.parse(request, limit: limits.maxBodyBytes, timeoutSeconds: limits.bodyTimeoutSeconds)
        try body.rejectUnknown(Self.createFields)
        // Creating without a policy is the same as null.
        let rotation = try RotationPolicyJSON.parse(body["rotationPolicy"], settings: service.rotationSettings) ?? nil
        guard let nameText = try body.string("name") else { throw APIError(.validationError, "field 'name' is required") }
        let name = try APIError.wrap { () throws(VSecureError) in try SecretName(nameText) }
        let tagTexts = try body.strings("tags")
        let tags = try APIError.wrap { () throws(VSecureError) in try parseTags(tagTexts) }
        let explicit = try body.string("environment").map { text in try APIError.wrap { () throws(VSecureError) in try EnvironmentName(text) } }
        let configured = service.environments
        let defaultEnvironment = service.defaultEnvironment
        let environment = try APIError.wrap { () throws(VSecureError) in
            try chooseEnvironment(explicit: explicit, tags: tags, configured: configured, default: defaultEnvironment)
        }
        try await context.authorize(.write, environment: environment, name: name, auditAs: .created, service: service)
        let metadataPairs = try body.stringMap("metadata")
        let metadata = try APIError.wrap { () throws(VSecureError) in try parseMetadata(metadataPairs) }
        let description = try body.string("description")
        let expiresIn = try body.string("expiresIn"), expiresAt = try body.string("expiresAt")
        guard let value = try body.secretValue(required: true) else { throw APIError(.validationError, "field 'value' is required") }
        let response = try await service.idempotent(request, context: context, body: body) { vault, now throws(VSecureError) in
            let attributes = SecretAttributes(tags: tags, metadata: metadata,
                                              expiresAt: try parseExpiry(expiresIn: expiresIn, expiresAt: expiresAt, now: now),
                                              description: description)
            let created = try value.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
                try vault.create(environment: environment, name: name, value: raw, attributes: attributes,
                                 actor: context.actorName, now: now)
            }
            if let rotation { try vault.setRotationPolicy(environment: environment, name: name, policy: rotation, now: now) }
            return AuditedAnswer(status: .created, body: .object(try vault.responseMembers(created, now: now)),
                                 events: [context.auditEvent(.secrets, .created, environment: environment, name: name.rawValue, version: 1,
                                                             now: now)])
        }
        return response
    }

    @Sendable func list(_ request: Request, context: ServerContext) async throws -> Response {
        var query = LocalVault.ListQuery(environment: nil)
        query.environment = try request.query("environment").map { text in try service.environment(text) }
        try await context.requireScope(.read, environment: query.environment, service: service)
        query.tags = try APIError.wrap { () throws(VSecureError) in
            try parseTags(request.query("tags")?.split(separator: ",", omittingEmptySubsequences: false).map(String.init))
        }
        query.search = request.query("search")
        query.includeExpired = try request.queryBool("includeExpired")
        let limit = try request.queryInt("limit", range: 1...100) ?? 50
        let cursor = try request.query("cursor").map { text -> String in
            guard let bytes = Base64.decode(text), let decoded = String(validating: bytes, as: UTF8.self) else {
                throw APIError(.validationError, "the cursor is malformed")
            }
            return decoded
        }
        let (secrets, rotations, now) = try await service.withVault { vault, now throws(VSecureError) in
            let entries = try vault.rotationEntries(environment: query.environment).compactMap { entry -> (String, RotationPolicy, RotationRecord)? in
                guard let policy = entry.policy, let record = entry.record else { return nil }
                return ("\(entry.environment.rawValue)/\(entry.name.rawValue)", policy, record)
            }
            return (try vault.list(query, now: now), entries, now)
        }
        var rotationByPath: [String: (RotationPolicy, RotationRecord)] = [:]
        for (path, policy, record) in rotations { rotationByPath[path] = (policy, record) }
        // Only what the key may read is listed or counted. Sorted by path, the order the cursor
        // compares in (the store's environment-then-name order differs when an environment name
        // extends another with '-', e.g. app and app-eu, and a walk would skip or repeat).
        let visible = secrets.filter { context.mayRead($0.environment, $0.name, now: now) }
            .sorted { $0.path < $1.path }
        let remaining = cursor.map { after in visible.filter { $0.path > after } } ?? visible
        let page = Array(remaining.prefix(limit))
        let hasMore = remaining.count > page.count
        let nextCursor: JSONValue = hasMore
            ? .string(ServerRegistry.base64URL(Array(page.last!.path.utf8))) : .null
        return JSONResponse.make(.object([
            ("data", .array(page.map { secret in
                .object(secret.jsonMembers(now: now) + RotationPolicyJSON.members(rotationByPath[secret.path], expiresAt: secret.attributes.expiresAt,
                                                                                     now: now))
            })),
            ("pagination", .object([("cursor", nextCursor), ("hasMore", .bool(hasMore)), ("totalCount", .int(visible.count))])),
        ]))
    }

    @Sendable func get(_ request: Request, context: ServerContext) async throws -> Response {
        let name = try context.secretName()
        let query = request.uri.queryParameters
        let environment = try service.environment(query.query("environment"))
        try await context.authorize(.read, environment: environment, name: name, service: service)
        let version = try query.queryInt("version", range: 1...Int(Int32.max))
        let allowExpired = try query.queryBool("allowExpired")
        let read = try await readRecordingExpiry(environment: environment, name: name, version: version, allowExpired: allowExpired,
                                                 context: context)
        let currentVersion = read.currentVersion
        // Without its audit entry the answer is wiped, not sent (503).
        let body = try await read.body.afterAudit {
            try await service.record(context.auditEvent(.secrets, .accessed, environment: environment, name: name.rawValue,
                                                        version: version ?? currentVersion, now: service.clock()))
        }
        // The ETag is the current version (what If-Match compares), even when an older one was read.
        return Response(status: .ok, headers: [.contentType: "application/json", .eTag: "\"\(currentVersion)\""],
                        body: .init(byteBuffer: body))
    }

    /// `SecretService.readSecret`; a read refused because the secret expired (410) is recorded
    /// as a failed read, as on a local vault.
    private func readRecordingExpiry(environment: EnvironmentName, name: SecretName, version: Int?, allowExpired: Bool,
                                     context: ServerContext) async throws -> SecretService.SecretRead {
        let refusal: VSecureError
        do {
            return try service.readSecret(environment: environment, name: name, version: version, allowExpired: allowExpired)
        } catch {
            guard error.status == .expired else { throw error }
            refusal = error
        }
        try await service.record(context.auditEvent(.secrets, .accessed, outcome: .failure, environment: environment, name: name.rawValue,
                                                    version: version, details: [("reason", "expired")], now: service.clock()))
        throw refusal
    }

    static let updateFields: Set<String> = ["environment", "value", "valueBase64", "tags", "addTags", "removeTags", "metadata",
                                            "removeMetadata", "expiresIn", "expiresAt", "noExpiry", "description", "ifVersion",
                                            "rotationPolicy"]

    @Sendable func update(_ request: Request, context: ServerContext) async throws -> Response {
        let name = try context.secretName()
        let body = try await JSONBody.parse(request, limit: limits.maxBodyBytes, timeoutSeconds: limits.bodyTimeoutSeconds)
        try body.rejectUnknown(Self.updateFields)
        // nil: leave the policy; .some(nil): remove it.
        let rotation = try RotationPolicyJSON.parse(body["rotationPolicy"], settings: service.rotationSettings)
        let environment = try service.environment(try body.string("environment") ?? request.query("environment"))
        try await context.authorize(.write, environment: environment, name: name, service: service)
        var ifVersion = try body.int("ifVersion")
        if let match = request.headers[.ifMatch] {
            // One entity tag, "N" or W/"N". Not the digits of anything: `"1", "2"` would read as 12.
            var tag = Substring(match).drop { $0 == " " }
            while tag.last == " " { tag = tag.dropLast() }
            if tag.hasPrefix("W/") { tag = tag.dropFirst(2) }
            if tag.count >= 2, tag.hasPrefix("\""), tag.hasSuffix("\"") { tag = tag.dropFirst().dropLast() }
            guard !tag.isEmpty, tag.count <= 10, tag.allSatisfy({ $0.isASCII && $0.isNumber }), let version = Int(tag) else {
                throw APIError(.validationError, "If-Match must hold one version, e.g. \"3\"")
            }
            if let ifVersion, ifVersion != version { throw APIError(.validationError, "If-Match and ifVersion disagree") }
            ifVersion = version
        }
        var change = AttributeChange()
        let replaceTags = try body.strings("tags"), addTags = try body.strings("addTags"), removeTags = try body.strings("removeTags")
        let metadataPairs = try body.stringMap("metadata"), removeMetadata = try body.strings("removeMetadata") ?? []
        try APIError.wrap { () throws(VSecureError) in
            if let replaceTags { change.replaceTags = try parseTags(replaceTags) }
            change.addTags = try parseTags(addTags)
            change.removeTags = try parseTags(removeTags)
            change.setMetadata = try parseMetadata(metadataPairs)
            for key in removeMetadata {
                _ = try MetadataEntry(key: key, value: "")
                change.removeMetadata.append(key)
            }
        }
        if body.has("description") { change.description = .some(try body.string("description")) }
        let noExpiry = try body.bool("noExpiry") ?? false
        let expiresIn = try body.string("expiresIn"), expiresAt = try body.string("expiresAt")
        if noExpiry && (expiresIn != nil || expiresAt != nil) {
            throw APIError(.validationError, "noExpiry cannot be combined with expiresIn or expiresAt")
        }
        let value = try body.secretValue(required: false)
        let requestedChange = change, expectedVersion = ifVersion
        return try await service.idempotent(request, context: context, body: body) { vault, now throws(VSecureError) in
            var change = requestedChange
            let ifVersion = expectedVersion
            if noExpiry { change.expiresAt = .some(nil) }
            else if let expiry = try parseExpiry(expiresIn: expiresIn, expiresAt: expiresAt, now: now) { change.expiresAt = .some(expiry) }
            if value == nil && change.isEmpty && rotation == nil {
                throw VSecureError.usage("nothing to update: give a value, attribute changes or a rotationPolicy")
            }
            var previousVersion: Int, valueChanged = false
            if value != nil || !change.isEmpty {
                let result = try vault.update(environment: environment, name: name, lockedValue: value, change: change,
                                              ifVersion: ifVersion, actor: context.actorName, now: now)
                previousVersion = result.previousVersion
                valueChanged = result.newVersion != nil
            } else {
                let current = try vault.summary(environment: environment, name: name)
                if let ifVersion, ifVersion != current.currentVersion {
                    throw VSecureError(.conflict, "\(name) in \(environment) is at version \(current.currentVersion), not \(ifVersion); nothing was changed")
                }
                previousVersion = current.currentVersion
            }
            if let rotation { try vault.setRotationPolicy(environment: environment, name: name, policy: rotation, now: now) }
            let updated = try vault.summary(environment: environment, name: name)
            var members = try vault.responseMembers(updated, now: now)
            members.append(("previousVersion", .int(previousVersion)))
            members.append(("valueChanged", .bool(valueChanged)))
            return AuditedAnswer(status: .ok, body: .object(members),
                                 events: [context.auditEvent(.secrets, .updated, environment: environment, name: name.rawValue,
                                                             version: updated.currentVersion, now: now)])
        }
    }

    @Sendable func delete(_ request: Request, context: ServerContext) async throws -> Response {
        let name = try context.secretName()
        let environment = try service.environment(request.query("environment"))
        try await context.authorize(.delete, environment: environment, name: name, service: service)
        let purge = try request.queryBool("purge")
        // A purge copies the WAL back once its transaction has committed: whether its pages may
        // remain is known only then.
        let (_, residue) = try await service.change(in: .vault, { vault, _, now throws(VSecureError) in
            try vault.delete(environment: environment, name: name, purge: purge, now: now)
            return ((), [context.auditEvent(.secrets, .deleted, environment: environment, name: name.rawValue,
                                            details: purge ? [("purge", "true")] : [], now: now)])
        }, then: { vault in purge && vault.purgedPagesMayRemain })
        if residue { context.logger.warning("\(LocalSecretStore.purgeResidueWarning(name, environment))") }
        return Response(status: .noContent)
    }

    @Sendable func versions(_ request: Request, context: ServerContext) async throws -> Response {
        let name = try context.secretName()
        let environment = try service.environment(request.query("environment"))
        try await context.authorize(.read, environment: environment, name: name, service: service)
        let body = try await service.withVault { vault, _ throws(VSecureError) -> JSONValue in
            let (secret, versions) = try vault.versions(environment: environment, name: name)
            return .object([
                ("name", .string(secret.name.rawValue)),
                ("environment", .string(secret.environment.rawValue)),
                ("currentVersion", .int(secret.currentVersion)),
                ("data", .array(versions.map(\.json))),
            ])
        }
        try await service.record(context.auditEvent(.secrets, .accessed, environment: environment, name: name.rawValue,
                                                    details: [("view", "versions")], now: service.clock()))
        return JSONResponse.make(body)
    }

    @Sendable func rollback(_ request: Request, context: ServerContext) async throws -> Response {
        let name = try context.secretName()
        let body = try await JSONBody.parse(request, limit: limits.maxBodyBytes, timeoutSeconds: limits.bodyTimeoutSeconds)
        try body.rejectUnknown(["environment", "version"])
        let environment = try service.environment(try body.string("environment") ?? request.query("environment"))
        try await context.authorize(.write, environment: environment, name: name, auditAs: .rolledBack, service: service)
        let target = try body.int("version")
        if let target, target < 1 { throw APIError(.validationError, "field 'version' must be 1 or more") }
        return try await service.idempotent(request, context: context, body: body) { vault, now throws(VSecureError) in
            let result = try vault.rollback(environment: environment, name: name, to: target, actor: context.actorName, now: now)
            var members = try vault.responseMembers(result.secret, now: now)
            members.append(("previousVersion", .int(result.previousVersion)))
            members.append(("restoredVersion", .int(target ?? result.previousVersion - 1)))
            return AuditedAnswer(status: .ok, body: .object(members),
                                 events: [context.auditEvent(.secrets, .rolledBack, environment: environment, name: name.rawValue,
                                                             version: result.secret.currentVersion, now: now)])
        }
    }

    @Sendable func diff(_ request: Request, context: ServerContext) async throws -> Response {
        let name = try context.secretName()
        let environment = try service.environment(request.query("environment"))
        try await context.authorize(.read, environment: environment, name: name, service: service)
        let from = try request.queryInt("from", range: 1...Int(Int32.max))
        let to = try request.queryInt("to", range: 1...Int(Int32.max))
        let body = try await service.withVault { vault, _ throws(VSecureError) -> JSONValue in
            let (secret, versions) = try vault.versions(environment: environment, name: name)
            return try VersionDiff(secret: secret, versions: versions, from: from, to: to).json
        }
        try await service.record(context.auditEvent(.secrets, .accessed, environment: environment, name: name.rawValue,
                                                    details: [("view", "diff")], now: service.clock()))
        return JSONResponse.make(body)
    }
}

extension SecretRoutes {
    /// `POST /secrets/{name}/rotate`: a new value now, made by the secret's policy (due or not).
    /// The environment comes from `?environment=` or an optional body `{"environment": …}`.
    /// With `onlyIfDue` (query or body), it rotates only a secret that is due, checked again
    /// inside the write transaction that claims it (as `vsecure rotation:run` does); one that is
    /// not due, is being rotated by another run, or has a manual policy is answered 200 with
    /// `"rotated": false` and the reason, and nothing changes.
    ///
    /// Honours `Idempotency-Key`: a replay returns the first answer (which holds no value) and
    /// neither rotates again nor records a second `rotated` audit entry.
    ///
    /// Refusals say why in `details.reason`, so clients can tell them apart: `noPolicy`,
    /// `manualPolicy`, `commandNotAllowed` (409) and `inProgress` (409, with `details.skipped`).
    /// A failed rotation (422) carries the recorded reason in `details.failure`.
    @Sendable func rotate(_ request: Request, context: ServerContext) async throws -> Response {
        let name = try context.secretName()
        var environmentText = request.query("environment")
        var onlyIfDue = try request.queryBool("onlyIfDue")
        var bodyBytes: [UInt8] = []
        // The body is optional: an empty one is no body, whatever its Content-Type says.
        if request.headers[.contentType] != nil,
           case let bytes = try await JSONBody.collect(request, limit: limits.maxBodyBytes, timeoutSeconds: limits.bodyTimeoutSeconds),
           !bytes.isEmpty {
            let body = try JSONBody.parse(bytes: bytes)
            try body.rejectUnknown(["environment", "onlyIfDue"])
            environmentText = try body.string("environment") ?? environmentText
            if let flag = try body.bool("onlyIfDue") { onlyIfDue = flag }
            bodyBytes = body.raw
        }
        let environment = try service.environment(environmentText)
        try await context.authorize(.write, environment: environment, name: name, auditAs: .rotated, service: service)
        guard let rotator = service.rotator else { throw APIError(.serviceUnavailable, "this server does not rotate secrets") }
        let rotated = Captured<RotationResult>()
        let dueOnly = onlyIfDue
        // The `rotated` entry is written after the rotation has committed and its answer is
        // recorded (unlike other changes, whose entries commit with them: a rotation command runs
        // outside any transaction), and also when the answer could not be made after the
        // rotation. A replay rotated nothing, so it writes no second one.
        func recordRotation() async throws {
            if let result = rotated.value,
               let event = SecretRotator.auditEvent(result, actor: context.auditActor, request: context.auditRequest, now: service.clock()) {
                try await service.record(event)
            }
        }
        let response: Response
        do {
            response = try await service.idempotent(request, context: context, bodyBytes: bodyBytes, claims: rotator.requestClaims) {
                try await rotateOnce(environment: environment, name: name, onlyIfDue: dueOnly, rotator: rotator, context: context,
                                     rotated: rotated)
            }
        } catch {
            try await recordRotation()
            throw error
        }
        try await recordRotation()
        return response
    }

    /// One rotation and its answer (never a value). Sets `rotated` when a new version was made;
    /// a refusal or a failure throws (and a failure is recorded in the audit log here).
    private func rotateOnce(environment: EnvironmentName, name: SecretName, onlyIfDue: Bool, rotator: SecretRotator,
                            context: ServerContext, rotated: Captured<RotationResult>) async throws -> (HTTPResponse.Status, JSONValue) {
        let policy = try await service.withVault { vault, _ throws(VSecureError) -> RotationPolicy? in
            try vault.rotation(secretID: try vault.summary(environment: environment, name: name).id)?.0
        }
        guard let policy else {
            throw APIError(.conflict, "\(name) in \(environment) has no rotation policy",
                           details: ["reason": "noPolicy", "hint": "set one with PUT /v1/security/secrets/\(name) and a rotationPolicy"])
        }
        switch policy.source {
        case .manual:
            // With onlyIfDue the vault answers a manual policy with a skip (due or not), as for
            // `vsecure rotation:run`.
            if !onlyIfDue {
                throw APIError(.conflict, "\(name) in \(environment) has a manual rotation policy: the server cannot make its next value",
                               details: ["reason": "manualPolicy",
                                         "hint": "give it a new value with PUT /v1/security/secrets/\(name); that counts as its rotation"])
            }
        case .command(let argv):
            if let refusal = service.rotationSettings.commandRefusal(argv) {
                throw APIError(.conflict, "\(name) in \(environment) has a rotation command this server does not run: \(refusal)",
                               details: ["reason": "commandNotAllowed"])
            }
        case .generate:
            break
        }
        let result = try await APIError.wrap { () async throws(VSecureError) in
            try await rotator.rotate(environment: environment, name: name, onlyIfDue: onlyIfDue, actor: context.actorName)
        }
        SecretRotator.log(result, logger: context.logger)
        switch result.outcome {
        case .rotated(let from, _):
            rotated.set(result)
            let body = try await service.withVault { vault, now throws(VSecureError) -> JSONValue in
                var members = try vault.responseMembers(try vault.summary(environment: environment, name: name), now: now)
                members.append(("previousVersion", .int(from)))
                members.append(("rotated", .bool(true)))
                return .object(members)
            }
            return (.ok, body)
        case .skipped(let reason) where onlyIfDue:
            let body = try await service.withVault { vault, now throws(VSecureError) -> JSONValue in
                var members = try vault.responseMembers(try vault.summary(environment: environment, name: name), now: now)
                members.append(("rotated", .bool(false)))
                members.append(("skipped", .string(reason)))
                return .object(members)
            }
            return (.ok, body)
        case .skipped(let reason):
            throw APIError(.conflict, "\(name) in \(environment) was not rotated: \(reason)",
                           details: ["reason": "inProgress", "skipped": reason])
        case .failed(let reason):
            if let event = SecretRotator.auditEvent(result, actor: context.auditActor, request: context.auditRequest, now: service.clock()) {
                try await service.record(event)
            }
            throw APIError(.rotationFailed, "the rotation of \(name) in \(environment) failed; nothing changed: \(reason)",
                           details: ["failure": reason])
        }
    }
}

extension ServerContext {
    /// Who version records name: the API key's name and id.
    var actorName: String {
        apiKey.map { "\($0.name) (\($0.id))" } ?? "unknown"
    }
}

extension APIError {
    static func wrap<T>(_ body: () throws(VSecureError) -> T) throws -> T {
        do { return try body() } catch { throw APIError(error) }
    }

    static func wrap<T>(_ body: () async throws(VSecureError) -> T) async throws -> T {
        do { return try await body() } catch { throw APIError(error) }
    }
}

