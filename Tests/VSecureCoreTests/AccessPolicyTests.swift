import Testing
import TestSupport
import VSecureCore

@Suite("Access path patterns")
struct PathPatternTests {
    /// (pattern, path, matches)
    static let table: [(String, String, Bool)] = [
        // Literal paths.
        ("production/API_KEY", "production/API_KEY", true),
        ("production/API_KEY", "production/api_key", false),
        ("production/API_KEY", "production/API_KEYS", false),
        ("production/API_KEY", "staging/API_KEY", false),
        ("production/API_KEY", "production/API_KEY/x", false),
        // `*` stays inside one segment.
        ("production/*", "production/API_KEY", true),
        ("production/*", "production/a/b", false),
        ("production/*", "productionX/A", false),
        ("production/*", "production", false),
        ("production/*", "production/", false),
        ("production/*", "staging/A", false),
        ("*/API_KEY", "production/API_KEY", true),
        ("*/API_KEY", "staging/API_KEY", true),
        ("*/API_KEY", "production/DB_URL", false),
        ("*/API_KEY", "a/b/API_KEY", false),
        ("*/API_KEY", "API_KEY", false),
        ("*", "production", true),
        ("*", "production/API_KEY", false),
        ("*/*", "production/API_KEY", true),
        ("*/*", "production/a/b", false),
        ("production/API_*", "production/API_KEY", true),
        ("production/API_*", "production/API_", true),
        ("production/API_*", "production/DB_API_KEY", false),
        ("production/*_KEY", "production/API_KEY", true),
        ("production/*_KEY", "production/API_KEYS", false),
        ("production/A*B*C", "production/AxxBxxC", true),
        ("production/A*B*C", "production/ABC", true),
        ("production/A*B*C", "production/AxxCxxB", false),
        ("prod*/KEY", "production/KEY", true),
        ("prod*/KEY", "prod/x/KEY", false),
        ("*-eu/*", "prod-eu/KEY", true),
        // `**` is whole segments, zero included.
        ("production/**", "production", true),
        ("production/**", "production/A", true),
        ("production/**", "production/a/b", true),
        ("production/**", "productionX/A", false),
        ("production/**", "productionX", false),
        ("**/KEY", "KEY", true),
        ("**/KEY", "production/KEY", true),
        ("**/KEY", "a/b/c/KEY", true),
        ("**/KEY", "production/KEYS", false),
        ("**/KEY", "production/MY_KEY", false),
        ("**", "production/API_KEY", true),
        ("**", "a", true),
        ("a/**/b", "a/b", true),
        ("a/**/b", "a/x/y/b", true),
        ("a/**/b", "a/x/y/c", false),
        ("**/x/**", "a/x/b", true),
        ("**/x/**", "x", true),
        ("**/x/**", "a/y/b", false),
        ("**/*_KEY", "production/API_KEY", true),
        // Malformed paths match nothing.
        ("**", "", false),
        ("**", "production//A", false),
        ("production/**", "production/", false),
        ("**/KEY", "/KEY", false),
    ]

    @Test("the glob table", arguments: table)
    func globTable(_ pattern: String, _ path: String, _ expected: Bool) throws {
        #expect(try PathPattern(pattern).matches(path) == expected, "\(pattern) ~ \(path)")
    }

    @Test("the table is big enough to mean something")
    func tableSize() {
        #expect(Self.table.count >= 30)
        #expect(Self.table.contains { $0.2 } && Self.table.contains { !$0.2 })
    }

    static let refused: [(String, String)] = [
        ("", "path pattern is empty"),
        ("a//b", "empty segment"),
        ("/a", "starts with '/'"),
        ("a/", "ends with '/'"),
        ("/", "starts with '/'"),
        ("a/**b", "'**' must be a whole segment"),
        ("***", "'**' must be a whole segment"),
        ("a**/b", "'**' must be a whole segment"),
        ("production/API KEY", "' ' is not allowed"),
        ("production/API.KEY", "'.' is not allowed"),
        ("production/?", "'?' is not allowed"),
        ("production/[AB]", "'[' is not allowed"),
        ("production\\API_KEY", "'\\' is not allowed"),
        ("production/ÄPI", "byte 0xc3 is not allowed"),
        ("production/A\nB", "byte 0x0a is not allowed"),
        (String(repeating: "a", count: 257), "the limit is 256"),
    ]

    @Test("invalid patterns are refused with a usage error that says why", arguments: refused)
    func refusedPatterns(_ text: String, _ reason: String) {
        let error = #expect(throws: VSecureError.self) { try PathPattern(text) }
        #expect(error?.status == .usage)
        #expect(error?.message.contains(reason) == true, "\(String(describing: error?.message))")
        #expect(error?.message.contains("\n") == false)
    }

    @Test("isLiteral, text, description and equality")
    func properties() throws {
        #expect(try PathPattern("production/API_KEY").isLiteral)
        #expect(try !PathPattern("production/*").isLiteral)
        #expect(try !PathPattern("**").isLiteral)
        let pattern = try PathPattern("staging/*_KEY")
        #expect(pattern.text == "staging/*_KEY")
        #expect(pattern.description == "staging/*_KEY")
        #expect(try pattern == PathPattern("staging/*_KEY"))
        #expect(try Set([pattern, PathPattern("staging/*_KEY"), PathPattern("staging/*")]).count == 2)
        #expect(try PathPattern(String(repeating: "a", count: 256)).isLiteral)
    }
}

@Suite("Access policy documents")
struct AccessPolicyTests {
    static let example = """
        {"secrets": {"production/*": {"read": ["engineers", "devops"], "write": ["devops"], "delete": ["admins"]}}}
        """

    func parse(_ text: String) throws(VSecureError) -> AccessPolicy {
        try AccessPolicy(parsing: Array(text.utf8))
    }

    func failure(_ text: String) -> VSecureError? {
        #expect(throws: VSecureError.self) { try AccessPolicy(parsing: Array(text.utf8)) }
    }

    @Test("the example document parses into one rule")
    func example() throws {
        let policy = try parse(Self.example)
        #expect(policy.rules.count == 1)
        let rule = try #require(policy.rules.first)
        #expect(rule.pattern == (try PathPattern("production/*")))
        #expect(rule.roles == [.read: ["engineers", "devops"], .write: ["devops"], .delete: ["admins"]])
        #expect(rule.line == 1)
        #expect(AccessPolicy.empty.rules.isEmpty)
    }

    @Test("rules keep document order and the line of their key; json() is canonical and round-trips")
    func canonical() throws {
        let policy = try parse("""
            {
              "secrets": {
                "staging/*": {"write": ["devops"], "read": ["engineers"]},
                "production/DB_ROOT": {},
                "**": {"delete": [], "read": ["auditors", "admins"]}
              }
            }
            """)
        #expect(policy.rules.map(\.pattern.text) == ["staging/*", "production/DB_ROOT", "**"])
        #expect(policy.rules.map(\.line) == [3, 4, 5])
        #expect(policy.rules[1].roles.isEmpty)
        #expect(policy.rules[2].roles == [.delete: [], .read: ["auditors", "admins"]])
        let json = policy.json()
        #expect(json.serialized(indent: nil) == #"{"secrets":{"staging/*":{"read":["engineers"],"write":["devops"]},"production/DB_ROOT":{},"**":{"read":["auditors","admins"],"delete":[]}}}"#)
        let again = try parse(json.serialized(indent: nil))
        #expect(again.rules.map(\.pattern) == policy.rules.map(\.pattern))
        #expect(again.rules.map(\.roles) == policy.rules.map(\.roles))
        #expect(again.json() == json)
    }

    @Test("a document with escapes, spacing and no rules is accepted")
    func edges() throws {
        #expect(try parse(#"{"secrets": {}}"#) == AccessPolicy.empty)
        let escaped = try parse("{\r\n\t\"secr\\u0065ts\" : {\"production\\/API_KEY\": {\"read\": [\"ci.bot-1\"]}}}")
        #expect(escaped.rules.first?.pattern.text == "production/API_KEY")
        #expect(escaped.rules.first?.roles[.read] == ["ci.bot-1"])
        #expect(try parse(#"{"secrets": {"a": {"read": ["\#(String(repeating: "r", count: 64))"]}}}"#).rules.count == 1)
    }

    /// (document, line, column, words the message must contain)
    static let errors: [(String, Int, Int, [String])] = [
        // Invalid JSON, at the offending character.
        ("{\n  \"secrets\": {\n    \"production/*\": {\"read\": [\"engineers\",]}\n  }\n}", 3, 43, ["invalid JSON", "unexpected character"]),
        ("{\n  \"secrets\": {\n    \"production/*\" {\"read\": []}\n  }\n}", 3, 20, ["invalid JSON", "expected ':'"]),
        ("{\"secrets\": {}", 1, 15, ["invalid JSON", "unterminated object"]),
        ("", 1, 1, ["invalid JSON", "unexpected end"]),
        ("{\"secrets\": {}} x", 1, 17, ["invalid JSON", "unexpected text after the document"]),
        ("{\"secrets\": {\"a\": {\"read\": [\"x\\q\"]}}}", 1, 32, ["invalid JSON", "unknown escape"]),
        ("{\"secrets\": {\"a\": {\"read\": [01]}}}", 1, 29, ["invalid JSON", "malformed number"]),
        // The top level.
        ("[]", 1, 1, ["must be a JSON object", "an array"]),
        ("{}", 1, 1, ["no \"secrets\" key"]),
        ("{\n  \"secrets\": {},\n  \"version\": 2\n}", 3, 3, ["unknown top-level key 'version'"]),
        ("{\n  \"secrets\": {},\n  \"secrets\": {}\n}", 3, 3, ["duplicate key \"secrets\""]),
        ("{\n  \"secrets\": [\"production/*\"]\n}", 2, 14, ["\"secrets\" must be an object", "an array"]),
        // Patterns.
        ("{\n  \"secrets\": {\n    \"production/*\": {\"read\": [\"a\"]},\n    \"staging/*\": {},\n    \"production/*\": {\"write\": [\"b\"]}\n  }\n}",
         5, 5, ["duplicate pattern 'production/*'", "first at line 3"]),
        ("{\n  \"secrets\": {\n    \"production//API_KEY\": {\"read\": [\"a\"]}\n  }\n}", 3, 5, ["invalid path pattern 'production//API_KEY'", "empty segment"]),
        ("{\n  \"secrets\": {\n    \"production/**KEY\": {}\n  }\n}", 3, 5, ["invalid path pattern", "'**' must be a whole segment"]),
        ("{\"secrets\": {\"\": {}}}", 1, 14, ["path pattern is empty"]),
        ("{\n  \"secrets\": {\n    \"production/*\": [\"read\"]\n  }\n}", 3, 21, ["the rule for 'production/*' must be an object", "an array"]),
        // Actions.
        ("{\n  \"secrets\": {\n    \"production/*\": {\n      \"read\": [\"engineers\"],\n      \"reed\": [\"devops\"]\n    }\n  }\n}",
         5, 7, ["unknown action 'reed'", "'production/*'"]),
        ("{\n  \"secrets\": {\n    \"production/*\": {\n      \"read\": [\"engineers\"],\n      \"read\": [\"devops\"]\n    }\n  }\n}",
         5, 7, ["duplicate action 'read'", "'production/*'"]),
        ("{\n  \"secrets\": {\n    \"production/*\": {\n      \"read\": \"engineers\"\n    }\n  }\n}", 4, 15, ["must be an array of role names", "a string"]),
        // Roles.
        ("{\n  \"secrets\": {\n    \"production/*\": {\n      \"read\": [\"engineers\",\n               42]\n    }\n  }\n}",
         5, 16, ["a role must be a string, not a number", "read in the rule for 'production/*'"]),
        ("{\"secrets\": {\"a\": {\"write\": [null]}}}", 1, 30, ["a role must be a string, not null"]),
        ("{\"secrets\": {\"a\": {\"write\": [[\"x\"]]}}}", 1, 30, ["a role must be a string, not an array"]),
        ("{\n  \"secrets\": {\n    \"a\": {\"delete\": [\"\"]}\n  }\n}", 3, 22, ["empty role name", "delete in the rule for 'a'"]),
        ("{\"secrets\": {\"a\": {\"read\": [\"dev ops\"]}}}", 1, 29, ["invalid role name 'dev ops'"]),
        ("{\"secrets\": {\"a\": {\"read\": [\"\(String(repeating: "r", count: 65))\"]}}}", 1, 29, ["invalid role name"]),
        ("{\"secrets\": {\"a\": {\"read\": [\"x\", \"x\"]}}}", 1, 34, ["role 'x' is listed twice"]),
    ]

    @Test("every problem is a usage error that starts with its line and column", arguments: errors)
    func positionedErrors(_ document: String, _ line: Int, _ column: Int, _ words: [String]) {
        let error = failure(document)
        let message = error?.message ?? ""
        #expect(error?.status == .usage)
        #expect(message.hasPrefix("line \(line), column \(column): "), "\(message)")
        for word in words { #expect(message.contains(word), "\(message) should contain \(word)") }
    }

    @Test("an unknown action or role carries a hint that lists what is allowed")
    func hints() {
        #expect(failure(#"{"secrets": {"a": {"reed": []}}}"#)?.hints == ["the actions are read, write and delete"])
        #expect(failure(#"{"secrets": {"a": {"read": ["a b"]}}}"#)?.hints.first?.contains("role names are") == true)
        #expect(failure(#"{"secrets": {"a b": {}}}"#)?.hints.first?.contains("patterns look like") == true)
    }

    @Test("a key with control characters is quoted with escapes")
    func escapedKey() {
        let message = failure("{\"secrets\": {}, \"x\\u001b[31m\": 1}")?.message ?? ""
        #expect(message.contains("'x\\x1b[31m'"), "\(message)")
        #expect(!message.contains("\u{1B}"))
    }

    static let policy = """
        {"secrets": {
          "production/*": {"read": ["engineers", "devops"], "write": ["devops"], "delete": ["admins"]},
          "production/DB_ROOT": {"read": ["admins"]},
          "production/**": {"read": ["auditors"]},
          "staging/*_KEY": {"read": ["ci"], "write": ["ci"]},
          "staging/API_*": {"read": ["ci", "devops"]},
          "*/API_KEY": {"read": ["everyone"]}
        }}
        """

    @Test("the most specific rule decides, without falling through to broader rules")
    func specificity() throws {
        let policy = try parse(Self.policy)
        func allowed(_ roles: Set<String>, _ action: AccessAction, _ path: String) -> Bool {
            policy.decide(roles: roles, action: action, path: path).allowed
        }
        #expect(allowed(["engineers"], .read, "production/API_KEY"))
        #expect(!allowed(["engineers"], .write, "production/API_KEY"))
        #expect(allowed(["devops"], .write, "production/API_KEY"))
        // write does not imply read, read does not imply write.
        #expect(!allowed(["admins"], .read, "production/API_KEY"))
        #expect(allowed(["admins"], .delete, "production/API_KEY"))
        // The literal rule narrows production/*, for every action.
        #expect(!allowed(["engineers"], .read, "production/DB_ROOT"))
        #expect(allowed(["admins"], .read, "production/DB_ROOT"))
        #expect(!allowed(["admins"], .delete, "production/DB_ROOT"))
        // production/* (10 literal characters) beats */API_KEY (7).
        #expect(!allowed(["everyone"], .read, "production/API_KEY"))
        #expect(allowed(["everyone"], .read, "development/API_KEY"))
        // production/* beats production/** for one segment; only ** reaches deeper.
        #expect(!allowed(["auditors"], .read, "production/API_KEY"))
        #expect(allowed(["auditors"], .read, "production"))
        #expect(allowed(["auditors"], .read, "production/a/b"))
        // staging/*_KEY and staging/API_* tie on staging/API_KEY: both must allow.
        #expect(allowed(["ci"], .read, "staging/API_KEY"))
        #expect(!allowed(["devops"], .read, "staging/API_KEY"))
        #expect(!allowed(["ci"], .write, "staging/API_KEY"))
        #expect(allowed(["ci"], .write, "staging/DB_KEY"))
        // Default deny.
        #expect(!allowed(["engineers", "devops", "admins", "ci"], .read, "development/DB_URL"))
        #expect(!allowed([], .read, "production/API_KEY"))
    }

    @Test("decisions name the deciding rule and explain themselves")
    func explanations() throws {
        let policy = try parse(Self.policy)
        let allow = policy.decide(roles: ["engineers"], action: .read, path: "production/API_KEY")
        #expect(allow == AccessDecision(allowed: true, basis: .rule(pattern: "production/*", line: 2),
                                        explanation: "allow: rule \"production/*\" (line 2) lets role engineers read production/API_KEY"))
        let narrowed = policy.decide(roles: ["engineers"], action: .read, path: "production/DB_ROOT")
        #expect(narrowed.basis == .rule(pattern: "production/DB_ROOT", line: 3))
        #expect(narrowed.explanation == "deny: rule \"production/DB_ROOT\" (line 3) is the most specific for production/DB_ROOT and lets only admins read")
        let unlisted = policy.decide(roles: ["admins"], action: .write, path: "production/DB_ROOT")
        #expect(unlisted.explanation.hasSuffix("does not let any role write"))
        let none = policy.decide(roles: ["admins"], action: .read, path: "development/X")
        #expect(none == AccessDecision(allowed: false, basis: .noRule, explanation: "deny: no rule matches development/X"))
        let tie = policy.decide(roles: ["devops"], action: .read, path: "staging/API_KEY")
        #expect(tie.basis == .rule(pattern: "staging/*_KEY", line: 5))
        #expect(tie.explanation.contains("tied as most specific with \"staging/API_*\" (line 6)"), "\(tie.explanation)")
        let forged = AccessPolicy.empty.decide(roles: [], action: .read, path: "x\nallow: y")
        #expect(!forged.explanation.contains("\n"))
    }
}

@Suite("Access grants")
struct AccessGrantTests {
    static let now = Timestamp(secondsSinceEpoch: 1_800_000_000)
    static let policy = literal(#"{"secrets": {"production/*": {"read": ["admins"]}}}"#, placeholder: #"{"secrets": {}}"#) { try AccessPolicy(parsing: Array($0.utf8)) }

    func grant(id: String = "g1", subject: String = "alice@example.com", pattern: String = "production/API_KEY",
               action: AccessAction = .read, expiresAt: Timestamp, revokedAt: Timestamp? = nil) -> AccessGrant {
        AccessGrant(id: id, subject: subject, pattern: literal(pattern, PathPattern.init), action: action,
                    createdAt: Timestamp(secondsSinceEpoch: 1_700_000_000), expiresAt: expiresAt,
                    revokedAt: revokedAt, createdBy: "root@example.com")
    }

    func decide(_ grants: [AccessGrant], at now: Timestamp = now, subject: String = "alice@example.com",
                action: AccessAction = .read, path: String = "production/API_KEY", disabled: Bool = false) -> AccessDecision {
        AccessControl.decide(subject: subject, roles: ["engineers"], disabled: disabled, action: action, path: path,
                             policy: Self.policy, grants: grants, now: now)
    }

    @Test("a grant allows until one second before expiresAt, and not at or after it")
    func expiry() {
        let expiresAt = Timestamp(secondsSinceEpoch: Self.now.secondsSinceEpoch + 3600)
        let g = grant(expiresAt: expiresAt)
        let before = decide([g], at: Timestamp(secondsSinceEpoch: expiresAt.secondsSinceEpoch - 1))
        #expect(before.allowed)
        #expect(before.basis == .grant(id: "g1"))
        #expect(before.explanation == "allow: grant g1 lets alice@example.com read production/API_KEY until \(expiresAt.iso8601) (the policy alone would deny)")
        #expect(!decide([g], at: expiresAt).allowed)
        #expect(!decide([g], at: Timestamp(secondsSinceEpoch: expiresAt.secondsSinceEpoch + 1)).allowed)
        #expect(decide([g], at: Timestamp(secondsSinceEpoch: expiresAt.secondsSinceEpoch + 1)).basis == .rule(pattern: "production/*", line: 1))
        #expect(g.isActive(at: Timestamp(secondsSinceEpoch: expiresAt.secondsSinceEpoch - 1)))
        #expect(!g.isActive(at: expiresAt))
    }

    @Test("a revoked grant allows nothing, even when revokedAt is in the future")
    func revoked() {
        let expiresAt = Timestamp(secondsSinceEpoch: Self.now.secondsSinceEpoch + 3600)
        #expect(!decide([grant(expiresAt: expiresAt, revokedAt: Timestamp(secondsSinceEpoch: Self.now.secondsSinceEpoch - 10))]).allowed)
        #expect(!decide([grant(expiresAt: expiresAt, revokedAt: Timestamp(secondsSinceEpoch: Self.now.secondsSinceEpoch + 10))]).allowed)
        // A revoked grant does not hide a later active one.
        let both = decide([grant(id: "old", expiresAt: expiresAt, revokedAt: Self.now), grant(id: "new", expiresAt: expiresAt)])
        #expect(both.basis == .grant(id: "new"))
    }

    @Test("a grant for another subject, action or path has no effect")
    func scope() {
        let expiresAt = Timestamp(secondsSinceEpoch: Self.now.secondsSinceEpoch + 3600)
        let g = grant(expiresAt: expiresAt)
        #expect(decide([g]).allowed)
        #expect(!decide([g], subject: "bob@example.com").allowed)
        #expect(!decide([g], subject: "Alice@example.com").allowed)
        #expect(!decide([g], action: .write).allowed)
        #expect(!decide([g], action: .delete).allowed)
        #expect(!decide([g], path: "production/DB_URL").allowed)
        #expect(!decide([g], path: "staging/API_KEY").allowed)
        #expect(!decide([grant(subject: "bob@example.com", expiresAt: expiresAt)]).allowed)
        #expect(!decide([grant(action: .write, expiresAt: expiresAt)]).allowed)
        #expect(!decide([grant(pattern: "staging/*", expiresAt: expiresAt)]).allowed)
        // A glob grant covers what it matches, and only that.
        let glob = grant(pattern: "staging/*", action: .write, expiresAt: expiresAt)
        #expect(decide([glob], action: .write, path: "staging/DB_URL").allowed)
        #expect(!decide([glob], action: .write, path: "staging/a/b").allowed)
        #expect(!decide([glob], action: .read, path: "staging/DB_URL").allowed)
    }

    @Test("a disabled user is denied whatever the policy and the grants say")
    func disabled() {
        let expiresAt = Timestamp(secondsSinceEpoch: Self.now.secondsSinceEpoch + 3600)
        let decision = AccessControl.decide(subject: "alice@example.com", roles: ["admins"], disabled: true, action: .read,
                                            path: "production/API_KEY", policy: Self.policy,
                                            grants: [grant(expiresAt: expiresAt)], now: Self.now)
        #expect(decision == AccessDecision(allowed: false, basis: .disabledUser, explanation: "deny: alice@example.com is disabled"))
        let enabled = AccessControl.decide(subject: "alice@example.com", roles: ["admins"], disabled: false, action: .read,
                                           path: "production/API_KEY", policy: Self.policy, grants: [], now: Self.now)
        #expect(enabled.allowed)
        #expect(enabled.basis == .rule(pattern: "production/*", line: 1))
    }
}
