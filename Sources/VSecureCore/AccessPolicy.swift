public enum AccessAction: String, CaseIterable, Sendable {
    case read, write, delete
}

/// Which roles may do what to which secrets, read from a JSON document:
///
///     {"secrets": {
///         "production/*":       {"read": ["engineers", "devops"], "write": ["devops"], "delete": ["admins"]},
///         "production/DB_ROOT": {"read": ["admins"]}
///     }}
///
/// Each key of `secrets` is a `PathPattern`; each rule lists, per action, the roles allowed to
/// perform it. An action is its own permission: `write` implies neither `read` nor `delete`.
///
/// Deciding for a path (see `decide`):
/// 1. Of the rules whose pattern matches the path, only the most specific ones count, by the
///    order of `PathPattern.Specificity`: a literal pattern beats any glob; then more segments
///    without a wildcard; then more literal characters; then fewer `**`; then fewer `*`.
/// 2. The most specific rule decides alone. If it does not list the action, or lists it only for
///    roles the caller lacks, the answer is deny: there is no fall-through to broader rules, which
///    is what lets `production/DB_ROOT` narrow `production/*`.
/// 3. When several different patterns tie as most specific, the action is allowed only if every
///    one of them allows it.
/// 4. No matching rule means deny.
/// The order of rules in the document never changes a decision; it only picks which rule an
/// explanation names.
public struct AccessPolicy: Sendable, Equatable {
    public struct Rule: Sendable, Equatable {
        public let pattern: PathPattern
        /// Only the actions the document lists; an empty list is kept (and allows no one).
        public let roles: [AccessAction: [String]]
        /// The line of the pattern's key in the document.
        public let line: Int

        func allows(_ callerRoles: Set<String>, _ action: AccessAction) -> Bool {
            roles[action]?.contains(where: callerRoles.contains) ?? false
        }
    }

    public static let maxRoleLength = 64
    public let rules: [Rule]
    public static let empty = AccessPolicy(rules: [])

    private init(rules: [Rule]) { self.rules = rules }

    /// Parses a policy document. Every problem is a usage error whose message starts with
    /// `line L, column C: ` (columns count bytes from 1) and names the offending key or value.
    public init(parsing document: [UInt8]) throws(VSecureError) {
        var reader = PolicyReader(bytes: document)
        let root = try reader.document()
        guard case .object(let top) = root.value else {
            throw reader.error(at: root.offset, "the policy must be a JSON object such as {\"secrets\": {...}}, not \(root.value.kind)")
        }
        var secrets: PolicyReader.Located?
        for member in top {
            guard member.key == "secrets" else {
                throw reader.error(at: member.keyOffset, "unknown top-level key \(Quoted(member.key))",
                                   hint: "the only top-level key is \"secrets\"")
            }
            guard secrets == nil else { throw reader.error(at: member.keyOffset, "duplicate key \"secrets\"") }
            secrets = member.value
        }
        guard let secrets else {
            throw reader.error(at: root.offset, "the policy has no \"secrets\" key",
                               hint: "write {\"secrets\": {\"production/*\": {\"read\": [\"engineers\"]}}}")
        }
        guard case .object(let patterns) = secrets.value else {
            throw reader.error(at: secrets.offset, "\"secrets\" must be an object mapping path patterns to rules, not \(secrets.value.kind)")
        }

        var rules: [Rule] = []
        var firstLine: [String: Int] = [:]
        for member in patterns {
            let line = reader.position(member.keyOffset).line
            if let first = firstLine[member.key] {
                throw reader.error(at: member.keyOffset, "duplicate pattern \(Quoted(member.key)) (first at line \(first))")
            }
            firstLine[member.key] = line
            let pattern: PathPattern
            do {
                pattern = try PathPattern(member.key)
            } catch {
                throw reader.error(at: member.keyOffset, error.message, hints: error.hints)
            }
            let subject = "the rule for \(Quoted(member.key))"
            guard case .object(let actions) = member.value.value else {
                throw reader.error(at: member.value.offset, "\(subject) must be an object such as {\"read\": [\"engineers\"]}, not \(member.value.value.kind)")
            }
            var roles: [AccessAction: [String]] = [:]
            for entry in actions {
                guard let action = AccessAction(rawValue: entry.key) else {
                    throw reader.error(at: entry.keyOffset, "unknown action \(Quoted(entry.key)) in \(subject)",
                                       hint: "the actions are read, write and delete")
                }
                guard roles[action] == nil else {
                    throw reader.error(at: entry.keyOffset, "duplicate action \(Quoted(entry.key)) in \(subject)")
                }
                guard case .array(let items) = entry.value.value else {
                    throw reader.error(at: entry.value.offset, "the roles that may \(action.rawValue) in \(subject) must be an array of role names, not \(entry.value.value.kind)")
                }
                var names: [String] = []
                for item in items {
                    let place = "(\(action.rawValue) in \(subject))"
                    guard case .string(let name) = item.value else {
                        throw reader.error(at: item.offset, "a role must be a string, not \(item.value.kind) \(place)")
                    }
                    guard !name.isEmpty else { throw reader.error(at: item.offset, "empty role name \(place)", hint: Self.roleHint) }
                    guard Self.isValidRole(name) else {
                        throw reader.error(at: item.offset, "invalid role name \(Quoted(name)) \(place)", hint: Self.roleHint)
                    }
                    guard !names.contains(name) else {
                        throw reader.error(at: item.offset, "role \(Quoted(name)) is listed twice \(place)")
                    }
                    names.append(name)
                }
                roles[action] = names
            }
            rules.append(Rule(pattern: pattern, roles: roles, line: line))
        }
        self.rules = rules
    }

    static let roleHint = "role names are 1 to 64 letters, digits, '.', '_' and '-'"

    /// `[A-Za-z0-9._-]{1,64}`
    public static func isValidRole(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        return (1...maxRoleLength).contains(bytes.count) && bytes.allSatisfy {
            $0.isASCIILetter || $0.isASCIIDigit || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
        }
    }

    /// The canonical document: rules in document order, actions in the order read, write, delete,
    /// roles as written.
    public func json() -> JSONValue {
        .object([("secrets", .object(rules.map { rule in
            (rule.pattern.text, .object(AccessAction.allCases.compactMap { action in
                rule.roles[action].map { (action.rawValue, .array($0.map(JSONValue.string))) }
            }))
        }))])
    }

    /// The policy's answer for one caller and one path; see the type's documentation for the order.
    public func decide(roles: Set<String>, action: AccessAction, path: String) -> AccessDecision {
        var deciding: [Rule] = []
        var best: PathPattern.Specificity?
        for rule in rules where rule.pattern.matches(path) {
            let specificity = rule.pattern.specificity
            if let current = best, specificity < current { continue }
            if let current = best, specificity == current {
                deciding.append(rule)
            } else {
                deciding = [rule]
                best = specificity
            }
        }
        guard let first = deciding.first else {
            return AccessDecision(allowed: false, basis: .noRule, explanation: "deny: no rule matches \(shown(path))")
        }
        func tie(besides decider: Rule) -> String {
            let others = deciding.filter { $0 != decider }
            guard !others.isEmpty else { return "" }
            return " (tied as most specific with " + others.map { "\"\($0.pattern.text)\" (line \($0.line))" }.joined(separator: ", ")
                + "; tied rules must all allow)"
        }
        if let denying = deciding.first(where: { !$0.allows(roles, action) }) {
            let why: String
            if let listed = denying.roles[action], !listed.isEmpty {
                why = "lets only \(listed.joined(separator: ", ")) \(action.rawValue)"
            } else {
                why = "does not let any role \(action.rawValue)"
            }
            return AccessDecision(
                allowed: false, basis: .rule(pattern: denying.pattern.text, line: denying.line),
                explanation: "deny: rule \"\(denying.pattern.text)\" (line \(denying.line)) is the most specific for \(shown(path)) and \(why)\(tie(besides: denying))")
        }
        let role = first.roles[action]?.first(where: roles.contains) ?? ""
        return AccessDecision(
            allowed: true, basis: .rule(pattern: first.pattern.text, line: first.line),
            explanation: "allow: rule \"\(first.pattern.text)\" (line \(first.line)) lets role \(role) \(action.rawValue) \(shown(path))\(tie(besides: first))")
    }
}

public struct AccessDecision: Sendable, Equatable {
    public enum Basis: Sendable, Equatable {
        case rule(pattern: String, line: Int)
        case grant(id: String)
        case noRule
        case disabledUser
    }

    public let allowed: Bool
    public let basis: Basis
    /// One line for people and audit logs, such as
    /// `allow: rule "production/*" (line 3) lets role engineers read production/API_KEY`.
    public var explanation: String

    public init(allowed: Bool, basis: Basis, explanation: String) {
        self.allowed = allowed
        self.basis = basis
        self.explanation = explanation
    }
}

/// Public text for an explanation: as it is when it is plain printable ASCII, else quoted with
/// escapes, so a path or subject taken from a request cannot forge log lines.
func shown(_ text: String) -> String {
    text.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) && !text.isEmpty ? text : Quoted(text).description
}

/// A strict JSON reader for policy documents that remembers where each key and value starts, so
/// that a problem in the policy's meaning is reported at its line and column. Policies are small
/// and not secret; the launcher never reads one, so this stays apart from `LockedJSON`.
struct PolicyReader {
    indirect enum Value {
        case object([Member])
        case array([Located])
        case string(String)
        case number
        case bool
        case null

        var kind: String {
            switch self {
            case .object: "an object"
            case .array: "an array"
            case .string: "a string"
            case .number: "a number"
            case .bool: "a boolean"
            case .null: "null"
            }
        }
    }

    struct Member {
        let key: String
        let keyOffset: Int
        let value: Located
    }

    struct Located {
        let offset: Int
        let value: Value
    }

    static let maxDepth = 16
    let bytes: [UInt8]
    var index = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    func position(_ offset: Int) -> (line: Int, column: Int) {
        var line = 1, lineStart = 0
        for i in 0..<min(offset, bytes.count) where bytes[i] == 0x0A {
            line += 1
            lineStart = i + 1
        }
        return (line, offset - lineStart + 1)
    }

    func error(at offset: Int, _ problem: String, hint: String? = nil) -> VSecureError {
        error(at: offset, problem, hints: hint.map { [$0] } ?? [])
    }

    func error(at offset: Int, _ problem: String, hints: [String]) -> VSecureError {
        let (line, column) = position(offset)
        return VSecureError(.usage, "line \(line), column \(column): \(problem)", hints: hints)
    }

    private func syntax(_ problem: String) -> VSecureError { error(at: index, "invalid JSON: \(problem)") }

    mutating func document() throws(VSecureError) -> Located {
        skipSpace()
        let root = try value(depth: 0)
        skipSpace()
        guard index == bytes.count else { throw syntax("unexpected text after the document") }
        return root
    }

    private mutating func skipSpace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    private mutating func value(depth: Int) throws(VSecureError) -> Located {
        guard depth < Self.maxDepth else { throw syntax("nested deeper than \(Self.maxDepth) levels") }
        guard index < bytes.count else { throw syntax("unexpected end of the document") }
        let start = index
        switch bytes[index] {
        case UInt8(ascii: "{"):
            index += 1
            var members: [Member] = []
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return Located(offset: start, value: .object([]))
            }
            while true {
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw syntax("expected a quoted key") }
                let keyOffset = index
                let key = try string()
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw syntax("expected ':' after the key \(Quoted(key))") }
                index += 1
                skipSpace()
                members.append(Member(key: key, keyOffset: keyOffset, value: try value(depth: depth + 1)))
                skipSpace()
                guard index < bytes.count else { throw syntax("unterminated object") }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                guard bytes[index] == UInt8(ascii: "}") else { throw syntax("expected ',' or '}'") }
                index += 1
                return Located(offset: start, value: .object(members))
            }
        case UInt8(ascii: "["):
            index += 1
            var items: [Located] = []
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return Located(offset: start, value: .array([]))
            }
            while true {
                skipSpace()
                items.append(try value(depth: depth + 1))
                skipSpace()
                guard index < bytes.count else { throw syntax("unterminated array") }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                guard bytes[index] == UInt8(ascii: "]") else { throw syntax("expected ',' or ']'") }
                index += 1
                return Located(offset: start, value: .array(items))
            }
        case UInt8(ascii: "\""):
            return Located(offset: start, value: .string(try string()))
        case UInt8(ascii: "t"):
            try word("true")
            return Located(offset: start, value: .bool)
        case UInt8(ascii: "f"):
            try word("false")
            return Located(offset: start, value: .bool)
        case UInt8(ascii: "n"):
            try word("null")
            return Located(offset: start, value: .null)
        case UInt8(ascii: "-"), 0x30...0x39:
            try number()
            return Located(offset: start, value: .number)
        default:
            throw syntax("unexpected character")
        }
    }

    private mutating func word(_ text: String) throws(VSecureError) {
        let expected = Array(text.utf8)
        guard index + expected.count <= bytes.count, bytes[index..<(index + expected.count)].elementsEqual(expected) else {
            throw syntax("unexpected word")
        }
        index += expected.count
    }

    private mutating func number() throws(VSecureError) {
        func digits() -> Int {
            let start = index
            while index < bytes.count, bytes[index].isASCIIDigit { index += 1 }
            return index - start
        }
        let start = index
        let malformed = error(at: start, "invalid JSON: malformed number")
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        let intStart = index
        let count = digits()
        guard count > 0, !(count > 1 && bytes[intStart] == UInt8(ascii: "0")) else { throw malformed }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw malformed }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { throw malformed }
        }
    }

    private mutating func string() throws(VSecureError) -> String {
        index += 1
        var out: [UInt8] = []
        func hex4() -> UInt32? {
            guard index + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for byte in bytes[index..<(index + 4)] {
                guard let digit = hexDigitValue(byte) else { return nil }
                value = value << 4 | UInt32(digit)
            }
            index += 4
            return value
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                guard let text = String(validating: out, as: UTF8.self) else {
                    throw syntax("a string is not valid UTF-8")
                }
                return text
            case 0..<0x20:
                throw syntax("a control character inside a string must be escaped")
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { break }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    guard var scalar = hex4() else { throw syntax("bad \\u escape") }
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                            throw syntax("a lone surrogate escape")
                        }
                        index += 2
                        guard let low = hex4(), (0xDC00...0xDFFF).contains(low) else { throw syntax("a lone surrogate escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw syntax("a lone surrogate escape")
                    }
                    out.append(contentsOf: Unicode.UTF8.encode(Unicode.Scalar(scalar)!)!)
                default:
                    index -= 1
                    throw syntax("unknown escape")
                }
            default:
                out.append(byte)
                index += 1
            }
        }
        throw syntax("unterminated string")
    }

    private func hexDigitValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x61...0x66: byte - 0x61 + 10
        case 0x41...0x46: byte - 0x41 + 10
        default: nil
        }
    }
}
