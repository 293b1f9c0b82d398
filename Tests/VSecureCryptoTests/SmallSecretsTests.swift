#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Testing
@testable import VSecureCrypto

/// Small secrets share one locked region (`SmallSecrets`). Other tests allocate concurrently,
/// so these never assume how many slots are free, only what a slot they hold looks like.
@Suite("SmallSecrets: 64-byte slots of one locked region", .serialized)
struct SmallSecretsTests {
    @Test("slots lie inside the region, 64 bytes apart, never twice; a slot given back is zeroed; with none free, a buffer gets a region of its own")
    func slots() throws {
        Sodium.initialize()
        let region = try #require(SmallSecrets.region)
        var held: [UnsafeMutableRawPointer] = []
        while let slot = SmallSecrets.take() { held.append(slot) }
        defer { for slot in held { _ = SmallSecrets.give(back: slot) } }
        #expect(held.count <= SmallSecrets.slotCount)
        #expect(Set(held).count == held.count, "a slot handed out twice")
        for slot in held {
            let offset = slot - region
            #expect(offset >= 0 && offset < SmallSecrets.slotBytes * SmallSecrets.slotCount && offset % SmallSecrets.slotBytes == 0)
        }
        // Every slot is taken now (by this test or others): a small buffer still works, elsewhere.
        let own = SecureBytes(count: 32)
        own.withUnsafeBytes { raw in
            let address = UnsafeMutableRawPointer(mutating: raw.baseAddress!)
            #expect(address < region || address >= region + SmallSecrets.slotBytes * SmallSecrets.slotCount)
        }
        #expect(!SmallSecrets.give(back: UnsafeMutableRawPointer(mutating: own.withUnsafeBytes { $0.baseAddress! })),
                "a pointer outside the region is not a slot")

        if let slot = held.popLast() {
            slot.initializeMemory(as: UInt8.self, repeating: 0xA5, count: SmallSecrets.slotBytes)
            #expect(SmallSecrets.give(back: slot))
            // Read it only once it is ours again: another test may take it meanwhile, but gives
            // it back zeroed too, and take() itself writes nothing.
            var retaken = false
            for _ in 0..<1_000 where !retaken {
                var others: [UnsafeMutableRawPointer] = []
                while let next = SmallSecrets.take() {
                    if next == slot { retaken = true; break }
                    others.append(next)
                }
                for other in others { _ = SmallSecrets.give(back: other) }
                if !retaken { usleep(1_000) }
            }
            #expect(retaken, "the slot never came free again")
            if retaken {
                held.append(slot)
                #expect(UnsafeRawBufferPointer(start: slot, count: SmallSecrets.slotBytes).allSatisfy { $0 == 0 },
                        "a slot given back still held its bytes")
            }
        }
    }

    @Test("buffers made and released on many threads at once keep their own bytes")
    func concurrent() {
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for round in 0..<2_000 {
                let pattern = UInt8(truncatingIfNeeded: thread * 31 + round)
                let buffers = (0..<3).map { _ in SecureBytes(count: 32) }
                for buffer in buffers { buffer.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: pattern) } }
                for buffer in buffers {
                    let intact = buffer.withUnsafeBytes { $0.allSatisfy { $0 == pattern } }
                    if !intact { Issue.record("thread \(thread), round \(round): a buffer's bytes were overwritten") }
                }
            }
        }
    }
}
