import Testing
import VSecureCore
import VSecureCrypto

@Suite("Key derivation and keyed hashes")
struct KeyDerivationTests {
    static func secure(_ bytes: [UInt8]) -> SecureBytes { bytes.withUnsafeBytes { SecureBytes(copying: $0) } }
    static func secure(_ text: String) -> SecureBytes { secure(Array(text.utf8)) }
    static func bytes(_ key: SecureBytes) -> [UInt8] { key.withUnsafeBytes { Array($0) } }
    static let salt: [UInt8] = Array(0..<16)

    @Test("INTERACTIVE and MODERATE limits are libsodium's")
    func presets() {
        let interactive = PassphraseParameters.interactive(salt: Self.salt)
        #expect(interactive.opsLimit == 2 && interactive.memLimit == 64 * 1024 * 1024)
        let moderate = PassphraseParameters.moderate(salt: Self.salt)
        #expect(moderate.opsLimit == 3 && moderate.memLimit == 256 * 1024 * 1024)
        #expect(PassphraseParameters.saltBytes == 16)
        #expect(interactive.isWithinSaneBounds && moderate.isWithinSaneBounds)
    }

    @Test("Argon2id13 matches an independent implementation (OpenSSL via Python cryptography)")
    func argon2idKnownAnswers() throws {
        let passphrase = Self.secure("correct horse battery staple")
        let interactive = try KeyDerivation.argon2id(passphrase: passphrase, parameters: .interactive(salt: Self.salt))
        #expect(hexString(Self.bytes(interactive)) == "c05ce4c4dd7e0e45ee6011cc59d068ade47df1b01fc0cf9cd4678bdf68a5b7b0")
        let minimal = try KeyDerivation.argon2id(passphrase: passphrase,
                                                 parameters: PassphraseParameters(opsLimit: 1, memLimit: 8192, salt: Self.salt))
        #expect(hexString(Self.bytes(minimal)) == "d17ea6341ca93da6079ea2f64dc4aa31dd1aaf9caa67fb42ac4afd0714706f26")
    }

    @Test("Argon2id is deterministic for the same passphrase, salt and limits, and changes with each")
    func argon2idDeterminism() throws {
        let parameters = PassphraseParameters.interactive(salt: Self.salt)
        let a = try KeyDerivation.argon2id(passphrase: Self.secure("pass phrase"), parameters: parameters)
        let b = try KeyDerivation.argon2id(passphrase: Self.secure("pass phrase"), parameters: parameters)
        #expect(a.count == 32)
        #expect(a.isEqual(to: b))
        let otherPassphrase = try KeyDerivation.argon2id(passphrase: Self.secure("pass phrasE"), parameters: parameters)
        #expect(!a.isEqual(to: otherPassphrase))
        var otherSalt = Self.salt
        otherSalt[15] ^= 1
        #expect(!a.isEqual(to: try KeyDerivation.argon2id(passphrase: Self.secure("pass phrase"), parameters: .interactive(salt: otherSalt))))
        let otherOps = PassphraseParameters(opsLimit: 3, memLimit: parameters.memLimit, salt: Self.salt)
        #expect(!a.isEqual(to: try KeyDerivation.argon2id(passphrase: Self.secure("pass phrase"), parameters: otherOps)))
    }

    @Test("sanity bounds refuse parameters a tampered vault could ask for")
    func saneBounds() {
        #expect(PassphraseParameters(opsLimit: 1, memLimit: 8192, salt: Self.salt).isWithinSaneBounds)
        #expect(PassphraseParameters(opsLimit: 64, memLimit: 4 * 1024 * 1024 * 1024, salt: Self.salt).isWithinSaneBounds)
        #expect(!PassphraseParameters(opsLimit: 0, memLimit: 8192, salt: Self.salt).isWithinSaneBounds)
        #expect(!PassphraseParameters(opsLimit: 65, memLimit: 8192, salt: Self.salt).isWithinSaneBounds)
        #expect(!PassphraseParameters(opsLimit: 2, memLimit: 8191, salt: Self.salt).isWithinSaneBounds)
        #expect(!PassphraseParameters(opsLimit: 2, memLimit: 4 * 1024 * 1024 * 1024 + 1, salt: Self.salt).isWithinSaneBounds)
        #expect(!PassphraseParameters(opsLimit: 2, memLimit: 1 << 40, salt: Self.salt).isWithinSaneBounds)
        #expect(!PassphraseParameters(opsLimit: 2, memLimit: 8192, salt: Array(Self.salt.dropLast())).isWithinSaneBounds)
        #expect(!PassphraseParameters(opsLimit: 2, memLimit: 8192, salt: []).isWithinSaneBounds)
    }

    // Expected values computed independently with Python's hashlib.blake2b:
    // subkey = blake2b(b"", key=key, salt=id.to_bytes(8, "little") + 8 zero bytes,
    //                  person=b"vsfprint" + 8 zero bytes, digest_size=32)
    static let masterKey: [UInt8] = Array(0..<32)

    @Test("subkey: libsodium crypto_kdf (BLAKE2b), deterministic, separated by id")
    func subkeys() {
        let key = Self.secure(Self.masterKey)
        let one = KeyDerivation.subkey(of: key, id: 1, context: "vsfprint")
        #expect(hexString(Self.bytes(one)) == "6b28886ac1a61b51efece732ed6f12c44f8217e6aa2971abeec1d04e2c65c9b0")
        #expect(one.isEqual(to: KeyDerivation.subkey(of: key, id: 1, context: "vsfprint")))
        let two = KeyDerivation.subkey(of: key, id: 2, context: "vsfprint")
        #expect(hexString(Self.bytes(two)) == "cc6ae33fc0976558b6f8f22a7190d852ff2728558c869d0b02ca7f3081348b39")
        #expect(!one.isEqual(to: KeyDerivation.subkey(of: key, id: 1, context: "otherctx")))
        #expect(!one.isEqual(to: KeyDerivation.subkey(of: SecureBytes.random(count: 32), id: 1, context: "vsfprint")))
    }

    @Test("keyed BLAKE2b with an 8-byte digest is the value fingerprint")
    func keyedHash() {
        let subkey = KeyDerivation.subkey(of: Self.secure(Self.masterKey), id: 1, context: "vsfprint")
        func hash(_ text: String, length: Int = 8) -> String {
            hexString(Array(text.utf8).withUnsafeBytes { KeyDerivation.keyedHash($0, key: subkey, length: length) })
        }
        #expect(hash("hello") == "dc6c329dc156fdf1")
        #expect(hash("") == "72f9fec2494dbf75")
        #expect(hash("hello") == hash("hello"))
        #expect(hash("hello") != hash("hellp"))
        #expect(hash("hello", length: 32).count == 64)
        let otherKey = SecureBytes.random(count: 32)
        #expect(hexString(Array("hello".utf8).withUnsafeBytes { KeyDerivation.keyedHash($0, key: otherKey, length: 8) }) != hash("hello"))
    }
}
