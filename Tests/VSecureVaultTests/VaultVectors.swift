import Foundation
import Testing
import VSecureCore
import VSecureCrypto
import VSecureVault

/// `Vectors/vectors.json`: each case is a vault file, the key that is offered for it, the secret
/// to read, and what must happen. Documented in docs/vault-format.md ("Test vectors").
struct VectorFile: Codable {
    var comment: String
    var formatVersion: Int
    var cases: [VectorCase]
}

struct VectorCase: Codable, Sendable, CustomTestStringConvertible {
    /// Unique, stable: names the case in test output.
    var id: String
    var description: String
    /// A file in Vectors/.
    var vault: String
    /// A key file in Vectors/, offered with mode `keyFileMode` (octal text, default "0600").
    var keyFile: String?
    var keyFileMode: String?
    /// The passphrase offered when the vault asks for one (UTF-8).
    var passphrase: String?
    var environment: String
    var name: String
    /// nil: the current version.
    var version: Int?
    var expect: VectorExpectation

    var testDescription: String { id }
}

struct VectorExpectation: Codable, Sendable {
    /// The exact value, lower-case hex ("" for an empty value).
    var value: String?
    /// The error's exit status, named as in `ExitStatus` ("integrity", "key", "notFound", …).
    var error: String?
    /// A substring of the error message.
    var message: String?

    static func value(_ bytes: [UInt8]) -> VectorExpectation { VectorExpectation(value: hexString(bytes)) }
    static func failure(_ status: ExitStatus, _ message: String) -> VectorExpectation {
        VectorExpectation(error: "\(status)", message: message)
    }
}

enum Vectors {
    static var directory: URL? { Bundle.module.url(forResource: "Vectors", withExtension: nil) }

    static func load() throws -> VectorFile {
        guard let directory else { throw VSecureError(.internalError, "the Vectors resource is missing from the test bundle") }
        return try JSONDecoder().decode(VectorFile.self, from: Data(contentsOf: directory.appendingPathComponent("vectors.json")))
    }

    /// The cases, or none when the file cannot be read (the count test then fails).
    static let cases: [VectorCase] = (try? load().cases) ?? []
}

@Suite("Vault format test vectors")
struct VaultVectorTests {
    @Test("vectors.json is present and covers every required kind of case")
    func coverage() throws {
        let file = try Vectors.load()
        // The checked-in files are format 1: opening each migrates a copy (see the generator).
        #expect((1...2).contains(file.formatVersion))
        let ids = Set(file.cases.map(\.id))
        #expect(ids.count == file.cases.count, "case ids must be unique")
        for required in ["good-current-after-rollback", "good-empty-value", "good-binary-value", "flipped-ciphertext-byte",
                         "moved-from-other-secret", "moved-from-other-version", "wrong-key-file", "truncated-below-overhead",
                         "truncated-by-one-byte", "newer-format-version", "passphrase-right", "passphrase-wrong",
                         "tampered-wrapped-data-key"] {
            #expect(ids.contains(required), "missing case \(required)")
        }
        #expect(file.cases.contains { $0.expect.value != nil } && file.cases.contains { $0.expect.error != nil })
    }

    /// The one generic loader: copies the case's vault and key into a fresh directory (git keeps
    /// only 0644/0755, so the key gets its mode here), opens the vault through the public API,
    /// reads the secret, and compares the outcome with the case.
    @Test("each vector gives its expected result", arguments: Vectors.cases)
    func vector(_ vector: VectorCase) throws {
        let source = try #require(Vectors.directory)
        let scratch = try ScratchDirectory()
        let vaultPath = scratch.child("vault.db")
        try FileManager.default.copyItem(at: source.appendingPathComponent(vector.vault), to: URL(fileURLWithPath: vaultPath))
        var keyPath = scratch.child("absent.key")
        if let keyFile = vector.keyFile {
            keyPath = scratch.child("vault.key")
            try FileManager.default.copyItem(at: source.appendingPathComponent(keyFile), to: URL(fileURLWithPath: keyPath))
            let mode = try #require(Int(vector.keyFileMode ?? "0600", radix: 8))
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: keyPath)
        }
        let keys = KeySource(keyFilePath: keyPath, passphrase: { () throws(VSecureError) -> SecureBytes in
            guard let text = vector.passphrase else { throw VSecureError(.usage, "the vector offers no passphrase") }
            return Array(text.utf8).withUnsafeBytes { SecureBytes(copying: $0) }
        })

        let outcome: Result<(VersionSummary, [UInt8]), VSecureError>
        do {
            let vault = try LocalVault.open(at: vaultPath, keys: keys)
            let (_, info, value) = try vault.get(environment: try EnvironmentName(vector.environment),
                                                 name: try SecretName(vector.name), version: vector.version)
            outcome = .success((info, plain(value)))
        } catch {
            outcome = .failure(error)
        }

        switch (outcome, vector.expect.value, vector.expect.error) {
        case let (.success((info, value)), expectedHex?, nil):
            #expect(hexString(value) == expectedHex)
            #expect(info.valueLength == value.count)
            if let version = vector.version { #expect(info.version == version) }
        case let (.failure(error), nil, expectedStatus?):
            #expect("\(error.status)" == expectedStatus, "\(error.message)")
            if let message = vector.expect.message {
                #expect(error.message.contains(message), "message: \(error.message)")
            }
        case (.success, _, _):
            Issue.record("\(vector.id): opened and read a value, expected \(vector.expect.error ?? "?")")
        case let (.failure(error), _, _):
            Issue.record("\(vector.id): failed with \(error.status): \(error.message)")
        }
    }
}
