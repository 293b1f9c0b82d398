import Foundation
import Testing
import VSecureCore
import VSecureCrypto
@testable import VSecureVault

/// The reliability cases of the issue, on live vaults: an altered box is an authentication
/// error naming the secret, never wrong plaintext.
@Suite("Tampered vaults")
struct VaultTamperTests {
    @Test("every byte of a stored box flipped: get fails with an integrity error naming the secret")
    func everyByteFlipped() throws {
        let fixture = try VaultFixture()
        let vault = fixture.vault
        try vault.put("API_KEY", utf8("sk_live_0123456789"))
        try vault.put("OTHER", utf8("other value"))
        let original = try sealed(vault.db, "production", "API_KEY", 1)
        #expect(original.count == 18 + 40)
        for index in original.indices {
            var box = original
            box[index] ^= 0x01 << UInt8(index % 8)
            try setSealed(vault.db, "production", "API_KEY", 1, box)
            let error = #expect(throws: VSecureError.self) { try vault.read("API_KEY") }
            #expect(error?.status == .integrity)
            #expect(error?.message == "version 1 of API_KEY in production failed authentication: the vault was altered or damaged")
            #expect(error?.hints == ["restore the vault from a backup; other secrets are unaffected"])
        }
        try setSealed(vault.db, "production", "API_KEY", 1, original)
        #expect(try vault.read("API_KEY") == utf8("sk_live_0123456789"))
        #expect(try vault.read("OTHER") == utf8("other value"))
    }

    @Test("boxes moved between rows fail, even when the plaintext is the same")
    func movedBoxes() throws {
        let fixture = try VaultFixture()
        let vault = fixture.vault
        try vault.put("A", utf8("same"))
        try vault.put("B", utf8("same"))
        try vault.put("A", utf8("same"), in: "staging")
        try vault.change("A", to: utf8("same"))
        // Copy every box onto every other row; only a box on its own row opens.
        let places: [(String, String, Int)] = [("production", "A", 1), ("production", "A", 2), ("production", "B", 1), ("staging", "A", 1)]
        let boxes = try places.map { try sealed(vault.db, $0.0, $0.1, $0.2) }
        for (target, place) in places.enumerated() {
            for (source, box) in boxes.enumerated() where source != target {
                try setSealed(vault.db, place.0, place.1, place.2, box)
                let error = #expect(throws: VSecureError.self) { try vault.read(place.1, in: place.0, version: place.2) }
                #expect(error?.status == .integrity)
                #expect(error?.message.contains("version \(place.2) of \(place.1) in \(place.0) failed authentication") == true)
            }
            try setSealed(vault.db, place.0, place.1, place.2, boxes[target])
            #expect(try vault.read(place.1, in: place.0, version: place.2) == utf8("same"))
        }
    }

    @Test("a box from another vault with the same key file fails: the vault id is bound in")
    func boxFromAnotherVault() throws {
        let first = try VaultFixture()
        try first.vault.put("API_KEY", utf8("first"))
        // A second vault wrapped by the same key file still has its own data key and vault id.
        let secondPath = first.directory.child("second.db")
        let second = try LocalVault.create(at: secondPath, protection: .keyFile(path: first.keyPath), now: time(t0))
        try second.put("API_KEY", utf8("second"))
        try setSealed(second.db, "production", "API_KEY", 1, try sealed(first.vault.db, "production", "API_KEY", 1))
        let error = #expect(throws: VSecureError.self) { try second.read("API_KEY") }
        #expect(error?.status == .integrity)
    }

    @Test("the launcher's batch read reports tampering and a wrong recorded length, and zeroes its buffer")
    func batchReadTampering() throws {
        let fixture = try VaultFixture()
        let vault = fixture.vault
        try vault.put("API_KEY", utf8("0123456789"))
        var box = try sealed(vault.db, "production", "API_KEY", 1)
        box[30] ^= 0x04
        try setSealed(vault.db, "production", "API_KEY", 1, box)
        let fetched = try vault.fetchSealed(environment: env("production"), names: [secretName("API_KEY")], tagSelections: [])
        let secret = try #require(fetched.first)
        var buffer = [UInt8](repeating: 0xAA, count: secret.valueLength)
        let error = #expect(throws: VSecureError.self) {
            try buffer.withUnsafeMutableBytes { try vault.open(secret, environment: env("production"), into: $0) }
        }
        #expect(error?.status == .integrity)
        #expect(error?.message.contains("version 1 of API_KEY in production failed authentication") == true)
        #expect(buffer == [UInt8](repeating: 0, count: 10))

        // A recorded length that does not match the box is refused before decrypting.
        try vault.db.execute("UPDATE versions SET value_length = 9")
        let short = try #require(try vault.fetchSealed(environment: env("production"), names: [secretName("API_KEY")], tagSelections: []).first)
        var small = [UInt8](repeating: 0, count: 9)
        let lengthError = #expect(throws: VSecureError.self) {
            try small.withUnsafeMutableBytes { try vault.open(short, environment: env("production"), into: $0) }
        }
        #expect(lengthError?.status == .integrity)
    }

    @Test("format versions other than 1 and 2 are refused without crashing", arguments: [0, -1, -7, 3, 99] as [Int64])
    func formatVersions(_ format: Int64) throws {
        let fixture = try VaultFixture()
        try fixture.vault.db.execute("PRAGMA user_version=\(format)")
        let error = #expect(throws: VSecureError.self) { try fixture.reopen() }
        #expect(error?.status == .integrity)
        #expect(error?.message.contains(format > 2 ? "has format version \(format), newer than this vsecure reads (2)" : "is not a vsecure vault") == true)
    }

    @Test("a missing or malformed header entry is an integrity error")
    func damagedHeader() throws {
        for (sql, message) in [("DELETE FROM vault_meta WHERE key = 'vault_id'", "its header lacks vault_id"),
                               ("UPDATE vault_meta SET value = x'00' WHERE key = 'vault_id'", "its header is malformed"),
                               ("UPDATE vault_meta SET value = 'weird' WHERE key = 'key_protection'", "its header is malformed"),
                               ("UPDATE vault_meta SET value = 'Prod' WHERE key = 'environments'", "bad environment list"),
                               ("DROP TABLE vault_meta", "is not a vsecure vault")] {
            let fixture = try VaultFixture()
            try fixture.vault.db.execute(sql)
            let error = #expect(throws: VSecureError.self) { try fixture.reopen() }
            #expect(error?.status == .integrity, "\(sql)")
            #expect(error?.message.contains(message) == true, "\(sql): \(String(describing: error?.message))")
        }
    }
}
