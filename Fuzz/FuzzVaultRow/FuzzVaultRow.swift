#if canImport(Glibc)
import Glibc
#endif
import CSQLite
import VSecureCore
import VSecureCrypto
import VSecureVault

// What the vault decodes from its file: a real vault (key file, one secret with a rotation
// policy) is restored from a pristine copy, the columns the input names are overwritten with
// fuzzed values through SQLite, and the vault is opened read-only, as the launcher opens it, and
// read every way that decodes a row: the header, list, sealedCurrent, fetchSealed + open,
// versions, get, rotation. Damage must come back as errors, never as a crash.
//
// The input is fields separated by 0xFF, one per column below; an empty field keeps the value.

private struct Column {
    enum Kind { case text, blob, number }
    let sql: String
    let kind: Kind
}

private let columns: [Column] = [
    Column(sql: "UPDATE secrets SET tags = ?1", kind: .text),
    Column(sql: "UPDATE secrets SET metadata = ?1", kind: .text),
    Column(sql: "UPDATE secrets SET description = ?1", kind: .text),
    Column(sql: "UPDATE versions SET sealed = ?1", kind: .blob),
    Column(sql: "UPDATE versions SET value_length = ?1", kind: .number),
    Column(sql: "UPDATE secrets SET expires_at = ?1", kind: .number),
    Column(sql: "UPDATE secrets SET current_version = ?1", kind: .number),
    Column(sql: "UPDATE versions SET tags = ?1", kind: .text),
    Column(sql: "UPDATE versions SET metadata = ?1", kind: .text),
    Column(sql: "UPDATE rotation SET period = ?1", kind: .number),
    Column(sql: "UPDATE rotation SET notify_before = ?1", kind: .number),
    Column(sql: "UPDATE rotation SET source = ?1", kind: .text),
    Column(sql: "UPDATE rotation SET length = ?1", kind: .number),
    Column(sql: "UPDATE rotation SET charset = ?1", kind: .text),
    Column(sql: "UPDATE rotation SET argv = ?1", kind: .text),
    Column(sql: "UPDATE rotation SET next_due_at = ?1", kind: .number),
    Column(sql: "UPDATE secrets SET name = ?1", kind: .text),
    Column(sql: "UPDATE vault_meta SET value = ?1 WHERE key = 'environments'", kind: .blob),
    Column(sql: "UPDATE vault_meta SET value = ?1 WHERE key = 'default_environment'", kind: .blob),
    Column(sql: "UPDATE vault_meta SET value = ?1 WHERE key = 'created_at'", kind: .blob),
    Column(sql: "UPDATE vault_meta SET value = ?1 WHERE key = 'key_protection'", kind: .blob),
    Column(sql: "INSERT OR REPLACE INTO vault_meta(key, value) VALUES ('kdf_opslimit', ?1)", kind: .blob),
    Column(sql: "INSERT OR REPLACE INTO vault_meta(key, value) VALUES ('kdf_memlimit', ?1)", kind: .blob),
    Column(sql: "INSERT OR REPLACE INTO vault_meta(key, value) VALUES ('kdf_salt', ?1)", kind: .blob),
]

private let now = Timestamp(secondsSinceEpoch: 1_800_000_000)
private let production = try! EnvironmentName("production")
private let apiKey = try! SecretName("API_KEY")

/// The vault's file as created, restored before every input.
private struct Fixture {
    let directory: String
    let vaultPath: String
    let keyPath: String
    let pristine: [UInt8]
}

nonisolated(unsafe) private var fixture: Fixture?

private func makeFixture() -> Fixture {
    var template = Array("/tmp/vsecure-fuzz-vault.XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { fatalError("mkdtemp failed") }
    let directory = String(cString: made)
    let vaultPath = directory + "/vault.db", keyPath = directory + "/vault.key"
    do {
        let vault = try LocalVault.create(at: vaultPath, protection: .keyFile(path: keyPath), now: now)
        var value = Array("correct horse battery staple".utf8)
        let attributes = SecretAttributes(tags: [try Tag("api"), try Tag("prod")],
                                          metadata: [try MetadataEntry(key: "owner", value: "team=payments")],
                                          expiresAt: Timestamp(secondsSinceEpoch: 1_900_000_000), description: "payments key")
        // Through Result: a typed-throws closure here crashes swift-frontend 6.3.1 under -sanitize=address.
        let created = value.withUnsafeBytes { raw in
            Result { () throws(VSecureError) -> SecretSummary in
                try vault.create(environment: production, name: apiKey, value: raw, attributes: attributes, actor: "fuzz", now: now)
            }
        }
        _ = try created.get()
        try vault.setRotationPolicy(environment: production, name: apiKey,
                                    policy: try RotationPolicy(period: SecretDuration(parsing: "30d"), source: .manual), now: now)
        value = []
    } catch {
        fatalError("cannot create the fixture vault: \(error)")
    }
    // libFuzzer leaves through exit(); take the scratch directory along.
    atexit {
        guard let fixture else { return }
        for file in [fixture.vaultPath, fixture.vaultPath + "-wal", fixture.vaultPath + "-shm", fixture.keyPath] { unlink(file) }
        rmdir(fixture.directory)
    }
    // The vault has closed (checkpointed); its file alone is the whole state.
    return Fixture(directory: directory, vaultPath: vaultPath, keyPath: keyPath, pristine: readFile(vaultPath))
}

private func readFile(_ path: String) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { fatalError("cannot read \(path)") }
    defer { close(fd) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { break }
        out += chunk[0..<n]
    }
    return out
}

private func restore(_ fixture: Fixture) {
    unlink(fixture.vaultPath + "-wal")
    unlink(fixture.vaultPath + "-shm")
    let fd = open(fixture.vaultPath, O_WRONLY | O_TRUNC)
    guard fd >= 0 else { fatalError("cannot restore the fixture vault") }
    defer { close(fd) }
    let written = fixture.pristine.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    guard written == fixture.pristine.count else { fatalError("short write restoring the fixture vault") }
}

/// Applies the fuzzed columns; false when SQLite refuses them (a NOT NULL or UNIQUE
/// constraint), which is not the vault's concern.
private func damage(_ fixture: Fixture, with fields: [ArraySlice<UInt8>]) -> Bool {
    var db: OpaquePointer?
    guard sqlite3_open_v2(fixture.vaultPath, &db, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK else { fatalError("cannot open the fixture") }
    defer { sqlite3_close_v2(db) }
    // One transaction without fsync: the file is thrown away after this input anyway.
    sqlite3_exec(db, "PRAGMA synchronous=OFF; BEGIN", nil, nil, nil)
    defer { sqlite3_exec(db, "COMMIT", nil, nil, nil) }
    for (column, field) in zip(columns, fields) where !field.isEmpty {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, column.sql, -1, &statement, nil) == SQLITE_OK else { fatalError("bad fuzz SQL: \(column.sql)") }
        defer { sqlite3_finalize(statement) }
        let bytes = Array(field)
        switch column.kind {
        case .number where Int64(String(decoding: bytes, as: UTF8.self)) != nil:
            sqlite3_bind_int64(statement, 1, Int64(String(decoding: bytes, as: UTF8.self))!)
        case .number where bytes == [UInt8(ascii: "-")]:
            sqlite3_bind_null(statement, 1)
        case .text, .number:
            _ = bytes.withUnsafeBufferPointer { p in
                p.withMemoryRebound(to: CChar.self) { vsecure_sqlite3_bind_text_copy(statement, 1, $0.baseAddress, Int32($0.count)) }
            }
        case .blob:
            _ = bytes.withUnsafeBytes { vsecure_sqlite3_bind_blob_copy(statement, 1, $0.baseAddress, Int32($0.count)) }
        }
        guard sqlite3_step(statement) == SQLITE_DONE else { return false }
    }
    return true
}

private func check(_ attributes: SecretAttributes) {
    for tag in attributes.tags where (try? Tag(tag.rawValue)) != tag { fatalError("a decoded tag is invalid") }
    for entry in attributes.metadata where (try? MetadataEntry(key: entry.key, value: entry.value)) != entry {
        fatalError("a decoded metadata entry is invalid")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    if fixture == nil { fixture = makeFixture() }
    let fixture = fixture!
    let fields = Array(UnsafeBufferPointer(start: data, count: size)).split(separator: 0xFF, omittingEmptySubsequences: false)
    guard fields.count <= columns.count else { return 0 }
    restore(fixture)
    guard fields.allSatisfy(\.isEmpty) || damage(fixture, with: fields) else { return 0 }

    let keys = KeySource(keyFilePath: fixture.keyPath, passphrase: { () throws(VSecureError) -> SecureBytes in
        throw VSecureError(.usage, "no passphrase while fuzzing")
    })
    guard let vault = try? LocalVault.open(at: fixture.vaultPath, readOnly: true, keys: keys) else { return 0 }
    guard !vault.environments.isEmpty, vault.environments.contains(vault.defaultEnvironment) else {
        fatalError("opened a vault whose default environment is not one of its environments")
    }
    if let listed = try? vault.list(LocalVault.ListQuery(), now: now) {
        for secret in listed { check(secret.attributes) }
    }
    if let (secret, sealed) = try? vault.sealedCurrent(environment: production, name: apiKey) {
        check(secret.attributes)
        openSealed(sealed, in: vault)
        _ = try? vault.rotation(secretID: secret.id)
    }
    if let batch = try? vault.fetchSealed(environment: production, names: [apiKey], tagSelections: [[try! Tag("api")]]) {
        for sealed in batch { openSealed(sealed, in: vault) }
    }
    if let (secret, history) = try? vault.versions(environment: production, name: apiKey) {
        check(secret.attributes)
        _ = history
    }
    if let (_, _, value) = try? vault.get(environment: production, name: apiKey, version: nil) { _ = value.count }
    _ = try? vault.rotationEntries(environment: nil)
    return 0
}

private func openSealed(_ sealed: SealedSecret, in vault: LocalVault) {
    // The recorded length is the file's word; read into at most 64 KiB, which open must refuse
    // whenever it disagrees with the box.
    let length = min(max(sealed.valueLength, 0), 65_536)
    let destination = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 1)
    defer { destination.deallocate() }
    _ = try? vault.open(sealed, environment: production, into: destination)
}
