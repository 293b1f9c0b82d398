import Foundation

/// A random value that appears nowhere else, and every form in which it could leak: raw, hex
/// (lower and upper case), and base64 in the standard and URL-safe alphabets.
///
/// Base64 of a text that *contains* the canary encodes it differently depending on where it
/// starts modulo 3, so each alphabet is searched at the three alignments: the canary from byte
/// 0, 1 and 2, cut to whole 3-byte groups. Those groups encode to the same 4 characters whatever
/// surrounds them, and without padding, so one search covers padded and unpadded encodings.
public struct Canary: Sendable {
    public struct Form: Sendable {
        public let label: String
        public let bytes: [UInt8]
    }

    public let value: String
    public let forms: [Form]
    public var bytes: [UInt8] { Array(value.utf8) }

    /// A random letters-and-digits value (so JSON, URL and shell quoting never change it).
    public init(length: Int = 48) {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        self.init(value: String((0..<length).map { _ in alphabet.randomElement()! }))
    }

    public init(value: String) {
        self.value = value
        let raw = Array(value.utf8)
        var forms = [Form(label: "raw", bytes: raw)]
        let hex = raw.map { String(format: "%02x", $0) }.joined()
        forms.append(Form(label: "hex", bytes: Array(hex.utf8)))
        forms.append(Form(label: "HEX", bytes: Array(hex.uppercased().utf8)))
        for offset in 0..<3 {
            let whole = (raw.count - offset) / 3 * 3
            let standard = Data(raw[offset..<(offset + whole)]).base64EncodedString()
            let urlSafe = standard.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            forms.append(Form(label: "base64 (alignment \(offset))", bytes: Array(standard.utf8)))
            if urlSafe != standard { forms.append(Form(label: "base64url (alignment \(offset))", bytes: Array(urlSafe.utf8))) }
        }
        self.forms = forms
    }

    /// The labels of the forms found in `haystack`.
    public func formsFound(in haystack: [UInt8]) -> [String] {
        forms.filter { canaryContains(haystack, $0.bytes) }.map(\.label)
    }
}

/// memmem, because files, logs and cores are megabytes. glibc declares it only under
/// _GNU_SOURCE, so Swift does not import it: it is looked up once.
public let findBytes: @convention(c) (UnsafeRawPointer?, Int, UnsafeRawPointer?, Int) -> UnsafeMutableRawPointer? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "memmem") else { fatalError("memmem is missing") }
    return unsafeBitCast(symbol, to: (@convention(c) (UnsafeRawPointer?, Int, UnsafeRawPointer?, Int) -> UnsafeMutableRawPointer?).self)
}()

public func canaryContains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard !needle.isEmpty else { return true }
    guard haystack.count >= needle.count else { return false }
    return haystack.withUnsafeBytes { hay in
        needle.withUnsafeBytes { n in findBytes(hay.baseAddress, hay.count, n.baseAddress, n.count) != nil }
    }
}

/// Collects every place a form of the canary was found, each with where, and counts the places
/// looked at (so a sweep that looked nowhere cannot pass).
public final class CanarySweep: @unchecked Sendable {
    public let canary: Canary
    private let lock = NSLock()
    private var found: [String] = []
    private var looked = 0
    private var skipped: [String] = []

    public init(canary: Canary = Canary()) { self.canary = canary }

    public var hits: [String] { lock.withLock { found } }
    public var placesChecked: Int { lock.withLock { looked } }
    /// Files left unread because they were too large (another process's, in a shared /tmp).
    public var skippedFiles: [String] { lock.withLock { skipped } }

    public func record(_ hit: String) { lock.withLock { found.append(hit) } }

    /// Looks for every form of the canary in `bytes`; a hit names `place` and the form.
    public func check(_ bytes: [UInt8], at place: String) {
        let forms = canary.formsFound(in: bytes)
        lock.withLock {
            looked += 1
            for form in forms { found.append("\(place): \(form)") }
        }
    }

    /// A command's stdout and stderr. With `printsValue`, stdout must hold the raw value (the
    /// command is meant to print it: get, export, diff --reveal) and is not counted as a leak.
    public func check(_ result: ProcessResult, _ command: String, printsValue: Bool = false) {
        check(result.stderrBytes, at: "stderr of \(command)")
        if printsValue {
            if !canaryContains(result.stdout, canary.bytes) { record("stdout of \(command): the value was expected here and is missing (exit \(result.status))") }
        } else {
            check(result.stdout, at: "stdout of \(command)")
        }
    }

    /// Every regular file under `directory` (symbolic links are not followed).
    public func checkTree(_ directory: String, label: String) {
        for path in regularFiles(under: directory) { checkFile(path, label: label) }
    }

    public func checkFile(_ path: String, label: String, limit: Int = 256 << 20) {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return }
        guard Int(info.st_size) <= limit else {
            lock.withLock { skipped.append("\(label) \(path) (\(info.st_size) bytes)") }
            return
        }
        guard let data = FileManager.default.contents(atPath: path) else { return }
        check(Array(data), at: "\(label) \(path)")
    }

    /// `/proc/*/cmdline` of every process; returns how many were read.
    @discardableResult
    public func checkCommandLines() -> Int {
        var read = 0
        for pid in processIDs() {
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { continue }
            read += 1
            check(Array(data), at: "/proc/\(pid)/cmdline (\(String(decoding: data.prefix(120).map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)))")
        }
        return read
    }

    /// The processes whose environment holds the raw canary (the launched child, proving a
    /// `/proc` scan ran while it lived).
    public func processesWithCanaryInEnvironment() -> [Int32] {
        processIDs().filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
            return canaryContains(Array(data), canary.bytes)
        }
    }
}

func processIDs() -> [Int32] {
    ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
}

func regularFiles(under directory: String) -> [String] {
    guard let walker = FileManager.default.enumerator(atPath: directory) else { return [] }
    var files: [String] = []
    for case let relative as String in walker {
        let full = directory + "/" + relative
        var info = stat()
        if lstat(full, &info) == 0, info.st_mode & S_IFMT == S_IFREG { files.append(full) }
    }
    return files
}

/// Regular files under some roots with their modification time and size, taken with find(1)
/// (a walk of a busy /tmp through FileManager is several times slower), so that the files a
/// test created or changed can be told apart from what was there before.
public struct FileListing: Sendable {
    public let entries: [String: String]

    public static func take(_ roots: [String]) throws -> FileListing {
        let existing = roots.filter { FileManager.default.fileExists(atPath: $0) }
        let result = try runProcess("/usr/bin/find", existing + ["-xdev", "-type", "f", "-printf", "%T@ %s %p\\0"],
                                    environment: minimalEnvironment(home: "/"), timeout: 120)
        var entries: [String: String] = [:]
        for record in result.stdout.split(separator: 0) {
            let text = String(decoding: record, as: UTF8.self)
            let parts = text.split(separator: " ", maxSplits: 2)
            guard parts.count == 3 else { continue }
            entries[String(parts[2])] = parts[0] + " " + parts[1]
        }
        return FileListing(entries: entries)
    }

    /// Files that are new in `after`, or whose time or size changed.
    public func changed(in after: FileListing) -> [String] {
        after.entries.compactMap { path, stamp in entries[path] == stamp ? nil : path }.sorted()
    }
}
