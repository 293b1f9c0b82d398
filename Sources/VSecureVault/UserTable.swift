import VSecureCore
import VSecureCrypto

/// Users (people, named by email) and service accounts (named like `ci-deploy`), with their
/// roles. API keys belong to one of them; the access policy names roles.
extension ServerRegistry {
    public enum UserKind: String, Sendable, CaseIterable {
        case person, service
    }

    public struct User: Sendable, Equatable {
        public var id: String
        /// The email of a person, the name of a service account; unique, stored lowercased.
        public var name: String
        public var kind: UserKind
        public var roles: [String]
        public var createdAt: Timestamp
        public var disabledAt: Timestamp?

        public init(id: String, name: String, kind: UserKind, roles: [String], createdAt: Timestamp, disabledAt: Timestamp?) {
            self.id = id
            self.name = name
            self.kind = kind
            self.roles = roles
            self.createdAt = createdAt
            self.disabledAt = disabledAt
        }

        public var isDisabled: Bool { disabledAt != nil }
    }

    /// A person's email: one '@' with something on both sides, no spaces and no control or
    /// invisible characters (`containsHiddenCharacters`), at most 254 bytes. Lowercased, so
    /// `Ana@Example.com` and `ana@example.com` are one user.
    public static func validEmail(_ text: String) throws(VSecureError) -> String {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard text.utf8.count <= 254, parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty,
              !containsHiddenCharacters(text, allowingSpace: false) else {
            throw VSecureError.usage("\(Quoted(text)) is not an email address",
                                     hint: "a person is named by an email like ana@example.com; a service account by a name like ci-deploy (--service)")
        }
        return text.lowercased()
    }

    /// A service account's name: `[a-z0-9][a-z0-9._-]{0,63}`.
    public static func validServiceName(_ text: String) throws(VSecureError) -> String {
        let bytes = Array(text.utf8)
        func allowed(_ b: UInt8, first: Bool) -> Bool {
            (0x61...0x7A).contains(b) || (0x30...0x39).contains(b) || (!first && (b == 0x2E || b == 0x5F || b == 0x2D))
        }
        guard (1...64).contains(bytes.count), allowed(bytes[0], first: true), bytes.dropFirst().allSatisfy({ allowed($0, first: false) }) else {
            throw VSecureError.usage("\(Quoted(text)) is not a service-account name",
                                     hint: "1 to 64 characters: lowercase letters, digits, '.', '_' and '-', starting with a letter or digit")
        }
        return text
    }

    /// Roles as the policy names them (`AccessPolicy.isValidRole`), duplicates dropped.
    public static func validRoles(_ roles: [String]) throws(VSecureError) -> [String] {
        var out: [String] = []
        for role in roles {
            guard AccessPolicy.isValidRole(role) else {
                throw VSecureError.usage("\(Quoted(role)) is not a role name", hint: "1 to 64 letters, digits, '.', '_' and '-'")
            }
            if !out.contains(role) { out.append(role) }
        }
        return out
    }

    static let userColumns = "id, name, kind, roles, created_at, disabled_at"

    static func user(_ statement: SQLiteStatement) -> User {
        User(id: statement.text(0), name: statement.text(1), kind: UserKind(rawValue: statement.text(2)) ?? .person,
             roles: statement.text(3).split(separator: ",").map(String.init),
             createdAt: Timestamp(secondsSinceEpoch: statement.int64(4)),
             disabledAt: statement.optionalInt64(5).map(Timestamp.init(secondsSinceEpoch:)))
    }

    /// Creates a user; a name already taken is a conflict.
    public func createUser(name: String, kind: UserKind, roles: [String], now: Timestamp) throws(VSecureError) -> User {
        let normalized = kind == .person ? try Self.validEmail(name) : try Self.validServiceName(name)
        let roles = try Self.validRoles(roles)
        return try Self.insertUser(db, name: normalized, kind: kind, roles: roles, now: now)
    }

    static func insertUser(_ db: SQLiteDatabase, name normalized: String, kind: UserKind, roles: [String],
                           now: Timestamp) throws(VSecureError) -> User {
        if try user(db, named: normalized) != nil {
            throw VSecureError(.conflict, "the user \(normalized) already exists", hint: "change its roles with users:update")
        }
        let id = "usr_" + hexString(Sodium.randomBytes(8))
        try db.prepare("INSERT INTO users(id, name, kind, roles, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
            .bind(1, id).bind(2, normalized).bind(3, kind.rawValue).bind(4, roles.joined(separator: ","))
            .bind(5, now.secondsSinceEpoch).run()
        return User(id: id, name: normalized, kind: kind, roles: roles, createdAt: now, disabledAt: nil)
    }

    /// The user named `name`'s id, made if missing (the migration's admin account).
    static func ensureUser(_ db: SQLiteDatabase, name: String, kind: UserKind, roles: [String], now: Timestamp) throws(VSecureError) -> String {
        if let existing = try user(db, named: name) { return existing.id }
        return try insertUser(db, name: name, kind: kind, roles: roles, now: now).id
    }

    public func user(id: String) throws(VSecureError) -> User? {
        let statement = try db.prepare("SELECT \(Self.userColumns) FROM users WHERE id = ?1")
        statement.bind(1, id)
        return try statement.step() ? Self.user(statement) : nil
    }

    /// By email or service-account name (case-insensitively).
    public func user(named name: String) throws(VSecureError) -> User? {
        try Self.user(db, named: name)
    }

    static func user(_ db: SQLiteDatabase, named name: String) throws(VSecureError) -> User? {
        let statement = try db.prepare("SELECT \(Self.userColumns) FROM users WHERE name = ?1")
        statement.bind(1, name.lowercased())
        return try statement.step() ? Self.user(statement) : nil
    }

    /// By id (`usr_…`) or by name.
    public func user(reference: String) throws(VSecureError) -> User? {
        if reference.hasPrefix("usr_"), let found = try user(id: reference) { return found }
        return try user(named: reference)
    }

    public func listUsers() throws(VSecureError) -> [User] {
        let statement = try db.prepare("SELECT \(Self.userColumns) FROM users ORDER BY name")
        var users: [User] = []
        while try statement.step() { users.append(Self.user(statement)) }
        return users
    }

    public func setRoles(userID: String, roles: [String]) throws(VSecureError) -> User? {
        let roles = try Self.validRoles(roles)
        try db.prepare("UPDATE users SET roles = ?2 WHERE id = ?1").bind(1, userID).bind(2, roles.joined(separator: ",")).run()
        return try user(id: userID)
    }

    /// Disables a user: every key of theirs is refused from the next request on. Disabling a
    /// disabled user changes nothing (its first time stays).
    public func disableUser(id: String, now: Timestamp) throws(VSecureError) -> User? {
        try db.prepare("UPDATE users SET disabled_at = ?2 WHERE id = ?1 AND disabled_at IS NULL").bind(1, id).bind(2, now.secondsSinceEpoch).run()
        return try user(id: id)
    }
}
