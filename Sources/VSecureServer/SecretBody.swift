import NIOCore
import VSecureCrypto

/// A response body that holds secret values (a single or batch read's answer), from when it is
/// built until it is handed to the channel. It cannot be copied, so while it holds the buffer
/// nothing else shares the buffer's storage; when it is dropped without being sent (the audit
/// entry could not be written, the connection closed first, an error after building), its
/// `deinit` zeroes that storage in place before it is freed.
///
/// Once `send()` has handed the buffer over, it is the channel's: NIO frees it after writing it,
/// without wiping (docs/api.md, "Values").
struct SecretBody: ~Copyable, Sendable {
    /// Not copyable either, so that `deinit` can move the buffer out of `self` and wipe the one
    /// reference to its storage (a copy of an `Optional` would share it, and zeroing a shared
    /// buffer zeroes a private copy instead).
    private struct Held: ~Copyable, Sendable {
        var buffer: ByteBuffer?
    }

    private var held: Held

    /// `buffer` must not be shared with anything that outlives the caller's use of it.
    init(_ buffer: consuming ByteBuffer) {
        held = Held(buffer: buffer)
    }

    /// The body, to write to the channel. Nothing is wiped: from here on it is the channel's.
    consuming func send() -> ByteBuffer {
        held.buffer.take() ?? ByteBuffer()
    }

    /// Sends nothing: the body is wiped and freed now.
    consuming func discard() {}

    /// The body to send once `record` (writing the audit entry) has returned. When `record`
    /// throws, the body is wiped and freed and the error passes on: nothing leaves unaudited.
    consuming func afterAudit(_ record: () async throws -> Void) async throws -> ByteBuffer {
        try await record()
        return send()
    }

    deinit {
        var held = consume held
        if var buffer = held.buffer.take() {
            buffer.wipeInPlace()
        }
    }
}

extension ByteBuffer {
    /// Zeroes the buffer's storage (every byte ever written to it, and the unused rest; for a
    /// slice, the part the slice spans) in place, and returns true when that storage was this
    /// buffer's alone. When another
    /// `ByteBuffer` shares it (a slice, a copy being written to a channel), the mutation copies
    /// first and only the copy is zeroed: the other holder's bytes are left as they are, and the
    /// result is false.
    @discardableResult
    mutating func wipeInPlace() -> Bool {
        let shared = withVeryUnsafeBytes { $0.baseAddress }
        return withVeryUnsafeMutableBytes { storage -> Bool in
            if let base = storage.baseAddress { Sodium.wipe(base, count: storage.count) }
            return UnsafeRawPointer(storage.baseAddress) == shared
        }
    }
}
