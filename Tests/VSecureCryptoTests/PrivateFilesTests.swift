import Foundation
import Testing
import VSecureCore
import VSecureCrypto

/// A fresh directory per test, removed afterwards.
struct ScratchDirectory: ~Copyable {
    let path: String
    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("vsecure-crypto-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String, bytes: [UInt8], mode: Int) throws -> String {
        let file = path + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file)
        return file
    }
}

func permissions(_ path: String) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

@Suite("Private files: key files and vault files")
struct PrivateFilesTests {
    @Test("a 32-byte 0600 regular file is read as the key")
    func readsKeyFile() throws {
        let dir = try ScratchDirectory()
        let bytes = Sodium.randomBytes(32)
        let path = try dir.file("vault.key", bytes: bytes, mode: 0o600)
        let key = try PrivateFiles.readKeyFile(path)
        #expect(key.withUnsafeBytes { Array($0) } == bytes)
        #expect(try PrivateFiles.readKeyFile(try dir.file("ro.key", bytes: bytes, mode: 0o400)).count == 32)
    }

    @Test("key files that are group- or world-accessible are refused", arguments: [0o644, 0o640, 0o604, 0o660, 0o606, 0o610, 0o601, 0o777])
    func refusesLooseModes(_ mode: Int) throws {
        let dir = try ScratchDirectory()
        let path = try dir.file("vault.key", bytes: Sodium.randomBytes(32), mode: mode)
        let error = #expect(throws: VSecureError.self) { try PrivateFiles.readKeyFile(path) }
        #expect(error?.status == .key)
        #expect(error?.message.contains("is accessible by group or others (mode 0\(String(mode, radix: 8)))") == true,
                "\(String(describing: error?.message))")
        #expect(error?.hints == ["run: chmod 600 \(path)"])
    }

    @Test("key files of the wrong length are refused", arguments: [0, 1, 31, 33, 64])
    func refusesWrongLength(_ length: Int) throws {
        let dir = try ScratchDirectory()
        let path = try dir.file("vault.key", bytes: Sodium.randomBytes(length), mode: 0o600)
        let error = #expect(throws: VSecureError.self) { try PrivateFiles.readKeyFile(path) }
        #expect(error?.status == .key)
        #expect(error?.message.contains("has \(length) bytes; a vsecure key file has exactly 32") == true)
    }

    @Test("a missing key file, a symlink and a directory are refused")
    func refusesOtherKinds() throws {
        let dir = try ScratchDirectory()
        let missing = #expect(throws: VSecureError.self) { try PrivateFiles.readKeyFile(dir.path + "/none.key") }
        #expect(missing?.status == .key)
        #expect(missing?.message.contains("does not exist") == true)

        let target = try dir.file("real.key", bytes: Sodium.randomBytes(32), mode: 0o600)
        let link = dir.path + "/link.key"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        let symlink = #expect(throws: VSecureError.self) { try PrivateFiles.readKeyFile(link) }
        #expect(symlink?.status == .key)
        #expect(symlink?.message.contains("is a symlink; refusing to follow it") == true)

        let directory = dir.path + "/dir.key"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        let notRegular = #expect(throws: VSecureError.self) { try PrivateFiles.readKeyFile(directory) }
        #expect(notRegular?.status == .key)
        #expect(notRegular?.message.contains("is not a regular file") == true)
    }

    @Test("readPrivateSecret: the owner's 0600 file into locked memory; missing, symlink, loose mode and directory refused")
    func readsPrivateSecrets() throws {
        let dir = try ScratchDirectory()
        let secret = Array("https://vault.example\nvsec_key_0123_abc\n".utf8)
        let good = try dir.file("credentials", bytes: secret, mode: 0o600)
        let read = try PrivateFiles.readPrivateSecret(good, maxBytes: 1024)
        #expect(read.withUnsafeBytes { Array($0) } == secret)

        func refusal(_ path: String) -> String? {
            do {
                _ = try PrivateFiles.readPrivateSecret(path, maxBytes: 1024)
                return nil
            } catch {
                switch error {
                case .missing: return "missing"
                case .refused(let reason): return reason
                }
            }
        }
        #expect(refusal(dir.path + "/none") == "missing")
        let link = dir.path + "/link"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: good)
        #expect(refusal(link) == "it is a symlink")
        let loose = try dir.file("loose", bytes: secret, mode: 0o644)
        #expect(refusal(loose)?.contains("read by others") == true)
        #expect(refusal(dir.path) == "it is not a regular file")
        #expect(refusal(try dir.file("big", bytes: [UInt8](repeating: 65, count: 2048), mode: 0o600))?.contains("larger than") == true)
    }

    @Test("createFile writes a 0600 file with exactly the bytes")
    func createsFile() throws {
        let dir = try ScratchDirectory()
        let path = dir.path + "/new.key"
        let bytes = Sodium.randomBytes(32)
        try bytes.withRawBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in try PrivateFiles.createFile(path, contents: raw) }
        #expect(try permissions(path) == 0o600)
        #expect(FileManager.default.contents(atPath: path).map(Array.init) == bytes)
        #expect(PrivateFiles.kind(of: path) == .regular)
        try PrivateFiles.createEmptyFile(dir.path + "/empty.db")
        #expect(try permissions(dir.path + "/empty.db") == 0o600)
        #expect(FileManager.default.contents(atPath: dir.path + "/empty.db")?.count == 0)
    }

    @Test("createFile never overwrites an existing file")
    func createRefusesExisting() throws {
        let dir = try ScratchDirectory()
        let path = try dir.file("vault.key", bytes: [1, 2, 3], mode: 0o600)
        let error = #expect(throws: VSecureError.self) {
            try [UInt8](repeating: 9, count: 32).withRawBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
                try PrivateFiles.createFile(path, contents: raw)
            }
        }
        #expect(error?.status == .conflict)
        #expect(error?.message.contains("already exists") == true)
        #expect(FileManager.default.contents(atPath: path).map(Array.init) == [1, 2, 3])
    }

    @Test("createFile never writes through a symlink, dangling or not")
    func createRefusesSymlinks() throws {
        let dir = try ScratchDirectory()
        let existingTarget = try dir.file("target", bytes: [1, 2, 3], mode: 0o644)
        let danglingTarget = dir.path + "/dangling-target"
        for (link, target) in [(dir.path + "/a.key", existingTarget), (dir.path + "/b.key", danglingTarget)] {
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
            #expect(throws: VSecureError.self) {
                try [UInt8](repeating: 9, count: 32).withRawBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
                    try PrivateFiles.createFile(link, contents: raw)
                }
            }
            #expect(PrivateFiles.kind(of: link) == .symlink)
        }
        #expect(FileManager.default.contents(atPath: existingTarget).map(Array.init) == [1, 2, 3])
        #expect(PrivateFiles.kind(of: danglingTarget) == .missing)
    }

    @Test("ensureDirectory creates missing parents 0700 and tightens only when asked")
    func directories() throws {
        let dir = try ScratchDirectory()
        let nested = dir.path + "/a/b/c"
        try PrivateFiles.ensureDirectory(nested, tighten: false)
        #expect(PrivateFiles.kind(of: nested) == .directory)
        #expect(try permissions(nested) == 0o700)
        #expect(try permissions(dir.path + "/a") == 0o700)

        let loose = dir.path + "/loose"
        try FileManager.default.createDirectory(atPath: loose, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
        try PrivateFiles.ensureDirectory(loose, tighten: false)
        #expect(try permissions(loose) == 0o755)
        try PrivateFiles.ensureDirectory(loose, tighten: true)
        #expect(try permissions(loose) == 0o700)

        let file = try dir.file("plain", bytes: [], mode: 0o600)
        let error = #expect(throws: VSecureError.self) { try PrivateFiles.ensureDirectory(file, tighten: false) }
        #expect(error?.message.contains("exists and is not a directory") == true)
    }

    @Test("parent directories and kinds")
    func paths() {
        #expect(PrivateFiles.parentDirectory(of: "/a/b/c.db") == "/a/b")
        #expect(PrivateFiles.parentDirectory(of: "/c.db") == "/")
        #expect(PrivateFiles.parentDirectory(of: "c.db") == ".")
        #expect(PrivateFiles.kind(of: "/nonexistent/\(UUID().uuidString)") == .missing)
        #expect(PrivateFiles.kind(of: "/dev/null") == .other)
        #expect(PrivateFiles.kind(of: "/") == .directory)
    }
}
