import Foundation
import Testing
import TestSupport

/// `vsecure-run` on a vault or key that was tampered with, damaged or is simply the wrong one:
/// the documented exit code (7 for key problems, 8 for integrity; docs/vault-format.md), a
/// message naming the problem, no value anywhere in its output, and the program never started,
/// not even with the secrets that did decrypt. (The CLI's side of the same faults is in
/// EndToEndTests' ReliabilityTests and BadInputTests.)
@Suite("vsecure-run refuses a tampered vault or a wrong key", .enabled(if: Vault.hasSQLite3))
struct LaunchTamperTests {
    /// A vault with two secrets; the manifest asks for both.
    final class Setup: @unchecked Sendable {
        let vault: Vault
        let marker: String
        var directory: TemporaryDirectory { vault.directory }

        init(passphrase: String? = nil) throws {
            vault = try Vault(passphrase: passphrase)
            marker = vault.directory.file("started")
            try secret("INTACT", "tamper-SECRET-intact-value")
            try secret("TARGET", "tamper-SECRET-target-value")
            try secret("SPARE", "tamper-SECRET-spare-value")
            try directory.write("vsecure.yml", "version: 1\nsecrets: [INTACT, TARGET]\n", mode: 0o644)
        }

        func secret(_ name: String, _ value: String, _ options: [String] = []) throws {
            try vault.create(name, value, ["--env", "production"] + options)
        }

        func launch(_ command: [String]? = nil, env: [String: String] = [:]) throws -> ProcessResult {
            try runProcess(Binaries.vsecureRun, ["--env", "production", "--"] + (command ?? ["/usr/bin/touch", marker]),
                           environment: vault.environment(.environment, extra: env), workingDirectory: directory.path, timeout: 60)
        }

        func sealedHex(_ name: String) throws -> String {
            try vault.sqlite("""
                SELECT hex(v.sealed) FROM versions v JOIN secrets s ON s.id = v.secret_id
                WHERE s.name = '\(name)' AND s.environment = 'production' AND v.version = 1
                """).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func setSealed(_ name: String, hex: String) throws {
            try vault.sqlite("""
                UPDATE versions SET sealed = X'\(hex)'
                WHERE secret_id = (SELECT id FROM secrets WHERE name = '\(name)' AND environment = 'production') AND version = 1
                """)
        }

        /// The launch failed with `status`, said `message`, printed no value and started nothing.
        func expectRefused(_ result: ProcessResult, _ status: Int32, _ message: String,
                           sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(result.status == status, "\(result)", sourceLocation: sourceLocation)
            #expect(result.stderr.hasPrefix("vsecure-run: error: "), "\(result.stderr)", sourceLocation: sourceLocation)
            #expect(result.stderr.contains(message), "expected \(message.debugDescription) in:\n\(result.stderr)", sourceLocation: sourceLocation)
            #expect(result.stdout.isEmpty, "\(result)", sourceLocation: sourceLocation)
            #expect(!result.stderr.contains("tamper-SECRET"), "a value reached stderr", sourceLocation: sourceLocation)
            #expect(!FileManager.default.fileExists(atPath: marker), "the program was started", sourceLocation: sourceLocation)
        }
    }

    static func flipped(_ hex: String, byte index: Int) -> String {
        var bytes = Array(hex.utf8)
        let position = 2 * index + 1
        // The low nibble of the byte: 0 ↔ 1, …, so the hex stays valid.
        let digits = Array("0123456789ABCDEF".utf8)
        let value = digits.firstIndex(of: bytes[position])!
        bytes[position] = digits[value ^ 1]
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test("a flipped bit in the nonce, the ciphertext or the tag: exit 8 naming the secret", arguments: [0, 30, 57])
    func flippedBox(byte: Int) throws {
        let setup = try Setup()
        try setup.setSealed("TARGET", hex: Self.flipped(try setup.sealedHex("TARGET"), byte: byte))
        setup.expectRefused(try setup.launch(), 8, "version 1 of TARGET in production failed authentication")
    }

    @Test("another secret's box (same length) in a row: exit 8, never the other value")
    func movedBox() throws {
        let setup = try Setup()
        try setup.setSealed("TARGET", hex: try setup.sealedHex("SPARE"))
        setup.expectRefused(try setup.launch(), 8, "version 1 of TARGET in production failed authentication")
    }

    @Test("a recorded length that does not match the box: exit 8")
    func wrongLength() throws {
        let setup = try Setup()
        try setup.vault.sqlite("UPDATE versions SET value_length = value_length - 1 WHERE secret_id = (SELECT id FROM secrets WHERE name = 'TARGET')")
        setup.expectRefused(try setup.launch(), 8, "TARGET")
    }

    @Test("a changed vault id: exit 7, as documented (it is bound into the wrapped data key)")
    func changedVaultID() throws {
        let setup = try Setup()
        try setup.vault.sqlite("UPDATE vault_meta SET value = zeroblob(16) WHERE key = 'vault_id'")
        let result = try setup.launch()
        // The vault id is bound into the wrapped data key too: the AEAD cannot tell this from a
        // wrong key, and docs/vault-format.md says it is reported as one.
        setup.expectRefused(result, 7, "does not unlock the vault")
    }

    @Test("a damaged wrapped data key: exit 7, as documented (indistinguishable from a wrong key)")
    func damagedWrappedKey() throws {
        let setup = try Setup()
        let hex = try setup.vault.sqlite("SELECT hex(value) FROM vault_meta WHERE key = 'wrapped_data_key'").stdoutText
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try setup.vault.sqlite("UPDATE vault_meta SET value = X'\(Self.flipped(hex, byte: 40))' WHERE key = 'wrapped_data_key'")
        setup.expectRefused(try setup.launch(), 7, "does not unlock the vault")
    }

    @Test("scrambled pages in the vault file: exit 8")
    func scrambledFile() throws {
        let setup = try Setup()
        for index in 0..<20 { try setup.secret("FILLER_\(index)", "tamper-SECRET-filler-\(index)", ["--metadata", "pad=" + String(repeating: "p", count: 500)]) }
        var file = try setup.directory.read("vault.db")
        for index in (file.count / 4)..<(file.count * 3 / 4) { file[index] = UInt8(truncatingIfNeeded: index &* 31 &+ 0xA5) }
        try setup.directory.write("vault.db", file)
        setup.expectRefused(try setup.launch(), 8, "damaged")
    }

    @Test("key file: a flipped byte, a short file, a symlink, loose permissions, a directory: exit 7")
    func keyFiles() throws {
        let setup = try Setup()
        let key = try setup.directory.read("vault.key")
        var flipped = key
        flipped[5] ^= 0x10
        let directory = setup.directory
        let cases: [(String, String)] = [
            (try directory.write("flipped.key", flipped), "does not unlock the vault"),
            (try directory.write("short.key", Array(key.prefix(31))), "has 31 bytes"),
            (try directory.write("loose.key", key, mode: 0o644), "is accessible by group or others"),
        ]
        for (path, message) in cases {
            setup.expectRefused(try setup.launch(env: ["VSECURE_KEY_FILE": path]), 7, message)
        }
        let link = directory.file("link.key")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: setup.vault.keyPath)
        setup.expectRefused(try setup.launch(env: ["VSECURE_KEY_FILE": link]), 7, "is a symlink")
        let folder = directory.file("key-directory")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        setup.expectRefused(try setup.launch(env: ["VSECURE_KEY_FILE": folder]), 7, "is not a regular file")
        // The right key still works: the refusals above were about the key, not the vault.
        let good = try setup.launch(["/usr/bin/printenv", "TARGET"])
        #expect(good.status == 0 && good.stdoutText == "tamper-SECRET-target-value\n", "\(good)")
    }

    @Test("a passphrase vault: a wrong passphrase, or none without a terminal: exit 7")
    func passphrase() throws {
        let setup = try Setup(passphrase: "correct horse battery staple")
        setup.expectRefused(try setup.launch(env: ["VSECURE_PASSPHRASE": "correct horse battery stapler"]), 7, "wrong passphrase")
        setup.expectRefused(try setup.launch(env: ["VSECURE_PASSPHRASE": ""]), 7, "passphrase")
        let good = try setup.launch(["/usr/bin/printenv", "TARGET"])
        #expect(good.status == 0 && good.stdoutText == "tamper-SECRET-target-value\n", "\(good)")
    }
}
