import Foundation
import Testing
import TestSupport

/// The launcher's test switch scans its own memory (/proc/self/maps + /proc/self/mem) just before
/// execve, or after wiping on a failure path, and reports how many copies of each needle it found.
@Suite("vsecure-run memory hygiene")
struct LaunchMemoryTests {
    struct Report {
        var phases: [String: [Int]] = [:]
        var scannedBytes: [String: Int] = [:]
    }

    static func parse(_ text: String) -> Report {
        var report = Report()
        var phase = ""
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ")
            if words.first == "needle", words.count == 3, let count = Int(words[2]) {
                report.phases[phase, default: []].append(count)
            } else if let first = words.first {
                phase = String(first)
                if words.count >= 5, let bytes = Int(words[4]) { report.scannedBytes[phase] = bytes }
            }
        }
        return report
    }

    /// Imports `count` secrets with distinct random values, writes a manifest for them and the
    /// needle file, and returns the values.
    static func prepare(_ fixture: LaunchFixture, count: Int) throws -> (values: [String], needles: String) {
        let values = (0..<count).map { _ in LaunchFixture.canary(40) }
        let dotenv = values.enumerated().map { "SECRET_\($0.offset)=\($0.element)" }.joined(separator: "\n") + "\n"
        let imported = try fixture.vault.run(["secrets:import", "-", "--env", "production"], stdin: .text(dotenv))
        guard imported.status == 0 else { throw TestFailure("import failed: \(imported)") }
        try fixture.manifest("version: 1\nsecrets:\n" + (0..<count).map { "  - SECRET_\($0)\n" }.joined())
        // A control needle that is in no secret: it must count 0, or the scan is miscounting.
        let hex = (values + ["control-needle-that-is-nowhere-\(LaunchFixture.canary(20))"]).map { value in
            value.utf8.map { String(format: "%02x", $0) }.joined()
        }
        let needles = try fixture.directory.write("needles.hex", hex.joined(separator: "\n") + "\n")
        return (values, needles)
    }

    func scan(count: Int, command: [String]) throws -> (ProcessResult, Report, [String]) {
        try scanWith(fixture: LaunchFixture(), count: count, command: command)
    }

    @Test("exactly one copy of each value at execve", arguments: [1, 100])
    func oneCopyAtExec(count: Int) throws {
        let (result, report, _) = try scan(count: count, command: ["/bin/true"])
        #expect(result.status == 0, "\(result)")
        let counts = try #require(report.phases["exec"], "no exec phase in the report: \(report)")
        #expect(counts.count == count + 1)
        #expect(Array(counts.prefix(count)) == [Int](repeating: 1, count: count), "copies per secret: \(counts)")
        #expect(counts.last == 0, "the control needle must not be found")
        #expect((report.scannedBytes["exec"] ?? 0) > 1_000_000, "the scan must cover the process's memory")
    }

    @Test("no copy is left when execve fails")
    func noCopyAfterExecFailure() throws {
        let fixture = try LaunchFixture()
        // Executable bit set, but no valid format and no #! line: execve fails with ENOEXEC.
        let bogus = try fixture.directory.write("bogus-binary", "not an executable\n", mode: 0o755)
        let (result, report, _) = try scanWith(fixture: fixture, count: 5, command: [bogus])
        #expect(result.status == 126, "\(result)")
        #expect(report.phases["exec"]?.prefix(5).allSatisfy { $0 == 1 } == true, "the block held each value before execve: \(report)")
        let after = try #require(report.phases["failure"], "no failure phase: \(report)")
        #expect(after == [Int](repeating: 0, count: 6), "copies after the failed exec: \(after)")
    }

    @Test("no copy is left when a required secret is missing")
    func noCopyAfterMissingSecret() throws {
        let fixture = try LaunchFixture()
        let (values, needles) = try Self.prepare(fixture, count: 3)
        try fixture.manifest("version: 1\nsecrets: [SECRET_0, SECRET_1, SECRET_2, NOT_THERE]\n")
        let reportPath = fixture.directory.file("report.txt")
        let result = try fixture.launch(["--env", "production", "--", "/bin/true"],
                                        env: ["VSECURE_TEST_MEMORY_SCAN": needles, "VSECURE_TEST_MEMORY_REPORT": reportPath])
        #expect(result.status == 3, "\(result)")
        for value in values { #expect(!result.stderr.contains(value)) }
        let report = Self.parse(try String(contentsOfFile: reportPath, encoding: .utf8))
        #expect(report.phases["failure"] == [0, 0, 0, 0], "\(report)")
    }

    func scanWith(fixture: LaunchFixture, count: Int, command: [String]) throws -> (ProcessResult, Report, [String]) {
        let (values, needles) = try Self.prepare(fixture, count: count)
        let reportPath = fixture.directory.file("report.txt")
        let result = try fixture.launch(["--env", "production", "--"] + command,
                                        env: ["VSECURE_TEST_MEMORY_SCAN": needles, "VSECURE_TEST_MEMORY_REPORT": reportPath])
        return (result, Self.parse((try? String(contentsOfFile: reportPath, encoding: .utf8)) ?? ""), values)
    }
}
