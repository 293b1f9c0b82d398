#if canImport(Glibc)
import Glibc
#endif
import VSecureCore
import VSecureCrypto
import VSecureVault

// The launch receipts file (`vault.audit.receipts`): its directory is writable by whoever runs
// launches, so its bytes are untrusted. A real audit log is restored from a pristine copy, the
// receipts file is written from the input, and the log is opened, which folds the receipts into
// its chain. Whatever the file holds: no crash, the chain itself stays intact (damage is only
// ever reported as a damaged receipt), every receipt is added at most once, and a file of
// well-formed receipts is added whole and emptied.
//
// The input's first byte chooses how the file is made:
// - even: 1–6 well-formed receipts written through `ReceiptJournal.append` (their items and
//   details taken from the input up to its first 0 byte), then the rest of the input read as
//   (offset: 2 bytes, byte) triples that overwrite a byte, or cut the file there when the byte
//   is 0xFF;
// - odd: the rest of the input is the file.

private struct Fixture {
    let directory: String
    let logPath: String
    let keyPath: String
    let receiptsPath: String
    let pristine: [UInt8]
}

nonisolated(unsafe) private var fixture: Fixture?

private func makeFixture() -> Fixture {
    var template = Array("/tmp/vsecure-fuzz-receipts.XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { fatalError("mkdtemp failed") }
    let directory = String(cString: made)
    let logPath = directory + "/vault.audit.db"
    let keyPath = AuditLog.keyPath(forLog: logPath)
    do {
        // `.full` durability: the log's connection checkpoints when it closes, so the file alone is the state.
        _ = try AuditLog.open(path: logPath, keyPath: keyPath, create: true, durability: .full)
    } catch {
        fatalError("cannot create the fixture log: \(error)")
    }
    atexit {
        guard let fixture else { return }
        for file in [fixture.logPath, fixture.logPath + "-wal", fixture.logPath + "-shm", fixture.keyPath, fixture.receiptsPath] {
            unlink(file)
        }
        rmdir(fixture.directory)
    }
    let pristine = readFile(logPath)
    guard !pristine.isEmpty else { fatalError("cannot read the fixture log") }
    return Fixture(directory: directory, logPath: logPath, keyPath: keyPath,
                   receiptsPath: ReceiptJournal.path(forLog: logPath), pristine: pristine)
}

/// The whole file, or nothing when it is missing (the fixture's files are 0600 and ours).
private func readFile(_ path: String) -> [UInt8] {
    (try? PrivateFiles.readPrivateFile(path, maxBytes: 64 << 20)) ?? []
}

private func writeFile(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { fatalError("cannot write \(path)") }
    defer { close(fd) }
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    guard written == bytes.count else { fatalError("short write to \(path)") }
}

private func restore(_ fixture: Fixture) {
    unlink(fixture.logPath + "-wal")
    unlink(fixture.logPath + "-shm")
    unlink(fixture.receiptsPath)
    writeFile(fixture.logPath, fixture.pristine)
}

/// A receipt whose names and details come from `text` (anything: the event escapes it).
private func receipt(_ n: Int, text: String) -> AuditEvent {
    AuditEvent(time: Timestamp(secondsSinceEpoch: 1_800_000_000 + Int64(n)), actor: AuditEvent.Actor(user: "fuzz@host"),
               resource: .secrets, action: .accessed, environment: "production",
               items: [AuditEvent.Item(name: text.isEmpty ? "A" : text, version: n)],
               details: [("runId", "run_\(n)"), ("command", text)])
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    guard let mode = input.first else { return 0 }
    if fixture == nil { fixture = makeFixture() }
    guard let fixture else { return 0 }
    restore(fixture)

    var wellFormed = 0
    if mode & 1 == 0 {
        let count = Int(mode >> 1) % 6 + 1
        let rest = Array(input.dropFirst())
        // The text runs to the first 0 byte (at most 24 bytes); the edits follow it.
        let split = min(rest.firstIndex(of: 0) ?? rest.count, 24)
        let text = String(decoding: rest.prefix(split), as: UTF8.self)
        for n in 1...count {
            do {
                try ReceiptJournal.append(receipt(n, text: text), logPath: fixture.logPath, keyPath: fixture.keyPath)
            } catch {
                fatalError("appending a well-formed receipt failed: \(error)")
            }
        }
        var file = readFile(fixture.receiptsPath)
        let edits = rest.dropFirst(split + 1)
        var index = edits.startIndex
        var edited = false
        while index + 2 < edits.endIndex, !file.isEmpty {
            let offset = (Int(edits[index]) << 8 | Int(edits[index + 1])) % file.count
            let byte = edits[index + 2]
            if byte == 0xFF { file.removeSubrange(offset...) } else { file[offset] = byte }
            edited = true
            index += 3
        }
        writeFile(fixture.receiptsPath, file)
        if !edited { wellFormed = count }
    } else {
        writeFile(fixture.receiptsPath, Array(input.dropFirst()))
    }

    let log: AuditLog
    do {
        log = try AuditLog.open(path: fixture.logPath, keyPath: fixture.keyPath, create: false)
    } catch {
        fatalError("the log did not open over a fuzzed receipts file: \(error)")
    }
    let verification: AuditVerification
    let count: Int64
    do {
        verification = try log.verify()
        count = try log.count()
    } catch {
        fatalError("verify or count failed: \(error)")
    }
    switch verification.problem {
    case nil, .receiptDamaged?:
        break
    case let other?:
        fatalError("folding receipts damaged the chain itself: \(other)")
    }
    if wellFormed > 0 {
        guard verification.problem == nil, count == Int64(wellFormed), log.receiptsNotice == nil,
              readFile(fixture.receiptsPath).isEmpty else {
            fatalError("\(wellFormed) well-formed receipts: \(count) added, \(verification), notice \(log.receiptsNotice ?? "none")")
        }
    }
    // Opening again adds nothing twice.
    do {
        let again = try AuditLog.open(path: fixture.logPath, keyPath: fixture.keyPath, create: false)
        guard try again.count() == count else { fatalError("a second open added receipts again") }
    } catch {
        fatalError("the second open failed: \(error)")
    }
    return 0
}
