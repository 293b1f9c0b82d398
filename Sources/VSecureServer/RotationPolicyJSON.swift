import VSecureCore

/// What the server lets API clients put in a rotation policy, and how it runs rotations
/// (docs/api.md, "Rotation"). A `command` policy makes the server run a program, so an API key
/// could otherwise run anything the server's user can: commands are refused unless the operator
/// names one directory of allowed programs (`--allow-rotation-commands DIR`), and then only a
/// program directly inside it, by absolute path, is accepted or run.
public struct ServerRotationSettings: Sendable {
    /// How often the schedule looks for due secrets; 0 turns it off.
    public var intervalSeconds: Int64 = 60
    /// The directory whose programs may be rotation commands; nil refuses every command policy.
    public var commandDirectory: String?
    public var commandTimeout = SecretDuration(seconds: 60)

    public init() {}

    /// `DIR` must be absolute; a trailing slash is dropped.
    public mutating func allowCommands(in directory: String) throws(VSecureError) {
        var path = directory
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        guard path.hasPrefix("/"), path != "/", !path.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) else {
            throw VSecureError.usage("--allow-rotation-commands takes an absolute directory other than /, not \(Quoted(directory))")
        }
        commandDirectory = path
    }

    /// Why `argv` may not run on this server, or nil when it may: its program must be a file
    /// directly in `commandDirectory`, named by a plain absolute path.
    public func commandRefusal(_ argv: [String]) -> String? {
        guard let directory = commandDirectory else {
            return "this server does not run rotation commands; its operator can allow programs from one directory with --allow-rotation-commands DIR"
        }
        guard let program = argv.first, program.hasPrefix(directory + "/") else {
            return "rotation commands on this server must be programs in \(directory)"
        }
        let rest = program.dropFirst(directory.count + 1)
        guard !rest.isEmpty, !rest.contains("/"), rest != ".", rest != ".." else {
            return "rotation commands on this server must be programs directly in \(directory)"
        }
        return nil
    }
}

/// `rotationPolicy` in request and response bodies.
enum RotationPolicyJSON {
    static let fields: Set<String> = ["enabled", "period", "notifyBefore", "generate", "command"]

    /// nil when the body has no `rotationPolicy`; `.some(nil)` for `null` or `{"enabled": false}`
    /// (remove the policy); otherwise the policy. Errors name the field, never echo a value.
    static func parse(_ value: JSONValue?, settings: ServerRotationSettings) throws -> RotationPolicy?? {
        guard let value else { return nil }
        guard case .object(let members) = value else {
            if value == .null { return .some(nil) }
            throw invalid("rotationPolicy", "must be an object or null")
        }
        let body = JSONBody(members: members)
        if let unknown = members.first(where: { !fields.contains($0.0) }) {
            throw APIError(.validationError, "unknown field \(Quoted("rotationPolicy." + unknown.0))",
                           details: ["field": "rotationPolicy." + unknown.0, "allowed": fields.sorted().joined(separator: ", ")])
        }
        if try field("enabled", { try body.bool("enabled") }) == false { return .some(nil) }
        guard let periodText = try field("period", { try body.string("period") }) else {
            throw invalid("rotationPolicy.period", "is required (e.g. \"30d\")")
        }
        let period = try duration(periodText, field: "rotationPolicy.period")
        let notifyBefore = try field("notifyBefore", { try body.string("notifyBefore") }).map { text in
            try duration(text, field: "rotationPolicy.notifyBefore")
        }
        let generate = try field("generate", { try body.object("generate") })
        let command = try field("command", { try body.strings("command") })
        let source: RotationSource
        switch (generate, command) {
        case (.some, .some):
            throw invalid("rotationPolicy", "takes generate or command, not both")
        case (let generate?, nil):
            if let unknown = generate.members.first(where: { $0.0 != "length" && $0.0 != "charset" }) {
                throw invalid("rotationPolicy.generate." + unknown.0, "is not a field (length, charset)")
            }
            let length = try field("generate.length", { try generate.int("length") }) ?? 32
            guard RotationSource.lengthRange.contains(length) else {
                throw invalid("rotationPolicy.generate.length", "must be from \(RotationSource.lengthRange.lowerBound) to \(RotationSource.lengthRange.upperBound)")
            }
            let charsetText = try field("generate.charset", { try generate.string("charset") }) ?? RotationCharset.alnum.rawValue
            guard let charset = try? RotationCharset(parsing: charsetText) else {
                throw invalid("rotationPolicy.generate.charset", "must be one of alnum, hex, base64url, ascii-printable")
            }
            source = .generate(length: length, charset: charset)
        case (nil, let argv?):
            guard let program = argv.first, program.hasPrefix("/") else {
                throw invalid("rotationPolicy.command", "must start with the program's absolute path")
            }
            guard argv.count <= 64, argv.allSatisfy({ !$0.utf8.contains(0) && $0.utf8.count <= 4096 }) else {
                throw invalid("rotationPolicy.command", "is too long (at most 64 arguments of 4096 bytes)")
            }
            if let refusal = settings.commandRefusal(argv) {
                throw APIError(.validationError, "rotationPolicy.command: \(refusal)",
                               details: ["field": "rotationPolicy.command", "reason": "commandNotAllowed"])
            }
            source = .command(argv: argv)
        case (nil, nil):
            source = .manual
        }
        do {
            return .some(try RotationPolicy(period: period, notifyBefore: notifyBefore, source: source))
        } catch {
            throw invalid("rotationPolicy.notifyBefore", "must not be longer than the period")
        }
    }

    /// The policy as responses show it (the same shape requests use), or null.
    static func json(_ policy: RotationPolicy?) -> JSONValue {
        policy?.apiJSON ?? .null
    }

    /// `rotation`: where the secret stands, or null without a policy. Never a value; the
    /// failure message is the recorded reason, which never holds one.
    static func stateJSON(_ rotation: (RotationPolicy, RotationRecord)?, expiresAt: Timestamp?, now: Timestamp) -> JSONValue {
        guard let (policy, record) = rotation else { return .null }
        let state = RotationState.at(now, policy: policy, record: record, expiresAt: expiresAt, expiryNotice: defaultExpiryNotice)
        return .object([
            ("state", .string(state.rawValue)),
            ("lastRotatedAt", .string(record.lastRotatedAt.iso8601)),
            ("nextDueAt", .string(record.nextDueAt.iso8601)),
            ("failingSince", .optional(record.failingSince?.iso8601)),
            ("lastFailureAt", .optional(record.lastFailureAt?.iso8601)),
            ("lastFailure", .optional(record.lastFailure)),
            ("failureCount", .int(record.failureCount)),
        ])
    }

    /// Both members a secret response carries.
    static func members(_ rotation: (RotationPolicy, RotationRecord)?, expiresAt: Timestamp?, now: Timestamp) -> [(String, JSONValue)] {
        [("rotationPolicy", json(rotation?.0)), ("rotation", stateJSON(rotation, expiresAt: expiresAt, now: now))]
    }

    /// rotation:status's default window for secrets with an expiry and no notifyBefore.
    static let defaultExpiryNotice = SecretDuration(seconds: 7 * 86_400)

    private static func field<T>(_ name: String, _ read: () throws -> T) throws -> T {
        do { return try read() } catch let error as APIError {
            throw APIError(.validationError, "rotationPolicy: \(error.message)", details: ["field": "rotationPolicy." + name])
        }
    }

    private static func duration(_ text: String, field: String) throws -> SecretDuration {
        do { return try SecretDuration(parsing: text) } catch {
            throw invalid(field, "must be a duration such as 30d, 12h or 2w")
        }
    }

    static func invalid(_ field: String, _ problem: String) -> APIError {
        APIError(.validationError, "\(field) \(problem)", details: ["field": field])
    }
}
