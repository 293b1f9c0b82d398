import Testing
import TestSupport
import VSecureCore

/// A second, deliberately different implementation of the access rules, used as an oracle:
/// recursive matching over `Character`s and segment arrays (the engine walks bytes with a
/// single backtrack point), and specificity by pairwise domination over all matching rules (the
/// engine keeps a running maximum).
enum ReferenceAccess {
    struct Rule {
        let pattern: String
        let roles: [AccessAction: [String]]
        let line: Int
    }

    static func matches(_ pattern: String, _ path: String) -> Bool {
        let pathSegments = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if path.isEmpty || pathSegments.contains("") { return false }
        return matchSegments(pattern.split(separator: "/").map(String.init)[...], pathSegments[...])
    }

    private static func matchSegments(_ pattern: ArraySlice<String>, _ path: ArraySlice<String>) -> Bool {
        guard let head = pattern.first else { return path.isEmpty }
        if head == "**" {
            return matchSegments(pattern.dropFirst(), path) || (!path.isEmpty && matchSegments(pattern, path.dropFirst()))
        }
        guard let segment = path.first else { return false }
        return matchCharacters(Array(head)[...], Array(segment)[...]) && matchSegments(pattern.dropFirst(), path.dropFirst())
    }

    private static func matchCharacters(_ pattern: ArraySlice<Character>, _ text: ArraySlice<Character>) -> Bool {
        guard let head = pattern.first else { return text.isEmpty }
        if head == "*" {
            return matchCharacters(pattern.dropFirst(), text) || (!text.isEmpty && matchCharacters(pattern, text.dropFirst()))
        }
        return text.first == head && matchCharacters(pattern.dropFirst(), text.dropFirst())
    }

    /// Higher is more specific, compared left to right.
    static func rank(_ pattern: String) -> [Int] {
        let segments = pattern.split(separator: "/")
        let globstars = segments.filter { $0 == "**" }.count
        let allStars = pattern.filter { $0 == "*" }.count
        return [
            pattern.contains("*") ? 0 : 1,
            segments.filter { !$0.contains("*") }.count,
            pattern.filter { $0 != "*" && $0 != "/" }.count,
            -globstars,
            -(allStars - 2 * globstars),
        ]
    }

    static func moreSpecific(_ a: String, than b: String) -> Bool {
        for (x, y) in zip(rank(a), rank(b)) where x != y { return x > y }
        return false
    }

    static func decide(rules: [Rule], roles: Set<String>, action: AccessAction, path: String) -> (Bool, AccessDecision.Basis) {
        let matching = rules.filter { matches($0.pattern, path) }
        let top = matching.filter { candidate in !matching.contains { moreSpecific($0.pattern, than: candidate.pattern) } }
        guard !top.isEmpty else { return (false, .noRule) }
        for rule in top {
            let listed = rule.roles[action] ?? []
            if !listed.contains(where: { roles.contains($0) }) {
                return (false, .rule(pattern: rule.pattern, line: rule.line))
            }
        }
        return (true, .rule(pattern: top[0].pattern, line: top[0].line))
    }

    /// `byPolicy` is `decide(rules:roles:action:path:)` for the same request, computed once per
    /// request rather than once per grant state.
    static func decide(subject: String, disabled: Bool, action: AccessAction, path: String,
                       byPolicy: (Bool, AccessDecision.Basis), grants: [AccessGrant], now: Int64) -> (Bool, AccessDecision.Basis) {
        if disabled { return (false, .disabledUser) }
        if byPolicy.0 { return byPolicy }
        for grant in grants where grant.subject == subject && grant.action == action && grant.revokedAt == nil
            && now < grant.expiresAt.secondsSinceEpoch && matches(grant.pattern.text, path) {
            return (true, .grant(id: grant.id))
        }
        return byPolicy
    }
}

@Suite("Authorization matrix against a reference implementation")
struct AccessMatrixTests {
    /// (pattern, read, write, delete); nil means the action is not listed.
    static let ruleSpecs: [(String, [String]?, [String]?, [String]?)] = [
        ("production/*", ["engineers", "devops"], ["devops"], ["admins"]),
        ("production/DB_ROOT", ["admins"], nil, nil),
        ("production/**", ["auditors"], ["admins"], ["admins"]),
        ("staging/*", ["engineers", "devops", "contractors"], ["engineers", "devops"], nil),
        ("*/API_KEY", ["ci"], [], nil),
        ("**/SHARED_*", ["contractors", "engineers"], nil, nil),
        ("**", ["admins", "auditors"], ["admins"], ["admins"]),
        ("development/**", ["engineers"], ["engineers"], ["engineers"]),
        ("staging/*_KEY", ["ci", "devops"], nil, nil),
        ("staging/API_*", ["devops"], ["ci"], nil),
        ("*/*", ["readonly"], nil, nil),
        ("production/PAYMENT_*", nil, ["payments"], nil),
        ("development/**/LEGACY", nil, nil, ["admins"]),
        ("*-eu/*", ["eu-team"], ["eu-team"], nil),
    ]

    static let environments = ["production", "staging", "development", "prod-eu", "productionX", "dev"]
    static let names = ["API_KEY", "DB_ROOT", "SHARED_TOKEN", "PAYMENT_KEY", "OTHER", "KEY", "API_"]
    static let otherPaths = [
        "production", "staging", "development", "production/a/b", "development/x/LEGACY", "development/LEGACY",
        "staging/x/API_KEY", "a/b/SHARED_X", "SHARED_", "", "production/", "/API_KEY", "production//API_KEY",
    ]
    static var paths: [String] { environments.flatMap { env in names.map { "\(env)/\($0)" } } + otherPaths }

    static let roleSets: [Set<String>] = [
        [], ["engineers"], ["devops"], ["admins"], ["auditors"], ["ci"], ["contractors"], ["readonly"],
        ["engineers", "ci"], ["payments", "devops"], ["eu-team"], ["nobody"],
    ]

    static let subject = "alice@example.com"
    static let now: Int64 = 1_800_000_000

    /// The document for `ruleSpecs`, one rule per line starting at line 2, in the given order.
    static func document(_ specs: [(String, [String]?, [String]?, [String]?)]) -> String {
        func list(_ roles: [String]) -> String { "[" + roles.map { "\"\($0)\"" }.joined(separator: ", ") + "]" }
        let lines = specs.map { spec in
            let actions = [("read", spec.1), ("write", spec.2), ("delete", spec.3)].compactMap { name, roles in
                roles.map { "\"\(name)\": \(list($0))" }
            }
            return "    \"\(spec.0)\": {\(actions.joined(separator: ", "))}"
        }
        return "{\"secrets\": {\n" + lines.joined(separator: ",\n") + "\n}}\n"
    }

    static func referenceRules(_ specs: [(String, [String]?, [String]?, [String]?)]) -> [ReferenceAccess.Rule] {
        specs.enumerated().map { index, spec in
            var roles: [AccessAction: [String]] = [:]
            roles[.read] = spec.1
            roles[.write] = spec.2
            roles[.delete] = spec.3
            return ReferenceAccess.Rule(pattern: spec.0, roles: roles, line: index + 2)
        }
    }

    /// The grant situations for one path and action: none, active, expired by a second, expiring
    /// in a second, expiring now, revoked, and grants that miss on subject, action or path.
    static func grantStates(path: String, action: AccessAction) -> [(String, [AccessGrant])] {
        let other = AccessAction.allCases.first { $0 != action }!
        let environment = path.split(separator: "/").first.map(String.init) ?? "production"
        let glob = (try? PathPattern("\(environment)/*")) ?? literal("production/*", PathPattern.init)
        let exact = (try? PathPattern(path)) ?? TestSupport.literal("production/API_KEY", PathPattern.init)
        func grant(_ id: String, subject: String = subject, pattern: PathPattern = exact, action: AccessAction = action,
                   expires: Int64, revoked: Int64? = nil) -> AccessGrant {
            AccessGrant(id: id, subject: subject, pattern: pattern, action: action, createdAt: Timestamp(secondsSinceEpoch: now - 86_400),
                        expiresAt: Timestamp(secondsSinceEpoch: expires), revokedAt: revoked.map { Timestamp(secondsSinceEpoch: $0) })
        }
        return [
            ("none", []),
            ("active T+1s", [grant("active", expires: now + 1)]),
            ("expired T-1s", [grant("expired", expires: now - 1)]),
            ("expires at T", [grant("at-now", expires: now)]),
            ("revoked", [grant("revoked", expires: now + 3600, revoked: now - 60)]),
            ("revoked later", [grant("revoked-later", expires: now + 3600, revoked: now + 60)]),
            ("glob active", [grant("glob", pattern: glob, expires: now + 3600)]),
            ("other subject", [grant("bob", subject: "bob@example.com", expires: now + 3600)]),
            ("other action", [grant("other-action", action: other, expires: now + 3600)]),
            ("other path", [grant("other-path", pattern: TestSupport.literal("staging/UNRELATED", PathPattern.init), expires: now + 3600)]),
            ("expired then active", [grant("old", expires: now - 1), grant("fresh", pattern: glob, expires: now + 60)]),
        ]
    }

    @Test("the engine and the reference agree on every combination")
    func matrix() throws {
        let policy = try AccessPolicy(parsing: Array(Self.document(Self.ruleSpecs).utf8))
        let reference = Self.referenceRules(Self.ruleSpecs)
        #expect(policy.rules.map(\.line) == reference.map(\.line))
        var cases = 0, allowedCount = 0, deniedCount = 0
        var disagreements: [String] = []
        for path in Self.paths {
            for action in AccessAction.allCases {
                let states = Self.grantStates(path: path, action: action)
                for roles in Self.roleSets {
                    let byPolicy = ReferenceAccess.decide(rules: reference, roles: roles, action: action, path: path)
                    for (state, grants) in states {
                        for disabled in [false, true] {
                            let engine = AccessControl.decide(subject: Self.subject, roles: roles, disabled: disabled, action: action,
                                                              path: path, policy: policy, grants: grants,
                                                              now: Timestamp(secondsSinceEpoch: Self.now))
                            let expected = ReferenceAccess.decide(subject: Self.subject, disabled: disabled, action: action, path: path,
                                                                  byPolicy: byPolicy, grants: grants, now: Self.now)
                            if engine.allowed != expected.0 || engine.basis != expected.1 {
                                disagreements.append("\(path) \(action) \(roles.sorted()) \(state) disabled=\(disabled): "
                                                     + "engine \(engine.explanation), reference \(expected)")
                            }
                            cases += 1
                            if engine.allowed { allowedCount += 1 } else { deniedCount += 1 }
                        }
                    }
                }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) of \(cases) disagree, first: \(disagreements.prefix(20).joined(separator: "\n"))")
        #expect(cases > 10_000)
        #expect(allowedCount > 500 && deniedCount > 500, "allowed \(allowedCount), denied \(deniedCount)")
    }

    @Test("the order of rules in the document never changes whether access is allowed")
    func orderIndependence() throws {
        let forward = try AccessPolicy(parsing: Array(Self.document(Self.ruleSpecs).utf8))
        let backward = try AccessPolicy(parsing: Array(Self.document(Self.ruleSpecs.reversed()).utf8))
        let rotated = try AccessPolicy(parsing: Array(Self.document(Array(Self.ruleSpecs[5...] + Self.ruleSpecs[..<5])).utf8))
        for path in Self.paths {
            for action in AccessAction.allCases {
                for roles in Self.roleSets {
                    let answer = forward.decide(roles: roles, action: action, path: path).allowed
                    #expect(backward.decide(roles: roles, action: action, path: path).allowed == answer, "\(path) \(action) \(roles)")
                    #expect(rotated.decide(roles: roles, action: action, path: path).allowed == answer, "\(path) \(action) \(roles)")
                }
            }
        }
    }

    /// Facts that hold whatever the two implementations say, so that they cannot agree on a
    /// wrong answer unnoticed.
    @Test("absolute expectations: default deny, * stays in its segment, narrowing, disabled users")
    func absolutes() throws {
        let policy = try AccessPolicy(parsing: Array(Self.document(Self.ruleSpecs).utf8))
        let now = Timestamp(secondsSinceEpoch: Self.now)
        func allowed(_ roles: Set<String>, _ action: AccessAction, _ path: String, grants: [AccessGrant] = [], disabled: Bool = false) -> Bool {
            AccessControl.decide(subject: Self.subject, roles: roles, disabled: disabled, action: action, path: path,
                                 policy: policy, grants: grants, now: now).allowed
        }
        for path in Self.paths {
            for action in AccessAction.allCases {
                // No roles, no grant: deny. Unknown role: deny. Empty policy: deny.
                #expect(!allowed([], action, path), "\(path)")
                #expect(!allowed(["nobody"], action, path), "\(path)")
                #expect(!AccessPolicy.empty.decide(roles: ["admins"], action: action, path: path).allowed)
                // A disabled user: deny, even with every role and an active grant.
                let grant = AccessGrant(id: "g", subject: Self.subject, pattern: try PathPattern("**"), action: action,
                                        createdAt: now, expiresAt: Timestamp(secondsSinceEpoch: Self.now + 60))
                #expect(!allowed(Set(Self.roleSets.flatMap { $0 }), action, path, grants: [grant], disabled: true))
                #expect(path.isEmpty || path.contains("//") || path.hasPrefix("/") || path.hasSuffix("/")
                        || allowed([], action, path, grants: [grant]))
            }
            // `readonly` appears only in */*, whose `*` never crosses '/'.
            if allowed(["readonly"], .read, path) {
                #expect(path.split(separator: "/", omittingEmptySubsequences: false).count == 2, "\(path)")
            }
        }
        #expect(allowed(["readonly"], .read, "dev/OTHER"))
        #expect(allowed(["readonly"], .read, "productionX/OTHER"))
        #expect(!allowed(["readonly"], .read, "production/a/b"))
        #expect(!allowed(["readonly"], .read, "staging/x/API_KEY"))
        // Hand-checked answers.
        #expect(allowed(["engineers"], .read, "production/API_KEY"))
        #expect(!allowed(["engineers"], .read, "production/DB_ROOT"))
        #expect(!allowed(["engineers"], .read, "production/a/b"))
        #expect(allowed(["auditors"], .read, "production/a/b"))
        #expect(!allowed(["auditors"], .read, "production/API_KEY"))
        #expect(allowed(["auditors"], .read, "production"))
        #expect(!allowed(["ci"], .read, "production/API_KEY"))
        #expect(allowed(["ci"], .read, "dev/API_KEY"))
        #expect(!allowed(["ci"], .write, "dev/API_KEY"))
        // staging/*_KEY and staging/API_* tie on staging/API_KEY and beat staging/* and */API_KEY.
        #expect(!allowed(["ci"], .read, "staging/API_KEY"))
        #expect(allowed(["devops"], .read, "staging/API_KEY"))
        #expect(!allowed(["engineers"], .read, "staging/API_KEY"))
        #expect(allowed(["engineers"], .read, "staging/OTHER"))
        #expect(!allowed(["devops"], .write, "productionX/OTHER"))
        #expect(allowed(["payments"], .write, "production/PAYMENT_KEY"))
        #expect(!allowed(["devops"], .write, "production/PAYMENT_KEY"))
        #expect(!allowed(["engineers"], .write, "staging/PAYMENT_KEY"))
        #expect(allowed(["admins"], .delete, "development/x/LEGACY"))
        #expect(!allowed(["engineers"], .delete, "development/x/LEGACY"))
        #expect(allowed(["engineers"], .delete, "development/OTHER"))
        #expect(!allowed(["engineers"], .write, "production/API_KEY"))
        #expect(!allowed(["devops"], .read, "production/DB_ROOT"))
    }
}
