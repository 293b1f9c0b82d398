import Testing
import VSecureCrypto

@Suite("SecureBytes")
struct SecureBytesTests {
    @Test("new buffers are zeroed; copies hold exactly the bytes given")
    func basics() {
        let zero = SecureBytes(count: 16)
        #expect(zero.count == 16)
        #expect(zero.withUnsafeBytes { Array($0) } == [UInt8](repeating: 0, count: 16))

        let source: [UInt8] = [1, 2, 3, 0, 255]
        let copy = source.withUnsafeBytes { SecureBytes(copying: $0) }
        #expect(copy.count == 5)
        #expect(copy.withUnsafeBytes { Array($0) } == source)
        #expect(copy.contains(byte: 0))
        #expect(!copy.contains(byte: 9))

        let empty = SecureBytes(count: 0)
        #expect(empty.count == 0)
        #expect(empty.withUnsafeBytes { $0.count } == 0)
        #expect([UInt8]().withUnsafeBytes { SecureBytes(copying: $0) }.count == 0)
    }

    @Test("writes through withUnsafeMutableBytes are kept; slices copy a range")
    func mutationAndSlices() {
        let bytes = SecureBytes(count: 6)
        bytes.withUnsafeMutableBytes { raw in
            for index in raw.indices { raw[index] = UInt8(index * 10) }
        }
        #expect(bytes.withUnsafeBytes { Array($0) } == [0, 10, 20, 30, 40, 50])
        let slice = bytes.slice(2..<5)
        #expect(slice.withUnsafeBytes { Array($0) } == [20, 30, 40])
        #expect(bytes.slice(3..<3).count == 0)
        slice.withUnsafeMutableBytes { $0[0] = 99 }
        #expect(bytes.withUnsafeBytes { $0[2] } == 20)
    }

    @Test("random buffers differ; equality is by content")
    func randomAndEquality() {
        let a = SecureBytes.random(count: 32)
        let b = SecureBytes.random(count: 32)
        #expect(!a.isEqual(to: b))
        #expect(a.withUnsafeBytes { Array($0) } != [UInt8](repeating: 0, count: 32))
        let aCopy = a.withUnsafeBytes { SecureBytes(copying: $0) }
        #expect(a.isEqual(to: aCopy))
        #expect(!a.isEqual(to: a.slice(0..<31)))
        #expect(SecureBytes(count: 0).isEqual(to: SecureBytes(count: 0)))
    }

    @Test("descriptions never show the bytes")
    func redactedDescription() {
        let secret = Array("hunter2".utf8).withUnsafeBytes { SecureBytes(copying: $0) }
        #expect("\(secret)" == "SecureBytes(7 bytes, <redacted>)")
        #expect(String(reflecting: secret) == "SecureBytes(7 bytes, <redacted>)")
        var dumped = ""
        dump(secret, to: &dumped)
        #expect(!dumped.contains("hunter2"))
    }

    @Test("Sodium helpers: constant-time comparison and wiping")
    func sodiumHelpers() {
        let a: [UInt8] = [1, 2, 3]
        #expect(a.withUnsafeBytes { x in ([1, 2, 3] as [UInt8]).withUnsafeBytes { Sodium.constantTimeEqual(x, $0) } })
        #expect(!a.withUnsafeBytes { x in ([1, 2, 4] as [UInt8]).withUnsafeBytes { Sodium.constantTimeEqual(x, $0) } })
        #expect(!a.withUnsafeBytes { x in ([1, 2] as [UInt8]).withUnsafeBytes { Sodium.constantTimeEqual(x, $0) } })
        var wiped: [UInt8] = [9, 9, 9]
        Sodium.wipe(&wiped)
        #expect(wiped == [0, 0, 0])
        #expect(Sodium.randomBytes(24).count == 24)
        #expect((0..<100).allSatisfy { _ in Sodium.randomUniform(10) < 10 })
    }
}
