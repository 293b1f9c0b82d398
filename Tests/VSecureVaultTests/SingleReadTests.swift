import Foundation
import Testing
import TestSupport
import VSecureCore
import VSecureCrypto
@testable import VSecureVault

/// The launcher's way of reading a vault (`LocalVault.open(readOnly:singleRead:)`): SQLite's
/// shared WAL index opened read-only, and one read transaction from the header to the last value.
@Suite("LocalVault: single-read openings (the launcher's)")
struct SingleReadTests {
    @Test("the URI form of a path percent-encodes everything but letters, digits and /-._~; absolute paths get an empty authority")
    func uriEncoding() {
        #expect(SQLiteDatabase.uri("/tmp/a b/v?x#1%.db", query: "readonly_shm=1") == "file:///tmp/a%20b/v%3Fx%231%25.db?readonly_shm=1")
        #expect(SQLiteDatabase.uri("/home/é/v_1-2~.db", query: "q") == "file:///home/%C3%A9/v_1-2~.db?q")
        #expect(SQLiteDatabase.uri("//tmp/v.db", query: "q") == "file:////tmp/v.db?q", "not a host named tmp")
        #expect(SQLiteDatabase.uri("vault.db", query: "q") == "file:vault.db?q")
    }

    @Test("a vault under a path with a space, ?, # and % opens both ways: without a -shm file and with one")
    func awkwardPath() throws {
        let scratch = try ScratchDirectory()
        let vaultPath = scratch.child("odd dir?#%/vault.db"), keyPath = scratch.child("odd dir?#%/vault.key")
        do {
            let writer = try LocalVault.create(at: vaultPath, protection: .keyFile(path: keyPath), now: time(t0))
            try writer.put("API_KEY", utf8("one"))
        }
        #expect(PrivateFiles.kind(of: vaultPath + "-shm") == .missing, "the writer's closing removed it")
        for _ in 0..<2 {
            let reader = try LocalVault.open(at: vaultPath, readOnly: true, singleRead: true, keys: keyFileSource(keyPath))
            #expect(try BatchReadTests.read(reader, names: ["API_KEY"], tags: []) == ["API_KEY": utf8("one")])
        }
        #expect(PrivateFiles.kind(of: vaultPath + "-shm") == .regular)
    }

    @Test("a vault in a directory reached through a symlink is made and read, its log too; the file itself must not be a link")
    func linkedDirectory() throws {
        let scratch = try ScratchDirectory()
        let real = scratch.child("real"), linked = scratch.child("linked")
        try FileManager.default.createDirectory(atPath: real, withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: linked, withDestinationPath: real)
        let vaultPath = linked + "/vault.db", keyPath = linked + "/vault.key"
        do {
            let writer = try LocalVault.create(at: vaultPath, protection: .keyFile(path: keyPath), now: time(t0))
            try writer.put("API_KEY", utf8("one"))
        }
        #expect(PrivateFiles.kind(of: real + "/vault.db") == .regular)
        let reader = try LocalVault.open(at: vaultPath, readOnly: true, singleRead: true, keys: keyFileSource(keyPath))
        #expect(try BatchReadTests.read(reader, names: ["API_KEY"], tags: []) == ["API_KEY": utf8("one")])
        let log = try AuditLog.open(path: AuditLog.defaultPath(forVault: vaultPath), keyPath: linked + "/vault.audit.key", create: true)
        #expect(try log.count() == 0)

        let link = linked + "/link.db"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: vaultPath)
        let refused = #expect(throws: VSecureError.self) { try LocalVault.open(at: link, keys: keyFileSource(keyPath)) }
        #expect(refused?.message.contains("is a symlink") == true)
        let direct = #expect(throws: VSecureError.self) { try SQLiteDatabase(path: link, create: false) }
        #expect(direct?.message.contains(link) == true, "the error names the path as given")
    }

    @Test("-shm removed between the look for it and the first read (the last writer closing): the opening falls back to the usual one")
    func sharedIndexGoneAfterTheLook() throws {
        let scratch = try ScratchDirectory()
        let vaultPath = scratch.child("vault.db"), keyPath = scratch.child("vault.key")
        do {
            let writer = try LocalVault.create(at: vaultPath, protection: .keyFile(path: keyPath), now: time(t0))
            try writer.put("API_KEY", utf8("one"))
        }
        #expect(PrivateFiles.kind(of: vaultPath + "-shm") == .missing, "the writer's closing removed it")
        let db = try SQLiteDatabase(path: vaultPath, create: false, readOnly: true, readIndexOnly: true, sharedIndexFound: true)
        #expect(try db.scalarInt("PRAGMA user_version") == VaultFormat.currentVersion)
        #expect(PrivateFiles.kind(of: vaultPath + "-shm") == .regular, "opened as usual, it leaves -shm for the next")
    }

    @Test("a vault named with a leading // opens single-read once -shm exists")
    func slashesAndRelativePaths() throws {
        let fixture = try VaultFixture()
        try fixture.vault.put("API_KEY", utf8("one"))
        #expect(PrivateFiles.kind(of: fixture.vaultPath + "-shm") == .regular, "the open writer keeps -shm")
        let doubled = "/" + fixture.vaultPath
        let reader = try LocalVault.open(at: doubled, readOnly: true, singleRead: true, keys: keyFileSource(fixture.keyPath))
        #expect(try BatchReadTests.read(reader, names: ["API_KEY"], tags: []) == ["API_KEY": utf8("one")])
    }

    @Test("the values are one snapshot from the opening on: a commit made meanwhile is not seen, the next opening sees it")
    func oneSnapshot() throws {
        let fixture = try VaultFixture()
        try fixture.vault.put("API_KEY", utf8("one"))
        let reader = try LocalVault.open(at: fixture.vaultPath, readOnly: true, singleRead: true, keys: keyFileSource(fixture.keyPath))
        try fixture.vault.change("API_KEY", to: utf8("two"))
        try fixture.vault.put("NEW_KEY", utf8("new"))
        #expect(try BatchReadTests.read(reader, names: ["API_KEY", "NEW_KEY"], tags: []) == ["API_KEY": utf8("one")])
        let next = try LocalVault.open(at: fixture.vaultPath, readOnly: true, singleRead: true, keys: keyFileSource(fixture.keyPath))
        #expect(try BatchReadTests.read(next, names: ["API_KEY", "NEW_KEY"], tags: []) == ["API_KEY": utf8("two"), "NEW_KEY": utf8("new")])
    }

    @Test("under a passphrase, no snapshot is held while the passphrase is asked for and Argon2id runs; the values come from a snapshot begun after")
    func passphraseLetsGoOfTheSnapshot() throws {
        let scratch = try ScratchDirectory()
        let vaultPath = scratch.child("vault.db")
        let writer = try LocalVault.create(at: vaultPath, protection: .passphrase(passphrase("pw"), RekeyTests.fast), now: time(t0))
        try writer.put("API_KEY", utf8("one"))
        var checkpointBusy: Int64 = -1
        let keys = KeySource(keyFilePath: "/nonexistent/vsecure-test.key", passphrase: { () throws(VSecureError) -> SecureBytes in
            // The reader has read the header by now. A commit and a full checkpoint go through
            // only if it holds no snapshot (no busy timeout here: the checkpoint answers at once).
            do { _ = try writer.change("API_KEY", to: utf8("two")) } catch { throw VSecureError(.internalError, "\(error)") }
            let other = try SQLiteDatabase(path: vaultPath, create: false)
            other.setBusyTimeout(milliseconds: 0)
            let statement = try other.prepare("PRAGMA wal_checkpoint(TRUNCATE)")
            if try statement.step() { checkpointBusy = statement.int64(0) }
            return passphrase("pw")
        })
        let reader = try LocalVault.open(at: vaultPath, readOnly: true, singleRead: true, keys: keys)
        #expect(checkpointBusy == 0, "the checkpoint was held off: the reader kept its snapshot while asking for the passphrase")
        #expect(try BatchReadTests.read(reader, names: ["API_KEY"], tags: []) == ["API_KEY": utf8("two")])
        // From here on the reader holds its second snapshot: later commits are not seen.
        _ = try writer.change("API_KEY", to: utf8("three"))
        #expect(try BatchReadTests.read(reader, names: ["API_KEY"], tags: []) == ["API_KEY": utf8("two")])
    }

    @Test("a format-1 vault with a -shm file left by an earlier reader still migrates on a single-read opening")
    func migratesWithSharedIndexPresent() throws {
        let (scratch, vaultPath, keyPath) = try formatOneVaultCopy()
        defer { withExtendedLifetime(scratch) {} }
        do {
            let earlier = try SQLiteDatabase(path: vaultPath, create: false, readOnly: true)
            #expect(try earlier.scalarInt("PRAGMA user_version") == 1)
        }
        #expect(PrivateFiles.kind(of: vaultPath + "-shm") == .regular)

        let vault = try LocalVault.open(at: vaultPath, readOnly: true, singleRead: true, keys: keyFileSource(keyPath))
        #expect(vault.formatVersion == VaultFormat.currentVersion)
        #expect(try vault.read("API_KEY") == VaultVectorGenerator.apiKeyV1)
        let check = try SQLiteDatabase(path: vaultPath, create: false, readOnly: true)
        #expect(try check.scalarInt("PRAGMA user_version") == VaultFormat.currentVersion)
    }
}

/// The same through the built `vsecure-run`, against writers in this process.
@Suite("vsecure-run reads the vault without writing its -shm file")
struct LaunchSharedIndexTests {
    /// A vault holding API_KEY = "one" and a manifest for it; no connection is left open.
    struct Setup {
        let directory: ScratchDirectory
        let vaultPath: String
        let keyPath: String
        let manifest: String

        init() throws {
            directory = try ScratchDirectory()
            vaultPath = directory.child("vault.db")
            keyPath = directory.child("vault.key")
            manifest = directory.child("vsecure.yml")
            let vault = try LocalVault.create(at: vaultPath, protection: .keyFile(path: keyPath), now: time(t0))
            try vault.put("API_KEY", utf8("one"))
            try "version: 1\nenvironment: production\nsecrets:\n  - API_KEY\n".write(toFile: manifest, atomically: true, encoding: .utf8)
        }

        func writer() throws -> LocalVault { try LocalVault.open(at: vaultPath, keys: keyFileSource(keyPath)) }

        /// What the launched program sees as API_KEY; `relative` names the vault `vault.db`,
        /// from the directory that holds it.
        func launchedValue(relative: Bool = false) throws -> String {
            let environment = minimalEnvironment(home: directory.path).merging([
                "VSECURE_VAULT": relative ? "vault.db" : vaultPath, "VSECURE_KEY_FILE": keyPath, "VSECURE_ACTOR": "tester@e2e",
            ]) { $1 }
            let result = try runProcess(Binaries.vsecureRun, ["--manifest", manifest, "--", "/usr/bin/printenv", "API_KEY"],
                                        environment: environment, workingDirectory: directory.path)
            #expect(result.status == 0, "\(result)")
            return String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .newlines)
        }
    }

    /// Inode, size and modification time in nanoseconds; empty when there is no such file.
    static func identity(_ path: String) -> [Int] {
        var info = stat()
        guard stat(path, &info) == 0 else { return [] }
        return [Int(info.st_ino), Int(info.st_size), info.st_mtim.tv_sec * 1_000_000_000 + info.st_mtim.tv_nsec]
    }

    @Test("with no other connection, a launch leaves the -shm file as it found it (it used to reset and regrow it)")
    func sharedIndexUntouched() throws {
        let setup = try Setup()
        let shm = setup.vaultPath + "-shm"
        #expect(Self.identity(shm).isEmpty, "the writer's closing removed -shm")
        #expect(try setup.launchedValue() == "one")
        let before = Self.identity(shm)
        #expect(before.count == 3, "the first launch leaves a -shm file for the next")
        usleep(20_000)
        #expect(try setup.launchedValue() == "one")
        #expect(try setup.launchedValue(relative: true) == "one", "a relative vault path, as a URI relative to the directory")
        #expect(Self.identity(shm) == before)
    }

    @Test("a launch sees what a writer that is still open committed (its WAL not yet copied back)")
    func liveWriter() throws {
        let setup = try Setup()
        #expect(try setup.launchedValue() == "one")
        let writer = try setup.writer()
        try writer.change("API_KEY", to: utf8("two"))
        #expect(try setup.launchedValue() == "two")
        _ = try writer.change("API_KEY", to: utf8("three"))
        #expect(try setup.launchedValue() == "three")
    }

    @Test("a launch reads committed pages left in the WAL when no connection keeps the index up")
    func walWithoutLiveIndex() throws {
        let setup = try Setup()
        #expect(try setup.launchedValue() == "one")
        do {
            let writer = try setup.writer()
            try writer.db.keepWALOnClose()
            try writer.change("API_KEY", to: utf8("two"))
        }
        #expect((try FileManager.default.attributesOfItem(atPath: setup.vaultPath + "-wal")[.size] as? Int ?? 0) > 0,
                "the WAL still holds the commit")
        #expect(try setup.launchedValue() == "two")
    }
}
