import CSodium

/// HMAC-SHA256 (RFC 2104), through libsodium: the audit chain's MAC and webhook signatures.
/// Keys of any length; the message may be fed in parts.
public struct HMACSHA256 {
    public static let macBytes = 32
    private var state = crypto_auth_hmacsha256_state()

    public init(key: UnsafeRawBufferPointer) {
        Sodium.initialize()
        var empty: UInt8 = 0
        if let base = key.baseAddress, key.count > 0 {
            _ = crypto_auth_hmacsha256_init(&state, base.assumingMemoryBound(to: UInt8.self), key.count)
        } else {
            _ = crypto_auth_hmacsha256_init(&state, &empty, 0)
        }
    }

    public init(key: SecureBytes) {
        self = key.withUnsafeBytes { HMACSHA256(key: $0) }
    }

    public mutating func update(_ part: UnsafeRawBufferPointer) {
        guard part.count > 0 else { return }
        _ = crypto_auth_hmacsha256_update(&state, part.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(part.count))
    }

    public mutating func update(_ part: [UInt8]) {
        part.withUnsafeBytes { update($0) }
    }

    /// The MAC; the state is wiped.
    public mutating func finalize() -> [UInt8] {
        var mac = [UInt8](repeating: 0, count: Self.macBytes)
        _ = crypto_auth_hmacsha256_final(&state, &mac)
        withUnsafeMutableBytes(of: &state) { Sodium.wipe($0.baseAddress!, count: $0.count) }
        return mac
    }

    /// The MAC of one message.
    public static func mac(key: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer) -> [UInt8] {
        var hmac = HMACSHA256(key: key)
        hmac.update(message)
        return hmac.finalize()
    }
}

extension Sodium {
    /// HMAC-SHA256 of `message` under `key` (any length).
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        key.withUnsafeBytes { k in message.withUnsafeBytes { m in HMACSHA256.mac(key: k, message: m) } }
    }
}
