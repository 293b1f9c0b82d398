import Foundation
import Testing
import TestSupport

@Suite("vault:init, vault:status, vault:rekey", .noValuesOnStderr)
struct VaultCommandTests {
    @Test func initCreatesVaultAndKeyFileAndPrintsWhere() throws {
        let dir = try TemporaryDirectory()
        let vaultPath = dir.file("v/vault.db"), keyPath = dir.file("k/vault.key")
        let result = try runProcess(Binaries.vsecure, ["vault:init", "--vault", vaultPath, "--key-file", keyPath],
                                    environment: minimalEnvironment(home: dir.path))
        #expect(result.status == 0, "\(result)")
        #expect(result.stdoutText == """
            Created vault \(vaultPath)
            Key file: \(keyPath)
            Environments: development, staging, production (default development)

            """)
        #expect(result.stderr == "vsecure: keep the key file safe and apart from backups of the vault: without it the vault cannot be opened\n")
        #expect(try dir.read("k/vault.key").count == 32)
    }

    @Test func initWithoutLocationsUsesDotVsecureInHome() throws {
        let dir = try TemporaryDirectory()
        let result = try runProcess(Binaries.vsecure, ["vault:init"], environment: minimalEnvironment(home: dir.path))
        #expect(result.status == 0, "\(result)")
        #expect(result.stdoutText.hasPrefix("Created vault \(dir.path)/.vsecure/vault.db\nKey file: \(dir.path)/.vsecure/vault.key\n"))
        #expect(mode(dir.file(".vsecure")) == 0o700)
        #expect(mode(dir.file(".vsecure/vault.db")) == 0o600)
        #expect(mode(dir.file(".vsecure/vault.key")) == 0o600)
    }

    @Test func initRefusesToOverwriteAnExistingVault() throws {
        let vault = try Vault()
        try vault.create("KEEP", "keep-me-SECRET-1")
        let before = try vault.directory.read("vault.db"), keyBefore = try vault.directory.read("vault.key")
        let result = try vault.run(["vault:init", "--vault", vault.vaultPath, "--key-file", vault.keyPath], location: .none)
        #expect(result.status == 4)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == """
            vsecure: error: a vault already exists at '\(vault.vaultPath)'; refusing to overwrite it
            vsecure: hint: use `vsecure vault:status` to inspect it, or choose another path with --vault

            """)
        #expect(try vault.directory.read("vault.db") == before)
        #expect(try vault.directory.read("vault.key") == keyBefore)
        #expect(try vault.value("KEEP") == bytes("keep-me-SECRET-1"))
    }

    @Test func filesArePrivateEvenUnderUmask000() throws {
        let dir = try TemporaryDirectory()
        let env = minimalEnvironment(home: dir.path).merging([
            "VSECURE_VAULT": dir.file("data/sub/vault.db"), "VSECURE_KEY_FILE": dir.file("keys/vault.key"),
        ]) { $1 }
        let vsecure = shellQuoted(Binaries.vsecure)
        let script = """
            umask 000
            \(vsecure) vault:init || exit 1
            printf 'umask-SECRET-value' | \(vsecure) secrets:create UMASK_TEST >/dev/null || exit 2
            printf 'umask-SECRET-value-2' | \(vsecure) secrets:update UMASK_TEST >/dev/null || exit 3
            """
        let result = try runProcess("/bin/sh", ["-c", script], environment: env)
        #expect(result.status == 0, "\(result)")
        for directory in ["data", "data/sub", "keys"] {
            #expect(mode(dir.file(directory)) == 0o700, "\(directory)")
            for entry in try FileManager.default.contentsOfDirectory(atPath: dir.file(directory)) {
                let path = dir.file(directory + "/" + entry)
                #expect(mode(path) == (isDirectory(path) ? 0o700 : 0o600), "\(path)")
            }
        }
        #expect(mode(dir.file("data/sub/vault.db")) == 0o600)
        #expect(mode(dir.file("keys/vault.key")) == 0o600)
    }

    @Test func passphraseVaultFromFileHasNoKeyFileAndOpensOnlyWithThePassphrase() throws {
        let vault = try Vault(passphrase: "correct horse battery staple")
        #expect(vault.initResult.stdoutText.contains("Key: passphrase (Argon2id)\n"))
        #expect(!FileManager.default.fileExists(atPath: vault.keyPath))
        try vault.create("PASS_KEY", "pass-vault-SECRET-42")
        #expect(try vault.value("PASS_KEY") == bytes("pass-vault-SECRET-42"))

        // Explicitly from a file, without the environment variable.
        let viaFile = try vault.run(["secrets:get", "PASS_KEY", "--passphrase-file", vault.directory.file("passphrase.txt")],
                                    env: ["VSECURE_PASSPHRASE": ""])
        expectSuccess(viaFile)
        #expect(viaFile.stdout == bytes("pass-vault-SECRET-42"))

        let wrong = try vault.run(["secrets:get", "PASS_KEY"], env: ["VSECURE_PASSPHRASE": "Correct horse battery staple"])
        #expect(wrong.status == 7)
        #expect(wrong.stdout.isEmpty)
        #expect(wrong.stderr == "vsecure: error: wrong passphrase for the vault '\(vault.vaultPath)'\n")

        let missing = try vault.run(["secrets:get", "PASS_KEY"], env: ["VSECURE_PASSPHRASE": ""])
        #expect(missing.status == 7)
        #expect(missing.stderr == """
            vsecure: error: a passphrase is needed and there is no terminal to ask for it
            vsecure: hint: pass it with --passphrase-file or VSECURE_PASSPHRASE

            """)
        for result in [viaFile, wrong, missing] { expectNoLeak("pass-vault-SECRET-42", result) }
    }

    @Test func passphraseVaultFromEnvironment() throws {
        let dir = try TemporaryDirectory()
        var env = minimalEnvironment(home: dir.path)
        env["VSECURE_VAULT"] = dir.file("vault.db")
        env["VSECURE_PASSPHRASE"] = "env passphrase"
        let created = try runProcess(Binaries.vsecure, ["vault:init", "--passphrase"], environment: env)
        #expect(created.status == 0, "\(created)")
        let put = try runProcess(Binaries.vsecure, ["secrets:create", "ENV_PASS", "-"], environment: env, stdin: .text("env-pass-SECRET"))
        #expect(put.status == 0, "\(put)")
        let got = try runProcess(Binaries.vsecure, ["secrets:get", "ENV_PASS"], environment: env)
        #expect(got.status == 0 && got.stdout == bytes("env-pass-SECRET"), "\(got)")
        env["VSECURE_PASSPHRASE"] = "env passphrasE"
        let wrong = try runProcess(Binaries.vsecure, ["secrets:get", "ENV_PASS"], environment: env)
        #expect(wrong.status == 7, "\(wrong)")
        #expect(wrong.stderr.contains("wrong passphrase"))
        #expect(!wrong.stderr.contains("env passphras"))
    }

    @Test func statusShowsPathFormatCountsAndKeySourceButNoKeyMaterial() throws {
        let vault = try Vault()
        try vault.create("ONE", "status-SECRET-1")
        try vault.update("ONE", "status-SECRET-2")
        try vault.create("TWO", "status-SECRET-3", ["--env", "production"])
        try vault.create("GONE", "status-SECRET-4")
        expectSuccess(try vault.run(["secrets:delete", "GONE", "--yes"]))

        let text = try vault.run(["vault:status"])
        expectSuccess(text)
        let lines = text.stdoutText.split(separator: "\n").map(String.init)
        #expect(lines.count == 8)
        #expect(lines[0] == "vault:        \(vault.vaultPath)")
        #expect(lines[1] == "format:       2")
        #expect(lines[2].range(of: #"^vault id:     [0-9a-f]{32}$"#, options: .regularExpression) != nil)
        #expect(lines[3] == "key:          key file \(vault.keyPath)")
        #expect(lines[4] == "environments: development, staging, production (default development)")
        #expect(lines[5] == "secrets:      2 (1 deleted)")
        #expect(lines[6] == "versions:     4")

        let json = try object(vault.json(["vault:status"]))
        #expect(json.string("vault") == vault.vaultPath)
        #expect(json.int("formatVersion") == 2)
        #expect(json.string("keyProtection") == "keyfile")
        #expect(json.string("keyFile") == vault.keyPath)
        #expect(json.strings("environments") == ["development", "staging", "production"])
        #expect(json.string("defaultEnvironment") == "development")
        #expect(json.int("secrets") == 2)
        #expect(json.int("deletedSecrets") == 1)
        #expect(json.int("versions") == 4)
        #expect(json["integrity"] == nil)

        let key = try vault.directory.read("vault.key")
        let hex = key.map { String(format: "%02x", $0) }.joined()
        let json2 = try vault.run(["vault:status", "--output", "json"])
        for output in [text.stdout, json2.stdout] {
            #expect(!contains(output, key))
            #expect(!String(decoding: output, as: UTF8.self).lowercased().contains(hex))
            #expect(!String(decoding: output, as: UTF8.self).contains(Data(key).base64EncodedString()))
        }
    }

    @Test func statusOfPassphraseVaultNamesTheSourceNotThePassphrase() throws {
        let vault = try Vault(passphrase: "status passphrase xyz")
        let text = try vault.run(["vault:status"])
        expectSuccess(text)
        #expect(text.stdoutText.contains("key:          passphrase (Argon2id)\n"))
        #expect(!text.stdoutText.contains("status passphrase xyz"))
        let json = try object(vault.json(["vault:status"]))
        #expect(json.string("keyProtection") == "passphrase")
        #expect(json["keyFile"] is NSNull)
    }

    @Test func statusCheckRunsTheIntegrityCheck() throws {
        let vault = try Vault()
        try vault.create("CHECKED", "check-SECRET")
        let text = try vault.run(["vault:status", "--check"])
        expectSuccess(text)
        #expect(text.stdoutText.hasSuffix("integrity:    ok\n"))
        #expect(try object(vault.json(["vault:status", "--check"])).string("integrity") == "ok")
    }

    @Test func rekeyInPlaceRetiresTheOldKeyAndKeepsValues() throws {
        let vault = try Vault()
        try vault.create("REKEYED", "rekey-SECRET-v1")
        try vault.update("REKEYED", "rekey-SECRET-v2")
        let oldKey = try vault.directory.read("vault.key")
        let oldCopy = try vault.directory.write("old.key", oldKey)
        let before = try vault.snapshot()
        let sealedBefore = Vault.hasSQLite3 ? try vault.sqlite("SELECT hex(sealed) FROM versions ORDER BY version").stdoutText : ""

        let result = try vault.run(["vault:rekey"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr == "vsecure: the vault \(vault.vaultPath) is now protected by the key file \(vault.keyPath)\n")
        #expect(try vault.directory.read("vault.key") != oldKey)
        #expect(try vault.directory.read("vault.key").count == 32)
        #expect(mode(vault.keyPath) == 0o600)
        #expect(!FileManager.default.fileExists(atPath: vault.keyPath + ".new"))

        let withOld = try vault.run(["secrets:get", "REKEYED", "--key-file", oldCopy])
        expectFailure(withOld, 7, "the key file '\(oldCopy)' does not unlock the vault '\(vault.vaultPath)'")
        #expect(try vault.value("REKEYED") == bytes("rekey-SECRET-v2"))
        #expect(try vault.value("REKEYED", ["--version", "1"]) == bytes("rekey-SECRET-v1"))
        #expect(try vault.snapshot() == before)
        if Vault.hasSQLite3 {
            // Only the data key is re-wrapped; the value boxes are the same bytes.
            #expect(try vault.sqlite("SELECT hex(sealed) FROM versions ORDER BY version").stdoutText == sealedBefore)
        }
    }

    @Test func rekeyRefusesToRunOverALeftoverNewKeyFile() throws {
        let vault = try Vault()
        try vault.create("LEFTOVER", "leftover-SECRET")
        let keyBefore = try vault.directory.read("vault.key")
        try vault.directory.write("vault.key.new", [UInt8](repeating: 7, count: 32))
        let result = try vault.run(["vault:rekey"])
        expectFailure(result, 4, "'\(vault.keyPath).new' exists, left by an interrupted rekey")
        #expect(try vault.directory.read("vault.key") == keyBefore)
        #expect(try vault.value("LEFTOVER") == bytes("leftover-SECRET"))
    }

    @Test func initReusesAnExistingKeyFile() throws {
        let vault = try Vault()
        try vault.create("FIRST_VAULT", "first-vault-SECRET")
        let second = vault.directory.file("second/vault.db")
        let result = try vault.run(["vault:init", "--vault", second, "--key-file", vault.keyPath], location: .none)
        #expect(result.status == 0, "\(result)")
        expectSuccess(try vault.run(["secrets:create", "SECOND_VAULT", "-"], stdin: .text("second-vault-SECRET"), env: ["VSECURE_VAULT": second]))
        let got = try vault.run(["secrets:get", "SECOND_VAULT"], env: ["VSECURE_VAULT": second])
        #expect(got.stdout == bytes("second-vault-SECRET"))
        #expect(try vault.value("FIRST_VAULT") == bytes("first-vault-SECRET"))
    }

    @Test func aFailedInitLeavesNothingBehind() throws {
        let dir = try TemporaryDirectory()
        let env = minimalEnvironment(home: dir.path)
        let empty = try dir.write("empty-passphrase", "\n")
        let vaultPath = dir.file("vault.db")
        let emptyPassphrase = try runProcess(Binaries.vsecure, ["vault:init", "--vault", vaultPath, "--passphrase-file", empty], environment: env)
        expectFailure(emptyPassphrase, 2, "the passphrase is empty")
        let missingPassphrase = try runProcess(Binaries.vsecure, ["vault:init", "--vault", vaultPath, "--passphrase-file", dir.file("nope")],
                                               environment: env)
        // A missing passphrase file is a key problem, like a missing key file (it used to exit 6, "no vault").
        expectFailure(missingPassphrase, 7, "cannot read the passphrase from '\(dir.file("nope"))': No such file or directory")
        let badEnvironment = try runProcess(Binaries.vsecure, ["vault:init", "--vault", vaultPath, "--environments", "prod,Bad"], environment: env)
        expectFailure(badEnvironment, 2, "invalid environment name 'Bad'")
        let badDefault = try runProcess(Binaries.vsecure, ["vault:init", "--vault", vaultPath, "--environments", "a,b", "--default-env", "c"],
                                        environment: env)
        expectFailure(badDefault, 2, "unknown environment 'c'")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["empty-passphrase"])
    }

    @Test func customEnvironmentsAreTheOnlyOnesAccepted() throws {
        let vault = try Vault(initArguments: ["--environments", "dev,prod", "--default-env", "prod"])
        #expect(vault.initResult.stdoutText.hasSuffix("Environments: dev, prod (default prod)\n"))
        try vault.create("CUSTOM_ENV", "custom-env-SECRET")
        #expect(try objects(vault.json(["secrets:list"]))[0].string("environment") == "prod")
        expectFailure(try vault.run(["secrets:create", "X", "-", "--env", "staging"], stdin: .text("x-SECRET")), 2,
                      "unknown environment 'staging'")
    }

    @Test func rekeyToAnotherKeyFile() throws {
        let vault = try Vault()
        try vault.create("MOVED_KEY", "moved-key-SECRET")
        let newKey = vault.directory.file("keys/new.key")
        let result = try vault.run(["vault:rekey", "--new-key-file", newKey])
        #expect(result.status == 0, "\(result)")
        #expect(mode(newKey) == 0o600)
        expectFailure(try vault.run(["secrets:get", "MOVED_KEY"]), 7, "does not unlock the vault")
        let got = try vault.run(["secrets:get", "MOVED_KEY"], env: ["VSECURE_KEY_FILE": newKey])
        expectSuccess(got)
        #expect(got.stdout == bytes("moved-key-SECRET"))
    }

    @Test func rekeyFromKeyFileToPassphraseAndBack() throws {
        let vault = try Vault()
        try vault.create("SWITCHED", "switch-SECRET-value")
        let passphraseFile = try vault.directory.write("new-pass.txt", "the new passphrase\n")

        let toPassphrase = try vault.run(["vault:rekey", "--new-passphrase-file", passphraseFile])
        #expect(toPassphrase.status == 0, "\(toPassphrase)")
        #expect(toPassphrase.stderr == "vsecure: the vault \(vault.vaultPath) is now protected by a passphrase\n")
        // The key file no longer opens it: the vault now asks for a passphrase.
        expectFailure(try vault.run(["secrets:get", "SWITCHED"]), 7, "a passphrase is needed")
        let viaPassphrase = try vault.run(["secrets:get", "SWITCHED", "--passphrase-file", passphraseFile])
        expectSuccess(viaPassphrase)
        #expect(viaPassphrase.stdout == bytes("switch-SECRET-value"))
        #expect(try object(vault.json(["vault:status", "--passphrase-file", passphraseFile])).string("keyProtection") == "passphrase")

        let newKey = vault.directory.file("back.key")
        let back = try vault.run(["vault:rekey", "--new-key-file", newKey], env: ["VSECURE_PASSPHRASE": "the new passphrase"])
        #expect(back.status == 0, "\(back)")
        let viaKey = try vault.run(["secrets:get", "SWITCHED", "--key-file", newKey])
        expectSuccess(viaKey)
        #expect(viaKey.stdout == bytes("switch-SECRET-value"))
        expectFailure(try vault.run(["secrets:get", "SWITCHED", "--key-file", vault.keyPath]), 7, "does not unlock the vault")
    }
}

func mode(_ path: String) -> Int {
    var info = stat()
    guard lstat(path, &info) == 0 else { return -1 }
    return Int(info.st_mode & 0o7777)
}

func isDirectory(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
}
