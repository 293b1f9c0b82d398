import Dispatch
import Testing
@testable import VSecureCrypto

/// Keys share one locked region in 64-byte slots (`KeySlots`). The exhaustion and zeroing tests
/// use a region of their own, so that other tests taking keys meanwhile change nothing here.
@Suite("KeySlots: keys in 64-byte slots of one locked region")
struct KeySlotsTests {
    @Test("slots lie inside the region, 64 bytes apart, never twice; a full region hands out none; a slot given back is zeroed and taken again")
    func slots() throws {
        Sodium.initialize()
        let slots = KeySlots(slotCount: 4)
        let region = try #require(slots.region)
        var held: [UnsafeMutableRawPointer] = []
        while let slot = slots.take() { held.append(slot) }
        #expect(held.count == 4)
        #expect(held == (0..<4).map { region + $0 * KeySlots.slotBytes })
        #expect(slots.take() == nil, "a fifth slot out of four")
        #expect(slots.takenCount == 4)

        held[2].initializeMemory(as: UInt8.self, repeating: 0xA5, count: KeySlots.slotBytes)
        #expect(slots.giveBack(held[2]))
        #expect(UnsafeRawBufferPointer(start: held[2], count: KeySlots.slotBytes).allSatisfy { $0 == 0 },
                "a slot given back still held its bytes")
        #expect(slots.takenCount == 3)
        #expect(slots.take() == held[2])
        #expect(!slots.giveBack(UnsafeMutableRawPointer(bitPattern: 0x1000)!), "a pointer outside the region is not a slot")
        for slot in held { #expect(slots.giveBack(slot)) }
        #expect(slots.takenCount == 0)
    }

    @Test("keys take slots of the process's region (or their own region when it is full); values never do")
    func onlyKeys() throws {
        let region = try #require(KeySlots.shared.region)
        let end = region + KeySlots.slotBytes * KeySlots.shared.slotCount
        func inRegion(_ bytes: SecureBytes) -> Bool {
            bytes.withUnsafeBytes { raw in
                let address = UnsafeMutableRawPointer(mutating: raw.baseAddress!)
                return address >= region && address < end
            }
        }
        for count in [1, 16, 32, 64, 65, 100] { #expect(!inRegion(SecureBytes(count: count)), "a value of \(count) bytes in the key region") }
        #expect(!inRegion(SecureBytes(keyCount: 65)), "a 65-byte key does not fit a slot")
        #expect(!inRegion(SecureBytes(keyCount: 0)), "an empty key takes no slot")
        let key = SecureBytes(keyCount: 32)
        #expect(key.count == 32)
        #expect(key.withUnsafeBytes { $0.allSatisfy { $0 == 0 } })
    }

    @Test("keys made and released on many threads at once keep their own bytes")
    func concurrent() {
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for round in 0..<2_000 {
                let pattern = UInt8(truncatingIfNeeded: thread * 31 + round)
                let keys = (0..<3).map { _ in SecureBytes(keyCount: 32) }
                for key in keys { key.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: pattern) } }
                for key in keys where !key.withUnsafeBytes({ $0.allSatisfy { $0 == pattern } }) {
                    Issue.record("thread \(thread), round \(round): a key's bytes were overwritten")
                }
            }
        }
    }
}
