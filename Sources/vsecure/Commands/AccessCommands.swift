import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import VSecureCore
import VSecureCrypto
import VSecureRemote

// Users, API keys, the access policy and grants: all live on a vsecure server. Against a local
// vault these commands stop with exit 14 (`needsServer`): whoever holds the vault's key can
// read everything, so there is nothing for roles to restrict.

/// The server these commands manage: the same resolution as the secrets commands, but a local
/// vault is an error.
struct ServerOptions: ParsableArguments {
    @OptionGroup var store: StoreOptions

    static let localVault = VSecureError(.needsServer, "users, roles, policies and grants need a vsecure server", hints: [
        "a local vault has no users: whoever holds its key file or passphrase can read every secret in it",
        "point at a server with --endpoint URL, VSECURE_ENDPOINT, or `vsecure login --endpoint URL` (docs/access-control.md)",
    ])

    func server() throws(VSecureError) -> RemoteStore {
        guard let remote = try RemoteSettings.resolve(flagEndpoint: store.endpoint, flagCACert: store.cacert,
                                                      explicitVault: store.location.vault) else {
            throw Self.localVault
        }
        return RemoteStore(endpoint: try remote.remoteEndpoint(warn: Console.warning))
    }
}

/// Reading the public JSON the admin routes answer with.
extension JSONValue {
    subscript(member key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    var text: String {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .bool(let b): return b ? "true" : "false"
        case .null: return "-"
        case .array(let items): return items.isEmpty ? "-" : items.map(\.text).joined(separator: ",")
        case .object: return serialized(indent: nil)
        }
    }

    func field(_ key: String) -> String { self[member: key]?.text ?? "-" }

    var items: [JSONValue] {
        if case .array(let items)? = self[member: "data"] { return items }
        return []
    }
}

/// A comma-separated list option (`--roles a,b`, or `a, b`). Spaces around an item go; spaces
/// inside one stay, so the server refuses `dev ops` rather than the CLI making it `devops`.
func commaList(_ text: String) -> [String] {
    text.split(separator: ",").map { String($0.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed()) }
        .filter { !$0.isEmpty }
}

func printJSON(_ value: JSONValue) { Console.out(value.serialized()) }

// MARK: - Users

struct UsersCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users:create",
        abstract: "Create a user (a person, by email) or, with --service, a service account (by name).",
        discussion: "Needs a key with users:manage. Roles are what the access policy names (docs/access-control.md)."
    )

    @Argument(help: ArgumentHelp("An email, or with --service a name like ci-deploy.", valueName: "email"))
    var user: String

    @Option(name: .long, help: ArgumentHelp("Comma-separated roles, e.g. engineers,devops.", valueName: "list"))
    var roles: String = ""

    @Flag(name: .long, help: "Create a service account instead of a person.")
    var service = false

    @OptionGroup var server: ServerOptions
    @OptionGroup var output: OutputOption

    func run() throws {
        let created = try server.server().createUser(name: user, service: service, roles: commaList(roles))
        if output.json { return printJSON(created) }
        Console.out("Created \(created.field("kind")) \(created.field("name")) (\(created.field("id"))) with roles \(created.field("roles"))")
    }
}

struct UsersList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "users:list", abstract: "List users and service accounts, with their roles.")

    @OptionGroup var server: ServerOptions
    @OptionGroup var output: OutputOption

    func run() throws {
        let list = try server.server().listUsers()
        if output.json { return printJSON(list) }
        Console.out(Presentation.table(["NAME", "KIND", "ROLES", "STATUS", "ID"], list.items.map { user in
            [user.field("name"), user.field("kind"), user.field("roles"), user[member: "disabled"] == .bool(true) ? "disabled" : "active",
             user.field("id")]
        }))
    }
}

struct UsersUpdate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users:update",
        abstract: "Replace a user's roles.",
        discussion: "Takes effect on the user's next request."
    )

    @Argument(help: ArgumentHelp("The user's email or service-account name (or id).", valueName: "email"))
    var user: String

    @Option(name: .long, help: ArgumentHelp("The new comma-separated roles (replacing the old ones).", valueName: "list"))
    var roles: String

    @OptionGroup var server: ServerOptions
    @OptionGroup var output: OutputOption

    func run() throws {
        let updated = try server.server().updateUser(user, roles: commaList(roles))
        if output.json { return printJSON(updated) }
        Console.out("Updated \(updated.field("name")): roles \(updated.field("roles"))")
    }
}

struct UsersDisable: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users:disable",
        abstract: "Disable a user: every API key of theirs is refused (403) from the next request on.",
        discussion: "Users are never deleted, so the audit log keeps naming them."
    )

    @Argument(help: ArgumentHelp("The user's email or service-account name (or id).", valueName: "email"))
    var user: String

    @OptionGroup var server: ServerOptions
    @OptionGroup var output: OutputOption

    func run() throws {
        let disabled = try server.server().disableUser(user)
        if output.json { return printJSON(disabled) }
        Console.out("Disabled \(disabled.field("name")) at \(disabled.field("disabledAt"))")
    }
}

// MARK: - API keys

struct APIKeysCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api-keys:create",
        abstract: "Create an API key for a user; the token is printed once, on stdout.",
        discussion: """
        The key acts with the user's roles, limited further by its own scopes (secrets:read, \
        secrets:write, secrets:delete, apikeys:manage, audit:read, webhooks:manage, users:manage, \
        policy:manage, grants:manage) and, with --environments, to some environments. A key for another user needs \
        users:manage as well as apikeys:manage.
        """
    )

    @Option(name: .long, help: ArgumentHelp("The owner's email or service-account name (default: the caller's own user).", valueName: "email"))
    var user: String?

    @Option(name: .long, help: ArgumentHelp("Comma-separated scopes.", valueName: "list"))
    var scopes: String

    @Option(name: .long, help: ArgumentHelp("Limit the key to these environments (comma-separated).", valueName: "list"))
    var environments: String?

    @Option(name: .customLong("expires-in"), help: ArgumentHelp("Expire the key after this long, e.g. 90d.", valueName: "duration"))
    var expiresIn: String?

    @Option(name: .long, help: ArgumentHelp("A label for the key (default: the user's name).", valueName: "text"))
    var name: String?

    @OptionGroup var server: ServerOptions
    @OptionGroup var output: OutputOption

    func run() throws {
        if let expiresIn { _ = try SecretDuration(parsing: expiresIn) }
        let created = try server.server().createAPIKey(name: name ?? user ?? "api key", user: user, scopes: commaList(scopes),
                                                       environments: environments.map(commaList), expiresIn: expiresIn)
        if output.json { return printJSON(created) }
        Console.note("created the API key \(created.field("id")) for \(created.field("user")); the token below is shown once")
        Console.out(created.field("key"))
    }
}

struct APIKeysList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "api-keys:list", abstract: "List API keys (never their tokens).")

    @OptionGroup var server: ServerOptions
    @OptionGroup var output: OutputOption

    func run() throws {
        let list = try server.server().listAPIKeys()
        if output.json { return printJSON(list) }
        Console.out(Presentation.table(["ID", "NAME", "USER", "SCOPES", "ENVIRONMENTS", "EXPIRES", "STATUS"], list.items.map { key in
            let status = key[member: "revokedAt"].map { $0 == .null ? nil : "revoked" } ?? nil
            return [key.field("id"), key.field("name"), key.field("user"), key.field("scopes"),
                    key[member: "environments"] == .null ? "all" : key.field("environments"), key.field("expiresAt"),
                    status ?? (key[member: "userDisabled"] == .bool(true) ? "user disabled"
                        : key[member: "active"] == .bool(true) ? "active" : "expired")]
        }))
    }
}

struct APIKeysRevoke: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "api-keys:revoke", abstract: "Revoke an API key; its token stops working at once.")

    @Argument(help: ArgumentHelp("The key id (key_…).", valueName: "id"))
    var id: String

    @OptionGroup var server: ServerOptions

    func run() throws {
        try server.server().revokeAPIKey(id)
        Console.out("Revoked \(id)")
    }
}

struct APIKeysRotate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api-keys:rotate",
        abstract: "Give an API key a new token (printed once, on stdout); the old one stops working at once."
    )

    @Argument(help: ArgumentHelp("The key id (key_…).", valueName: "id"))
    var id: String

    @OptionGroup var server: ServerOptions
    @OptionGroup var output: OutputOption

    func run() throws {
        let rotated = try server.server().rotateAPIKey(id)
        if output.json { return printJSON(rotated) }
        Console.note("rotated \(rotated.field("id")); the new token below is shown once")
        Console.out(rotated.field("key"))
    }
}

// MARK: - Policy

struct PolicySet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy:set",
        abstract: "Replace the server's access policy with a JSON document.",
        discussion: """
        The document is {"secrets": {"production/*": {"read": ["engineers"], "write": ["devops"], \
        "delete": ["admins"]}}} (docs/access-control.md). The server validates it whole: an error \
        names the line and column, and the policy in force does not change.
        """
    )

    @Argument(help: ArgumentHelp("The policy file ('-' for stdin).", valueName: "file"))
    var file: String

    @OptionGroup var server: ServerOptions

    func run() throws {
        let remote = try server.server()
        let document: [UInt8]
        if file == "-" {
            document = try SecretInput.readStdin(limit: 1 << 20, what: "the policy").withUnsafeBytes { Array($0) }
        } else {
            document = try readPublicFile(file)
        }
        let stored: JSONValue
        switch Result(catching: { () throws(VSecureError) in try remote.setPolicy(document) }) {
        case .success(let value): stored = value
        case .failure(let failure):
            guard failure.status == .usage else { throw failure }
            throw VSecureError(.usage, "\(file): \(failure.message)", hint: "nothing changed; the server keeps its current policy")
        }
        var rules = 0
        if case .object(let members)? = stored[member: "policy"]?[member: "secrets"] { rules = members.count }
        Console.out("Set the access policy from \(file) (\(rules) rule\(rules == 1 ? "" : "s"))")
    }
}

/// A file that holds no secret (a policy), read whole.
func readPublicFile(_ path: String) throws(VSecureError) -> [UInt8] {
    guard let handle = fopen(path, "rb") else {
        // A missing file is bad input (exit 2), as for `import` and `--value-file`.
        let code = errno
        throw VSecureError(code == ENOENT ? .usage : .io, "cannot read \(Quoted(path)): \(String(cString: strerror(code)))")
    }
    defer { fclose(handle) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = fread(&chunk, 1, chunk.count, handle)
        if count > 0 { bytes += chunk[0..<count] }
        // A directory opens but cannot be read (EISDIR): say so, rather than parse nothing.
        if ferror(handle) != 0 { throw VSecureError(.io, "cannot read \(Quoted(path)): \(String(cString: strerror(errno)))") }
        if count < chunk.count { break }
        guard bytes.count <= 1 << 20 else { throw VSecureError.usage("\(Quoted(path)) is larger than 1 MiB") }
    }
    return bytes
}

struct PolicyShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy:show",
        abstract: "Print the server's access policy as it was set (--output json: with when and by whom)."
    )

    @OptionGroup var server: ServerOptions
    @OptionGroup var output: OutputOption

    func run() throws {
        let policy = try server.server().policy()
        if output.json { return printJSON(policy) }
        var source = policy.field("source")
        while source.hasSuffix("\n") { source.removeLast() }
        Console.out(source)
    }
}

struct PolicyTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy:test",
        abstract: "Show whether the server would let a user do an action on a path, and the rule or grant that decides.",
        discussion: "Exits 0 for allow and 12 for deny. A key's own scopes and environment limit come on top of this."
    )

    @Option(name: .long, help: ArgumentHelp("The user's email or service-account name.", valueName: "email"))
    var user: String

    @Option(name: .long, help: ArgumentHelp("read, write or delete.", valueName: "action"))
    var action: String = "read"

    @Argument(help: ArgumentHelp("ENVIRONMENT/NAME, e.g. production/API_KEY.", valueName: "path"))
    var path: String

    @OptionGroup var server: ServerOptions
    @OptionGroup var output: OutputOption

    func validate() throws {
        guard ["read", "write", "delete"].contains(action) else { throw ValidationError("--action must be read, write or delete") }
    }

    func run() throws {
        let decision = try server.server().testPolicy(user: user, action: action, path: path)
        if output.json {
            printJSON(decision)
        } else {
            Console.out(decision.field("explanation"))
        }
        if decision.field("decision") != "allow" {
            throw QuietExit(status: .accessDenied)
        }
    }
}

/// Ends the command with a status and nothing more on stderr (the answer was printed).
struct QuietExit: Error {
    var status: ExitStatus
}

// MARK: - Grants

struct SecretsGrantAccess: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets:grant-access",
        abstract: "Let a user read, write or delete a secret, or every secret a path pattern matches, for a while.",
        discussion: """
        The grant adds to the access policy and ends by itself: the server's clock decides. Give a \
        NAME (with --env) or --path 'staging/*'. Needs a key with grants:manage.
        """
    )

    @Argument(help: ArgumentHelp("The secret's name.", valueName: "name"))
    var name: String?

    @Option(name: .long, help: ArgumentHelp("A path pattern instead of a name, e.g. 'staging/*'.", valueName: "pattern"))
    var path: String?

    @Option(name: .long, help: ArgumentHelp("The user's email or service-account name.", valueName: "email"))
    var user: String

    @Option(name: .long, help: ArgumentHelp("How long, e.g. 1h or 30m.", valueName: "duration"))
    var duration: String

    @Option(name: .long, help: ArgumentHelp("read, write or delete.", valueName: "action"))
    var action: String = "read"

    @Option(name: .long, help: ArgumentHelp("The secret's environment (default: $VSECURE_ENV, else the server's default).", valueName: "name"))
    var env: String?

    @OptionGroup var server: ServerOptions
    @OptionGroup var output: OutputOption

    func validate() throws {
        guard (name == nil) != (path == nil) else { throw ValidationError("give either a secret NAME or --path PATTERN") }
        if path != nil && env != nil { throw ValidationError("--env goes with a NAME; a --path names its environment") }
        guard ["read", "write", "delete"].contains(action) else { throw ValidationError("--action must be read, write or delete") }
    }

    func run() throws {
        _ = try SecretDuration(parsing: duration)
        if let name { _ = try SecretName(name) }
        let environment = name == nil ? nil : (env ?? ProcessEnvironment.string("VSECURE_ENV"))
        let grant = try server.server().createGrant(user: user, name: name, environment: environment, path: path, action: action,
                                                    duration: duration)
        if output.json { return printJSON(grant) }
        Console.out("Granted \(grant.field("user")) \(grant.field("action")) on \(grant.field("path")) until \(grant.field("expiresAt")) (\(grant.field("id")))")
    }
}

struct SecretsRevokeAccess: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets:revoke-access",
        abstract: "Revoke a grant; it stops counting from the next request."
    )

    @Argument(help: ArgumentHelp("The grant id (grt_…).", valueName: "grant-id"))
    var id: String

    @OptionGroup var server: ServerOptions

    func run() throws {
        try server.server().revokeGrant(id)
        Console.out("Revoked \(id)")
    }
}

struct SecretsGrants: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets:grants",
        abstract: "List grants: active ones, or with --include-expired also expired and revoked ones.",
        discussion: "With a NAME, only the grants that cover that secret (in --env)."
    )

    @Argument(help: ArgumentHelp("Only grants covering this secret.", valueName: "name"))
    var name: String?

    @Option(name: .long, help: ArgumentHelp("The environment of NAME.", valueName: "name"))
    var env: String?

    @Flag(name: .customLong("include-expired"), help: "Also list expired and revoked grants.")
    var includeExpired = false

    @OptionGroup var server: ServerOptions
    @OptionGroup var output: OutputOption

    func run() throws {
        if let name { _ = try SecretName(name) }
        let list = try server.server().listGrants(name: name, environment: env ?? ProcessEnvironment.string("VSECURE_ENV"),
                                                  includeExpired: includeExpired)
        if output.json { return printJSON(list) }
        Console.out(Presentation.table(["ID", "USER", "ACTION", "PATH", "EXPIRES", "STATUS"], list.items.map { grant in
            [grant.field("id"), grant.field("user"), grant.field("action"), grant.field("path"), grant.field("expiresAt"), grant.field("status")]
        }))
    }
}
