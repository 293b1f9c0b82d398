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

    /// The audit log `audit:*` reads: the server's, else the local vault's (which must exist).
    func openAuditReader() throws(VSecureError) -> any AuditReader {
        if let remote = try RemoteSettings.resolve(flagEndpoint: endpoint, flagCACert: cacert, explicitVault: location.vault) {
            return RemoteStore(endpoint: try remote.remoteEndpoint(warn: Console.warning))
        }
        if PrivateFiles.kind(of: location.vaultPath) == .missing { _ = try location.open() }
        return try location.openAuditLog(create: false)
    }

    func open() throws(VSecureError) -> any SecretStore {
        if let remote = try RemoteSettings.resolve(flagEndpoint: endpoint, flagCACert: cacert, explicitVault: location.vault) {
            return RemoteStore(endpoint: try remote.remoteEndpoint(warn: Console.warning))
        }
        let vault = try location.open()
        // A log that cannot be opened or written is a warning on a local vault (docs/audit.md).
        var audit: AuditLog?
        do { audit = try location.openAuditLog(create: true) } catch { Self.auditWarning(error) }
        let store = LocalSecretStore(vault: vault, actor: ProcessEnvironment.actor, audit: audit) { ProcessEnvironment.now }
        store.onAuditFailure = Self.auditWarning
        store.onWarning = Console.warning
        return store
    }

    static func auditWarning(_ error: VSecureError) {
        Console.warning("the audit log was not written: \(error.message)")
        Console.hint("the operation went on: a local vault's log is a record, not a barrier; `vsecure audit:verify` checks it")
    }
}
