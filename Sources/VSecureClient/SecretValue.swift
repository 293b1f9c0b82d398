import VSecureCrypto

/// A secret value in locked memory (`sodium_malloc`: guard pages, never swapped, left out of
/// core dumps, zeroed when the last copy of this value is released).
///
/// Printing it shows only its length: `description`, `debugDescription`, `dump` and string
/// interpolation all give `SecretValue(<redacted>, 12 bytes)`. Reading the bytes is explicit:
/// `withUnsafeBytes` lends them without a copy; `utf8String()` and `bytes()` make ordinary Swift
/// copies that cannot be wiped, so keep those short-lived and prefer `withUnsafeBytes`.
public struct SecretValue: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    let locked: SecureBytes

    init(locked: SecureBytes) {
        self.locked = locked
    }

    /// Copies the UTF-8 bytes of `text` into locked memory. `text` itself stays where it was:
    /// a Swift `String` cannot be wiped.
    public init(copying text: String) {
        var text = text
        locked = text.withUTF8 { SecureBytes(copying: UnsafeRawBufferPointer($0)) }
    }

    /// Copies `bytes` into locked memory; the caller's copy is the caller's to wipe.
    public init(copying bytes: UnsafeRawBufferPointer) {
        locked = SecureBytes(copying: bytes)
    }

    /// Copies `bytes` into locked memory; the array itself cannot be wiped.
    public init(copying bytes: [UInt8]) {
        locked = bytes.withUnsafeBytes { SecureBytes(copying: $0) }
    }

    /// The length in bytes.
    public var count: Int { locked.count }

    /// Lends the bytes, in place, for the duration of `body`. Do not let the pointer escape.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try locked.withUnsafeBytes(body)
    }

    /// The value as an ordinary `String` (nil when it is not valid UTF-8). This is a copy outside
    /// locked memory that Swift cannot wipe: make it only where an API needs a `String`.
    public func utf8String() -> String? {
        locked.withUnsafeBytes { String(validating: $0, as: UTF8.self) }
    }

    /// The value as an ordinary byte array: a copy outside locked memory that cannot be wiped.
    public func bytes() -> [UInt8] {
        locked.withUnsafeBytes { Array($0) }
    }

    /// Compares two values in constant time.
    public func isEqual(to other: SecretValue) -> Bool {
        locked.isEqual(to: other.locked)
    }

    public var description: String { "SecretValue(<redacted>, \(count) bytes)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["count": count], displayStyle: .struct) }
}
