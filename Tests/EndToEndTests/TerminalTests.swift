import Foundation
import Testing
import TestSupport

/// `script` runs a command on a pseudo-terminal, so the terminal-only paths (newline after a
/// value, the no-echo prompt, the delete confirmation) can be driven end to end.
let scriptTool = "/usr/bin/script"

@Suite("On a terminal", .noValuesOnStderr, .enabled(if: FileManager.default.isExecutableFile(atPath: scriptTool)))
struct TerminalTests {
    /// Runs `vsecure arguments…` on a pty; `typed` is sent to the terminal after a pause that
    /// lets the prompt switch echo off first (input typed earlier is flushed by design).
    func onTerminal(_ vault: Vault, _ arguments: [String], typed: String? = nil) throws -> ProcessResult {
        try vault.shell(Self.script(arguments, typed: typed.map { [$0] } ?? []))
    }

    /// Each of `typed` is sent one second after the previous one: every prompt flushes input
    /// typed before it.
    static func script(_ arguments: [String], typed: [String]) -> String {
        let command = ([Binaries.vsecure] + arguments).map(shellQuoted).joined(separator: " ")
        let feed = typed.isEmpty ? "true" : "(" + typed.map { "sleep 1; printf '%s' \(shellQuoted($0))" }.joined(separator: "; ") + ")"
        return "\(feed) | \(scriptTool) -qec \(shellQuoted(command)) /dev/null"
    }

    @Test func initAsksForANewPassphraseTwiceWithoutEcho() throws {
        let dir = try TemporaryDirectory()
        let vaultPath = dir.file("vault.db")
        let env = ["VSECURE_VAULT": vaultPath]
        let mismatch = try runShell(Self.script(["vault:init", "--passphrase"], typed: ["first-SECRET-pass\n", "other-SECRET-pass\n"]),
                                    home: dir.path, environment: env)
        #expect(mismatch.status == 2, "\(mismatch)")
        #expect(mismatch.stdoutText.contains("the passphrases do not match; nothing was changed"))
        #expect(!FileManager.default.fileExists(atPath: vaultPath))

        let created = try runShell(Self.script(["vault:init", "--passphrase"], typed: ["tty-SECRET-pass\n", "tty-SECRET-pass\n"]),
                                   home: dir.path, environment: env)
        #expect(created.status == 0, "\(created)")
        #expect(created.stdoutText.contains("New passphrase for \(vaultPath): "))
        #expect(created.stdoutText.contains("Repeat the passphrase: "))
        #expect(!created.stdoutText.contains("tty-SECRET-pass"), "the passphrase was echoed")
        let opened = try runProcess(Binaries.vsecure, ["vault:status", "--output", "json"],
                                    environment: minimalEnvironment(home: dir.path).merging(env) { $1 }.merging(["VSECURE_PASSPHRASE": "tty-SECRET-pass"]) { $1 })
        #expect(opened.status == 0, "\(opened)")

        let prompted = try runShell(Self.script(["secrets:list"], typed: ["tty-SECRET-pass\n"]), home: dir.path, environment: env)
        #expect(prompted.status == 0, "\(prompted)")
        #expect(prompted.stdoutText.contains("Passphrase for \(vaultPath): "))
        #expect(prompted.stdoutText.contains("no secrets match"))
        #expect(!prompted.stdoutText.contains("tty-SECRET-pass"))
    }

    @Test func getAddsANewlineOnlyOnATerminal() throws {
        let vault = try Vault()
        try vault.create("TTY_VALUE", "tty-SECRET-value")
        let result = try onTerminal(vault, ["secrets:get", "TTY_VALUE"])
        #expect(result.status == 0, "\(result)")
        // The terminal turns the newline into CR LF.
        #expect(result.stdout == bytes("tty-SECRET-value\r\n"))
        #expect(try vault.value("TTY_VALUE") == bytes("tty-SECRET-value"))
    }

    @Test func createPromptsForTheValueWithoutEcho() throws {
        let vault = try Vault()
        let result = try onTerminal(vault, ["secrets:create", "TYPED"], typed: "typed-SECRET-value\n")
        #expect(result.status == 0, "\(result)")
        #expect(result.stdoutText.hasPrefix("Value for TYPED: "), "\(result.stdoutText)")
        #expect(result.stdoutText.contains("Created TYPED in development"))
        #expect(!result.stdoutText.contains("typed-SECRET-value"), "the typed value was echoed")
        #expect(try vault.value("TYPED") == bytes("typed-SECRET-value"))
    }

    @Test func deleteAsksForConfirmation() throws {
        let vault = try Vault()
        try vault.create("ASKED", "asked-SECRET")
        let declined = try onTerminal(vault, ["secrets:delete", "ASKED"], typed: "n\n")
        #expect(declined.status == 0, "\(declined)")
        #expect(declined.stdoutText.contains("Delete ASKED in development? [y/N] "))
        #expect(declined.stdoutText.contains("vsecure: nothing was deleted"))
        #expect(try vault.value("ASKED") == bytes("asked-SECRET"))

        let accepted = try onTerminal(vault, ["secrets:delete", "ASKED"], typed: "y\n")
        #expect(accepted.status == 0, "\(accepted)")
        #expect(accepted.stdoutText.contains("Deleted ASKED in development"))
        expectFailure(try vault.run(["secrets:get", "ASKED"]), 3, "no secret ASKED in development")
    }
}
