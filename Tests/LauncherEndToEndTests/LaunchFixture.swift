import Foundation
import TestSupport

/// A vault plus a working directory for `vsecure-run`, with helpers to write a manifest and
/// launch through the real binary.
final class LaunchFixture: @unchecked Sendable {
    let vault: Vault
    var directory: TemporaryDirectory { vault.directory }

    init() throws { vault = try Vault() }

    /// Stores `value` as `name` in `env` (default production).
    func secret(_ name: String, _ value: [UInt8], env: String = "production", _ options: [String] = []) throws {
        try vault.create(name, value, ["--env", env] + options)
    }

    func secret(_ name: String, _ value: String, env: String = "production", _ options: [String] = []) throws {
        try secret(name, Array(value.utf8), env: env, options)
    }

    @discardableResult
    func manifest(_ text: String, name: String = "vsecure.yml") throws -> String {
        try directory.write(name, text, mode: 0o644)
    }

    /// Runs `vsecure-run arguments…` in the fixture's directory with the vault in the environment.
    func launch(_ arguments: [String], env extra: [String: String] = [:], timeout: TimeInterval = 60) throws -> ProcessResult {
        try runProcess(Binaries.vsecureRun, arguments, environment: vault.environment(.environment, extra: extra),
                       workingDirectory: directory.path, timeout: timeout)
    }

    /// The exact bytes of one variable as the child sees it (printenv adds one newline).
    func childValue(_ variable: String, _ arguments: [String], env extra: [String: String] = [:]) throws -> ProcessResult {
        var result = try launch(arguments + ["--", "/usr/bin/printenv", variable], env: extra)
        if result.status == 0, result.stdout.last == 0x0A { result.stdout.removeLast() }
        return result
    }

    /// `env -0` of the child: every variable exactly, split on NUL.
    func childEnvironment(_ arguments: [String], env extra: [String: String] = [:]) throws -> (ProcessResult, [String: [UInt8]], [String]) {
        let result = try launch(arguments + ["--", "/usr/bin/env", "-0"], env: extra)
        var map: [String: [UInt8]] = [:]
        var names: [String] = []
        for entry in result.stdout.split(separator: 0, omittingEmptySubsequences: true) {
            guard let eq = entry.firstIndex(of: UInt8(ascii: "=")) else { continue }
            let name = String(decoding: entry[entry.startIndex..<eq], as: UTF8.self)
            names.append(name)
            map[name] = Array(entry[(eq + 1)...])
        }
        return (result, map, names)
    }

    /// A random printable value of `length` characters that appears nowhere else.
    static func canary(_ length: Int = 40) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        return String((0..<length).map { _ in alphabet.randomElement()! })
    }
}
