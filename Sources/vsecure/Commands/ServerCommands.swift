import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import VSecureCore
import VSecureCrypto
import VSecureRemote

struct Login: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Store a server's endpoint and API key, after checking the key with the server.",
        discussion: """
        The API key is read from stdin (e.g. `printf '%s' "$KEY" | vsecure login --endpoint URL`), or \
        asked for without echo on a terminal; never from the command line. The endpoint (and --cacert) \
        go to config.json, the key to a separate credentials file (mode 0600) in ~/.vsecure, or \
        $VSECURE_CONFIG_DIR. From then on the secrets commands use the server unless --vault is given.
        """
    )

    @Option(name: .long, help: ArgumentHelp("The server, e.g. https://vault.example:8443.", valueName: "url"))
    var endpoint: String

    @Option(name: .long, help: ArgumentHelp("Trust this PEM CA for the server (stored in config.json).", valueName: "file"))
    var cacert: String?

    func run() throws {
        let url = try ClientConfig.checkEndpoint(endpoint)
        let caCert = try cacert.map { (path: String) throws(VSecureError) in try ClientConfig.Key.caCert.validated(path) }
        let limit = 4096
        let key: SecureBytes
        if Console.stdinIsTerminal {
            key = try SecretInput.prompt("API key for \(url): ", limit: limit,
                                         noTerminal: .usage("no API key given", hint: "pass it on stdin"))
        } else {
            key = Passphrase.stripNewline(try SecretInput.readStdin(limit: limit, what: "the API key"))
        }
        guard key.count > 0 else { throw VSecureError.usage("the API key is empty", hint: "pass it on stdin, e.g. printf '%s' \"$KEY\" | vsecure login --endpoint \(url)") }
        guard !key.contains(byte: 0x0A), !key.contains(byte: 0x0D), !key.contains(byte: 0) else {
            throw VSecureError.usage("the API key must be one line")
        }
        var config = try ClientConfig.load()
        let timeout = RemoteSettings.setting(.timeout, flag: nil, flagName: "", config: config)?.value
        let remote = try RemoteSettings.endpoint(url: url, apiKey: key, caCert: caCert ?? ProcessEnvironment.string("VSECURE_CA_CERT"),
                                                 timeout: timeout, warn: Console.warning)
        let access = try RemoteStore(endpoint: remote).verifyKey()
        config.values[.endpoint] = url
        if let caCert { config.values[.caCert] = caCert }
        try config.save()
        try ClientConfig.saveCredentials(endpoint: url, apiKey: key)
        Console.out("Logged in to \(url)")
        Console.out("Config: \(ClientConfig.path)")
        Console.out("API key: \(ClientConfig.credentialsPath) (mode 0600)")
        if access == .keyWithoutRead {
            Console.note("the server accepted the key, but it may not read secrets (no secrets:read scope)")
        }
    }
}

struct Logout: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logout",
        abstract: "Remove the stored API key (the endpoint stays in config.json).",
        discussion: "The key itself stays valid on the server; revoke it there if it may have leaked."
    )

    func run() throws {
        let path = ClientConfig.credentialsPath
        switch PrivateFiles.kind(of: path) {
        case .missing:
            Console.note("no API key is stored (\(path))")
        case .directory:
            throw VSecureError(.io, "\(Quoted(path)) is a directory, not a credentials file")
        default:
            guard unlink(path) == 0 else { throw PrivateFiles.ioError("cannot remove", path: path) }
            Console.out("Removed the API key \(path)")
        }
    }
}

struct ConfigSet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config:set",
        abstract: "Set a setting in config.json: endpoint, caCert or timeout.",
        discussion: """
        endpoint: the server URL. caCert: a PEM CA bundle to trust (stored as an absolute path). \
        timeout: how long a command may wait for the server, retries included (e.g. 10s, 1m). \
        The API key is not a setting: `vsecure login` stores it.
        """
    )

    @Argument(help: ArgumentHelp("The setting.", valueName: "key"))
    var key: String

    @Argument(help: ArgumentHelp("Its value.", valueName: "value"))
    var value: String

    func run() throws {
        let setting = try ClientConfig.Key.named(key)
        var config = try ClientConfig.load()
        config.values[setting] = try setting.validated(value)
        try config.save()
        if setting == .endpoint, let stored = try ClientConfig.loadCredentials(), stored.endpoint != config.values[.endpoint] {
            Console.hint("the stored API key is for \(stored.endpoint); run `vsecure login --endpoint \(config.values[.endpoint] ?? value)`")
        }
    }
}

struct ConfigGet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config:get",
        abstract: "Print a setting as it applies now (environment variables override config.json).",
        discussion: "Exits 3 when the setting is not set anywhere."
    )

    @Argument(help: ArgumentHelp("endpoint, caCert or timeout.", valueName: "key"))
    var key: String

    func run() throws {
        let setting = try ClientConfig.Key.named(key)
        let config = try ClientConfig.load()
        guard let found = RemoteSettings.setting(setting, flag: nil, flagName: "", config: config) else {
            throw VSecureError(.notFound, "\(setting.rawValue) is not set", hint: "set it with `vsecure config:set \(setting.rawValue) VALUE`")
        }
        Console.out(found.value)
    }
}

struct ConfigShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config:show",
        abstract: "Show every setting, where it comes from, and whether an API key is available (never the key).",
        discussion: "Environment variables (VSECURE_ENDPOINT, VSECURE_CA_CERT, VSECURE_TIMEOUT) override config.json."
    )

    @OptionGroup var output: OutputOption

    func run() throws {
        let config = try ClientConfig.load()
        var rows: [(String, SettingSource?)] = ClientConfig.Key.allCases.map { key in
            (key.rawValue, RemoteSettings.setting(key, flag: nil, flagName: "", config: config))
        }
        var keySource: SettingSource?
        if ProcessEnvironment.string("VSECURE_API_KEY") != nil {
            keySource = SettingSource(value: "set", source: "VSECURE_API_KEY")
        } else if let stored = try ClientConfig.loadCredentials() {
            keySource = SettingSource(value: "stored for \(stored.endpoint)", source: ClientConfig.credentialsPath)
        }
        rows.append(("apiKey", keySource))
        if output.json {
            Console.out(JSONValue.object([
                ("config", .string(ClientConfig.path)),
                ("settings", .object(rows.map { name, setting in
                    (name, setting.map { .object([("value", .string($0.value)), ("source", .string($0.source))]) } ?? .null)
                })),
            ]).serialized())
            return
        }
        Console.out(Presentation.table(["KEY", "VALUE", "SOURCE"], rows.map { name, setting in
            [name, setting?.value ?? "-", setting?.source ?? "not set"]
        }))
    }
}

struct ConfigPath: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config:path",
        abstract: "Print the path of config.json ($VSECURE_CONFIG_DIR, else ~/.vsecure)."
    )

    func run() throws {
        Console.out(ClientConfig.path)
    }
}
