import Hummingbird
import VSecureCore
import VSecureVault

/// `/v1/security/users…`: people (by email) and service accounts (by name), and their roles.
/// Scope `users:manage`. A user is disabled, never deleted, so audit entries keep their meaning.
struct UserRoutes {
    let service: SecretService
    let limits: ServerLimits

    func register(_ group: RouterGroup<ServerContext>, table: RouteTable) {
        table.add(group, .post, "users", create)
        table.add(group, .get, "users", list)
        table.add(group, .get, "users/:id", show)
        table.add(group, .put, "users/:id", update)
        table.add(group, .post, "users/:id/disable", disable)
    }

    static func json(_ user: ServerRegistry.User) -> JSONValue {
        .object([
            ("id", .string(user.id)), ("name", .string(user.name)), ("kind", .string(user.kind.rawValue)),
            ("email", user.kind == .person ? .string(user.name) : .null),
            ("roles", .array(user.roles.map(JSONValue.string))),
            ("createdAt", .string(user.createdAt.iso8601)), ("disabledAt", .optional(user.disabledAt?.iso8601)),
            ("disabled", .bool(user.isDisabled)),
        ])
    }

    @Sendable func create(_ request: Request, context: ServerContext) async throws -> Response {
        _ = try await context.requireRecorded(.usersManage, .users, .created, service: service)
        let body = try await JSONBody.parse(request, limit: limits.maxBodyBytes, timeoutSeconds: limits.bodyTimeoutSeconds)
        try body.rejectUnknown(["email", "name", "kind", "roles"])
        let email = try body.string("email"), name = try body.string("name")
        let kindText = try body.string("kind")
        var kind: ServerRegistry.UserKind
        switch (email, name) {
        case (let email?, nil): kind = .person; _ = email
        case (nil, _?): kind = .service
        default: throw APIError(.validationError, "give either 'email' (a person) or 'name' (a service account)")
        }
        if let kindText {
            guard let given = ServerRegistry.UserKind(rawValue: kindText) else {
                throw APIError(.validationError, "field 'kind' must be person or service")
            }
            guard given == kind else {
                throw APIError(.validationError, kind == .person ? "a person is named by 'email'" : "a service account is named by 'name'")
            }
            kind = given
        }
        let roles = try body.strings("roles") ?? []
        let userName = email ?? name ?? "", userKind = kind
        return try await service.idempotent(request, context: context, bodyBytes: body.raw) { registry, now throws(VSecureError) in
            let user = try registry.createUser(name: userName, kind: userKind, roles: roles, now: now)
            return AuditedAnswer(status: .created, body: Self.json(user),
                                 events: [context.auditEvent(.users, .created, name: user.name,
                                                             details: [("roles", user.roles.joined(separator: ","))], now: now)])
        }
    }

    @Sendable func list(_ request: Request, context: ServerContext) async throws -> Response {
        _ = try await context.requireRecorded(.usersManage, .users, .accessed, service: service)
        let users = try await service.withRegistry { registry, _ throws(VSecureError) in try registry.listUsers() }
        return JSONResponse.make(.object([("data", .array(users.map(Self.json)))]))
    }

    @Sendable func show(_ request: Request, context: ServerContext) async throws -> Response {
        _ = try await context.requireRecorded(.usersManage, .users, .accessed, name: context.parameters.get("id"), service: service)
        return JSONResponse.make(Self.json(try await lookUp(context)))
    }

    @Sendable func update(_ request: Request, context: ServerContext) async throws -> Response {
        _ = try await context.requireRecorded(.usersManage, .users, .updated, name: context.parameters.get("id"), service: service)
        let body = try await JSONBody.parse(request, limit: limits.maxBodyBytes, timeoutSeconds: limits.bodyTimeoutSeconds)
        try body.rejectUnknown(["roles"])
        guard let roles = try body.strings("roles") else { throw APIError(.validationError, "field 'roles' is required") }
        let user = try await lookUp(context)
        return try await service.idempotent(request, context: context, bodyBytes: body.raw) { registry, now throws(VSecureError) in
            guard let updated = try registry.setRoles(userID: user.id, roles: roles) else {
                throw VSecureError(.notFound, "no user \(Quoted(user.name))")
            }
            return AuditedAnswer(status: .ok, body: Self.json(updated),
                                 events: [context.auditEvent(.users, .updated, name: updated.name,
                                                             details: [("roles", updated.roles.joined(separator: ","))], now: now)])
        }
    }

    @Sendable func disable(_ request: Request, context: ServerContext) async throws -> Response {
        let caller = try await context.requireRecorded(.usersManage, .users, .disabled, name: context.parameters.get("id"), service: service)
        let user = try await lookUp(context)
        // A user has no way back once disabled (there is no enable), so a key never disables
        // its own user: on a fresh server that is the only admin, and nothing could undo it.
        guard user.id != caller.userID else {
            throw APIError(.conflict, "a key cannot disable its own user (\(user.name)): every key of that user, this one included, would stop working",
                           details: ["hint": "disable it with a key of another user that has users:manage"])
        }
        // No body: the digest covers the method and the URL.
        return try await service.idempotent(request, context: context, bodyBytes: []) { registry, now throws(VSecureError) in
            guard let disabled = try registry.disableUser(id: user.id, now: now) else {
                throw VSecureError(.notFound, "no user \(Quoted(user.name))")
            }
            return AuditedAnswer(status: .ok, body: Self.json(disabled),
                                 events: [context.auditEvent(.users, .disabled, name: disabled.name, now: now)])
        }
    }

    /// `{id}` is a user id (`usr_…`) or the user's email or name, percent-encoded or not.
    private func lookUp(_ context: ServerContext) async throws -> ServerRegistry.User {
        let reference = percentDecoded(context.parameters.get("id") ?? "")
        let user = try await service.withRegistry { registry, _ throws(VSecureError) in try registry.user(reference: reference) }
        guard let user else { throw APIError.noSuchUser(reference) }
        return user
    }
}

/// `%XX` escapes decoded (a path parameter arrives as sent); malformed escapes are left as they are.
func percentDecoded(_ text: String) -> String {
    guard text.contains("%") else { return text }
    var bytes: [UInt8] = []
    var input = Array(text.utf8)[...]
    func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }
    while let byte = input.popFirst() {
        if byte == 0x25, input.count >= 2, let high = hex(input[input.startIndex]), let low = hex(input[input.startIndex + 1]) {
            bytes.append(high << 4 | low)
            input = input.dropFirst(2)
        } else {
            bytes.append(byte)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}
