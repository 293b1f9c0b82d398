import VSecureCore

/// The administration routes (users, API keys, the access policy, grants) for the `vsecure`
/// commands that manage a server. Answers are public JSON (no secret values; a new API key's
/// token is in `key`, shown once by the caller). Errors map as for every remote call: 400 →
/// usage, 401/403 → access denied, 404 → not found, 409 → conflict. The writes the server runs
/// once per `Idempotency-Key` (users, the policy, grants) carry one, so the exchange's retries
/// run them at most once; API-key writes cannot (the server does not record answers holding a
/// token).
extension RemoteStore {
    /// One request with an optional JSON body; the answer's JSON (nil for 204). `idempotent`
    /// sends a new `Idempotency-Key`, the same on every retry of this call.
    public func admin(_ method: String, _ path: String, query: [(String, String?)] = [], json: JSONValue? = nil,
                      rawBody: [UInt8]? = nil, expect: Set<Int> = [200], idempotent: Bool = false,
                      readsOnly: Bool = false) throws(VSecureError) -> JSONValue? {
        let body = rawBody ?? json.map { Array($0.serialized(indent: nil).utf8) } ?? []
        let reply = try request(method, path, query: query, body: body, idempotent: idempotent, readsOnly: readsOnly)
        if reply.status == 404, reply.errorDetail("reason") == "noSuchUser" {
            var error = reply.failure()
            error.hints = ["`vsecure users:list` shows the users; `vsecure users:create EMAIL --roles ROLES` adds one"]
            throw error
        }
        try reply.check(expect)
        return reply.status == 204 ? nil : try reply.json()
    }

    // MARK: - Users

    public func createUser(name: String, service: Bool, roles: [String]) throws(VSecureError) -> JSONValue {
        try admin("POST", "/users", json: .object([(service ? "name" : "email", .string(name)),
                                                   ("roles", .array(roles.map(JSONValue.string)))]), expect: [201], idempotent: true)!
    }

    public func listUsers() throws(VSecureError) -> JSONValue {
        try admin("GET", "/users")!
    }

    public func updateUser(_ reference: String, roles: [String]) throws(VSecureError) -> JSONValue {
        try admin("PUT", "/users/" + Self.percentEncoded(reference), json: .object([("roles", .array(roles.map(JSONValue.string)))]),
                  idempotent: true)!
    }

    public func disableUser(_ reference: String) throws(VSecureError) -> JSONValue {
        try admin("POST", "/users/" + Self.percentEncoded(reference) + "/disable", idempotent: true)!
    }

    // MARK: - API keys

    public func createAPIKey(name: String, user: String?, scopes: [String], environments: [String]?,
                             expiresIn: String?) throws(VSecureError) -> JSONValue {
        var members: [(String, JSONValue)] = [("name", .string(name)), ("scopes", .array(scopes.map(JSONValue.string)))]
        if let user { members.append(("user", .string(user))) }
        if let environments { members.append(("environments", .array(environments.map(JSONValue.string)))) }
        if let expiresIn { members.append(("expiresIn", .string(expiresIn))) }
        return try admin("POST", "/api-keys", json: .object(members), expect: [201])!
    }

    public func listAPIKeys() throws(VSecureError) -> JSONValue {
        try admin("GET", "/api-keys")!
    }

    public func revokeAPIKey(_ id: String) throws(VSecureError) {
        _ = try admin("DELETE", "/api-keys/" + Self.percentEncoded(id), expect: [204])
    }

    public func rotateAPIKey(_ id: String) throws(VSecureError) -> JSONValue {
        try admin("POST", "/api-keys/" + Self.percentEncoded(id) + "/rotate")!
    }

    // MARK: - Policy

    public func policy() throws(VSecureError) -> JSONValue {
        try admin("GET", "/policy")!
    }

    /// Sends the document as it is, so the server's line and column numbers are the file's.
    public func setPolicy(_ document: [UInt8]) throws(VSecureError) -> JSONValue {
        try admin("PUT", "/policy", rawBody: document, idempotent: true)!
    }

    public func testPolicy(user: String, action: String, path: String) throws(VSecureError) -> JSONValue {
        try admin("POST", "/policy/test", json: .object([("user", .string(user)), ("action", .string(action)), ("path", .string(path))]),
                  readsOnly: true)!
    }

    // MARK: - Grants

    public func createGrant(user: String, name: String?, environment: String?, path: String?, action: String,
                            duration: String) throws(VSecureError) -> JSONValue {
        var members: [(String, JSONValue)] = [("user", .string(user)), ("action", .string(action)), ("duration", .string(duration))]
        if let name { members.append(("name", .string(name))) }
        if let environment { members.append(("environment", .string(environment))) }
        if let path { members.append(("path", .string(path))) }
        return try admin("POST", "/grants", json: .object(members), expect: [201], idempotent: true)!
    }

    public func listGrants(name: String?, environment: String?, includeExpired: Bool) throws(VSecureError) -> JSONValue {
        try admin("GET", "/grants", query: [("name", name), ("environment", environment), ("includeExpired", includeExpired ? "true" : nil)])!
    }

    public func revokeGrant(_ id: String) throws(VSecureError) {
        _ = try admin("DELETE", "/grants/" + Self.percentEncoded(id), expect: [204])
    }
}
