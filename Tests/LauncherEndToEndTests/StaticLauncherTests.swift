import Foundation
import Testing
import TestSupport

/// `vsecure-run` is linked as a static executable (Package.swift), which is what makes a local
/// launch cheap; `vsecure-run-remote`, the same launcher linked dynamically, serves launches
/// from a server (RemoteLaunchTests covers the hand-off).
@Suite("vsecure-run is static; a local launch needs nothing beside it")
struct StaticLauncherTests {
    /// Whether an ELF64 file names a program interpreter (a `PT_INTERP` program header), i.e.
    /// is started by the dynamic loader.
    static func hasInterpreter(_ path: String) throws -> Bool {
        guard let data = FileManager.default.contents(atPath: path), data.count >= 64 else { throw TestFailure("cannot read \(path)") }
        let bytes = [UInt8](data)
        guard bytes[0..<4] == [0x7F, 0x45, 0x4C, 0x46], bytes[4] == 2, bytes[5] == 1 else { throw TestFailure("\(path) is not a little-endian ELF64 file") }
        func integer(_ offset: Int, _ size: Int) -> Int {
            (0..<size).reversed().reduce(0) { $0 << 8 | Int(bytes[offset + $1]) }
        }
        let headerOffset = integer(0x20, 8), entrySize = integer(0x36, 2), count = integer(0x38, 2)
        return (0..<count).contains { integer(headerOffset + $0 * entrySize, 4) == 3 } // PT_INTERP
    }

    @Test("vsecure-run has no program interpreter; vsecure-run-remote has one")
    func linkage() throws {
        #expect(try !Self.hasInterpreter(Binaries.vsecureRun), "vsecure-run is linked dynamically: the static link settings in Package.swift were lost")
        #expect(try Self.hasInterpreter(Binaries.directory + "/vsecure-run-remote"), "vsecure-run-remote must be dynamic to load libcurl")
        #expect(try Self.hasInterpreter(Binaries.vsecure), "the ELF check itself tells a dynamic binary apart")
    }

    @Test("vsecure-run copied alone serves a local vault")
    func aloneLocal() throws {
        let vault = try Vault()
        let created = try vault.run(["secrets:create", "ALONE", "-", "--env", "production", "--quiet"], stdin: .text("v-alone"))
        #expect(created.status == 0, "\(created)")
        let alone = vault.directory.file("alone")
        try FileManager.default.createDirectory(atPath: alone, withIntermediateDirectories: false)
        // A hard link, not a copy: while a copy's file is open for writing, a process that
        // another test forks at that moment inherits the descriptor, and executing the copy
        // fails with ETXTBSY ("Text file busy") until that process execs.
        try FileManager.default.linkItem(atPath: Binaries.vsecureRun, toPath: alone + "/vsecure-run")
        try vault.directory.write("vsecure.yml", "version: 1\nsecrets: [ALONE]\n")
        let result = try runProcess(alone + "/vsecure-run", ["--env", "production", "--", "/usr/bin/env"],
                                    environment: vault.environment(), workingDirectory: vault.directory.path, timeout: 60)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdoutText.split(separator: "\n").contains("ALONE=v-alone"), "\(result)")
    }
}
