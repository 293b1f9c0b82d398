import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import VSecureCore
import VSecureCrypto
import VSecureVault

/// Where the vault and its key are: flags first, then environment variables, then ~/.vsecure.
struct VaultOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The vault file (default: $VSECURE_VAULT, else ~/.vsecure/vault.db).", valueName: "path"))
    var vault: String?

    @Option(name: .customLong("key-file"), help: ArgumentHelp("The vault's key file (default: $VSECURE_KEY_FILE, else ~/.vsecure/vault.key).", valueName: "path"))
    var keyFile: String?

    @Option(name: .customLong("passphrase-file"),
            help: ArgumentHelp("For a passphrase vault: read the passphrase from this file (else $VSECURE_PASSPHRASE, else a prompt).", valueName: "path"))
    var passphraseFile: String?

    static var defaultDirectory: String { ProcessEnvironment.home + "/.vsecure" }

    var vaultPath: String { vault ?? ProcessEnvironment.string("VSECURE_VAULT") ?? Self.defaultDirectory + "/vault.db" }
    var keyFilePath: String { keyFile ?? ProcessEnvironment.string("VSECURE_KEY_FILE") ?? Self.defaultDirectory + "/vault.key" }

    /// The vault's audit log: $VSECURE_AUDIT_LOG, else beside the vault (`vault.audit.db`), with
    /// its key beside it (`vault.audit.key`).
    var auditLogPath: String { ProcessEnvironment.string("VSECURE_AUDIT_LOG") ?? AuditLog.defaultPath(forVault: vaultPath) }

    func openAuditLog(create: Bool) throws(VSecureError) -> AuditLog {
        let path = auditLogPath
        let log = try AuditLog.open(path: path, keyPath: AuditLog.keyPath(forLog: path), create: create)
        if let notice = log.receiptsNotice {
            Console.warning(notice)
            Console.hint("`vsecure audit:verify` reports it; docs/audit.md tells what to do")
        }
        return log
    }

    func open() throws(VSecureError) -> LocalVault {
        let passphraseFile = self.passphraseFile
        let vaultPath = self.vaultPath
        return try LocalVault.open(at: vaultPath, keys: KeySource(keyFilePath: keyFilePath) { () throws(VSecureError) -> SecureBytes in
            try Passphrase.read(file: passphraseFile, prompt: "Passphrase for \(vaultPath): ", confirm: false)
        })
    }
}

/// `--env`: an explicit environment, else $VSECURE_ENV.
struct EnvironmentOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The environment (default: $VSECURE_ENV, else the vault's default).", valueName: "name"))
    var env: String?

    func explicit() throws(VSecureError) -> EnvironmentName? {
        guard let text = env ?? ProcessEnvironment.string("VSECURE_ENV") else { return nil }
        return try EnvironmentName(text)
    }

    func resolve(in vault: LocalVault) throws(VSecureError) -> EnvironmentName {
        let environment = try explicit() ?? vault.defaultEnvironment
        try vault.checkEnvironment(environment)
        return environment
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

struct OutputOption: ParsableArguments {
    @Option(name: .long, help: "Output format: text or json.")
    var output: OutputFormat = .text

    var json: Bool { output == .json }
}
