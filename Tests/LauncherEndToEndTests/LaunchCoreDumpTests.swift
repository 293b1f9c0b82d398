import Foundation
import Testing
import TestSupport

/// A cross-check of the launcher's own memory scan (LaunchMemoryTests) from outside the process:
/// gdb starts `vsecure-run`, stops it at `execve` (a breakpoint, so before the exec; `catch
/// exec` would fire after it), writes a core with `set dump-excluded-mappings on` (sodium_malloc
/// pages are marked MADV_DONTDUMP and would be left out), and the test counts each value in the
/// core: exactly one copy, the envp entry the child needs.
///
/// `prctl(PR_SET_DUMPABLE, 0)` at the start of the launcher's main stops a debugger from
/// attaching later and the kernel from dumping core, but not a tracer that started the process:
/// gdb reads the memory through ptrace and writes the core file itself.
@Suite("vsecure-run memory, checked with gdb", .serialized, .enabled(if: gdbPath != nil, "gdb is not installed"))
struct LaunchCoreDumpTests {

    struct Dump {
        var gdbOutput: String
        var core: [UInt8]
        func copies(of value: String) -> Int { occurrences(of: Array(value.utf8), in: core) }
    }

    /// Runs `vsecure-run arguments…` under gdb, stops it at execve and dumps its memory.
    /// `handOff`: let the first execve (the static launcher handing a launch from a server to
    /// vsecure-run-remote) go on, and dump at the twin's execve of the program.
    static func dumpAtExec(_ arguments: [String], environment: [String: String], directory: TemporaryDirectory,
                           excludedMappings: Bool = true, handOff: Bool = false) throws -> Dump {
        let core = directory.file("launcher-\(UUID().uuidString).core")
        defer { try? FileManager.default.removeItem(atPath: core) }
        let printPath = "printf \"EXECVE-PATH %s\\n\", (char *) $rdi"
        var commands = ["set breakpoint pending on", "break execve", "run"] + (handOff ? [printPath, "continue"] : [])
            + [printPath, "generate-core-file \(core)", "kill"]
        if excludedMappings { commands.insert("set dump-excluded-mappings on", at: 0) }
        let gdbArguments = ["-batch", "-nx"] + commands.flatMap { ["-ex", $0] } + ["--args", Binaries.vsecureRun] + arguments
        let result = try runProcess(gdbPath!, gdbArguments, environment: environment, workingDirectory: directory.path, timeout: 120)
        let output = result.stdoutText + result.stderr
        guard let data = FileManager.default.contents(atPath: core) else {
            throw TestFailure("gdb wrote no core:\n\(output)")
        }
        return Dump(gdbOutput: output, core: Array(data))
    }

    static func occurrences(of needle: [UInt8], in haystack: [UInt8]) -> Int {
        var count = 0
        haystack.withUnsafeBytes { hay in
            needle.withUnsafeBytes { n in
                var start = hay.baseAddress!
                var left = hay.count
                while left >= n.count, let found = findBytes(start, left, n.baseAddress, n.count) {
                    count += 1
                    let skip = UnsafeRawPointer(found) - start + 1
                    start += skip
                    left -= skip
                }
            }
        }
        return count
    }

    /// Three secrets with canary values and a manifest naming them.
    static func prepareLocal() throws -> (Vault, [Canary]) {
        let vault = try Vault()
        let canaries = (0..<3).map { _ in Canary() }
        for (index, canary) in canaries.enumerated() {
            try vault.create("CORE_CANARY_\(index)", canary.value, ["--env", "production"])
        }
        try vault.directory.write("vsecure.yml", "version: 1\nsecrets: [CORE_CANARY_0, CORE_CANARY_1, CORE_CANARY_2]\n", mode: 0o644)
        return (vault, canaries)
    }

    static func expectOneCopyEach(_ dump: Dump, _ canaries: [Canary], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(dump.gdbOutput.contains("EXECVE-PATH /bin/true"), "gdb did not stop at the execve of the child:\n\(dump.gdbOutput)",
                sourceLocation: sourceLocation)
        #expect(dump.core.count > 1_000_000, "the core is too small to hold the process: \(dump.core.count) bytes", sourceLocation: sourceLocation)
        for canary in canaries {
            #expect(dump.copies(of: canary.value) == 1, "copies of a value in the core: \(dump.copies(of: canary.value))",
                    sourceLocation: sourceLocation)
            // Neither a hex nor a base64 form is ever made on the way.
            let others = canary.forms.dropFirst().filter { occurrences(of: $0.bytes, in: dump.core) > 0 }.map(\.label)
            #expect(others.isEmpty, "other forms of a value in the core: \(others)", sourceLocation: sourceLocation)
        }
        let control = Canary()
        #expect(dump.copies(of: control.value) == 0, "a value in no secret was found: the count is wrong", sourceLocation: sourceLocation)
    }

    @Test("local vault: exactly one copy of each value in a core taken at execve")
    func localOneCopy() throws {
        let (vault, canaries) = try Self.prepareLocal()
        let dump = try Self.dumpAtExec(["--env", "production", "--", "/bin/true"], environment: vault.environment(), directory: vault.directory)
        Self.expectOneCopyEach(dump, canaries)
    }

    @Test("without dump-excluded-mappings the core misses the locked pages (why the setting is needed)")
    func excludedMappingsAreLeftOut() throws {
        let (vault, canaries) = try Self.prepareLocal()
        let dump = try Self.dumpAtExec(["--env", "production", "--", "/bin/true"], environment: vault.environment(), directory: vault.directory,
                                       excludedMappings: false)
        #expect(dump.gdbOutput.contains("EXECVE-PATH /bin/true"), "\(dump.gdbOutput)")
        for canary in canaries { #expect(dump.copies(of: canary.value) == 0) }
    }

    @Test("remote server: exactly one copy of each value in a core taken at execve")
    func remoteOneCopy() throws {
        let store = try LiveStore()
        let server = try LiveServer(store: store)
        var env = minimalEnvironment(home: store.home)
        env["VSECURE_ENDPOINT"] = server.baseURL
        env["VSECURE_API_KEY"] = store.adminToken
        env["VSECURE_CONFIG_DIR"] = store.directory.file("cfg")
        let canaries = (0..<3).map { _ in Canary() }
        for (index, canary) in canaries.enumerated() {
            let created = try runProcess(Binaries.vsecure, ["secrets:create", "CORE_CANARY_\(index)", "-", "--env", "production", "--quiet"],
                                         environment: env, stdin: .text(canary.value), timeout: 60)
            guard created.status == 0 else { throw TestFailure("create failed: \(created)") }
        }
        try store.directory.write("vsecure.yml", "version: 1\nsecrets: [CORE_CANARY_0, CORE_CANARY_1, CORE_CANARY_2]\n", mode: 0o644)
        // The static vsecure-run hands the launch to vsecure-run-remote before reading anything
        // secret; the core is taken where the twin execs the program.
        let dump = try Self.dumpAtExec(["--env", "production", "--", "/bin/true"], environment: env, directory: store.directory,
                                       handOff: true)
        #expect(dump.gdbOutput.contains("EXECVE-PATH \(Binaries.directory)/../libexec/vsecure/vsecure-run-remote")
                || dump.gdbOutput.contains("EXECVE-PATH \(Binaries.directory)/vsecure-run-remote"), "\(dump.gdbOutput)")
        Self.expectOneCopyEach(dump, canaries)
    }
}

private let gdbPath: String? = ["/usr/bin/gdb", "/usr/local/bin/gdb"].first { FileManager.default.isExecutableFile(atPath: $0) }
