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
            return RemoteStore(endpoint: try remote.remoteEndpoint(warn: Console.warning))
        }
        return LocalSecretStore(vault: try location.open(), actor: ProcessEnvironment.actor) { ProcessEnvironment.now }
    }
}
