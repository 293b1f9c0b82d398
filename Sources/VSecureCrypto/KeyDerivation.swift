import CSodium

/// Argon2id parameters, stored in the vault so a later build can open an older vault.
public struct PassphraseParameters: Equatable, Sendable {
    public var opsLimit: UInt64
    public var memLimit: UInt64
    public var salt: [UInt8]

    public static let saltBytes = Int(crypto_pwhash_SALTBYTES)

    /// libsodium's MODERATE limits (measured here: about 0.4 s), the default for passphrases.
    public static func moderate(salt: [UInt8]) -> PassphraseParameters {
        PassphraseParameters(opsLimit: UInt64(crypto_pwhash_OPSLIMIT_MODERATE), memLimit: UInt64(crypto_pwhash_MEMLIMIT_MODERATE), salt: salt)
    }

    /// INTERACTIVE limits (about 60 ms here).
    public static func interactive(salt: [UInt8]) -> PassphraseParameters {
        PassphraseParameters(opsLimit: UInt64(crypto_pwhash_OPSLIMIT_INTERACTIVE), memLimit: UInt64(crypto_pwhash_MEMLIMIT_INTERACTIVE), salt: salt)
    }

    public init(opsLimit: UInt64, memLimit: UInt64, salt: [UInt8]) {
        self.opsLimit = opsLimit
        self.memLimit = memLimit
        self.salt = salt
    }

    /// Bounds that a vault file may ask for; anything outside is treated as a damaged vault,
    /// so a tampered header cannot make us allocate terabytes.
    public var isWithinSaneBounds: Bool {
        salt.count == Self.saltBytes
            && opsLimit >= UInt64(crypto_pwhash_OPSLIMIT_MIN) && opsLimit <= 64
            && memLimit >= 8 * 1024 && memLimit <= 4 * 1024 * 1024 * 1024
    }
}

public enum KeyDerivation {
    public enum Failure: Error { case outOfMemory }

    /// Argon2id13 over the passphrase, giving a 32-byte key-encryption key.
    public static func argon2id(passphrase: SecureBytes, parameters: PassphraseParameters) throws(Failure) -> SecureBytes {
        Sodium.initialize()
        let key = SecureBytes(keyCount: AEAD.keyBytes)
        let rc = key.withUnsafeMutableBytes { out in
            passphrase.withUnsafeBytes { pw in
                parameters.salt.withUnsafeBufferPointer { salt in
                    crypto_pwhash(out.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(out.count),
                                  pw.baseAddress!.assumingMemoryBound(to: CChar.self), UInt64(pw.count),
                                  salt.baseAddress!, parameters.opsLimit, Int(parameters.memLimit),
                                  crypto_pwhash_ALG_ARGON2ID13)
                }
            }
        }
        guard rc == 0 else { throw .outOfMemory }
        return key
    }

    /// A 32-byte subkey of `key` for one purpose (libsodium's BLAKE2b-based KDF).
    public static func subkey(of key: SecureBytes, id: UInt64, context: StaticString) -> SecureBytes {
        precondition(context.utf8CodeUnitCount == Int(crypto_kdf_CONTEXTBYTES))
        precondition(key.count == Int(crypto_kdf_KEYBYTES))
        let out = SecureBytes(count: 32)
        out.withUnsafeMutableBytes { o in
            key.withUnsafeBytes { k in
                context.withUTF8Buffer { ctx in
                    _ = crypto_kdf_derive_from_key(o.baseAddress!.assumingMemoryBound(to: UInt8.self), 32, id,
                                                   UnsafeRawPointer(ctx.baseAddress!).assumingMemoryBound(to: CChar.self),
                                                   k.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        return out
    }

    /// A 32-byte key for one purpose from a secret of any length (an API key, say): unkeyed
    /// BLAKE2b over the purpose, a zero byte, then the secret. The input is hashed from where it
    /// lies and the output stays in locked memory.
    public static func key(from secret: SecureBytes, purpose: StaticString) -> SecureBytes {
        Sodium.initialize()
        let prefix = purpose.utf8CodeUnitCount + 1
        let input = SecureBytes(count: prefix + secret.count)
        input.withUnsafeMutableBytes { i in
            purpose.withUTF8Buffer { i.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            i[prefix - 1] = 0
            secret.withUnsafeBytes { s in
                if s.count > 0 { (i.baseAddress! + prefix).copyMemory(from: s.baseAddress!, byteCount: s.count) }
            }
        }
        let out = SecureBytes(count: 32)
        out.withUnsafeMutableBytes { o in
            input.withUnsafeBytes { i in
                _ = crypto_generichash(o.baseAddress!.assumingMemoryBound(to: UInt8.self), 32,
                                       i.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(i.count), nil, 0)
            }
        }
        return out
    }

    /// Keyed BLAKE2b of `message`, `length` bytes out.
    public static func keyedHash(_ message: UnsafeRawBufferPointer, key: SecureBytes, length: Int = 32) -> [UInt8] {
        Sodium.initialize()
        var out = [UInt8](repeating: 0, count: length)
        out.withUnsafeMutableBufferPointer { o in
            key.withUnsafeBytes { k in
                _ = crypto_generichash(o.baseAddress!, length,
                                       message.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(message.count),
                                       k.baseAddress!.assumingMemoryBound(to: UInt8.self), k.count)
            }
        }
        return out
    }
}
