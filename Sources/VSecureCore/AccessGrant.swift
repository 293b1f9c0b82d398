/// A temporary exception to the policy: `subject` may perform `action` on the paths `pattern`
/// matches until `expiresAt`, unless revoked first.
public struct AccessGrant: Sendable, Equatable {
    public let id: String
    /// A user's email or a service account's name, compared exactly.
    public let subject: String
    /// `production/API_KEY` or a glob such as `staging/*`.
    public let pattern: PathPattern
    public let action: AccessAction
    public let createdAt: Timestamp
    public let expiresAt: Timestamp
    public let revokedAt: Timestamp?
    public let createdBy: String?

    public init(id: String, subject: String, pattern: PathPattern, action: AccessAction, createdAt: Timestamp,
                expiresAt: Timestamp, revokedAt: Timestamp? = nil, createdBy: String? = nil) {
        self.id = id
        self.subject = subject
        self.pattern = pattern
        self.action = action
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.createdBy = createdBy
    }

    /// Active while not revoked and `now < expiresAt`. Revocation takes effect at once: a grant
    /// with any `revokedAt`, even a future one, is inactive.
    public func isActive(at now: Timestamp) -> Bool {
        revokedAt == nil && now < expiresAt
    }

    /// Whether this grant, when active, lets `subject` perform `action` on `path`.
    public func covers(subject: String, action: AccessAction, path: String) -> Bool {
        self.subject == subject && self.action == action && pattern.matches(path)
    }
}

/// The one place that combines the policy, the user's state and the grants.
public enum AccessControl {
    /// A disabled user is always denied. Otherwise the policy decides; when it denies, the first
    /// grant (in the order given) that is active at `now` and covers this subject, action and
    /// path allows. Grants never deny: they only add access.
    public static func decide(subject: String, roles: Set<String>, disabled: Bool, action: AccessAction, path: String,
                              policy: AccessPolicy, grants: [AccessGrant], now: Timestamp) -> AccessDecision {
        guard !disabled else {
            return AccessDecision(allowed: false, basis: .disabledUser,
                                  explanation: "deny: \(shown(subject)) is disabled")
        }
        let byPolicy = policy.decide(roles: roles, action: action, path: path)
        guard !byPolicy.allowed else { return byPolicy }
        guard let grant = grants.first(where: { $0.isActive(at: now) && $0.covers(subject: subject, action: action, path: path) }) else {
            return byPolicy
        }
        return AccessDecision(
            allowed: true, basis: .grant(id: grant.id),
            explanation: "allow: grant \(shown(grant.id)) lets \(shown(subject)) \(action.rawValue) \(shown(path)) "
                + "until \(grant.expiresAt.iso8601) (the policy alone would deny)")
    }
}
