import ArgumentParser
import VSecureCore
import VSecureCrypto
import VSecureVault

struct VaultInit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vault:init",
        abstract: "Create a new vault and its key file (or protect it with a passphrase).",
        discussion: "Refuses to overwrite an existing vault. An existing key file is reused (it must be 0600, 32 bytes)."
    )

    @OptionGroup var location: VaultOptions

    @Flag(name: .long, help: "Protect the data key with a passphrase (Argon2id) instead of a key file.")
    var passphrase = false

    @Option(name: .long, help: ArgumentHelp("Environments this vault accepts (comma list).", valueName: "list"))
    var environments: String = "development,staging,production"

    @Option(name: .customLong("default-env"), help: ArgumentHelp("The environment used when none is named (default: development, else the first).", valueName: "name"))
    var defaultEnv: String?

    @OptionGroup var output: OutputOption

    func run() throws {
        var envs: [EnvironmentName] = []
        for item in environments.split(separator: ",", omittingEmptySubsequences: false) {
            let env = try EnvironmentName(String(item))
            if !envs.contains(env) { envs.append(env) }
        }
        let defaultEnvironment = try defaultEnv.map { (text: String) throws(VSecureError) in try EnvironmentName(text) }
        let protection: NewKeyProtection
        if passphrase || location.passphraseFile != nil {
            let secret = try Passphrase.read(file: location.passphraseFile, prompt: "New passphrase for \(location.vaultPath): ", confirm: true)
            protection = .passphrase(secret, .moderate(salt: Sodium.randomBytes(PassphraseParameters.saltBytes)))
        } else {
            protection = .keyFile(path: location.keyFilePath)
        }
        let path = location.vaultPath
        if path == VaultOptions.defaultDirectory + "/vault.db" {
            try PrivateFiles.ensureDirectory(VaultOptions.defaultDirectory, tighten: true)
        }
        let vault = try LocalVault.create(at: path, protection: protection, environments: envs,
                                          defaultEnvironment: defaultEnvironment, now: ProcessEnvironment.now)
        if output.json {
            Console.out(JSONValue.object([
                ("vault", .string(vault.path)),
                ("keyProtection", .string(vault.protection.rawValue)),
                ("keyFile", vault.protection == .keyFile ? .string(location.keyFilePath) : .null),
                ("environments", .array(vault.environments.map { .string($0.rawValue) })),
                ("defaultEnvironment", .string(vault.defaultEnvironment.rawValue)),
            ]).serialized())
            return
        }
        Console.out("Created vault \(vault.path)")
        if vault.protection == .keyFile {
            Console.out("Key file: \(location.keyFilePath)")
            Console.note("keep the key file safe and apart from backups of the vault: without it the vault cannot be opened")
        } else {
            Console.out("Key: passphrase (Argon2id)")
        }
        Console.out("Environments: \(vault.environments.map(\.rawValue).joined(separator: ", ")) (default \(vault.defaultEnvironment))")
    }
}

struct VaultStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vault:status",
        abstract: "Show a vault's path, format, key source and counts (never key material)."
    )

    @OptionGroup var location: VaultOptions

    @Flag(name: .long, help: "Also run SQLite's integrity check over the whole file.")
    var check = false

    @OptionGroup var output: OutputOption

    func run() throws {
        let vault = try location.open()
        let status = try vault.status(checkIntegrity: check)
        let keySource = status.protection == .keyFile ? "key file \(location.keyFilePath)" : "passphrase (Argon2id)"
        if output.json {
            var members: [(String, JSONValue)] = [
                ("vault", .string(status.path)),
                ("formatVersion", .int(status.formatVersion)),
                ("vaultId", .string(status.vaultID)),
                ("keyProtection", .string(status.protection.rawValue)),
                ("keyFile", status.protection == .keyFile ? .string(location.keyFilePath) : .null),
                ("environments", .array(status.environments.map { .string($0.rawValue) })),
                ("defaultEnvironment", .string(status.defaultEnvironment.rawValue)),
                ("secrets", .int(status.secretCount)),
                ("deletedSecrets", .int(status.deletedCount)),
                ("versions", .int(status.versionCount)),
                ("createdAt", .string(status.createdAt.iso8601)),
            ]
            if check { members.append(("integrity", .string(status.integrityOK ? "ok" : "failed"))) }
            Console.out(JSONValue.object(members).serialized())
        } else {
            Console.out("""
                vault:        \(status.path)
                format:       \(status.formatVersion)
                vault id:     \(status.vaultID)
                key:          \(keySource)
                environments: \(status.environments.map(\.rawValue).joined(separator: ", ")) (default \(status.defaultEnvironment))
                secrets:      \(status.secretCount) (\(status.deletedCount) deleted)
                versions:     \(status.versionCount)
                created:      \(status.createdAt.iso8601)
                """)
            if check { Console.out("integrity:    \(status.integrityOK ? "ok" : "FAILED")") }
        }
        if check && !status.integrityOK {
            throw VSecureError(.integrity, "the vault \(Quoted(status.path)) failed SQLite's integrity check", hint: "restore it from a backup")
        }
    }
}

struct VaultRekey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vault:rekey",
        abstract: "Protect the vault's data key with a new key file or passphrase (values are not re-encrypted).",
        discussion: """
        Without options, a new random key replaces the current key file in place (written to PATH.new, \
        committed, then renamed). --new-key-file PATH wraps the data key with a new file at PATH \
        (an existing file there is used as the key). --new-passphrase switches to a passphrase.
        """
    )

    @OptionGroup var location: VaultOptions

    @Option(name: .customLong("new-key-file"), help: ArgumentHelp("Protect the vault with this key file.", valueName: "path"))
    var newKeyFile: String?

    @Flag(name: .customLong("new-passphrase"), help: "Protect the vault with a new passphrase.")
    var newPassphrase = false

    @Option(name: .customLong("new-passphrase-file"), help: ArgumentHelp("Read the new passphrase from this file.", valueName: "path"))
    var newPassphraseFile: String?

    func validate() throws {
        if newKeyFile != nil && (newPassphrase || newPassphraseFile != nil) {
            throw ValidationError("choose either --new-key-file or --new-passphrase")
        }
    }

    func run() throws {
        let vault = try location.open()
        let protection: NewKeyProtection
        if newPassphrase || newPassphraseFile != nil {
            let secret = try Passphrase.read(file: newPassphraseFile, prompt: "New passphrase: ", confirm: true)
            protection = .passphrase(secret, .moderate(salt: Sodium.randomBytes(PassphraseParameters.saltBytes)))
        } else {
            protection = .keyFile(path: newKeyFile ?? location.keyFilePath)
        }
        try vault.rekey(to: protection, currentKeyFile: vault.protection == .keyFile ? location.keyFilePath : nil)
        switch protection {
        case .keyFile(let path): Console.note("the vault \(vault.path) is now protected by the key file \(path)")
        case .passphrase: Console.note("the vault \(vault.path) is now protected by a passphrase")
        }
    }
}
