import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import VSecureCore
import VSecureCrypto
import VSecureRemote
import VSecureStore
import VSecureVault

/// Where the secrets commands read and write: the local vault or a vsecure server.
///
/// `--endpoint` wins, then `--vault`; then `VSECURE_ENDPOINT`, then `VSECURE_VAULT`; then the
/// endpoint in the config file (`vsecure login`); else the local vault at its default path.
struct StoreOptions: ParsableArguments {
    @OptionGroup var location: VaultOptions

    @Option(name: .long, help: ArgumentHelp("A vsecure server (default: $VSECURE_ENDPOINT, else the config file's; --vault means the local vault).", valueName: "url"))
    var endpoint: String?

    @Option(name: .long, help: ArgumentHelp("Trust this PEM CA for the server (default: $VSECURE_CA_CERT, else the config file's).", valueName: "file"))
    var cacert: String?

    func validate() throws {
        if endpoint != nil && location.vault != nil {
            throw ValidationError("give either --endpoint (a server) or --vault (a local vault), not both")
        }
    }

    func open() throws(VSecureError) -> any SecretStore {
        if let remote = try RemoteSettings.resolve(flagEndpoint: endpoint, flagCACert: cacert, explicitVault: location.vault) {
            return RemoteStore(endpoint: try remote.remoteEndpoint())
        }
        return LocalSecretStore(vault: try location.open(), actor: ProcessEnvironment.actor) { ProcessEnvironment.now }
    }
}

/// One effective setting and where it came from, for `config:show`.
struct SettingSource {
    var value: String
    var source: String
}

/// The server settings in effect: flags, then environment variables, then the config file.
struct RemoteSettings {
    var endpoint: SettingSource
    var caCert: SettingSource?
    var timeout: SettingSource?

    /// nil when the local vault is meant.
    static func resolve(flagEndpoint: String?, flagCACert: String?, explicitVault: String?) throws(VSecureError) -> RemoteSettings? {
        let config = try ClientConfig.load()
        let endpoint: SettingSource
        if let flagEndpoint {
            endpoint = SettingSource(value: flagEndpoint, source: "--endpoint")
        } else if explicitVault != nil {
            return nil
        } else if let text = ProcessEnvironment.string("VSECURE_ENDPOINT") {
            endpoint = SettingSource(value: text, source: "VSECURE_ENDPOINT")
        } else if ProcessEnvironment.string("VSECURE_VAULT") != nil {
            return nil
        } else if let text = config.values[.endpoint] {
            endpoint = SettingSource(value: text, source: ClientConfig.path)
        } else {
            return nil
        }
        return RemoteSettings(endpoint: endpoint, caCert: setting(.caCert, flag: flagCACert, flagName: "--cacert", config: config),
                              timeout: setting(.timeout, flag: nil, flagName: "", config: config))
    }

    static func setting(_ key: ClientConfig.Key, flag: String?, flagName: String, config: ClientConfig) -> SettingSource? {
        if let flag { return SettingSource(value: flag, source: flagName) }
        if let text = ProcessEnvironment.string(key.environmentVariable) { return SettingSource(value: text, source: key.environmentVariable) }
        if let text = config.values[key] { return SettingSource(value: text, source: ClientConfig.path) }
        return nil
    }

    /// Where the API key comes from: VSECURE_API_KEY, else the credentials file when it was
    /// stored for this endpoint. Never argv.
    static func apiKey(for endpoint: String) throws(VSecureError) -> (key: SecureBytes, source: String)? {
        if let raw = getenv("VSECURE_API_KEY"), strlen(raw) > 0 {
            return (SecureBytes(copying: UnsafeRawBufferPointer(start: raw, count: strlen(raw))), "VSECURE_API_KEY")
        }
        guard let stored = try ClientConfig.loadCredentials() else { return nil }
        guard stored.endpoint == endpoint else {
            throw VSecureError(.accessDenied, "the stored API key is for \(stored.endpoint), not \(endpoint)",
                               hint: "run `vsecure login --endpoint \(endpoint)`, or set VSECURE_API_KEY")
        }
        return (stored.apiKey, ClientConfig.credentialsPath)
    }

    func remoteEndpoint() throws(VSecureError) -> RemoteEndpoint {
        let url = try ClientConfig.checkEndpoint(endpoint.value)
        guard let key = try Self.apiKey(for: url) else {
            throw VSecureError(.accessDenied, "no API key for \(url)",
                               hint: "store one with `vsecure login --endpoint \(url)` (it reads the key from stdin), or set VSECURE_API_KEY")
        }
        return try Self.endpoint(url: url, apiKey: key.key, caCert: caCert?.value, timeout: timeout?.value)
    }

    static func endpoint(url: String, apiKey: SecureBytes, caCert: String?, timeout: String?) throws(VSecureError) -> RemoteEndpoint {
        var remote = RemoteEndpoint(baseURL: url, apiKey: apiKey)
        if let caCert {
            guard PrivateFiles.kind(of: caCert) == .regular else {
                throw VSecureError.usage("no CA file at \(Quoted(caCert))", hint: "check --cacert, VSECURE_CA_CERT or `vsecure config:get caCert`")
            }
            remote.caFile = caCert
        }
        let duration = try timeout.map { (text: String) throws(VSecureError) in try SecretDuration(parsing: text) } ?? SecretDuration(seconds: 10)
        remote.timeoutMilliseconds = Int(min(duration.seconds, 3600)) * 1000
        if ProcessEnvironment.string("VSECURE_VERIFY_SSL").map({ ["false", "0", "no"].contains($0.lowercased()) }) == true {
            remote.verifyTLS = false
            Console.warning("VSECURE_VERIFY_SSL=false: the server's certificate is NOT checked; anyone on the path can read these secrets and the API key")
        }
        return remote
    }
}
