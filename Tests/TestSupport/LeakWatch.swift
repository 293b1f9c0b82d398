import Foundation

/// Watches every command a test runs through `Vault` for secret values on stderr. A value is
/// known when it went in through a `Vault` helper or on the stdin of `secrets:create` /
/// `secrets:update`; and every test value carries the marker `SECRET` (upper case), which no
/// secret name in the tests does, so a value given in argv is caught too.
public final class LeakWatch: @unchecked Sendable {
    /// The watch of the running test, if its suite asked for one.
    @TaskLocal public static var current: LeakWatch?

    public static let marker = Array("SECRET".utf8)
    /// Shorter values ("", "x") would match ordinary text.
    public static let minimumLength = 4

    private let lock = NSLock()
    private var values: [[UInt8]] = []
    private var found: [String] = []

    public init() {}

    public func remember(_ value: [UInt8]) {
        guard value.count >= Self.minimumLength else { return }
        lock.withLock { if !values.contains(value) { values.append(value) } }
    }

    /// What leaked, one line per command.
    public var leaks: [String] { lock.withLock { found } }

    func inspect(_ command: String, _ result: ProcessResult) {
        let stderr = result.stderrBytes
        var leaked = contains(stderr, Self.marker)
        if !leaked { leaked = lock.withLock { values.contains { contains(stderr, $0) } } }
        if leaked { lock.withLock { found.append("\(command) printed a value on stderr:\n\(result.stderr)") } }
    }
}

func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard !needle.isEmpty else { return true }
    guard haystack.count >= needle.count else { return false }
    for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
        if haystack[start..<(start + needle.count)].elementsEqual(needle) { return true }
    }
    return false
}
