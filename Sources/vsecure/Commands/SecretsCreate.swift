import ArgumentParser
import VSecureCore
import VSecureStore
import VSecureVault

struct SecretsCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets:create",
        abstract: "Create a secret (version 1) in one environment.",
        discussion: """
        The value comes from VALUE (visible to other processes: prefer the others), NAME=VALUE, \
        --from-file, stdin when VALUE is - or absent and stdin is not a terminal, or a prompt without \
        echo. Values are bytes, kept exactly (a trailing newline on stdin is part of the value). \
        The environment is --env, else $VSECURE_ENV, else a tag that names an environment, else the \
        vault's default. The rotation options set a rotation policy (docs/rotation.md).
        """
    )

    @Argument(help: ArgumentHelp("The secret's name (letters, digits, _), or NAME=VALUE.", valueName: "name"))
    var name: String

    @Argument(help: ArgumentHelp("The value; - reads stdin.", valueName: "value"))
    var value: String?

    @OptionGroup var location: StoreOptions
    @OptionGroup var environment: EnvironmentOption
    @OptionGroup var attributes: AttributeOptions
    @OptionGroup(title: "Rotation policy") var rotation: RotationOptions
    @OptionGroup var source: ValueSourceOptions
    @OptionGroup var output: OutputOption

    func run() throws {
        let now = ProcessEnvironment.now
        let (secretName, positional) = try splitNameAndValue(name, value)
        if rotation.noRotation { throw VSecureError.usage("--no-rotation is for secrets:update; a new secret has no policy unless given one") }
        let policy = try rotation.change() ?? nil
        let tags = try attributes.parsedTags()
        var newAttributes = SecretAttributes(tags: tags, metadata: try attributes.parsedMetadata(),
                                             expiresAt: try attributes.parsedExpiry(now: now),
                                             description: try attributes.parsedDescription())
        var env = try environment.explicit()
        let store = try location.open()
        let rotating = try policy.map { (_: RotationPolicy) throws(VSecureError) in try rotatingStore(store) }
        if let local = store as? LocalSecretStore {
            // Refuse a bad environment before asking for a value nobody can store (a server
            // checks it when the secret arrives).
            env = try chooseEnvironment(explicit: env, tags: tags, configured: local.vault.environments,
                                        default: local.vault.defaultEnvironment)
        }
        let secretValue = try source.read(positional: positional, name: secretName)
        // `--expires-in` counts from the write, not from the start: a prompt may have waited.
        newAttributes.expiresAt = try attributes.parsedExpiry(now: ProcessEnvironment.now)
        var newSecret = NewSecret(name: secretName, environment: env, value: secretValue, attributes: newAttributes)
        newSecret.expiresIn = try attributes.expiresIn.map { (text: String) throws(VSecureError) in try SecretDuration(parsing: text) }
        let created: SecretSummary
        if let rotating, let policy {
            created = try rotating.create(newSecret, rotation: policy)
        } else {
            created = try store.create(newSecret)
        }
        if output.json {
            Console.out(JSONValue.object(Presentation.json(created, now: now)).serialized())
        } else {
            Console.out(Presentation.card("Created \(created.name) in \(created.environment)", created, now: now))
        }
    }
}

struct SecretsUpdate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets:update",
        abstract: "Give a secret a new value (a new version) and/or change its attributes.",
        discussion: """
        A new value makes a new version. Attribute options alone (tags, metadata, expiry, description, \
        rotation policy) change the secret without a new version, e.g. `vsecure secrets:update STRIPE_KEY --expires-in 90d`. \
        Without VALUE and without attribute options the value is read as for secrets:create. \
        --if-version N changes nothing unless the current version is N. Any rotation option \
        replaces the whole rotation policy (docs/rotation.md).
        """
    )

    @Argument(help: ArgumentHelp("The secret's name, or NAME=VALUE.", valueName: "name"))
    var name: String

    @Argument(help: ArgumentHelp("The new value; - reads stdin.", valueName: "value"))
    var value: String?

    @OptionGroup var location: StoreOptions
    @OptionGroup var environment: EnvironmentOption

    @Option(name: .long, help: ArgumentHelp("Replace all tags (comma list; repeatable).", valueName: "a,b"))
    var tags: [String] = []
    @Option(name: .customLong("add-tag"), help: ArgumentHelp("Add tags (comma list; repeatable).", valueName: "tag"))
    var addTag: [String] = []
    @Option(name: .customLong("remove-tag"), help: ArgumentHelp("Remove tags (comma list; repeatable).", valueName: "tag"))
    var removeTag: [String] = []
    @Option(name: .long, help: ArgumentHelp("Set metadata key=value; repeatable.", valueName: "key=value"))
    var metadata: [String] = []
    @Option(name: .customLong("remove-metadata"), help: ArgumentHelp("Remove a metadata key; repeatable.", valueName: "key"))
    var removeMetadata: [String] = []
    @Option(name: .customLong("expires-in"), help: ArgumentHelp("Expire after this long from now.", valueName: "duration"))
    var expiresIn: String?
    @Option(name: .customLong("expires-at"), help: ArgumentHelp("Expire at this ISO 8601 time with a zone.", valueName: "time"))
    var expiresAt: String?
    @Flag(name: .customLong("no-expiry"), help: "Remove the expiry.")
    var noExpiry = false
    @Option(name: .long, help: ArgumentHelp("Set the description.", valueName: "text"))
    var description: String?
    @Option(name: .customLong("if-version"), help: ArgumentHelp("Change nothing unless the current version is this one.", valueName: "n"))
    var ifVersion: Int?

    @OptionGroup(title: "Rotation policy") var rotation: RotationOptions
    @OptionGroup var source: ValueSourceOptions
    @OptionGroup var output: OutputOption

    func attributeChange(now: Timestamp) throws(VSecureError) -> AttributeChange {
        var change = AttributeChange()
        if !tags.isEmpty { change.replaceTags = try Tag.parseLists(tags) }
        change.addTags = try Tag.parseLists(addTag)
        change.removeTags = try Tag.parseLists(removeTag)
        for text in metadata { change.setMetadata.append(try MetadataEntry(parsing: text)) }
        for key in removeMetadata {
            _ = try MetadataEntry(key: key, value: "")
            change.removeMetadata.append(key)
        }
        if noExpiry {
            if expiresIn != nil || expiresAt != nil { throw VSecureError.usage("--no-expiry cannot be combined with --expires-in or --expires-at") }
            change.expiresAt = .some(nil)
        } else if let expiry = try parseExpiry(expiresIn: expiresIn, expiresAt: expiresAt, now: now) {
            change.expiresAt = .some(expiry)
            change.expiresIn = try expiresIn.map { (text: String) throws(VSecureError) in try SecretDuration(parsing: text) }
        }
        if let description {
            let checked = try checkDescription(description)
            change.description = .some(checked)
        }
        return change
    }

    /// The environment `name` is in (so that it exists); nil when the key may not list secrets.
    private static func existingEnvironment(_ store: any SecretStore, _ environment: EnvironmentName?,
                                            _ name: SecretName) throws(VSecureError) -> EnvironmentName? {
        do {
            return try store.summary(environment: environment, name: name).environment
        } catch {
            guard error.status == .accessDenied else { throw error }
            return nil
        }
    }

    func run() throws {
        let now = ProcessEnvironment.now
        let (secretName, positional) = try splitNameAndValue(name, value)
        if let ifVersion, ifVersion < 1 { throw VSecureError.usage("--if-version must be 1 or more") }
        let change = try attributeChange(now: now)
        let policyChange = try rotation.change()
        var env = try environment.explicit()
        let store = try location.open()
        let rotating = try policyChange.map { (_: RotationPolicy?) throws(VSecureError) in try rotatingStore(store) }
        let wantsValue = positional != nil || source.fromFile != nil || (change.isEmpty && policyChange == nil)
        if wantsValue && positional == nil && source.fromFile == nil && Console.stdinIsTerminal {
            // Check the secret exists before prompting for a value nobody can store. (Only then:
            // on a server the check is a list, which a key with secrets:write alone may not make;
            // a key that may not list is left to the update itself.)
            env = try Self.existingEnvironment(store, env, secretName) ?? env
        }
        let newValue = wantsValue ? try source.read(positional: positional, name: secretName) : nil
        // `--expires-in` counts from the write, not from the start: a prompt may have waited.
        let finalChange = wantsValue ? try attributeChange(now: ProcessEnvironment.now) : change
        let result: SecretUpdate
        if let rotating {
            result = try rotating.update(environment: env, name: secretName, value: newValue, change: finalChange, ifVersion: ifVersion,
                                         rotation: policyChange)
        } else {
            result = try store.update(environment: env, name: secretName, value: newValue, change: finalChange, ifVersion: ifVersion)
        }
        let shown = result.secret.environment
        if output.json {
            var members = Presentation.json(result.secret, now: now)
            members.append(("previousVersion", .int(result.previousVersion)))
            members.append(("valueChanged", .bool(result.newVersion != nil)))
            Console.out(JSONValue.object(members).serialized())
        } else {
            let title = result.newVersion.map { "Updated \(secretName) in \(shown): version \(result.previousVersion) → \($0)" }
                ?? "Updated the attributes of \(secretName) in \(shown) (still version \(result.previousVersion))"
            Console.out(Presentation.card(title, result.secret, now: now))
        }
    }
}
