#if canImport(Glibc)
import Glibc
#endif
import CLinux
import VSecureCore
import VSecureCrypto

/// Launch receipts waiting to join the audit log: `vault.audit.receipts` beside
/// `vault.audit.db`. A launch appends its receipt here instead of opening the log's SQLite file
/// (which cost about a millisecond of every launch), and the next `vsecure` command that opens
/// the log folds the waiting receipts into its chain, in order, with their launch times.
///
/// The file is text, one line each:
///
///     vsecure-receipts 1 <nonce: 32 hex digits>
///     <the event's stored JSON> <MAC: 64 hex digits>
///     ...
///
/// Each MAC is an HMAC-SHA256 under the audit log's key over the previous line's MAC (for the
/// first receipt, a MAC of the nonce) and the event, so a receipt that was edited, removed from
/// the middle or moved is found when the file is folded, as in the log itself. Cutting receipts
/// off the end, or removing the whole file, is not detectable: the same limit as rolling the
/// whole log back (docs/audit.md). Writers take an exclusive `flock` on the file; the folder
/// holds it from reading the file to emptying it, so no receipt lands in between.
public enum ReceiptJournal {
    static let magic = "vsecure-receipts 1 "
    static let macHexDigits = 2 * HMACSHA256.macBytes

    /// `x.audit.db` → `x.audit.receipts`; any other name gets `.receipts` appended.
    public static func path(forLog logPath: String) -> String {
        (logPath.hasSuffix(".db") ? String(logPath.dropLast(3)) : logPath) + ".receipts"
    }

    static func chainStart(key: SecureBytes, nonce: [UInt8]) -> [UInt8] {
        var hmac = HMACSHA256(key: key)
        hmac.update(Array("vsecure-audit-receipts-v1\0".utf8))
        hmac.update(nonce)
        return hmac.finalize()
    }

    static func receiptMAC(key: SecureBytes, previous: [UInt8], event: [UInt8]) -> [UInt8] {
        var hmac = HMACSHA256(key: key)
        hmac.update(Array("vsecure-audit-receipt-v1\0".utf8))
        hmac.update(previous)
        hmac.update(event)
        return hmac.finalize()
    }

    // MARK: - Appending (the launcher)

    /// Appends `event` to the receipts file of the log at `logPath`, under the key at `keyPath`.
    /// One `write`, no sync: like the log's own `synchronous=NORMAL` commits, a receipt survives
    /// the launcher or the program crashing, but not a power cut in the next moments.
    public static func append(_ event: AuditEvent, logPath: String, keyPath: String) throws(VSecureError) {
        let key = try PrivateFiles.readKeyFile(keyPath)
        let path = Self.path(forLog: logPath)
        let fd = vsecure_open_append_nofollow(path)
        guard fd >= 0 else { throw PrivateFiles.ioError("cannot open the launch receipts file", path: path) }
        defer { _ = close(fd) }
        try lock(fd, path: path)
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw PrivateFiles.ioError("cannot read", path: path) }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw VSecureError(.io, "\(Quoted(path)) is not a regular file; refusing to write launch receipts to it")
        }
        let size = Int(info.st_size)
        var line: [UInt8] = []
        let previous: [UInt8]
        if size == 0 {
            let nonce = Sodium.randomBytes(16)
            line.append(contentsOf: Array((magic + hexString(nonce) + "\n").utf8))
            previous = chainStart(key: key, nonce: nonce)
        } else {
            // The newest MAC is the end of the last line: " <64 hex digits>\n".
            var tail = [UInt8](repeating: 0, count: macHexDigits + 2)
            let read = tail.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(size - $0.count)) }
            guard size >= tail.count, read == tail.count, tail.first == UInt8(ascii: " "), tail.last == UInt8(ascii: "\n"),
                  let mac = bytesFromHex(String(decoding: tail.dropFirst().dropLast(), as: UTF8.self)) else {
                throw VSecureError(.integrity, "the launch receipts file \(Quoted(path)) does not end in a complete receipt; nothing was added to it",
                                   hint: "run `vsecure audit:verify`")
            }
            previous = mac
        }
        let json = event.storedJSON(seq: 0)
        line.append(contentsOf: json)
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: Array(hexString(receiptMAC(key: key, previous: previous, event: json)).utf8))
        line.append(UInt8(ascii: "\n"))
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == line.count else {
            let code = written < 0 ? vsecure_errno() : ENOSPC
            // Holding the lock: take back a partial line, so the file still ends in a whole receipt.
            _ = ftruncate(fd, off_t(size))
            throw PrivateFiles.ioError("cannot write the launch receipt to", path: path, code: code)
        }
    }

    static func lock(_ fd: Int32, path: String) throws(VSecureError) {
        while flock(fd, LOCK_EX) != 0 {
            guard vsecure_errno() == EINTR else { throw PrivateFiles.ioError("cannot lock", path: path) }
        }
    }

    // MARK: - Reading (the folder)

    /// Reads a receipts file line by line, checking each receipt's MAC against the one before;
    /// it stops at the first line that does not check out. Lines come in batches (the folder
    /// reads the file in bounded slices), each line without its "\n".
    struct Reader {
        let key: SecureBytes
        /// The file's nonce, once the first line was read.
        private(set) var nonce: [UInt8]?
        /// Receipts read so far that checked out.
        private(set) var count: Int64 = 0
        /// The number (1-based) of the first receipt that does not check out; 0: the first line.
        private(set) var damagedAt: Int64?
        private var previous: [UInt8] = []

        init(key: SecureBytes) { self.key = key }

        /// The receipts among `lines` that check out, in order, up to the first that does not.
        mutating func read<Lines: Sequence>(_ lines: Lines) -> [(event: AuditEvent, mac: [UInt8])]
        where Lines.Element == ArraySlice<UInt8> {
            var receipts: [(event: AuditEvent, mac: [UInt8])] = []
            for line in lines {
                guard damagedAt == nil else { break }
                guard nonce != nil else {
                    let magicBytes = Array(ReceiptJournal.magic.utf8)
                    guard line.starts(with: magicBytes),
                          let found = bytesFromHex(String(decoding: line.dropFirst(magicBytes.count), as: UTF8.self)), found.count == 16 else {
                        damagedAt = 0
                        break
                    }
                    nonce = found
                    previous = chainStart(key: key, nonce: found)
                    continue
                }
                guard let receipt = check(line) else {
                    damagedAt = count + 1
                    break
                }
                receipts.append(receipt)
                previous = receipt.mac
                count += 1
            }
            return receipts
        }

        /// Marks the receipt after the last one read as damaged: the file ends in a cut line.
        mutating func cutShort() {
            if damagedAt == nil { damagedAt = nonce == nil ? 0 : count + 1 }
        }

        private func check(_ line: ArraySlice<UInt8>) -> (event: AuditEvent, mac: [UInt8])? {
            guard line.count > macHexDigits + 1, line[line.endIndex - macHexDigits - 1] == UInt8(ascii: " "),
                  let mac = bytesFromHex(String(decoding: line.suffix(macHexDigits), as: UTF8.self)) else { return nil }
            let json = Array(line.dropLast(macHexDigits + 1))
            let expected = receiptMAC(key: key, previous: previous, event: json)
            // The MAC checks the bytes; reading them back must give the same bytes, or the event
            // would enter the log other than as it was written.
            guard expected.withUnsafeBytes({ a in mac.withUnsafeBytes { b in Sodium.constantTimeEqual(a, b) } }),
                  let value = try? JSONParser.parse(json), let event = AuditEvent(json: value), event.storedJSON(seq: 0) == json
            else { return nil }
            return (event, mac)
        }
    }
}
