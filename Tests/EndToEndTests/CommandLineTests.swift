import Foundation
import Testing
import TestSupport

@Suite("--help, --version and argument errors", .noValuesOnStderr)
struct CommandLineTests {
    static let commands = [
        "vault:init", "vault:status", "vault:rekey", "secrets:create", "secrets:update", "secrets:get", "secrets:list",
        "secrets:versions", "secrets:diff", "secrets:rollback", "secrets:delete", "secrets:import", "secrets:export",
    ]

    func run(_ arguments: [String]) throws -> ProcessResult {
        let dir = try TemporaryDirectory()
        return try runProcess(Binaries.vsecure, arguments, environment: minimalEnvironment(home: dir.path))
    }

    @Test(arguments: commands)
    func everyCommandHasHelp(command: String) throws {
        for spelling in [[command, "--help"], [command, "-h"], ["help", command]] {
            let result = try run(spelling)
            expectSuccess(result)
            #expect(result.stdoutText.hasPrefix("OVERVIEW: "), "\(spelling): \(result.stdoutText)")
            #expect(result.stdoutText.contains("USAGE: vsecure \(command)"), "\(spelling)")
            #expect(result.stdoutText.contains("-h, --help"), "\(spelling)")
        }
    }

    @Test func topLevelHelpListsEveryCommand() throws {
        let result = try run(["--help"])
        expectSuccess(result)
        #expect(result.stdoutText.contains("USAGE: vsecure <subcommand>"))
        for command in Self.commands { #expect(result.stdoutText.contains("  \(command) "), "\(command)") }
    }

    @Test func versionPrintsTheVersion() throws {
        let result = try run(["--version"])
        expectSuccess(result)
        #expect(result.stdoutText.range(of: #"^[0-9]+\.[0-9]+\.[0-9]+\n$"#, options: .regularExpression) != nil, "\(result.stdoutText)")
        #expect(result.stdoutText == "0.1.0\n")
    }

    @Test func unknownCommandsAndFlagsAreUsageErrors() throws {
        let unknown = try run(["secrets:frobnicate"])
        expectFailure(unknown, 2, "Unexpected argument 'secrets:frobnicate'")
        #expect(unknown.stderr.contains("vsecure: hint: "))
        let flag = try run(["secrets:list", "--bogus"])
        expectFailure(flag, 2, "Unknown option '--bogus'")
        let format = try run(["secrets:export", "--format", "yaml"])
        expectFailure(format, 2, "The value 'yaml' is invalid for '--format <format>'")
        let output = try run(["secrets:list", "--output", "xml"])
        expectFailure(output, 2, "'--output <output>'")
    }
}
