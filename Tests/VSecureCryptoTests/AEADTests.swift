import Testing
import VSecureCore
import VSecureCrypto

@Suite("XChaCha20-Poly1305 boxes")
struct AEADTests {
    static func secure(_ bytes: [UInt8]) -> SecureBytes {
        bytes.withUnsafeBytes { SecureBytes(copying: $0) }
    }

    static func seal(_ plaintext: [UInt8], ad: [UInt8], key: SecureBytes) -> [UInt8] {
        plaintext.withUnsafeBytes { AEAD.seal($0, associatedData: ad, key: key) }
    }

    static func open(_ box: [UInt8], ad: [UInt8], key: SecureBytes) -> Result<[UInt8], AEAD.Failure> {
        do {
            let opened = try AEAD.open(box, associatedData: ad, key: key)
            return .success(opened.withUnsafeBytes { Array($0) })
        } catch {
            return .failure(error)
        }
    }

    @Test("sizes follow libsodium's XChaCha20-Poly1305 IETF construction")
    func sizes() {
        #expect(AEAD.keyBytes == 32)
        #expect(AEAD.nonceBytes == 24)
        #expect(AEAD.tagBytes == 16)
        #expect(AEAD.overhead == 40)
        #expect(AEAD.plaintextLength(ofBoxLength: 39) == nil)
        #expect(AEAD.plaintextLength(ofBoxLength: 40) == 0)
        #expect(AEAD.plaintextLength(ofBoxLength: 45) == 5)
    }

    @Test("draft-irtf-cfrg-xchacha-03 A.3.1 known answer opens")
    func knownAnswer() throws {
        let key = Self.secure(bytesFromHex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")!)
        let nonce = bytesFromHex("404142434445464748494a4b4c4d4e4f5051525354555657")!
        let ad = bytesFromHex("50515253c0c1c2c3c4c5c6c7")!
        let ciphertext = bytesFromHex(
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
            + "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
            + "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
            + "21f9664c97637da9768812f615c68b13b52e" + "c0875924c1c7987947deafd8780acf49")!
        let plaintext = "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."
        // The vault stores nonce || ciphertext || tag.
        #expect(Self.open(nonce + ciphertext, ad: ad, key: key) == .success(Array(plaintext.utf8)))
        #expect(Self.open(nonce + ciphertext, ad: [], key: key) == .failure(.authenticationFailed))
    }

    @Test("seal then open, for empty, short and large plaintexts", arguments: [0, 1, 15, 16, 17, 64, 1000, 122_880])
    func roundTrip(_ length: Int) {
        let key = SecureBytes.random(count: 32)
        let plaintext = Sodium.randomBytes(length)
        let box = Self.seal(plaintext, ad: Array("ad".utf8), key: key)
        #expect(box.count == length + AEAD.overhead)
        #expect(Self.open(box, ad: Array("ad".utf8), key: key) == .success(plaintext))
    }

    @Test("each seal uses a fresh random nonce")
    func freshNonces() {
        let key = SecureBytes.random(count: 32)
        let boxes = (0..<8).map { _ in Self.seal(Array("same".utf8), ad: [], key: key) }
        #expect(Set(boxes.map { Array($0.prefix(AEAD.nonceBytes)) }).count == 8)
        #expect(Set(boxes).count == 8)
    }

    @Test("a wrong key fails")
    func wrongKey() {
        let box = Self.seal(Array("value".utf8), ad: [1, 2, 3], key: SecureBytes.random(count: 32))
        #expect(Self.open(box, ad: [1, 2, 3], key: SecureBytes.random(count: 32)) == .failure(.authenticationFailed))
    }

    @Test("different associated data fails")
    func wrongAssociatedData() {
        let key = SecureBytes.random(count: 32)
        let ad: [UInt8] = Array("vsecure/value/v1".utf8) + [0, 1, 2]
        let box = Self.seal(Array("value".utf8), ad: ad, key: key)
        #expect(Self.open(box, ad: ad, key: key) == .success(Array("value".utf8)))
        #expect(Self.open(box, ad: [], key: key) == .failure(.authenticationFailed))
        #expect(Self.open(box, ad: ad.dropLast() + [3], key: key) == .failure(.authenticationFailed))
        #expect(Self.open(box, ad: ad + [0], key: key) == .failure(.authenticationFailed))
        #expect(Self.open(box, ad: Array(ad.dropLast()), key: key) == .failure(.authenticationFailed))
    }

    @Test("flipping any bit of any byte of a box (nonce, ciphertext or tag) fails")
    func everyByteFlipped() {
        let key = SecureBytes.random(count: 32)
        let box = Self.seal(Array("sk_live_0123456789".utf8), ad: [7], key: key)
        var failures = 0
        for index in box.indices {
            for bit in [0x01, 0x80] as [UInt8] {
                var tampered = box
                tampered[index] ^= bit
                if Self.open(tampered, ad: [7], key: key) == .failure(.authenticationFailed) { failures += 1 }
            }
        }
        #expect(failures == box.count * 2)
    }

    @Test("every truncation and extension fails")
    func truncation() {
        let key = SecureBytes.random(count: 32)
        let box = Self.seal(Array("value".utf8), ad: [], key: key)
        for length in 0..<box.count {
            let expected: AEAD.Failure = length < AEAD.overhead ? .truncated : .authenticationFailed
            #expect(Self.open(Array(box.prefix(length)), ad: [], key: key) == .failure(expected), "length \(length)")
            #expect(Self.open(Array(box.suffix(length)), ad: [], key: key) == .failure(expected), "suffix \(length)")
        }
        #expect(Self.open(box + [0], ad: [], key: key) == .failure(.authenticationFailed))
    }

    @Test("a failed open into a caller's buffer leaves it zeroed")
    func failedOpenZeroesDestination() {
        let key = SecureBytes.random(count: 32)
        var box = Self.seal(Array("0123456789".utf8), ad: [], key: key)
        box[30] ^= 1
        var destination = [UInt8](repeating: 0xAA, count: 10)
        let result = box.withUnsafeBytes { raw in
            destination.withUnsafeMutableBytes { dest in
                Result { () throws(AEAD.Failure) in try AEAD.open(raw, associatedData: [], key: key, into: dest) }
            }
        }
        guard case .failure(let failure) = result else {
            Issue.record("a tampered box opened")
            return
        }
        #expect(failure == .authenticationFailed)
        #expect(destination == [UInt8](repeating: 0, count: 10))
    }
}
