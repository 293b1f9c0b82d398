import Foundation

/// A private directory under $TMPDIR that is removed, with everything in it, when the last
/// reference goes away.
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: String

    public init(prefix: String = "vsecure-test") throws {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(base)/\(prefix).XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw TestFailure("mkdtemp failed under \(base): errno \(errno)")
        }
        path = String(cString: made)
    }

    deinit { TemporaryDirectory.removeTree(path) }

    /// A path inside the directory (nothing is created).
    public func file(_ name: String) -> String { path + "/" + name }

    /// Writes `bytes` to `name` with `mode`, creating parent directories; returns the path.
    @discardableResult
    public func write(_ name: String, _ bytes: [UInt8], mode: Int = 0o600) throws -> String {
        let target = file(name)
        try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: target))
        guard chmod(target, mode_t(mode)) == 0 else { throw TestFailure("chmod \(target) failed") }
        return target
    }

    @discardableResult
    public func write(_ name: String, _ text: String, mode: Int = 0o600) throws -> String {
        try write(name, Array(text.utf8), mode: mode)
    }

    public func read(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: file(name))))
    }

    /// Makes everything writable again first, so a test may leave read-only directories behind.
    static func removeTree(_ path: String) {
        if let walker = FileManager.default.enumerator(atPath: path) {
            for case let relative as String in walker {
                var info = stat()
                let full = path + "/" + relative
                if lstat(full, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { _ = chmod(full, 0o700) }
            }
        }
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A failure in the test machinery itself (not an expectation about the product).
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
