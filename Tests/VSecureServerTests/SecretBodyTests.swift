#if canImport(Glibc)
import Glibc
#endif
@_spi(CustomByteBufferAllocator) import NIOCore
import Synchronization
import Testing
@testable import VSecureServer

/// A `ByteBufferAllocator` that keeps a copy of each block's bytes at the moment the block is
/// freed, so a test can see what a buffer's real storage held when it was released (after that
/// the memory is gone and cannot be read). Only the buffers a test makes with `allocator` use it.
enum ReleaseProbe {
    private struct State {
        var sizes: [UInt: Int] = [:]
        var released: [UInt: [UInt8]] = [:]
    }

    private static let state = Mutex(State())

    static let allocator = ByteBufferAllocator(
        allocate: { size in
            let block = malloc(size)
            ReleaseProbe.state.withLock { state in
                state.sizes[UInt(bitPattern: block)] = Int(size)
                state.released[UInt(bitPattern: block)] = nil
            }
            return block
        },
        reallocate: { block, _, newSize in
            let moved = realloc(block, newSize)
            ReleaseProbe.state.withLock { state in
                state.sizes[UInt(bitPattern: block)] = nil
                state.sizes[UInt(bitPattern: moved)] = Int(newSize)
                state.released[UInt(bitPattern: moved)] = nil
            }
            return moved
        },
        deallocate: { block in
            ReleaseProbe.state.withLock { state in
                let address = UInt(bitPattern: block)
                if let size = state.sizes.removeValue(forKey: address) {
                    state.released[address] = Array(UnsafeRawBufferPointer(start: block, count: size))
                }
            }
            free(block)
        },
        copy: { destination, source, count in
            destination.copyMemory(from: source, byteCount: count)
        })

    /// A buffer from the probe holding `text`, with room to spare so that it never grows.
    static func buffer(holding text: String) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 1024)
        buffer.writeString(text)
        return buffer
    }

    /// Where `buffer`'s storage starts (what the probe's `deallocate` is given).
    static func address(of buffer: ByteBuffer) -> UInt {
        buffer.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
    }

    /// The bytes the block at `address` held when it was freed; nil while it is still in use.
    static func released(at address: UInt) -> [UInt8]? {
        state.withLock { $0.released.removeValue(forKey: address) }
    }
}

private func holds(_ bytes: [UInt8], _ text: String) -> Bool {
    let needle = Array(text.utf8)
    guard bytes.count >= needle.count else { return false }
    return (0...(bytes.count - needle.count)).contains { bytes[$0..<($0 + needle.count)].elementsEqual(needle) }
}

/// A response body that holds a value and is not sent (audit entry not written, connection gone,
/// error after building) is zeroed in place before its storage is freed (`SecretBody`).
@Suite("Secret response bodies: wiped when dropped unsent", .serialized)
struct SecretBodyTests {
    static func answer(_ marker: String) -> String {
        #"{"name":"DB_PASSWORD","value":"\#(marker)","valueEncoding":"utf8"}"#
    }

    static func newMarker() -> String {
        "wipe-SECRET-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
    }

    @Test("control: the probe sees what a plain ByteBuffer's storage held when it was freed")
    func probeSeesUnwipedBytes() throws {
        let marker = Self.newMarker()
        var address: UInt = 0
        do {
            let buffer = ReleaseProbe.buffer(holding: Self.answer(marker))
            address = ReleaseProbe.address(of: buffer)
            #expect(ReleaseProbe.released(at: address) == nil, "still in use")
        }
        let bytes = try #require(ReleaseProbe.released(at: address), "the storage was freed")
        #expect(holds(bytes, marker), "an ordinary buffer is freed with the value in it, and the probe sees it")
    }

    @Test("a SecretBody dropped without being sent is zeroed before its storage is freed")
    func droppedBodyIsZeroed() throws {
        let marker = Self.newMarker()
        let buffer = ReleaseProbe.buffer(holding: Self.answer(marker))
        let address = ReleaseProbe.address(of: buffer)
        let body = SecretBody(consume buffer)
        body.discard()
        let bytes = try #require(ReleaseProbe.released(at: address), "the storage was freed")
        #expect(!holds(bytes, marker))
        #expect(bytes.allSatisfy { $0 == 0 }, "every byte of the storage is zero when it is freed")
    }

    @Test("when the audit entry cannot be written, the answer is zeroed and freed and the refusal passes on")
    func failedAuditWipes() async throws {
        let marker = Self.newMarker()
        let buffer = ReleaseProbe.buffer(holding: Self.answer(marker))
        let address = ReleaseProbe.address(of: buffer)
        let body = SecretBody(consume buffer)
        var refused = false
        do {
            _ = try await body.afterAudit { throw APIError.auditUnavailable }
        } catch let error as APIError {
            refused = error.code == APIError.auditUnavailable.code
        }
        #expect(refused, "the audit failure is what the caller sees (503)")
        let bytes = try #require(ReleaseProbe.released(at: address), "the answer's storage was freed")
        #expect(!holds(bytes, marker))
        #expect(bytes.allSatisfy { $0 == 0 })
    }

    @Test("once the audit entry is written, the answer is handed over intact and not wiped")
    func recordedAuditSends() async throws {
        let marker = Self.newMarker()
        let buffer = ReleaseProbe.buffer(holding: Self.answer(marker))
        let address = ReleaseProbe.address(of: buffer)
        var recorded = false
        let sent = try await SecretBody(consume buffer).afterAudit { recorded = true }
        #expect(recorded)
        #expect(String(buffer: sent) == Self.answer(marker))
        #expect(ReleaseProbe.address(of: sent) == address, "the same storage, not a copy")
        #expect(ReleaseProbe.released(at: address) == nil, "the storage is still in use by what is sent")
    }

    @Test("wipeInPlace zeroes a buffer's own storage; a shared storage is left to its other holder")
    func wipeInPlace() {
        let marker = Self.newMarker()
        var own = ByteBuffer(string: Self.answer(marker))
        let inPlace = own.wipeInPlace()
        #expect(inPlace, "the buffer's own storage is zeroed in place")
        #expect(own.readableBytes == Self.answer(marker).utf8.count, "the indices stay")
        #expect(own.readableBytesView.allSatisfy { $0 == 0 })

        var shared = ByteBuffer(string: Self.answer(marker))
        let other = shared
        let sharedInPlace = shared.wipeInPlace()
        #expect(!sharedInPlace, "copy on write: only a private copy was zeroed")
        #expect(shared.readableBytesView.allSatisfy { $0 == 0 })
        #expect(String(buffer: other) == Self.answer(marker), "what another holder (a channel write) has is untouched")
    }

    @Test("ResponseJSON.wipe zeroes a partly written response (a batch whose next value fails to open)")
    func partialResponseIsZeroed() {
        let marker = Self.newMarker()
        var json = ResponseJSON(capacity: 256)
        json.openObject()
        json.key("data")
        json.openArray()
        json.openObject()
        Array(marker.utf8).withUnsafeBytes { json.valueMembers($0) }
        #expect(String(buffer: json.buffer).contains(marker))
        json.wipe()
        #expect(json.buffer.readableBytes > marker.utf8.count)
        #expect(json.buffer.readableBytesView.allSatisfy { $0 == 0 })
    }
}
