import VSecureCore
import VSecureCrypto
import VSecureStore

/// Rotation against a vsecure server, over its existing API (docs/api.md, "Rotation"):
///
/// - a policy travels as `rotationPolicy` in the same `POST`/`PUT` that writes the secret, so the
///   write and the policy are one transaction on the server, as they are in the local vault;
/// - `rotationEntries` pages through `GET /secrets` (every secret there carries `rotationPolicy`
///   and `rotation`) and keeps those with a policy or an expiry;
/// - `rotate` is `POST /secrets/{name}/rotate`, with `onlyIfDue` for `rotation:run`: the server
///   checks the due time again inside the write transaction that claims the secret, so its own
///   schedule, other `rotation:run`s and this one rotate a due secret once.
///
/// The server, not this process, makes the new value: it runs the generator or the command
/// (only commands its operator allowed, with its own timeout; `settings` is not sent). Refusals
/// map to the local vault's exit statuses where the local vault has the same refusal (no policy,
/// a manual policy: `.usage`; a rotation in progress: skipped), and to `.unsupported` for what
/// only a server refuses: a rotation command its operator did not allow.
extension RemoteStore: RotatingSecretStore {
    public func create(_ secret: NewSecret, rotation: RotationPolicy) throws(VSecureError) -> SecretSummary {
        try create(secret, extra: [("rotationPolicy", rotation.apiJSON)])
    }

    public func update(environment: EnvironmentName?, name: SecretName, value: SecureBytes?, change: AttributeChange,
                       ifVersion: Int?, rotation: RotationPolicy??) throws(VSecureError) -> SecretUpdate {
        var extra: [(String, JSONValue)] = []
        switch rotation {
        case .none: break
        case .some(.none): extra.append(("rotationPolicy", .null))
        case .some(.some(let policy)): extra.append(("rotationPolicy", policy.apiJSON))
        }
        return try update(environment: environment, name: name, value: value, change: change, ifVersion: ifVersion, extra: extra)
    }

    /// Every page of `GET /secrets` (expired secrets included, as the local vault lists them),
    /// keeping the secrets with a policy or an expiry, ordered by environment then name. The
    /// server lists only what the key may read.
    public func rotationEntries(environment: EnvironmentName?) throws(VSecureError) -> [RotationEntry] {
        var entries: [RotationEntry] = []
        for item in try listItems(SecretQuery(environment: environment, includeExpired: true)) {
            let summary = try reader.summary(item)
            let policy = try reader.rotationPolicy(item["rotationPolicy"])
            let record = try reader.rotationRecord(item["rotation"])
            guard policy != nil || summary.attributes.expiresAt != nil else { continue }
            entries.append(RotationEntry(environment: summary.environment, name: summary.name, currentVersion: summary.currentVersion,
                                         expiresAt: summary.attributes.expiresAt, policy: policy, record: policy == nil ? nil : record))
        }
        return entries.sorted { $0.environment != $1.environment ? $0.environment < $1.environment : $0.name < $1.name }
    }

    public func rotate(environment: EnvironmentName?, name: SecretName, onlyIfDue: Bool,
                       settings: RotationSettings) throws(VSecureError) -> RotationResult {
        var members: [(String, JSONValue)] = []
        if let environment { members.append(("environment", .string(environment.rawValue))) }
        if onlyIfDue { members.append(("onlyIfDue", .bool(true))) }
        // With an Idempotency-Key, so a retry after a broken connection does not rotate twice: the
        // server answers it with the first answer (while the first still runs, `request` waits
        // for it).
        let reply = try request("POST", path(name, "/rotate"), body: Array(JSONValue.object(members).serialized(indent: nil).utf8),
                                idempotent: true)
        switch reply.status {
        case 200:
            let json = try reply.json()
            let secret = try reader.summary(json)
            if json["rotated"]?.boolValue == false {
                return RotationResult(environment: secret.environment, name: name,
                                      outcome: .skipped(reason: try reader.string(json, "skipped")))
            }
            return RotationResult(environment: secret.environment, name: name,
                                  outcome: .rotated(from: try reader.int(json, "previousVersion"), to: secret.currentVersion))
        case 422:
            let failure = reply.errorDetail("failure") ?? reply.failure().message
            return RotationResult(environment: try resolve(environment), name: name, outcome: .failed(reason: failure))
        case 409 where reply.errorDetail("reason") == "inProgress":
            // Another run is rotating it: a skip, as the local vault reports it.
            if let skipped = reply.errorDetail("skipped") {
                return RotationResult(environment: try resolve(environment), name: name, outcome: .skipped(reason: skipped))
            }
            // This call's own first attempt, whose connection broke, was still rotating when the
            // time ran out: it may yet make the new version, so this is not a skip.
            throw VSecureError(.conflict, "the server was still rotating \(name) for this command when the time ran out (VSECURE_TIMEOUT)",
                               hint: "see whether it rotated with `vsecure secrets:versions \(name)`")
        default:
            throw try rotateRefusal(reply, name: name, environment: environment)
        }
    }

    // MARK: - Refusals

    /// A refused `rotate`, as the local vault words the same refusal, naming the secret.
    private func rotateRefusal(_ reply: RemoteReply, name: SecretName, environment: EnvironmentName?) throws(VSecureError) -> VSecureError {
        let error = reply.failure()
        switch (reply.status, reply.errorDetail("reason")) {
        case (409, "noPolicy"?):
            let environment = try resolve(environment)
            return VSecureError(.usage, "\(name) in \(environment) has no rotation policy",
                                hint: "set one with `vsecure secrets:update \(name) --env \(environment) --rotation-period 30d --rotation-generate 'length=32,charset=alnum'`")
        case (409, "manualPolicy"?):
            let environment = try resolve(environment)
            return VSecureError(.usage, "\(name) in \(environment) has a manual rotation policy: vsecure cannot make its next value",
                                hint: "give it a new value with `vsecure secrets:update \(name) --env \(environment)`; that counts as its rotation")
        case (409, "commandNotAllowed"?):
            return VSecureError(.unsupported, "the server at \(endpoint.baseURL) cannot rotate \(name): \(error.message)",
                                hints: [Self.allowCommandsHint,
                                        "or rotate it where its command can run: `vsecure secrets:rotate \(name) --vault PATH` on the server's vault.db"])
        case (403, _):
            return VSecureError(.accessDenied, "the server at \(endpoint.baseURL) refused to rotate \(name): \(error.message)",
                                hints: error.hints.isEmpty ? ["rotating needs an API key with the scope secrets:write that may write \(name) in that environment"] : error.hints)
        default:
            return error
        }
    }

    /// A refused create or update that carried a `rotationPolicy`: a command the server does not
    /// run is `.unsupported` and names the secret; anything else maps as usual.
    func rotationPolicyRefusal(_ reply: RemoteReply, name: SecretName) -> VSecureError {
        let error = reply.failure()
        guard reply.status == 400, reply.errorDetail("reason") == "commandNotAllowed" else { return error }
        var message = error.message
        if message.hasPrefix("rotationPolicy.command: ") { message.removeFirst("rotationPolicy.command: ".count) }
        return VSecureError(.unsupported, "the server at \(endpoint.baseURL) refused the rotation command for \(name): \(message); nothing was changed",
                            hints: [Self.allowCommandsHint, "or let the server make the values: --rotation-generate 'length=32,charset=alnum'"])
    }

    static let allowCommandsHint = "a server runs rotation commands only from a directory its operator allows (`vsecure-server serve --allow-rotation-commands DIR`)"
}

extension RemoteReply {
    /// `error.details[key]` of an error answer, when it is a string.
    func errorDetail(_ key: String) -> String? {
        guard status >= 400, let json = try? json() else { return nil }
        return json["error"]?["details"]?[key]?.stringValue
    }
}

extension ShapeReader {
    /// `rotationPolicy`: null or the policy.
    func rotationPolicy(_ json: JSONValue?) throws(VSecureError) -> RotationPolicy? {
        guard let json, json != .null else { return nil }
        guard case .object = json else { throw notOurs }
        if json["enabled"]?.boolValue == false { return nil }
        func duration(_ key: String) throws(VSecureError) -> SecretDuration? {
            guard let text = try optionalString(json, key) else { return nil }
            guard let duration = try? SecretDuration(parsing: text) else { throw notOurs }
            return duration
        }
        guard let period = try duration("period") else { throw notOurs }
        let source: RotationSource
        if let generate = json["generate"], generate != .null {
            guard let length = generate["length"]?.intValue, let text = generate["charset"]?.stringValue,
                  let charset = try? RotationCharset(parsing: text) else { throw notOurs }
            source = .generate(length: length, charset: charset)
        } else if let command = json["command"], command != .null {
            guard let items = command.arrayValue, !items.isEmpty else { throw notOurs }
            var argv: [String] = []
            for item in items {
                guard let text = item.stringValue else { throw notOurs }
                argv.append(text)
            }
            source = .command(argv: argv)
        } else {
            source = .manual
        }
        guard let policy = try? RotationPolicy(period: period, notifyBefore: try duration("notifyBefore"), source: source) else { throw notOurs }
        return policy
    }

    /// `rotation`: null or where the secret stands.
    func rotationRecord(_ json: JSONValue?) throws(VSecureError) -> RotationRecord? {
        guard let json, json != .null else { return nil }
        return RotationRecord(lastRotatedAt: try time(json, "lastRotatedAt"), nextDueAt: try time(json, "nextDueAt"),
                              failingSince: try optionalTime(json, "failingSince"), lastFailureAt: try optionalTime(json, "lastFailureAt"),
                              lastFailure: try optionalString(json, "lastFailure"), failureCount: try int(json, "failureCount"))
    }
}
