/// One thing that happened to a secret, a grant, an API key, a user or the policy: who did it,
/// to what, and whether it succeeded. Audit entries hold names, versions, key ids and request
/// metadata, never a value, a token or a signing secret.
public struct AuditEvent: Sendable, Equatable {
    /// What kind of thing the entry is about; `audit:logs --resource` filters on it.
    public enum Resource: String, Sendable, CaseIterable {
        case secrets, grants, apiKeys = "api-keys", users, policy, auth, webhooks, audit
    }

    /// What was done. Combined with `resource`: secrets accessed, grants revoked, api-keys used,
    /// auth login (failed), policy changed…
    public enum Action: String, Sendable, CaseIterable {
        case created, accessed, updated, rolledBack = "rolled_back", deleted, expired, rotated
        case revoked, used, login, changed, disabled
    }

    public enum Outcome: String, Sendable, CaseIterable {
        case success, failure
    }

    /// Who acted. On a server: the user (email or service-account name) and the API key; on a
    /// local vault: `local:` and the operating-system user, with no key.
    public struct Actor: Sendable, Equatable {
        public var user: String?
        public var keyID: String?
        public var keyName: String?

        public init(user: String?, keyID: String? = nil, keyName: String? = nil) {
            self.user = user
            self.keyID = keyID
            self.keyName = keyName
        }
    }

    /// One secret version an entry is about: a batch read or a launch lists several.
    public struct Item: Sendable, Equatable {
        public var name: String
        public var version: Int?

        public init(name: String, version: Int?) {
            self.name = name
            self.version = version
        }
    }

    /// Where the request came from, when there was one.
    public struct Request: Sendable, Equatable {
        public var address: String?
        public var userAgent: String?
        public var requestID: String?

        public init(address: String?, userAgent: String?, requestID: String?) {
            self.address = address
            self.userAgent = userAgent
            self.requestID = requestID
        }
    }

    public var time: Timestamp
    public var actor: Actor
    public var resource: Resource
    public var action: Action
    public var outcome: Outcome
    /// The secret's environment, when the entry is about secrets in one environment.
    public var environment: String?
    /// The resource's name: a secret name, a grant id, a key id, a user, a webhook id.
    public var name: String?
    public var version: Int?
    /// For batch reads and launches: every name served and its version.
    public var items: [Item]
    public var request: Request?
    /// Free-form, value-free facts: `reason`, `runId`, `path`, `scope`…, in insertion order.
    public var details: [(String, String)]

    public init(time: Timestamp, actor: Actor, resource: Resource, action: Action, outcome: Outcome = .success,
                environment: String? = nil, name: String? = nil, version: Int? = nil, items: [Item] = [],
                request: Request? = nil, details: [(String, String)] = []) {
        self.time = time
        self.actor = actor
        self.resource = resource
        self.action = action
        self.outcome = outcome
        self.environment = environment
        self.name = name
        self.version = version
        self.items = items
        self.request = request
        self.details = details
    }

    public static func == (a: AuditEvent, b: AuditEvent) -> Bool {
        a.time == b.time && a.actor == b.actor && a.resource == b.resource && a.action == b.action && a.outcome == b.outcome
            && a.environment == b.environment && a.name == b.name && a.version == b.version && a.items == b.items
            && a.request == b.request && a.details.count == b.details.count
            && zip(a.details, b.details).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }

    public func detail(_ key: String) -> String? {
        details.first { $0.0 == key }?.1
    }

    /// The entry as stored and shown: a JSON object with a fixed member order. `seq` is part of
    /// the stored form so that an entry moved to another position is recognised as moved.
    public func json(seq: Int64) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("seq", .int(seq)), ("time", .string(time.iso8601)),
            ("actor", .object([("user", .optional(actor.user)), ("keyId", .optional(actor.keyID)), ("keyName", .optional(actor.keyName))])),
            ("resource", .string(resource.rawValue)), ("action", .string(action.rawValue)), ("result", .string(outcome.rawValue)),
            ("environment", .optional(environment)), ("name", .optional(name)), ("version", version.map { .int($0) } ?? .null),
        ]
        if !items.isEmpty {
            members.append(("items", .array(items.map { .object([("name", .string($0.name)), ("version", $0.version.map { .int($0) } ?? .null)]) })))
        }
        if let request {
            members.append(("request", .object([("address", .optional(request.address)), ("userAgent", .optional(request.userAgent)),
                                                ("requestId", .optional(request.requestID))])))
        }
        if !details.isEmpty {
            members.append(("details", .object(details.map { ($0.0, .string($0.1)) })))
        }
        return .object(members)
    }

    /// Reads an entry back from its stored JSON; nil when it is not one (the verifier reports
    /// such a row as edited).
    public init?(json: JSONValue) {
        guard case .object(let members) = json else { return nil }
        func member(_ key: String) -> JSONValue? { members.first { $0.0 == key }?.1 }
        func string(_ value: JSONValue?) -> String? {
            if case .string(let s)? = value { return s }
            return nil
        }
        func int(_ value: JSONValue?) -> Int? {
            if case .int(let i)? = value { return Int(i) }
            return nil
        }
        guard let timeText = string(member("time")), let time = try? Timestamp(iso8601: timeText),
              case .object(let actorMembers)? = member("actor"),
              let resource = string(member("resource")).flatMap(Resource.init(rawValue:)),
              let action = string(member("action")).flatMap(Action.init(rawValue:)),
              let outcome = string(member("result")).flatMap(Outcome.init(rawValue:))
        else { return nil }
        func actorMember(_ key: String) -> String? { string(actorMembers.first { $0.0 == key }?.1) }
        var items: [Item] = []
        if case .array(let list)? = member("items") {
            for case .object(let item) in list {
                guard let name = string(item.first { $0.0 == "name" }?.1) else { return nil }
                items.append(Item(name: name, version: int(item.first { $0.0 == "version" }?.1)))
            }
        }
        var request: Request?
        if case .object(let r)? = member("request") {
            request = Request(address: string(r.first { $0.0 == "address" }?.1), userAgent: string(r.first { $0.0 == "userAgent" }?.1),
                              requestID: string(r.first { $0.0 == "requestId" }?.1))
        }
        var details: [(String, String)] = []
        if case .object(let d)? = member("details") {
            for (key, value) in d {
                guard let text = string(value) else { return nil }
                details.append((key, text))
            }
        }
        self.init(time: time, actor: Actor(user: actorMember("user"), keyID: actorMember("keyId"), keyName: actorMember("keyName")),
                  resource: resource, action: action, outcome: outcome, environment: string(member("environment")),
                  name: string(member("name")), version: int(member("version")), items: items, request: request, details: details)
    }
}

/// A stored entry: its position in the chain, the event, and the chain MAC.
public struct AuditEntry: Sendable, Equatable {
    public var seq: Int64
    public var event: AuditEvent
    public var mac: [UInt8]

    public init(seq: Int64, event: AuditEvent, mac: [UInt8]) {
        self.seq = seq
        self.event = event
        self.mac = mac
    }
}

/// Which entries `audit:logs`, `audit:export` and `GET /audit-logs` return. Every set field
/// must match; `since`/`until` are inclusive/exclusive bounds on the entry's time.
public struct AuditFilter: Sendable, Equatable {
    public var resource: AuditEvent.Resource?
    public var action: AuditEvent.Action?
    public var outcome: AuditEvent.Outcome?
    public var actor: String?
    public var environment: String?
    public var name: String?
    public var since: Timestamp?
    public var until: Timestamp?
    /// Entries after this sequence number (the cursor of the previous page, oldest first).
    public var after: Int64?
    /// Entries before this sequence number (the cursor of the previous page, newest first).
    public var before: Int64?
    /// Newest entries first: `audit:logs --limit 20` shows the last 20.
    public var newestFirst = false
    public var limit: Int

    public init(resource: AuditEvent.Resource? = nil, action: AuditEvent.Action? = nil, outcome: AuditEvent.Outcome? = nil,
                actor: String? = nil, environment: String? = nil, name: String? = nil, since: Timestamp? = nil,
                until: Timestamp? = nil, after: Int64? = nil, limit: Int = 100) {
        self.resource = resource
        self.action = action
        self.outcome = outcome
        self.actor = actor
        self.environment = environment
        self.name = name
        self.since = since
        self.until = until
        self.after = after
        self.limit = limit
    }

    /// Whether `event` passes the filter (the stores filter in SQL; this is the same rule, for
    /// tests and in-memory use). An item-listing entry matches a name it lists.
    public func matches(_ event: AuditEvent, seq: Int64) -> Bool {
        if let after, seq <= after { return false }
        if let before, seq >= before { return false }
        if let resource, event.resource != resource { return false }
        if let action, event.action != action { return false }
        if let outcome, event.outcome != outcome { return false }
        if let actor, event.actor.user != actor { return false }
        if let environment, event.environment != environment { return false }
        if let name, event.name != name && !event.items.contains(where: { $0.name == name }) { return false }
        if let since, event.time < since { return false }
        if let until, event.time >= until { return false }
        return true
    }
}

/// What `audit:verify` found.
public struct AuditVerification: Sendable, Equatable {
    public enum Problem: Sendable, Equatable {
        /// The entry at `seq` does not match its MAC: its content (or MAC) was changed.
        case edited(seq: Int64)
        /// The entry at `seq` is missing: the next stored entry has a later number.
        case removed(seq: Int64)
        /// The entry stored at position `seq` says it belongs at `claims`.
        case reordered(seq: Int64, claims: Int64)
        /// The log ends at `lastSeq`, but the anchor records `anchoredSeq` entries.
        case truncated(lastSeq: Int64, anchoredSeq: Int64)
        /// The anchor itself is missing or does not match its MAC.
        case anchorInvalid
        /// Launch receipt `number` (1-based) in the receipts `file`, still waiting to join the
        /// log, does not match its MAC or is cut short (0: the file's first line).
        case receiptDamaged(number: Int64, file: String)
    }

    /// Entries checked (up to the first problem).
    public var checked: Int64
    /// The last good entry's sequence number and MAC (hex); record them elsewhere to detect a
    /// rollback of the whole log.
    public var headSeq: Int64
    public var headMAC: String
    public var problem: Problem?

    public init(checked: Int64, headSeq: Int64, headMAC: String, problem: Problem?) {
        self.checked = checked
        self.headSeq = headSeq
        self.headMAC = headMAC
        self.problem = problem
    }

    public var isIntact: Bool { problem == nil }

    public var problemDescription: String? {
        switch problem {
        case nil: return nil
        case .edited(let seq): return "entry \(seq) was edited: its content does not match its MAC"
        case .removed(let seq): return "entry \(seq) was removed"
        case .reordered(let seq, let claims): return "entry \(seq) was reordered: the entry stored there is entry \(claims)"
        case .truncated(let last, let anchored): return "the log was cut: it ends at entry \(last), but entry \(anchored) was written"
        case .anchorInvalid: return "the log's anchor is missing or was edited"
        case .receiptDamaged(let number, let file):
            return "launch receipt \(number) in \(file) was edited, moved or cut short; it and the receipts after it are not in the log"
        }
    }
}

extension AuditFilter {
    /// `--since 24h` (that long before `now`) or `--since 2026-11-01T00:00:00Z`.
    public static func time(_ text: String, now: Timestamp) throws(VSecureError) -> Timestamp {
        if let first = text.utf8.first, first.isASCIIDigit, !text.contains("-") {
            return Timestamp(secondsSinceEpoch: now.secondsSinceEpoch - (try SecretDuration(parsing: text)).seconds)
        }
        return try Timestamp(iso8601: text)
    }

    /// Reads the named filter fields from text (command-line flags, query parameters); every
    /// unknown value is an error naming the field and the accepted values.
    public mutating func set(_ field: String, _ text: String, now: Timestamp) throws(VSecureError) {
        func choice<T: RawRepresentable & CaseIterable>(_ type: T.Type) throws(VSecureError) -> T where T.RawValue == String {
            guard let value = T(rawValue: text) else {
                throw VSecureError.usage("unknown \(field) \(Quoted(text))", hint: "one of: " + T.allCases.map(\.rawValue).joined(separator: ", "))
            }
            return value
        }
        switch field {
        case "resource": resource = try choice(AuditEvent.Resource.self)
        case "action": action = try choice(AuditEvent.Action.self)
        case "result": outcome = try choice(AuditEvent.Outcome.self)
        case "actor": actor = text
        case "environment": environment = try EnvironmentName(text).rawValue
        case "name": name = try SecretName(text).rawValue
        case "since": since = try Self.time(text, now: now)
        case "until": until = try Self.time(text, now: now)
        default: throw VSecureError.usage("unknown audit filter \(Quoted(field))")
        }
    }

    public static let fields = ["resource", "action", "result", "actor", "environment", "name", "since", "until"]
}

extension AuditEntry {
    /// The entry as the API and `--output json` show it: the stored event with its MAC.
    public var json: JSONValue {
        guard case .object(var members) = event.json(seq: seq) else { return .null }
        members.append(("mac", .string(hexString(mac))))
        return .object(members)
    }
}

extension AuditVerification {
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [("intact", .bool(isIntact)), ("checked", .int(checked)),
                                              ("headSeq", .int(headSeq)), ("headMac", .string(headMAC))]
        if let problem, let problemDescription {
            var detail: [(String, JSONValue)]
            switch problem {
            case .edited(let seq): detail = [("kind", .string("edited")), ("seq", .int(seq))]
            case .removed(let seq): detail = [("kind", .string("removed")), ("seq", .int(seq))]
            case .reordered(let seq, let claims): detail = [("kind", .string("reordered")), ("seq", .int(seq)), ("claims", .int(claims))]
            case .truncated(let last, let anchored):
                detail = [("kind", .string("truncated")), ("seq", .int(last + 1)), ("lastSeq", .int(last)), ("anchoredSeq", .int(anchored))]
            case .anchorInvalid: detail = [("kind", .string("anchor")), ("seq", .null)]
            case .receiptDamaged(let number, let file):
                detail = [("kind", .string("receipt")), ("seq", .null), ("receipt", .int(number)), ("file", .string(file))]
            }
            members.append(("problem", .object(detail + [("message", .string(problemDescription))])))
        }
        return .object(members)
    }

    /// Reads the form `json` writes (a server's answer); nil when it is not that.
    public init?(json: JSONValue) {
        guard case .object(let members) = json else { return nil }
        func int(_ list: [(String, JSONValue)], _ key: String) -> Int64? {
            if case .int(let n)? = list.first(where: { $0.0 == key })?.1 { return n }
            return nil
        }
        guard let checked = int(members, "checked"), let headSeq = int(members, "headSeq"),
              case .string(let headMAC)? = members.first(where: { $0.0 == "headMac" })?.1 else { return nil }
        var problem: Problem?
        if case .object(let detail)? = members.first(where: { $0.0 == "problem" })?.1 {
            guard case .string(let kind)? = detail.first(where: { $0.0 == "kind" })?.1 else { return nil }
            switch (kind, int(detail, "seq")) {
            case ("edited", let seq?): problem = .edited(seq: seq)
            case ("removed", let seq?): problem = .removed(seq: seq)
            case ("reordered", let seq?):
                guard let claims = int(detail, "claims") else { return nil }
                problem = .reordered(seq: seq, claims: claims)
            case ("truncated", _):
                // `json` writes the first missing entry, lastSeq + 1, which must exist.
                guard let last = int(detail, "lastSeq"), last < .max, let anchored = int(detail, "anchoredSeq") else { return nil }
                problem = .truncated(lastSeq: last, anchoredSeq: anchored)
            case ("anchor", _): problem = .anchorInvalid
            case ("receipt", _):
                guard let number = int(detail, "receipt"), case .string(let file)? = detail.first(where: { $0.0 == "file" })?.1 else { return nil }
                problem = .receiptDamaged(number: number, file: file)
            default: return nil
            }
        }
        self.init(checked: checked, headSeq: headSeq, headMAC: headMAC, problem: problem)
    }
}

extension AuditEntry {
    /// Reads the form `json` writes; nil when it is not that.
    public init?(json: JSONValue) {
        guard case .object(let members) = json, case .int(let seq)? = members.first(where: { $0.0 == "seq" })?.1,
              case .string(let macText)? = members.first(where: { $0.0 == "mac" })?.1, let mac = bytesFromHex(macText),
              let event = AuditEvent(json: json) else { return nil }
        self.init(seq: seq, event: event, mac: mac)
    }
}

extension AuditEvent {
    /// The stored form: the same bytes as `json(seq:).serialized(indent: nil)`, written
    /// straight into one buffer. The server writes one per request, so it skips the JSON tree.
    public func storedJSON(seq: Int64) -> [UInt8] {
        var out = StoredJSONWriter()
        out.raw("{\"seq\":"); out.number(seq)
        out.raw(",\"time\":"); out.string(time.iso8601)
        out.raw(",\"actor\":{\"user\":"); out.optional(actor.user)
        out.raw(",\"keyId\":"); out.optional(actor.keyID)
        out.raw(",\"keyName\":"); out.optional(actor.keyName)
        out.raw("},\"resource\":"); out.string(resource.rawValue)
        out.raw(",\"action\":"); out.string(action.rawValue)
        out.raw(",\"result\":"); out.string(outcome.rawValue)
        out.raw(",\"environment\":"); out.optional(environment)
        out.raw(",\"name\":"); out.optional(name)
        out.raw(",\"version\":")
        if let version { out.number(Int64(version)) } else { out.raw("null") }
        if !items.isEmpty {
            out.raw(",\"items\":[")
            for (index, item) in items.enumerated() {
                out.raw(index == 0 ? "{\"name\":" : ",{\"name\":"); out.string(item.name)
                out.raw(",\"version\":")
                if let version = item.version { out.number(Int64(version)) } else { out.raw("null") }
                out.raw("}")
            }
            out.raw("]")
        }
        if let request {
            out.raw(",\"request\":{\"address\":"); out.optional(request.address)
            out.raw(",\"userAgent\":"); out.optional(request.userAgent)
            out.raw(",\"requestId\":"); out.optional(request.requestID)
            out.raw("}")
        }
        if !details.isEmpty {
            out.raw(",\"details\":{")
            for (index, (key, value)) in details.enumerated() {
                if index > 0 { out.raw(",") }
                out.string(key); out.raw(":"); out.string(value)
            }
            out.raw("}")
        }
        out.raw("}")
        return out.bytes
    }
}

/// Compact JSON into bytes, escaping strings exactly as `JSONValue` does.
private struct StoredJSONWriter {
    var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(384) }

    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func number(_ value: Int64) {
        bytes.append(contentsOf: String(value).utf8)
    }

    mutating func optional(_ text: String?) {
        if let text { string(text) } else { raw("null") }
    }

    mutating func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): raw("\\\"")
            case UInt8(ascii: "\\"): raw("\\\\")
            case 0x0A: raw("\\n")
            case 0x0D: raw("\\r")
            case 0x09: raw("\\t")
            case 0x00..<0x20, 0x7F:
                raw("\\u00")
                let digits: StaticString = "0123456789abcdef"
                digits.withUTF8Buffer { hex in
                    bytes.append(hex[Int(byte >> 4)])
                    bytes.append(hex[Int(byte & 0x0F)])
                }
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
