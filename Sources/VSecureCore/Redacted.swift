/// Wraps something that must never be printed. Its descriptions are `<redacted>` so that an
/// accidental interpolation, `dump` or log call shows nothing useful.
public struct Redacted<Wrapped>: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public let wrapped: Wrapped
    public init(_ wrapped: Wrapped) { self.wrapped = wrapped }
    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}

extension Redacted: Sendable where Wrapped: Sendable {}
