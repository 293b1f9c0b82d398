import Foundation
import Testing
import VSecureCore
import VSecureCrypto
import VSecureStore
@testable import VSecureVault

/// Rotation commands run for real: small shell scripts record what they were given.
@Suite("Rotation commands")
struct RotationCommandTests {
    let scratch: ScratchDirectory

    init() throws { scratch = try ScratchDirectory() }

    /// Scripts run as `/bin/sh PATH`: executing a file this process just wrote can fail with
    /// ETXTBSY while a parallel test's child still holds the write descriptor.
    func script(_ name: String, _ body: String) throws -> String {
        let path = scratch.child(name)
        try ("#!/bin/sh\n" + body + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: path)
        return path
    }

    func bytes(_ value: String) -> SecureBytes { Array(value.utf8).withUnsafeBytes { SecureBytes(copying: $0) } }

    @Test("through the store: name, environment and version in a clean environment, the value on stdin only, the new value from stdout")
    func contract() throws {
        let out = scratch.path
        let command = try script("rotate.sh", """
            for a in "$@"; do printf '%s\\n' "$a"; done > '\(out)/argv'
            env | sort > '\(out)/env'
            cat > '\(out)/stdin'
            printf 'rotated-value\\n'
            """)
        let fixture = try VaultFixture()
        let old: [UInt8] = utf8("old value\n") + [0, 0xFF]
        try fixture.vault.put("DB_PASSWORD", old, at: t0)
        try fixture.vault.change("DB_PASSWORD", to: old, at: t0)
        let policy = try RotationPolicy(period: SecretDuration(seconds: 86_400), source: try RotationSource.command(parsing: "/bin/sh \(command) --user app", extra: ["two words"]))
        try fixture.vault.setRotationPolicy(environment: env("production"), name: secretName("DB_PASSWORD"), policy: policy, now: time(t0))
        // The command's environment is built from an allow-list (checked below). The test does
        // not set VSECURE_KEY_FILE in this process to prove it: setenv while other tests spawn
        // processes races with their copy of `environ` and crashed the test runner. The CLI
        // test (RotationCommandLineTests) runs with those variables set for real.
        let store = LocalSecretStore(vault: fixture.vault, actor: "cron", audit: nil) { time(t0 + 86_400) }
        let result = try store.rotate(environment: env("production"), name: secretName("DB_PASSWORD"), onlyIfDue: true, settings: RotationSettings())
        #expect(result.outcome == .rotated(from: 2, to: 3))
        #expect(try fixture.vault.read("DB_PASSWORD") == utf8("rotated-value"))
        #expect(try String(contentsOfFile: out + "/argv", encoding: .utf8) == "--user\napp\ntwo words\n")
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: out + "/stdin"))) == old)
        let environment = try String(contentsOfFile: out + "/env", encoding: .utf8).split(separator: "\n").map(String.init)
        let names = Set(environment.map { String($0.prefix { $0 != "=" }) })
        #expect(environment.contains("VSECURE_SECRET_NAME=DB_PASSWORD"))
        #expect(environment.contains("VSECURE_SECRET_ENVIRONMENT=production"))
        #expect(environment.contains("VSECURE_SECRET_VERSION=2"))
        #expect(names.isSubset(of: ["VSECURE_SECRET_NAME", "VSECURE_SECRET_ENVIRONMENT", "VSECURE_SECRET_VERSION", "PATH", "HOME", "PWD", "SHLVL", "_"]),
                "\(names)")
        #expect(!names.contains("VSECURE_KEY_FILE") && !names.contains("VSECURE_PASSPHRASE"))
    }

    @Test("a value larger than a pipe buffer does not deadlock a command that writes before it reads")
    func largeValue() throws {
        let command = try script("echo-first.sh", "printf 'x\\n'; cat >/dev/null")
        let large = SecureBytes.randomCharacters(count: SecretValueRule.maximumBytes, alphabet: RotationCharset.hex.alphabet)
        let value = try RotationCommand.run(argv: ["/bin/sh", command], environment: [], input: large, timeout: SecretDuration(seconds: 20))
        #expect(plain(value) == utf8("x"))
        // A command that ignores stdin entirely also works.
        let ignoring = try script("ignore.sh", "printf 'y'")
        #expect(plain(try RotationCommand.run(argv: ["/bin/sh", ignoring], environment: [], input: large, timeout: SecretDuration(seconds: 20))) == utf8("y"))
    }

    @Test("failures: exit status, empty output, too much output, a command that hangs, a missing program")
    func failures() throws {
        let cases: [(String, String, String)] = [
            ("exit1.sh", "cat >/dev/null; printf 'partial'; exit 1", "exited with status 1"),
            ("empty.sh", "cat >/dev/null", "printed an empty value"),
            ("newline.sh", "printf '\\n'", "printed an empty value"),
            ("huge.sh", "head -c 200000 /dev/zero | tr '\\\\0' 'a'", "more than 122880 bytes"),
        ]
        for (name, body, message) in cases {
            let command = try script(name, body)
            let error = #expect(throws: RotationFailure.self) {
                try RotationCommand.run(argv: ["/bin/sh", command], environment: [], input: bytes("secret-old"), timeout: SecretDuration(seconds: 20))
            }
            #expect(error?.reason.contains(message) == true, "\(name): \(String(describing: error?.reason))")
            #expect(error?.reason.contains("secret-old") == false)
        }
        let hang = try script("hang.sh", "sleep 30; printf 'late'")
        let started = Date()
        let timeout = #expect(throws: RotationFailure.self) {
            try RotationCommand.run(argv: ["/bin/sh", hang], environment: [], input: bytes("v"), timeout: SecretDuration(seconds: 1))
        }
        #expect(timeout?.reason.contains("did not finish within 1s and was killed") == true)
        #expect(Date().timeIntervalSince(started) < 10)
        let missing = #expect(throws: RotationFailure.self) {
            try RotationCommand.run(argv: [scratch.child("absent")], environment: [], input: bytes("v"), timeout: SecretDuration(seconds: 5))
        }
        #expect(missing?.reason.contains("could not be started") == true || missing?.reason.contains("exited with status 127") == true)
    }

    @Test("a failed command through the store changes nothing and is recorded")
    func failureThroughStore() throws {
        let command = try script("fail.sh", "exit 3")
        let fixture = try VaultFixture()
        try fixture.vault.put("K", utf8("keep"), at: t0)
        try fixture.vault.setRotationPolicy(environment: env("production"), name: secretName("K"),
                                            policy: try RotationPolicy(period: SecretDuration(seconds: 60), source: .command(argv: ["/bin/sh", command])), now: time(t0))
        let store = LocalSecretStore(vault: fixture.vault, actor: "cron", audit: nil) { time(t0 + 60) }
        let result = try store.rotate(environment: env("production"), name: secretName("K"), onlyIfDue: true, settings: RotationSettings())
        #expect(result.outcome == .failed(reason: "the rotation command /bin/sh exited with status 3; nothing was changed"))
        #expect(try fixture.vault.read("K") == utf8("keep"))
        #expect(try fixture.vault.versions(environment: env("production"), name: secretName("K")).1.count == 1)
    }
}
