import CSodium
import VSecureCore

/// XChaCha20-Poly1305 (IETF), the only cipher of the vault. A sealed box is
/// `nonce (24 bytes) || ciphertext || tag (16 bytes)`; the nonce is random per seal.
public enum AEAD {
    public static let keyBytes = Int(crypto_aead_xchacha20poly1305_ietf_KEYBYTES)
    public static let nonceBytes = Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
    public static let tagBytes = Int(crypto_aead_xchacha20poly1305_ietf_ABYTES)
    public static let overhead = nonceBytes + tagBytes

    public enum Failure: Error, Equatable {
        /// The box is shorter than a nonce and a tag.
        case truncated
        /// Wrong key, a changed byte, or associated data that does not match.
        case authenticationFailed
    }

    public static func seal(_ plaintext: UnsafeRawBufferPointer, associatedData: [UInt8], key: SecureBytes) -> [UInt8] {
        precondition(key.count == keyBytes)
        Sodium.initialize()
        var box = [UInt8](repeating: 0, count: nonceBytes + plaintext.count + tagBytes)
        box.withUnsafeMutableBufferPointer { out in
            let nonce = UnsafeMutableRawBufferPointer(start: out.baseAddress!, count: nonceBytes)
            Sodium.fillRandom(nonce)
            key.withUnsafeBytes { k in
                associatedData.withUnsafeBufferPointer { ad in
                    var written: UInt64 = 0
                    let rc = crypto_aead_xchacha20poly1305_ietf_encrypt(
                        out.baseAddress! + nonceBytes, &written,
                        plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(plaintext.count),
                        ad.baseAddress, UInt64(ad.count), nil,
                        out.baseAddress!, k.baseAddress!.assumingMemoryBound(to: UInt8.self))
                    precondition(rc == 0 && Int(written) == plaintext.count + tagBytes)
                }
            }
        }
        return box
    }

    /// The plaintext length of a box, or nil when the box is too short to be one.
    public static func plaintextLength(ofBoxLength length: Int) -> Int? {
        length >= overhead ? length - overhead : nil
    }

    /// Opens `box` straight into `destination`, which must hold exactly the plaintext length.
    /// On failure the destination is zeroed.
    public static func open(_ box: UnsafeRawBufferPointer, associatedData: [UInt8], key: SecureBytes,
                            into destination: UnsafeMutableRawBufferPointer) throws(Failure) {
        precondition(key.count == keyBytes)
        Sodium.initialize()
        guard let length = plaintextLength(ofBoxLength: box.count) else { throw .truncated }
        precondition(destination.count == length)
        let base = box.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let rc = key.withUnsafeBytes { k in
            associatedData.withUnsafeBufferPointer { ad in
                var written: UInt64 = 0
                return crypto_aead_xchacha20poly1305_ietf_decrypt(
                    destination.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafeMutablePointer(mutating: base),
                    &written, nil,
                    base + nonceBytes, UInt64(box.count - nonceBytes),
                    ad.baseAddress, UInt64(ad.count),
                    base, k.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        guard rc == 0 else {
            if let d = destination.baseAddress { Sodium.wipe(d, count: destination.count) }
            throw .authenticationFailed
        }
    }

    /// Opens `box` into a new `SecureBytes`; `isKey` when the plaintext is a key (a wrapped data
    /// key), which may then share the key region (`SecureBytes(keyCount:)`).
    public static func open(_ box: [UInt8], associatedData: [UInt8], key: SecureBytes, isKey: Bool = false) throws(Failure) -> SecureBytes {
        guard let length = plaintextLength(ofBoxLength: box.count) else { throw .truncated }
        let out = isKey ? SecureBytes(keyCount: length) : SecureBytes(count: length)
        let result = box.withUnsafeBytes { raw in
            out.withUnsafeMutableBytes { dest in
                Result { () throws(Failure) in try open(raw, associatedData: associatedData, key: key, into: dest) }
            }
        }
        try result.get()
        return out
    }
}
