import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import VSecureCore

enum VSecureVersion {
    static let current = "0.1.0"
}

@main
struct VSecure: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vsecure",
        abstract: "Manage secrets in an encrypted vault: create, update, get, list, version, diff, roll back.",
        discussion: """
        The vault is a local encrypted file (default ~/.vsecure/vault.db) unlocked by a key file \
        (~/.vsecure/vault.key) or a passphrase. Start with `vsecure vault:init`. With a server \
        (`vsecure login --endpoint URL`, --endpoint or $VSECURE_ENDPOINT) the secrets commands use it \
        instead; --vault always means the local vault. Exit codes are listed in the README.
        """,
        version: VSecureVersion.current,
        subcommands: [
            VaultInit.self, VaultStatus.self, VaultRekey.self,
            SecretsCreate.self, SecretsUpdate.self, SecretsGet.self, SecretsList.self, SecretsVersions.self,
            SecretsDiff.self, SecretsRollback.self, SecretsDelete.self, SecretsImport.self, SecretsExport.self,
            SecretsRotate.self, RotationStatus.self, RotationRun.self,
            AuditLogs.self, AuditExport.self, AuditVerify.self,
            Login.self, Logout.self, ConfigSet.self, ConfigGet.self, ConfigShow.self, ConfigPath.self,
            UsersCreate.self, UsersList.self, UsersUpdate.self, UsersDisable.self,
            APIKeysCreate.self, APIKeysList.self, APIKeysRevoke.self, APIKeysRotate.self,
            PolicySet.self, PolicyShow.self, PolicyTest.self,
            SecretsGrantAccess.self, SecretsRevokeAccess.self, SecretsGrants.self,
        ]
    )

    static func main() {
        // Every file vsecure creates is private, whatever the caller's umask.
        umask(0o077)
        do {
            var command = try parseAsRoot()
            try command.run()
            try Console.checkOutputWasWritten()
            Glibc.exit(0)
        } catch let failure as VSecureError {
            Console.report(failure)
            Glibc.exit(failure.status.rawValue)
        } catch let quiet as QuietExit {
            Glibc.exit(quiet.status.rawValue)
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                Console.out(message)
                Glibc.exit(0)
            }
            reportParseError(message)
            Glibc.exit(ExitStatus.usage.rawValue)
        }
    }

    /// Argument-parser errors in the house format: the first line as the error, usage as a hint.
    private static func reportParseError(_ message: String) {
        var lines = message.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        var first = lines.isEmpty ? "invalid arguments" : lines.removeFirst()
        if first.hasPrefix("Error: ") { first.removeFirst("Error: ".count) }
        Console.error(first)
        for line in lines {
            let trimmed = line.hasPrefix("Help:  ") ? String(line.dropFirst(7)) : line
            Console.hint(trimmed.trimmingLeadingSpaces)
        }
    }
}

extension String {
    var trimmingLeadingSpaces: String { String(drop { $0 == " " }) }
}
