import Foundation
import Testing
import TestSupport
import VSecureCore
import VSecureCrypto
import VSecureVault

/// Swift Testing also exports a `Tag`; in this module the name means the vault's tag.
typealias Tag = VSecureCore.Tag
typealias ExitStatus = VSecureCore.ExitStatus

/// A fresh directory, removed when the last reference goes.
final class ScratchDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("vsecure-vault-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func child(_ name: String) -> String { path + "/" + name }
}

func env(_ text: String) -> EnvironmentName { literal(text, EnvironmentName.init) }
func secretName(_ text: String) -> SecretName { literal(text, SecretName.init) }
func tags(_ names: String...) -> [Tag] { names.map { literal($0, Tag.init) } }
func utf8(_ text: String) -> [UInt8] { Array(text.utf8) }
func plain(_ bytes: SecureBytes) -> [UInt8] { bytes.withUnsafeBytes { Array($0) } }
func time(_ seconds: Int64) -> Timestamp { Timestamp(secondsSinceEpoch: seconds) }

/// 2026-01-01T00:00:00Z: every test runs on a fixed clock.
let t0: Int64 = 1_767_225_600

func fileMode(_ path: String) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

func keyFileSource(_ path: String) -> KeySource {
    KeySource(keyFilePath: path, passphrase: { () throws(VSecureError) -> SecureBytes in
        throw VSecureError(.usage, "this test has no passphrase")
    })
}

func passphraseSource(_ text: String, keyFilePath: String = "/nonexistent/vsecure-test.key") -> KeySource {
    KeySource(keyFilePath: keyFilePath, passphrase: { () throws(VSecureError) -> SecureBytes in
        Array(text.utf8).withUnsafeBytes { SecureBytes(copying: $0) }
    })
}

func passphrase(_ text: String) -> SecureBytes { Array(text.utf8).withUnsafeBytes { SecureBytes(copying: $0) } }

/// The format-1 test vector (good.db and its key) copied into a scratch directory.
func formatOneVaultCopy() throws -> (directory: ScratchDirectory, vaultPath: String, keyPath: String) {
    let source = try #require(Vectors.directory)
    let scratch = try ScratchDirectory()
    let vaultPath = scratch.child("vault.db"), keyPath = scratch.child("vault.key")
    try FileManager.default.copyItem(at: source.appendingPathComponent("good.db"), to: URL(fileURLWithPath: vaultPath))
    try FileManager.default.copyItem(at: source.appendingPathComponent("good.key"), to: URL(fileURLWithPath: keyPath))
    try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keyPath)
    return (scratch, vaultPath, keyPath)
}

/// A vault protected by a new key file in a scratch directory.
final class VaultFixture {
    let directory: ScratchDirectory
    let vaultPath: String
    let keyPath: String
    let vault: LocalVault

    init(environments: [EnvironmentName] = EnvironmentName.defaults) throws {
        directory = try ScratchDirectory()
        vaultPath = directory.child("home/.vsecure/vault.db")
        keyPath = directory.child("home/.vsecure/vault.key")
        vault = try LocalVault.create(at: vaultPath, protection: .keyFile(path: keyPath), environments: environments, now: time(t0))
    }

    func reopen() throws -> LocalVault { try LocalVault.open(at: vaultPath, keys: keyFileSource(keyPath)) }
}

extension LocalVault {
    /// Creates a secret from bytes, in production unless told otherwise.
    @discardableResult
    func put(_ name: String, _ value: [UInt8], in environment: String = "production", tags tagList: [Tag] = [],
             metadata: [MetadataEntry] = [], expiresAt: Timestamp? = nil, description: String? = nil,
             at seconds: Int64 = t0, actor: String = "tester") throws -> SecretSummary {
        try value.withUnsafeBytes { raw in
            try create(environment: env(environment), name: secretName(name), value: raw,
                       attributes: SecretAttributes(tags: tagList, metadata: metadata, expiresAt: expiresAt, description: description),
                       actor: actor, now: time(seconds))
        }
    }

    /// Adds a value version.
    @discardableResult
    func change(_ name: String, to value: [UInt8], in environment: String = "production", ifVersion: Int? = nil,
                at seconds: Int64 = t0, actor: String = "tester") throws -> UpdateResult {
        try value.withUnsafeBytes { raw in
            try update(environment: env(environment), name: secretName(name), value: raw, change: AttributeChange(),
                       ifVersion: ifVersion, actor: actor, now: time(seconds))
        }
    }

    /// The value of a version (default: the current one).
    func read(_ name: String, in environment: String = "production", version: Int? = nil) throws -> [UInt8] {
        plain(try get(environment: env(environment), name: secretName(name), version: version).2)
    }
}
