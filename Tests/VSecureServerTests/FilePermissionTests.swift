import Foundation
import Testing
import TestSupport

/// Files vsecure creates are private whatever the umask, and a symlink planted where one of
/// them will be created is never followed: the command refuses, or (for files that are replaced
/// by rename: config, credentials, cache) replaces the link itself, and the link's target is
/// neither created nor written. Run against a live server for `login` and the offline cache.
@Suite("Private files: umask 000 and planted symlinks", .serialized)
struct FilePermissionTests {
    final class Setup: @unchecked Sendable {
        let store: LiveStore
        let server: LiveServer
        let scratch: TemporaryDirectory

        init() throws {
            store = try LiveStore()
            server = try LiveServer(store: store)
            scratch = try TemporaryDirectory(prefix: "vsecure-perm")
            let client = LiveClient(baseURL: server.baseURL, token: store.adminToken, scratch: store.directory)
            let made = try client.post("/v1/security/secrets", liveJSON(["name": "DB_PASSWORD", "value": "perm-SECRET-remote", "environment": "production"]))
            guard made.status == 201 else { throw TestFailure("create failed: \(made)") }
            try scratch.write("vsecure.yml", "version: 1\nsecrets: [DB_PASSWORD]\n", mode: 0o644)
        }

        var environment: [String: String] {
            var env = minimalEnvironment(home: scratch.file("home"))
            env["VSECURE_ACTOR"] = "tester@perm"
            return env
        }

        /// `executable arguments…` under `/bin/sh -c 'umask 000; exec "$@"'`.
        func underUmask000(_ executable: String, _ arguments: [String], env extra: [String: String] = [:],
                           stdin: StandardInput = .null) throws -> ProcessResult {
            try runProcess("/bin/sh", ["-c", "umask 000; exec \"$@\"", "sh", executable] + arguments,
                           environment: environment.merging(extra) { $1 }, stdin: stdin, workingDirectory: scratch.path, timeout: 60)
        }

        func run(_ executable: String, _ arguments: [String], env extra: [String: String] = [:],
                 stdin: StandardInput = .null) throws -> ProcessResult {
            try runProcess(executable, arguments, environment: environment.merging(extra) { $1 }, stdin: stdin,
                           workingDirectory: scratch.path, timeout: 60)
        }

        /// A remote launch with the offline cache in `cacheDirectory`.
        func remoteLaunch(cacheDirectory: String, _ command: [String], umask000: Bool = false) throws -> ProcessResult {
            let env = ["VSECURE_API_KEY": store.adminToken, "VSECURE_ENV": "production", "VSECURE_CACHE_DIR": cacheDirectory,
                       "VSECURE_TIMEOUT": "5s"]
            let arguments = ["--endpoint", server.baseURL, "--fallback", "--manifest", scratch.file("vsecure.yml"), "--"] + command
            return umask000 ? try underUmask000(Binaries.vsecureRun, arguments, env: env) : try run(Binaries.vsecureRun, arguments, env: env)
        }
    }

    /// Every entry under `root` (root included), by lstat: path → (is a directory, mode).
    static func tree(_ root: String) -> [(path: String, directory: Bool, symlink: Bool, mode: Int)] {
        var result: [(String, Bool, Bool, Int)] = []
        var paths = [root]
        if let walker = FileManager.default.enumerator(atPath: root) {
            for case let relative as String in walker { paths.append(root + "/" + relative) }
        }
        for path in paths {
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            result.append((path, info.st_mode & S_IFMT == S_IFDIR, info.st_mode & S_IFMT == S_IFLNK, Int(info.st_mode & 0o7777)))
        }
        return result
    }

    @Test("vault:init, secrets:create, a local and a --fallback launch and login under umask 000: 0600 files in 0700 directories")
    func umask000() throws {
        let setup = try Setup()
        let vault = setup.scratch.file("data/sub/vault.db"), key = setup.scratch.file("keys/sub/vault.key")
        let local = ["VSECURE_VAULT": vault, "VSECURE_KEY_FILE": key]
        #expect(try setup.underUmask000(Binaries.vsecure, ["vault:init"], env: local).status == 0)
        let created = try setup.underUmask000(Binaries.vsecure, ["secrets:create", "LOCAL_KEY", "-", "--env", "production", "--quiet"],
                                              env: local, stdin: .text("perm-SECRET-local"))
        #expect(created.status == 0, "\(created)")
        // A local launch opens the vault read-only, which leaves its -wal and -shm in place.
        let manifest = try setup.scratch.write("local.yml", "version: 1\nsecrets: [LOCAL_KEY]\n", mode: 0o644)
        let localLaunch = try setup.underUmask000(Binaries.vsecureRun, ["--env", "production", "--manifest", manifest,
                                                                        "--", "/usr/bin/printenv", "LOCAL_KEY"], env: local)
        #expect(localLaunch.status == 0 && localLaunch.stdoutText == "perm-SECRET-local\n", "\(localLaunch)")
        let cache = setup.scratch.file("cache/sub/vsecure")
        let remote = try setup.remoteLaunch(cacheDirectory: cache, ["/usr/bin/printenv", "DB_PASSWORD"], umask000: true)
        #expect(remote.status == 0 && remote.stdoutText == "perm-SECRET-remote\n", "\(remote)")
        let config = setup.scratch.file("cfg/sub/vsecure")
        let login = try setup.underUmask000(Binaries.vsecure, ["login", "--endpoint", setup.server.baseURL],
                                            env: ["VSECURE_CONFIG_DIR": config], stdin: .text(setup.store.adminToken + "\n"))
        #expect(login.status == 0, "\(login)")

        var seen: Set<String> = []
        for root in ["data", "keys", "cache", "cfg"].map(setup.scratch.file) {
            for entry in Self.tree(root) {
                seen.insert((entry.path as NSString).lastPathComponent)
                #expect(!entry.symlink, "\(entry.path) is a symlink")
                #expect(entry.mode == (entry.directory ? 0o700 : 0o600),
                        "\(entry.path) has mode 0\(String(entry.mode, radix: 8)) under umask 000")
            }
        }
        for name in ["vault.db", "vault.key", "vault.audit.db", "vault.audit.key", "credentials", "config.json"] {
            #expect(seen.contains(name), "\(name) was not created where expected: \(seen.sorted())")
        }
        #expect(seen.contains { $0.hasSuffix(".cache") }, "no cache file: \(seen.sorted())")
        print("FilePermissionTests: checked \(seen.sorted().joined(separator: ", "))")
    }

    /// A dangling symlink at `path`, pointing at `scratch/targets/<name>`; returns the target.
    static func plant(_ path: String, in setup: Setup) throws -> String {
        let targets = setup.scratch.file("targets")
        try FileManager.default.createDirectory(atPath: targets, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let target = targets + "/" + (path as NSString).lastPathComponent
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: target)
        return target
    }

    static func isSymlink(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK
    }

    static func isRegularPrivateFile(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFREG && info.st_mode & 0o777 == 0o600
    }

    @Test("a symlink where the vault, its key, its -wal or -shm, or its audit log and key would be: refused, the target never created")
    func localSymlinks() throws {
        let setup = try Setup()
        let exists = { (path: String) in FileManager.default.fileExists(atPath: path) }

        // The vault file.
        var target = try Self.plant(setup.scratch.file("a/vault.db"), in: setup)
        var result = try setup.run(Binaries.vsecure, ["vault:init", "--vault", setup.scratch.file("a/vault.db"), "--key-file", setup.scratch.file("a/vault.key")])
        #expect(result.status == 9 && result.stderr.contains("is a symlink; refusing"), "\(result)")
        #expect(!exists(target), "vault:init created the symlink's target")
        #expect(!exists(setup.scratch.file("a/vault.key")), "a refused init leaves no key file behind")

        // The key file.
        target = try Self.plant(setup.scratch.file("b/vault.key"), in: setup)
        result = try setup.run(Binaries.vsecure, ["vault:init", "--vault", setup.scratch.file("b/vault.db"), "--key-file", setup.scratch.file("b/vault.key")])
        #expect(result.status == 7 && result.stderr.contains("is a symlink"), "\(result)")
        #expect(!exists(target))
        #expect(!exists(setup.scratch.file("b/vault.db")), "a refused init leaves no vault behind")

        // A working vault whose -wal, -shm, audit log or audit key is a planted link.
        for (suffix, expected) in [("-wal", Int32(6)), ("-shm", Int32(6)), (".audit.db", Int32(0)), (".audit.key", Int32(0))] {
            let directory = setup.scratch.file("c" + suffix)
            let env = ["VSECURE_VAULT": directory + "/vault.db", "VSECURE_KEY_FILE": directory + "/vault.key"]
            #expect(try setup.run(Binaries.vsecure, ["vault:init"], env: env).status == 0)
            let linked = suffix.hasPrefix(".audit") ? directory + "/vault" + suffix : directory + "/vault.db" + suffix
            target = try Self.plant(linked, in: setup)
            result = try setup.run(Binaries.vsecure, ["secrets:create", "LINKED", "-", "--quiet"], env: env, stdin: .text("perm-SECRET-linked"))
            #expect(result.status == expected, "\(suffix): \(result)")
            if expected == 0 {
                // The audit log is a record, not a barrier: the write goes on, with a warning.
                #expect(result.stderr.contains("the audit log was not written") && result.stderr.contains("refusing"), "\(suffix): \(result)")
            }
            #expect(!exists(target), "\(suffix): the symlink's target was created")
            #expect(Self.isSymlink(linked), "\(suffix): the planted link was replaced or removed")
            #expect(!result.stderr.contains("perm-SECRET"))
        }
    }

    @Test("a symlink where config.json, credentials or a cache file would be: never written through")
    func clientSymlinks() throws {
        let setup = try Setup()
        let exists = { (path: String) in FileManager.default.fileExists(atPath: path) }

        // credentials and config.json: replaced by rename, so the link itself is replaced.
        for file in ["credentials", "config.json", "credentials.tmp", "config.json.tmp"] {
            let config = setup.scratch.file("cfg-" + file)
            let target = try Self.plant(config + "/" + file, in: setup)
            let login = try setup.run(Binaries.vsecure, ["login", "--endpoint", setup.server.baseURL],
                                      env: ["VSECURE_CONFIG_DIR": config], stdin: .text(setup.store.adminToken + "\n"))
            #expect(!exists(target), "\(file): login created the symlink's target: \(login)")
            #expect(!login.stderr.contains(setup.store.adminToken) && !login.stdoutText.contains(setup.store.adminToken))
            if login.status == 0 {
                for stored in ["credentials", "config.json"] {
                    #expect(Self.isRegularPrivateFile(config + "/" + stored), "\(file): \(stored) is not a private regular file after login")
                }
            }
            print("FilePermissionTests: login with \(file) planted as a symlink: exit \(login.status) \(login.stderr)")
        }
        // A credentials link that points at a real key file is not read.
        let elsewhere = setup.scratch.file("cfg-foreign")
        let foreign = try setup.scratch.write("targets/foreign-credentials", "\(setup.server.baseURL)\n\(setup.store.adminToken)\n")
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try FileManager.default.createSymbolicLink(atPath: elsewhere + "/credentials", withDestinationPath: foreign)
        let list = try setup.run(Binaries.vsecure, ["secrets:list", "--endpoint", setup.server.baseURL], env: ["VSECURE_CONFIG_DIR": elsewhere])
        #expect(list.status == 7 && list.stderr.contains("refusing to read the credentials file"), "\(list)")

        // The offline cache: learn its file name, then plant a link there.
        let cache = setup.scratch.file("cache")
        let first = try setup.remoteLaunch(cacheDirectory: cache, ["/bin/true"])
        #expect(first.status == 0, "\(first)")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: cache)) ?? []
        let cacheFile = try #require(names.first { $0.hasSuffix(".cache") }, "no cache file in \(names)")
        let saved = try setup.scratch.write("targets/saved.cache", try [UInt8](Data(contentsOf: URL(fileURLWithPath: cache + "/" + cacheFile))))
        try FileManager.default.removeItem(atPath: cache + "/" + cacheFile)
        let target = try Self.plant(cache + "/" + cacheFile, in: setup)
        let refreshed = try setup.remoteLaunch(cacheDirectory: cache, ["/bin/true"])
        #expect(refreshed.status == 0, "\(refreshed)")
        #expect(!exists(target), "the cache was written through a symlink")
        #expect(Self.isRegularPrivateFile(cache + "/" + cacheFile), "the cache file is not a private regular file")
        // Offline, a cache file that is a link (to a valid copy) is refused, not trusted.
        try FileManager.default.removeItem(atPath: cache + "/" + cacheFile)
        try FileManager.default.createSymbolicLink(atPath: cache + "/" + cacheFile, withDestinationPath: saved)
        #expect(setup.server.stop(signal: SIGTERM, timeout: 30) != nil)
        let marker = setup.scratch.file("started")
        let offline = try setup.remoteLaunch(cacheDirectory: cache, ["/usr/bin/touch", marker])
        #expect(offline.status == 13, "\(offline)")
        #expect(!exists(marker), "no program from a cache read through a symlink")
        #expect(!offline.stderr.contains("perm-SECRET"))
    }
}
