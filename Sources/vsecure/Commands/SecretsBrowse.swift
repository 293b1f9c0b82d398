import ArgumentParser
import VSecureCore
import VSecureStore
import VSecureVault

struct SecretsList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets:list",
        abstract: "List secrets: name, environment, version, tags, expiry. Never values.",
        discussion: "Without --env (or $VSECURE_ENV) every environment is listed. Expired secrets are hidden unless --include-expired."
    )

    @OptionGroup var location: StoreOptions
    @OptionGroup var environment: EnvironmentOption

    @Option(name: .long, help: ArgumentHelp("Only secrets carrying all these tags (comma list; repeatable).", valueName: "a,b"))
    var tags: [String] = []

    @Option(name: .long, help: ArgumentHelp("Only secrets whose name or description contains this text (case-insensitive).", valueName: "text"))
    var search: String?

    @Flag(name: .customLong("include-expired"), help: "Also list expired secrets.")
    var includeExpired = false

    @OptionGroup var output: OutputOption

    func run() throws {
        let now = ProcessEnvironment.now
        let query = SecretQuery(environment: try environment.explicit(), tags: try Tag.parseLists(tags), search: search,
                                includeExpired: includeExpired)
        let store = try location.open()
        let secrets = try store.list(query)
        if output.json {
            Console.out(JSONValue.array(secrets.map { .object(Presentation.json($0, now: now)) }).serialized())
            return
        }
        if secrets.isEmpty {
            Console.note("no secrets match")
            return
        }
        Console.out(Presentation.table(["NAME", "ENVIRONMENT", "VERSION", "TAGS", "EXPIRES"], secrets.map {
            [$0.name.rawValue, $0.environment.rawValue, String($0.currentVersion), Presentation.tags($0.attributes.tags),
             Presentation.expiry($0.attributes.expiresAt, now: now)]
        }))
    }
}

struct SecretsVersions: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets:versions",
        abstract: "List a secret's versions: time, actor, action and a keyed value fingerprint.",
        discussion: "Equal fingerprints mean equal values; the fingerprint is keyed with the vault's key, so it reveals nothing without it."
    )

    @Argument(help: ArgumentHelp("The secret's name.", valueName: "name"))
    var name: String

    @OptionGroup var location: StoreOptions
    @OptionGroup var environment: EnvironmentOption
    @OptionGroup var output: OutputOption

    func run() throws {
        let secretName = try SecretName(name)
        let store = try location.open()
        let history = try store.versions(environment: try environment.explicit(), name: secretName)
        let secret = history.secret, versions = history.versions
        if output.json {
            Console.out(JSONValue.object([
                ("name", .string(secret.name.rawValue)),
                ("environment", .string(secret.environment.rawValue)),
                ("currentVersion", .int(secret.currentVersion)),
                ("versions", .array(versions.map(Presentation.json))),
            ]).serialized())
            return
        }
        Console.out(Presentation.table(["VERSION", "CREATED", "ACTION", "ACTOR", "BYTES", "FINGERPRINT"], versions.map { version in
            let marker = version.version == secret.currentVersion ? " (current)" : ""
            let action = version.sourceVersion.map { "\(version.action.rawValue) to v\($0)" } ?? version.action.rawValue
            return ["\(version.version)\(marker)", version.createdAt.iso8601, action, version.actor,
                    String(version.valueLength), version.fingerprint]
        }))
    }
}

struct SecretsRollback: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets:rollback",
        abstract: "Make a new version holding an older version's value (default: the previous version).",
        discussion: "History is never rewritten: rolling back from 3 to 2 creates version 4 with version 2's value. Attributes stay as they are."
    )

    @Argument(help: ArgumentHelp("The secret's name.", valueName: "name"))
    var name: String

    @OptionGroup var location: StoreOptions
    @OptionGroup var environment: EnvironmentOption

    @Option(name: .long, help: ArgumentHelp("The version whose value to restore.", valueName: "n"))
    var version: Int?

    @OptionGroup var output: OutputOption

    func run() throws {
        let now = ProcessEnvironment.now
        let secretName = try SecretName(name)
        if let version, version < 1 { throw VSecureError.usage("--version must be 1 or more") }
        let store = try location.open()
        let result = try store.rollback(environment: try environment.explicit(), name: secretName, to: version)
        let env = result.secret.environment
        let restored = version ?? result.previousVersion - 1
        if output.json {
            var members = Presentation.json(result.secret, now: now)
            members.append(("previousVersion", .int(result.previousVersion)))
            members.append(("restoredVersion", .int(restored)))
            Console.out(JSONValue.object(members).serialized())
        } else {
            Console.out("Rolled back \(secretName) in \(env): version \(result.previousVersion) → \(result.secret.currentVersion) (the value of version \(restored))")
        }
    }
}

struct SecretsDelete: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets:delete",
        abstract: "Delete a secret: it is no longer served or listed. --purge destroys every version for good.",
        discussion: "Asks for confirmation on a terminal; scripts pass --yes."
    )

    @Argument(help: ArgumentHelp("The secret's name.", valueName: "name"))
    var name: String

    @OptionGroup var location: StoreOptions
    @OptionGroup var environment: EnvironmentOption

    @Flag(name: .long, help: "Do not ask for confirmation.")
    var yes = false

    @Flag(name: .long, help: "Destroy every version; this cannot be undone.")
    var purge = false

    func run() throws {
        let secretName = try SecretName(name)
        let explicit = try environment.explicit()
        let store = try location.open()
        if !yes {
            guard Console.stdinIsTerminal else {
                throw VSecureError.usage("refusing to delete \(secretName) in \(try explicit ?? store.defaultEnvironment()) without confirmation",
                                         hint: "pass --yes in scripts")
            }
            let env = try explicit ?? store.defaultEnvironment()
            let question = purge ? "Destroy every version of \(secretName) in \(env)? This cannot be undone. [y/N] "
                                 : "Delete \(secretName) in \(env)? [y/N] "
            Console.writeErr(question)
            guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else {
                Console.note("nothing was deleted")
                return
            }
        }
        let env = try store.delete(environment: explicit, name: secretName, purge: purge)
        Console.out(purge ? "Purged \(secretName) in \(env): every version is destroyed" : "Deleted \(secretName) in \(env)")
    }
}
