import Foundation
import Testing
import TestSupport

/// The hint every command prints when a value is given in argv (without --quiet).
let argvHint = "vsecure: hint: a value given on the command line is visible to other processes and may stay in shell history; prefer stdin or --from-file (--quiet hides this)\n"

/// Expects exit 0 with nothing on stderr.
func expectSuccess(_ result: ProcessResult, stderr: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result.status == 0, "\(result)", sourceLocation: sourceLocation)
    #expect(result.stderr == stderr, "\(result)", sourceLocation: sourceLocation)
}

/// Expects a failure with `status`, nothing on stdout, and stderr starting with
/// `vsecure: error: ` and containing `message`.
func expectFailure(_ result: ProcessResult, _ status: Int32, _ message: String,
                   sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result.status == status, "\(result)", sourceLocation: sourceLocation)
    #expect(result.stdout.isEmpty, "\(result)", sourceLocation: sourceLocation)
    #expect(result.stderr.hasPrefix("vsecure: error: "), "\(result)", sourceLocation: sourceLocation)
    #expect(message.isEmpty || result.stderr.contains(message), "expected \(message.debugDescription) in stderr:\n\(result.stderr)",
            sourceLocation: sourceLocation)
}

/// Expects that no byte sequence of `value` (when it is long enough to be recognisable)
/// appears in the command's stderr: messages name secrets, never their values.
func expectNoLeak(_ value: [UInt8], _ result: ProcessResult, sourceLocation: SourceLocation = #_sourceLocation) {
    guard value.count >= 4 else { return }
    #expect(!contains(result.stderrBytes, value), "the value leaked into stderr:\n\(result.stderr)", sourceLocation: sourceLocation)
}

func expectNoLeak(_ value: String, _ result: ProcessResult, sourceLocation: SourceLocation = #_sourceLocation) {
    expectNoLeak(Array(value.utf8), result, sourceLocation: sourceLocation)
}

func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard !needle.isEmpty, haystack.count >= needle.count else { return needle.isEmpty }
    for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
        if haystack[start..<(start + needle.count)].elementsEqual(needle) { return true }
    }
    return false
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// JSON helpers for `--output json`.
func object(_ any: Any, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
    try #require(any as? [String: Any], "not a JSON object: \(any)", sourceLocation: sourceLocation)
}

func objects(_ any: Any, sourceLocation: SourceLocation = #_sourceLocation) throws -> [[String: Any]] {
    try #require(any as? [[String: Any]], "not a JSON array of objects: \(any)", sourceLocation: sourceLocation)
}

/// The `secrets:versions --output json` entries of a secret.
func versions(_ vault: Vault, _ name: String, _ options: [String] = []) throws -> [[String: Any]] {
    try objects(try object(vault.json(["secrets:versions", name] + options))["versions"] as Any)
}

/// Parses `2026-11-29T04:23:57Z`.
func date(_ text: String?) -> Date? {
    guard let text else { return nil }
    return ISO8601DateFormatter().date(from: text)
}

/// Lines `key: value` of a text card, keyed by the trimmed key.
func cardFields(_ text: String) -> [String: String] {
    var fields: [String: String] = [:]
    for line in text.split(separator: "\n").dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        fields[line[..<colon].trimmingCharacters(in: .whitespaces)] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return fields
}

/// Records an issue for every command a test ran through `Vault` that printed a secret value
/// on stderr (see `LeakWatch`). Every suite of this target carries it, so "error messages never
/// contain the value" is checked in every test that stores one, not only where it is spelled out.
struct NoValuesOnStderr: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }

    func provideScope(for test: Test, testCase: Test.Case?,
                      performing function: @Sendable () async throws -> Void) async throws {
        guard testCase != nil else { return try await function() }
        let watch = LeakWatch()
        try await LeakWatch.$current.withValue(watch) { try await function() }
        for leak in watch.leaks { Issue.record(Comment(rawValue: leak)) }
    }
}

extension Trait where Self == NoValuesOnStderr {
    static var noValuesOnStderr: Self { Self() }
}
