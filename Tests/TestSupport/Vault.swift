import Foundation

/// A fresh vault in its own temporary directory, made by the real `vsecure vault:init`, and a
/// way to run `vsecure` against it. The directory (vault, key, HOME) goes away with the fixture.
public final class Vault: @unchecked Sendable {
    /// How a command is pointed at the vault.
    public enum Location: Sendable {
        /// `VSECURE_VAULT` and `VSECURE_KEY_FILE` in the environment (argv stays exactly as given).
        case environment
        /// `--vault` and `--key-file` appended to argv.
        case flags
        /// Neither: the test passes whatever it wants.
        case none
    }

    public let directory: TemporaryDirectory
    public let vaultPath: String
    public let keyPath: String
    /// HOME of every command: an empty directory, so `~/.vsecure` is never the real one.
    public let home: String
    /// Set for a passphrase vault: given to every command as VSECURE_PASSPHRASE.
    public let passphrase: String?
    /// The output of `vault:init`.
    public private(set) var initResult: ProcessResult!

    /// Creates the vault with `vault:init` (plus `initArguments`). With `passphrase`, the vault
    /// is protected by it (`--passphrase-file`) instead of a key file.
    public init(passphrase: String? = nil, initArguments: [String] = []) throws {
        directory = try TemporaryDirectory(prefix: "vsecure-e2e")
        vaultPath = directory.file("vault.db")
        keyPath = directory.file("vault.key")
        home = directory.file("home")
        self.passphrase = passphrase
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        var arguments = ["vault:init", "--vault", vaultPath, "--key-file", keyPath] + initArguments
        if let passphrase {
            let file = try directory.write("passphrase.txt", passphrase + "\n")
            arguments += ["--passphrase-file", file]
        }
        let result = try run(arguments, location: .none)
        guard result.status == 0 else { throw TestFailure("vault:init failed: \(result)") }
        initResult = result
    }

    /// The environment every command gets: the minimal one, a fixed actor, the passphrase if
    /// any, and (for `.environment`) where the vault is.
    public func environment(_ location: Location = .environment, extra: [String: String] = [:]) -> [String: String] {
        var env = minimalEnvironment(home: home)
        env["VSECURE_ACTOR"] = "tester@e2e"
        if let passphrase { env["VSECURE_PASSPHRASE"] = passphrase }
        if case .environment = location {
            env["VSECURE_VAULT"] = vaultPath
            env["VSECURE_KEY_FILE"] = keyPath
        }
        return env.merging(extra) { $1 }
    }

    /// Runs `vsecure arguments…` against this vault.
    @discardableResult
    public func run(_ arguments: [String], stdin: StandardInput = .null, env extra: [String: String] = [:],
                    location: Location = .environment, timeout: TimeInterval = 60) throws -> ProcessResult {
        let argv = location == .flags ? arguments + ["--vault", vaultPath, "--key-file", keyPath] : arguments
        if let watch = LeakWatch.current, case .bytes(let value) = stdin,
           ["secrets:create", "secrets:update"].contains(arguments.first ?? "") {
            watch.remember(value)
        }
        let result = try runProcess(Binaries.vsecure, argv, environment: environment(location, extra: extra),
                                    stdin: stdin, workingDirectory: directory.path, timeout: timeout)
        LeakWatch.current?.inspect("vsecure " + arguments.joined(separator: " "), result)
        return result
    }

    /// Runs a `/bin/sh -c` script with this vault's environment; `$VSECURE` is the binary.
    @discardableResult
    public func shell(_ script: String, stdin: StandardInput = .null, env extra: [String: String] = [:],
                      timeout: TimeInterval = 120) throws -> ProcessResult {
        var env = environment(.environment, extra: extra)
        env["VSECURE"] = Binaries.vsecure
        let result = try runProcess("/bin/sh", ["-c", script], environment: env, stdin: stdin,
                                    workingDirectory: directory.path, timeout: timeout)
        LeakWatch.current?.inspect("sh -c " + script, result)
        return result
    }

    /// The exact bytes `secrets:get` prints (the command must succeed).
    public func value(_ name: String, _ options: [String] = []) throws -> [UInt8] {
        let result = try run(["secrets:get", name] + options)
        guard result.status == 0 else { throw TestFailure("secrets:get \(name) \(options) failed: \(result)") }
        return result.stdout
    }

    /// The parsed `--output json` of a command that must succeed.
    public func json(_ arguments: [String]) throws -> Any {
        let result = try run(arguments + ["--output", "json"])
        guard result.status == 0 else { throw TestFailure("\(arguments) failed: \(result)") }
        do { return try JSONSerialization.jsonObject(with: Data(result.stdout), options: [.fragmentsAllowed]) } catch {
            throw TestFailure("\(arguments) --output json printed invalid JSON: \(result.stdoutText)")
        }
    }

    /// Everything a read command can see, for asserting that a refused command changed nothing:
    /// the listing (with expired secrets, without timestamps that move) and the vault counts.
    public func snapshot() throws -> String {
        let list = try run(["secrets:list", "--include-expired", "--output", "json"])
        let status = try run(["vault:status", "--output", "json"])
        guard list.status == 0, status.status == 0 else { throw TestFailure("snapshot failed: \(list) \(status)") }
        return list.stdoutText + "\n" + status.stdoutText
    }

    /// Creates a secret from `value` on stdin (quietly), failing the test machinery if refused.
    public func create(_ name: String, _ value: [UInt8], _ options: [String] = []) throws {
        LeakWatch.current?.remember(value)
        let result = try run(["secrets:create", name, "-", "--quiet"] + options, stdin: .bytes(value))
        guard result.status == 0 else { throw TestFailure("secrets:create \(name) failed: \(result)") }
    }

    public func create(_ name: String, _ value: String, _ options: [String] = []) throws {
        try create(name, Array(value.utf8), options)
    }

    /// Adds a version with `value` on stdin, failing the test machinery if refused.
    public func update(_ name: String, _ value: [UInt8], _ options: [String] = []) throws {
        LeakWatch.current?.remember(value)
        let result = try run(["secrets:update", name, "-", "--quiet"] + options, stdin: .bytes(value))
        guard result.status == 0 else { throw TestFailure("secrets:update \(name) failed: \(result)") }
    }

    public func update(_ name: String, _ value: String, _ options: [String] = []) throws {
        try update(name, Array(value.utf8), options)
    }

    /// Runs SQL on the vault file with the sqlite3 CLI (for tampering tests).
    @discardableResult
    public func sqlite(_ sql: String) throws -> ProcessResult {
        let result = try runProcess(Vault.sqlite3, [vaultPath, sql], environment: minimalEnvironment(home: home))
        guard result.status == 0 else { throw TestFailure("sqlite3 failed: \(result)") }
        return result
    }

    /// The sqlite3 CLI, if installed.
    public static let sqlite3: String = ["/usr/bin/sqlite3", "/usr/local/bin/sqlite3", "/bin/sqlite3"]
        .first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/sqlite3"
    public static var hasSQLite3: Bool { FileManager.default.isExecutableFile(atPath: sqlite3) }
}

/// The `--output json` objects as dictionaries; test helpers for reading them.
public extension Dictionary where Key == String, Value == Any {
    func string(_ key: String) -> String? { self[key] as? String }
    func int(_ key: String) -> Int? { (self[key] as? NSNumber)?.intValue }
    func strings(_ key: String) -> [String]? { self[key] as? [String] }
}
