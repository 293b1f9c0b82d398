import ArgumentParser
import VSecureCore
import VSecureCrypto
import VSecureStore
import VSecureVault

struct SecretsGet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets:get",
        abstract: "Print a secret's value (raw bytes on stdout; a newline is added only on a terminal).",
        discussion: "--output json prints the value with its attributes; a value that is not UTF-8 is given as valueBase64."
    )

    @Argument(help: ArgumentHelp("The secret's name.", valueName: "name"))
    var name: String

    @OptionGroup var location: StoreOptions
    @OptionGroup var environment: EnvironmentOption

    @Option(name: .long, help: ArgumentHelp("Read this version instead of the current one.", valueName: "n"))
    var version: Int?

    @Flag(name: .customLong("allow-expired"), help: "Read the secret even if it has expired.")
    var allowExpired = false

    @OptionGroup var output: OutputOption

    func run() throws {
        let secretName = try SecretName(name)
        let env = try environment.explicit()
        do {
            try show(secretName, env)
        } catch var refused as VSecureError where refused.status == .expired {
            // The store refuses an expired secret itself, and records the refusal (a server never
            // sends the value).
            refused.hints = ["--allow-expired reads it anyway",
                             "renew it with `vsecure secrets:update \(secretName)\(env.map { " --env \($0)" } ?? "") --expires-in DURATION` (or --no-expiry); a new value alone keeps the expiry"]
            throw refused
        }
    }

    private func show(_ secretName: SecretName, _ env: EnvironmentName?) throws {
        let now = ProcessEnvironment.now
        if let version, version < 1 { throw VSecureError.usage("--version must be 1 or more") }
        let store = try location.open()
        let read = try store.get(environment: env, name: secretName, version: version, allowExpired: allowExpired)
        let secret = read.secret, value = read.value
        if output.json {
            var members = Presentation.json(secret, now: now)
            members.removeAll { $0.0 == "version" }
            members.insert(("version", .int(read.version)), at: 4)
            members.insert(("currentVersion", .int(secret.currentVersion)), at: 5)
            value.withUnsafeBytes { raw in
                if let text = String(validating: raw, as: UTF8.self) {
                    members.append(("value", .string(text)))
                    members.append(("valueEncoding", .string("utf8")))
                } else {
                    members.append(("valueBase64", .string(Base64.encode(raw))))
                    members.append(("valueEncoding", .string("base64")))
                }
            }
            Console.out(JSONValue.object(members).serialized())
            return
        }
        value.withUnsafeBytes { Console.outRaw($0) }
        if Console.stdoutIsTerminal { Console.out("") }
    }
}
