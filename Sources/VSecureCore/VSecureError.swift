/// Every failure a user can see. `message` and `hints` are shown as `vsecure: error: …` and
/// `vsecure: hint: …`; they may name secrets, environments, tags, paths and versions, never a
/// secret value, key or passphrase. Build messages only from values of the public domain types.
public struct VSecureError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: ExitStatus
    public var message: String
    public var hints: [String]

    public init(_ status: ExitStatus, _ message: String, hint: String? = nil) {
        self.status = status
        self.message = message
        self.hints = hint.map { [$0] } ?? []
    }

    public init(_ status: ExitStatus, _ message: String, hints: [String]) {
        self.status = status
        self.message = message
        self.hints = hints
    }

    public var description: String { message }

    public func withHint(_ hint: String) -> VSecureError {
        var copy = self
        copy.hints.append(hint)
        return copy
    }

    public static func usage(_ message: String, hint: String? = nil) -> VSecureError {
        VSecureError(.usage, message, hint: hint)
    }
}
