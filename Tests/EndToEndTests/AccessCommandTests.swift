import Testing
import TestSupport

/// Users, roles, policies and grants exist only on a server: against a local vault every one
/// of those commands stops with exit 14 and says why.
@Suite("Access commands on a local vault")
struct AccessCommandTests {
    static let commands: [[String]] = [
        ["users:create", "ana@example.com", "--roles", "engineers"], ["users:list"], ["users:update", "ana@example.com", "--roles", "x"],
        ["users:disable", "ana@example.com"],
        ["api-keys:create", "--user", "ana@example.com", "--scopes", "secrets:read"], ["api-keys:list"],
        ["api-keys:revoke", "key_0000000000000000"], ["api-keys:rotate", "key_0000000000000000"],
        ["policy:set", "policy.json"], ["policy:show"], ["policy:test", "--user", "ana@example.com", "production/API_KEY"],
        ["secrets:grant-access", "API_KEY", "--user", "ana@example.com", "--duration", "1h"], ["secrets:revoke-access", "grt_1"],
        ["secrets:grants"],
    ]

    @Test("every access command on a local vault exits 14 with the explanation", arguments: commands)
    func needsServer(_ arguments: [String]) throws {
        let vault = try Vault()
        let result = try vault.run(arguments)
        #expect(result.status == 14, "\(arguments): \(result)")
        #expect(result.stdoutText.isEmpty)
        #expect(result.stderr == """
            vsecure: error: users, roles, policies and grants need a vsecure server
            vsecure: hint: a local vault has no users: whoever holds its key file or passphrase can read every secret in it
            vsecure: hint: point at a server with --endpoint URL, VSECURE_ENDPOINT, or `vsecure login --endpoint URL` (docs/access-control.md)

            """, "\(arguments)")
    }

    @Test("the access commands have help")
    func help() throws {
        let vault = try Vault()
        for command in Set(Self.commands.map { $0[0] }) {
            let result = try vault.run([command, "--help"])
            #expect(result.status == 0, "\(command): \(result)")
            #expect(result.stdoutText.contains("USAGE: vsecure \(command)"), "\(command): \(result)")
        }
    }
}
