import Foundation
import Testing
import VSecureCore
import VSecureCrypto
@testable import VSecureVault

@Suite("LocalVault: rekey")
struct RekeyTests {
    static let fast = PassphraseParameters.interactive(salt: Array(repeating: 7, count: 16))

    @Test("key file → passphrase → key file: values survive; only the current key opens the vault")
    func roundTrip() throws {
        let fixture = try VaultFixture()
        try fixture.vault.put("API_KEY", utf8("value-1"))
        try fixture.vault.put("EMPTY", [])
        let boxBefore = try boxes(fixture.vault)

        try fixture.vault.rekey(to: .passphrase(passphrase("new pass phrase"), Self.fast), currentKeyFile: fixture.keyPath)
        #expect(fixture.vault.protection == .passphrase)
        #expect(try fixture.vault.status(checkIntegrity: false).protection == .passphrase)
        #expect(try fixture.vault.read("API_KEY") == utf8("value-1"))
        let viaPassphrase = try LocalVault.open(at: fixture.vaultPath, keys: passphraseSource("new pass phrase", keyFilePath: fixture.keyPath))
        #expect(viaPassphrase.protection == .passphrase)
        #expect(try viaPassphrase.status(checkIntegrity: false).protection == .passphrase)
        #expect(try viaPassphrase.read("API_KEY") == utf8("value-1"))
        #expect(try viaPassphrase.read("EMPTY") == [])
        #expect(try boxes(viaPassphrase) == boxBefore, "values must not be re-encrypted")
        let wrong = #expect(throws: VSecureError.self) {
            try LocalVault.open(at: fixture.vaultPath, keys: passphraseSource("old key file user", keyFilePath: fixture.keyPath))
        }
        #expect(wrong?.status == .key)
        #expect(wrong?.message.contains("wrong passphrase") == true)

        // The old key file is not consulted any more; the vault asks for the passphrase.
        let asksForPassphrase = #expect(throws: VSecureError.self) { try fixture.reopen() }
        #expect(asksForPassphrase?.message == "this test has no passphrase")

        let newKey = fixture.directory.child("keys/new.key")
        try viaPassphrase.rekey(to: .keyFile(path: newKey), currentKeyFile: nil)
        #expect(viaPassphrase.protection == .keyFile)
        #expect(try fileMode(newKey) == 0o600)
        let viaNewKey = try LocalVault.open(at: fixture.vaultPath, keys: keyFileSource(newKey))
        #expect(viaNewKey.protection == .keyFile)
        #expect(try viaNewKey.read("API_KEY") == utf8("value-1"))
        #expect(try boxes(viaNewKey) == boxBefore)
        let oldKey = #expect(throws: VSecureError.self) { try fixture.reopen() }
        #expect(oldKey?.status == .key)
        #expect(oldKey?.message.contains("does not unlock the vault") == true)
        // A key-file vault keeps no KDF parameters.
        #expect(try viaNewKey.status(checkIntegrity: true).integrityOK)
    }

    @Test("rekey to the same key path writes PATH.new, commits, then renames it over the old key")
    func samePath() throws {
        let fixture = try VaultFixture()
        try fixture.vault.put("API_KEY", utf8("v"))
        let oldKey = try Data(contentsOf: URL(fileURLWithPath: fixture.keyPath))
        try fixture.vault.rekey(to: .keyFile(path: fixture.keyPath), currentKeyFile: fixture.keyPath)
        let newKey = try Data(contentsOf: URL(fileURLWithPath: fixture.keyPath))
        #expect(newKey != oldKey)
        #expect(newKey.count == 32)
        #expect(try fileMode(fixture.keyPath) == 0o600)
        #expect(PrivateFiles.kind(of: fixture.keyPath + ".new") == .missing)
        #expect(try fixture.reopen().read("API_KEY") == utf8("v"))
    }

    @Test("an interrupted rekey's PATH.new blocks another rekey and changes nothing")
    func leftoverStagingFile() throws {
        let fixture = try VaultFixture()
        try fixture.vault.put("API_KEY", utf8("v"))
        try Data(Sodium.randomBytes(32)).write(to: URL(fileURLWithPath: fixture.keyPath + ".new"))
        let error = #expect(throws: VSecureError.self) {
            try fixture.vault.rekey(to: .keyFile(path: fixture.keyPath), currentKeyFile: fixture.keyPath)
        }
        #expect(error?.status == .conflict)
        #expect(error?.message.contains("left by an interrupted rekey") == true)
        #expect(try fixture.reopen().read("API_KEY") == utf8("v"))
    }

    @Test("rekey to an unusable key file fails and leaves the old key working")
    func unusableNewKey() throws {
        let fixture = try VaultFixture()
        try fixture.vault.put("API_KEY", utf8("v"))
        let loose = fixture.directory.child("loose.key")
        try Data(Sodium.randomBytes(32)).write(to: URL(fileURLWithPath: loose))
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: loose)
        let error = #expect(throws: VSecureError.self) { try fixture.vault.rekey(to: .keyFile(path: loose), currentKeyFile: fixture.keyPath) }
        #expect(error?.status == .key)
        let empty = #expect(throws: VSecureError.self) {
            try fixture.vault.rekey(to: .passphrase(passphrase(""), Self.fast), currentKeyFile: fixture.keyPath)
        }
        #expect(empty?.status == .usage)
        #expect(try fixture.reopen().read("API_KEY") == utf8("v"))
    }

    @Test("a vault created with a passphrase stores its Argon2id parameters and opens only with it")
    func passphraseVault() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.child("p.db")
        let vault = try LocalVault.create(at: path, protection: .passphrase(passphrase("pässphrase ✓"), Self.fast), now: time(t0))
        try vault.put("API_KEY", utf8("p"))
        #expect(vault.protection == .passphrase)
        #expect(try LocalVault.open(at: path, keys: passphraseSource("pässphrase ✓")).read("API_KEY") == utf8("p"))
        let wrong = #expect(throws: VSecureError.self) { try LocalVault.open(at: path, keys: passphraseSource("passphrase ✓")) }
        #expect(wrong?.status == .key)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted().filter { !$0.hasSuffix("-wal") && !$0.hasSuffix("-shm") } == ["p.db"])
    }

    /// The stored boxes, byte for byte.
    func boxes(_ vault: LocalVault) throws -> [String: [UInt8]] {
        let fetched = try vault.fetchSealed(environment: env("production"), names: [secretName("API_KEY"), secretName("EMPTY")], tagSelections: [])
        #expect(fetched.count == 2)
        return Dictionary(uniqueKeysWithValues: fetched.map { ($0.name.rawValue, $0.sealed) })
    }
}
