#if canImport(Glibc)
import Glibc
#endif
import CLinux
import CSQLite
import VSecureCore
import VSecureCrypto
import VSecureStore

/// The tamper-evident audit log: an append-only SQLite table of entries, each carrying an
/// HMAC-SHA256 over its content, its sequence number and the previous entry's MAC, under a key
/// of its own (`audit.key`, never the vault's data key). The newest sequence number and MAC are
/// kept in an anchor row with a MAC of its own, written in the same transaction as the entries,
/// so cutting entries off the end is detected as surely as editing, removing or moving one.
///
/// What the chain cannot show: a rollback of the whole file (log and anchor together) to an
/// older copy. `verify` returns the head (sequence number and MAC); keeping it somewhere else
/// (a ticket, another machine) turns that into a detectable rollback too.
///
/// One log per vault: `vault.db` writes `vault.audit.db` and `vault.audit.key` beside it; a
/// server writes `audit.db` and `audit.key` in its data directory.
public final class AuditLog {
    public let path: String
    let db: SQLiteDatabase
    private let durability: Durability
    /// See `init`: the WAL size past which a `.normal` writer checkpoints and truncates it.
    static let launchWALLimit = 256 * 1024
    private let key: SecureBytes
    /// The log's random id, fixed when it was created (public: a server binds to it).
    public let logID: [UInt8]
    /// Set when launch receipts waiting in the receipts file could not all be added to the log
    /// (`foldReceipts`): what went wrong, for a warning. The receipts stay in their file.
    public private(set) var receiptsNotice: String?
    /// A receipt in the receipts file that does not check out; `verify` reports it.
    private var damagedReceipt: Int64?

    /// How a commit reaches the disk. `.full` syncs the WAL on every commit (the server, and the
    /// CLI's writes); `.normal` syncs at checkpoints, so a power cut may lose the newest entries
    /// but never leaves the chain inconsistent.
    public enum Durability: Sendable { case full, normal }

    static let schema = """
        CREATE TABLE IF NOT EXISTS audit_meta(key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL);
        CREATE TABLE IF NOT EXISTS audit_entries(
            seq INTEGER PRIMARY KEY NOT NULL,
            time INTEGER NOT NULL,
            resource TEXT NOT NULL,
            action TEXT NOT NULL,
            result TEXT NOT NULL,
            actor TEXT,
            environment TEXT,
            name TEXT,
            event TEXT NOT NULL,
            mac BLOB NOT NULL
        );
        CREATE INDEX IF NOT EXISTS audit_entries_time ON audit_entries(time);
        CREATE TABLE IF NOT EXISTS audit_anchor(
            id INTEGER PRIMARY KEY CHECK (id = 1),
            seq INTEGER NOT NULL,
            mac BLOB NOT NULL,
            anchor_mac BLOB NOT NULL
        );
        """

    /// `vault.db` → `vault.audit.db`; any other name gets `.audit.db` appended.
    public static func defaultPath(forVault vaultPath: String) -> String {
        (vaultPath.hasSuffix(".db") ? String(vaultPath.dropLast(3)) : vaultPath) + ".audit.db"
    }

    /// `x.audit.db` → `x.audit.key`; `audit.db` → `audit.key`.
    public static func keyPath(forLog path: String) -> String {
        (path.hasSuffix(".db") ? String(path.dropLast(3)) : path) + ".key"
    }

    /// Opens the log at `path` with the key at `keyPath`. With `create`, a missing log and key
    /// are made (mode 0600). A log whose key is missing, or a key whose log is missing, is an
    /// error: one of them was removed, and starting afresh would hide that.
    public static func open(path: String, keyPath: String, create: Bool,
                            durability: Durability = .full) throws(VSecureError) -> AuditLog {
        try open(path: path, keyPath: keyPath, create: create, durability: durability, receiptsSlice: receiptsSlice)
    }

    /// `open`, reading waiting launch receipts in slices of `receiptsSlice` bytes (tests use small ones).
    static func open(path: String, keyPath: String, create: Bool, durability: Durability,
                     receiptsSlice: Int) throws(VSecureError) -> AuditLog {
        let logKind = PrivateFiles.kind(of: path), keyKind = PrivateFiles.kind(of: keyPath)
        for (file, kind) in [(path, logKind), (keyPath, keyKind)] where kind == .symlink || kind == .directory || kind == .other {
            throw VSecureError(.io, "\(Quoted(file)) is not a regular file; refusing to use it for the audit log")
        }
        switch (logKind, keyKind) {
        case (.missing, .missing):
            guard create else {
                throw VSecureError(.notFound, "there is no audit log at \(Quoted(path))", hint: "it is created by the first write, read or launch")
            }
            return try make(path: path, keyPath: keyPath, durability: durability, receiptsSlice: receiptsSlice)
        case (.missing, _):
            // Another process may be creating the log right now (its key comes first).
            guard awaitCreation(of: path, keyPath: keyPath) else {
                throw VSecureError(.integrity, "the audit log \(Quoted(path)) is missing, but its key \(Quoted(keyPath)) exists: the log was removed",
                                   hint: "restore the log from a backup; to start a new log on purpose, move the key away first")
            }
            return try open(path: path, keyPath: keyPath, create: false, durability: durability, receiptsSlice: receiptsSlice)
        case (_, .missing):
            throw VSecureError(.key, "the audit log's key \(Quoted(keyPath)) is missing",
                               hint: "restore it from a backup; without it the log cannot be verified or extended")
        default:
            let log = try openExisting(path: path, key: try PrivateFiles.readKeyFile(keyPath), durability: durability)
            log.foldReceipts(slice: receiptsSlice)
            return log
        }
    }

    /// Opens a log that exists, saying so in words about the audit log when the file is not
    /// one (empty, another SQLite database, a dropped table): SQLite's own errors name a vault.
    private static func openExisting(path: String, key: SecureBytes, durability: Durability) throws(VSecureError) -> AuditLog {
        do {
            return try AuditLog(path: path, key: key, durability: durability)
        } catch {
            guard error.status == .integrity || error.status == .internalError else { throw error }
            // SQLite's words, without the vault-minded context of `SQLiteDatabase.error`.
            let detail = error.message.hasPrefix("vault query failed: ") ? String(error.message.dropFirst("vault query failed: ".count)) : error.message
            throw VSecureError(.integrity, "the audit log \(Quoted(path)) is damaged or is not an audit log (\(detail))",
                               hint: "restore it from a backup; nothing is written to it until then")
        }
    }

    /// Creates the key (exclusively: of two processes creating the log at once, the one that
    /// makes the key makes the log), then the log under a temporary name, and links it into
    /// place only once its schema, id and anchor are written, so nobody opens a log half made.
    /// The other process waits for it (`awaitCreation`) and opens it.
    private static func make(path: String, keyPath: String, durability: Durability, receiptsSlice: Int) throws(VSecureError) -> AuditLog {
        let key = SecureBytes.random(count: PrivateFiles.keyFileBytes)
        do {
            try key.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in try PrivateFiles.createFile(keyPath, contents: raw) }
        } catch where error.status == .conflict {
            return try open(path: path, keyPath: keyPath, create: false, durability: durability, receiptsSlice: receiptsSlice)
        }
        let staging = path + ".new-\(getpid())"
        do {
            removeFile(staging)
            try PrivateFiles.createEmptyFile(staging)
            do {
                // A rollback journal while it is made, so the file alone holds everything when the
                // connection closes; then WAL, like every connection to the log.
                let db = try SQLiteDatabase(path: staging, create: false)
                try db.execute("PRAGMA synchronous=FULL")
                try db.transaction(immediate: true) { () throws(VSecureError) in
                    try db.execute(schema)
                    let logID = Sodium.randomBytes(16)
                    try db.prepare("INSERT INTO audit_meta(key, value) VALUES ('log_id', ?1), ('format', ?2)")
                        .bind(1, blob: logID).bind(2, blob: Array("1".utf8)).run()
                    let genesis = chainStart(key: key, logID: logID)
                    try db.prepare("INSERT INTO audit_anchor(id, seq, mac, anchor_mac) VALUES (1, 0, ?1, ?2)")
                        .bind(1, blob: genesis).bind(2, blob: anchorMAC(key: key, logID: logID, seq: 0, mac: genesis)).run()
                }
                try db.execute("PRAGMA journal_mode=WAL")
            }
            try linkDurably(from: staging, to: path)
            removeFile(staging)
        } catch {
            for file in [staging, staging + "-wal", staging + "-shm", keyPath] { removeFile(file) }
            throw error
        }
        return try AuditLog(path: path, key: key, durability: durability)
    }

    /// True once a log that another process is creating appears at `path`: its key is at most a
    /// few seconds old and the log shows up within five seconds. A key left alone for longer
    /// belongs to a log that was removed.
    private static func awaitCreation(of path: String, keyPath: String) -> Bool {
        var info = stat()
        guard stat(keyPath, &info) == 0, time(nil) - info.st_mtim.tv_sec <= 10 else { return false }
        for _ in 0..<250 {
            if PrivateFiles.kind(of: path) == .regular { return true }
            usleep(20_000)
        }
        return false
    }

    private init(path: String, key: SecureBytes, durability: Durability) throws(VSecureError) {
        self.path = path
        self.key = key
        // A launch's connection keeps the WAL index in its own memory (no `-shm` to set up).
        db = try SQLiteDatabase(path: path, create: false, exclusive: durability == .normal)
        try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=\(durability == .full ? "FULL" : "NORMAL")")
        // A `.normal` writer is a launch: its close must not sync and checkpoint the log. The WAL
        // it leaves is read back whole by the next process that opens the log (no connection
        // outlives a launch to keep its index), so `append` folds it into the database and
        // truncates it once it passes `launchWALLimit`: two syncs every few dozen launches
        // instead of four on every one.
        if durability == .normal {
            try db.keepWALOnClose()
            try db.execute("PRAGMA wal_autocheckpoint=0")
        } else {
            // Logs made before 2026-11-30 carry an index on `name` that no query uses (a name
            // filter also searches each entry's items, so it scans) and every insert pays for.
            // Best effort: a read-only copy of a log keeps it, which changes nothing.
            try? db.execute("DROP INDEX IF EXISTS audit_entries_name")
        }
        self.durability = durability
        let statement = try db.prepare("SELECT value FROM audit_meta WHERE key = 'log_id'")
        guard try statement.step() else {
            throw VSecureError(.integrity, "the audit log \(Quoted(path)) has no log id: it is damaged or was edited")
        }
        logID = statement.blob(0)
        // Every table the log reads and writes, with its columns: a dropped or altered table is
        // refused at open, not at the first write.
        for check in ["SELECT seq, time, resource, action, result, actor, environment, name, event, mac FROM audit_entries LIMIT 0",
                      "SELECT id, seq, mac, anchor_mac FROM audit_anchor LIMIT 0"] {
            _ = try db.prepare(check)
        }
    }

    // MARK: - The chain

    private static func chainStart(key: SecureBytes, logID: [UInt8]) -> [UInt8] {
        var hmac = HMACSHA256(key: key)
        hmac.update(Array("vsecure-audit-genesis-v1\0".utf8))
        hmac.update(logID)
        return hmac.finalize()
    }

    private static func entryMAC(key: SecureBytes, logID: [UInt8], previous: [UInt8], seq: Int64, event: [UInt8]) -> [UInt8] {
        var hmac = HMACSHA256(key: key)
        hmac.update(Array("vsecure-audit-entry-v1\0".utf8))
        hmac.update(logID)
        hmac.update(previous)
        hmac.update(bigEndian(seq))
        hmac.update(event)
        return hmac.finalize()
    }

    private static func anchorMAC(key: SecureBytes, logID: [UInt8], seq: Int64, mac: [UInt8]) -> [UInt8] {
        var hmac = HMACSHA256(key: key)
        hmac.update(Array("vsecure-audit-anchor-v1\0".utf8))
        hmac.update(logID)
        hmac.update(bigEndian(seq))
        hmac.update(mac)
        return hmac.finalize()
    }

    private static func bigEndian(_ value: Int64) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }

    private static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.count == b.count && a.withUnsafeBytes { x in b.withUnsafeBytes { y in Sodium.constantTimeEqual(x, y) } }
    }

    /// The anchor: the newest sequence number and MAC. Refuses a missing or edited anchor, so
    /// nothing is appended to a log whose end cannot be trusted.
    private func head() throws(VSecureError) -> (seq: Int64, mac: [UInt8]) {
        let statement = try db.prepare("SELECT seq, mac, anchor_mac FROM audit_anchor WHERE id = 1")
        guard try statement.step() else { throw anchorError() }
        let seq = statement.int64(0), mac = statement.blob(1)
        guard Self.equal(statement.blob(2), Self.anchorMAC(key: key, logID: logID, seq: seq, mac: mac)) else { throw anchorError() }
        return (seq, mac)
    }

    /// Refuses a log whose anchor is missing or edited, or whose newest entry is not the one
    /// the anchor names (entries cut off the end, or added outside vsecure): appending to it
    /// would turn a cut into what looks like a gap further on.
    public func checkAnchor() throws(VSecureError) {
        let anchor = try head()
        let newest = try db.scalarInt("SELECT coalesce(max(seq), 0) FROM audit_entries")
        guard newest == anchor.seq else {
            throw VSecureError(.integrity, "the audit log \(Quoted(path)) ends at entry \(newest), but its anchor says entry \(anchor.seq) was the last written; nothing more is written to it",
                               hint: "run `vsecure audit:verify` to see where the log was changed")
        }
    }

    private func anchorError() -> VSecureError {
        VSecureError(.integrity, "the audit log \(Quoted(path)) has a missing or edited anchor; nothing more is written to it",
                     hint: "run `vsecure audit:verify` to see where the log was changed")
    }

    // MARK: - Writing

    /// Appends `events` in one transaction and returns their sequence numbers. When this
    /// returns, the entries are committed (and, with `.full` durability, on disk).
    @discardableResult
    public func append(_ events: [AuditEvent]) throws(VSecureError) -> [Int64] {
        guard !events.isEmpty else { return [] }
        let numbers = try db.transaction(immediate: true) { () throws(VSecureError) -> [Int64] in
            try insert(events)
        }
        if durability == .normal, fileSize(path + "-wal") > Self.launchWALLimit {
            // Best effort: a busy log is folded by a later launch or by the next `vsecure` command.
            try? db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        }
        return numbers
    }

    /// Chains and inserts `events` after the head; inside a write transaction.
    private func insert(_ events: [AuditEvent]) throws(VSecureError) -> [Int64] {
        var (seq, mac) = try head()
        var numbers: [Int64] = []
        numbers.reserveCapacity(events.count)
        let sql = """
            INSERT INTO audit_entries(seq, time, resource, action, result, actor, environment, name, event, mac)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
            """
        // One statement for the whole group, reset after each row (all ten values are bound every time).
        let statement = try db.prepare(sql)
        for event in events {
            seq += 1
            let text = event.storedJSON(seq: seq)
            mac = Self.entryMAC(key: key, logID: logID, previous: mac, seq: seq, event: text)
            try statement.bind(1, seq).bind(2, event.time.secondsSinceEpoch).bind(3, event.resource.rawValue)
                .bind(4, event.action.rawValue).bind(5, event.outcome.rawValue).bind(6, event.actor.user)
                .bind(7, event.environment).bind(8, event.name).bind(9, utf8: text).bind(10, blob: mac).run()
            statement.reset()
            numbers.append(seq)
        }
        try db.prepare("UPDATE audit_anchor SET seq = ?1, mac = ?2, anchor_mac = ?3 WHERE id = 1")
            .bind(1, seq).bind(2, blob: mac).bind(3, blob: Self.anchorMAC(key: key, logID: logID, seq: seq, mac: mac)).run()
        return numbers
    }

    // MARK: - Launch receipts

    /// Adds the launch receipts waiting in the receipts file (`ReceiptJournal`) to the chain, in
    /// their order, and empties the file. Receipts that do not check out are left in the file,
    /// with every one after them, and reported by `verify`; those before them are added.
    ///
    /// The file is read in slices of at most `slice` bytes, each folded in one
    /// transaction together with a marker (for the file's nonce: how many of its receipts are in
    /// the log, and the newest one's MAC), and the file is emptied after the last commit, all
    /// under the file's lock: if the process dies in between, the next fold skips what the
    /// marker says is in.
    func foldReceipts(slice: Int) {
        let journal = ReceiptJournal.path(forLog: path)
        guard fileSize(journal) > 0 else { return }
        do {
            try foldReceipts(from: journal, slice: slice)
        } catch {
            receiptsNotice = "launch receipts waiting in \(Quoted(journal)) were not added to the audit log: \(error.message)"
        }
    }

    /// A receipt is a few KiB at most; a slice holds thousands.
    static let receiptsSlice = 8 << 20

    private func foldReceipts(from journal: String, slice sliceBytes: Int) throws(VSecureError) {
        let fd = vsecure_open_readwrite_nofollow(journal)
        guard fd >= 0 else { throw PrivateFiles.ioError("cannot open", path: journal) }
        defer { _ = close(fd) }
        try ReceiptJournal.lock(fd, path: journal)
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw VSecureError(.io, "\(Quoted(journal)) is not a regular file")
        }
        let size = Int(info.st_size)
        var reader = ReceiptJournal.Reader(key: key)
        var offset = 0
        // From the marker: how many of this file's receipts are in the log already.
        var folded: (count: Int64, mac: [UInt8])?
        var marker = ""
        while offset < size, reader.damagedAt == nil {
            var slice = [UInt8](repeating: 0, count: min(sliceBytes, size - offset))
            let read = slice.withUnsafeMutableBytes { buffer in pread(fd, buffer.baseAddress, buffer.count, off_t(offset)) }
            guard read == slice.count else { throw PrivateFiles.ioError("cannot read", path: journal) }
            guard let end = slice.lastIndex(of: UInt8(ascii: "\n")) else {
                // The file ends in a cut line, or holds a line longer than a slice: no receipt is that long.
                reader.cutShort()
                break
            }
            let hadNonce = reader.nonce != nil
            var receipts = reader.read(slice[..<end].split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false))
            offset += end + 1
            if !hadNonce, let nonce = reader.nonce {
                marker = "receipts:" + hexString(nonce)
                let statement = try db.prepare("SELECT value FROM audit_meta WHERE key = ?1")
                statement.bind(1, marker)
                if try statement.step() {
                    let value = statement.blob(0)
                    guard value.count == 8 + HMACSHA256.macBytes else { throw markerError(journal) }
                    folded = (value.prefix(8).reduce(Int64(0)) { $0 << 8 | Int64($1) }, Array(value.dropFirst(8)))
                }
            }
            // Receipts `first...` of this slice are numbered from `reader.count - receipts.count + 1`.
            let firstNumber = reader.count - Int64(receipts.count) + 1
            if let folded, folded.count >= firstNumber {
                let skip = Int(min(folded.count - firstNumber + 1, Int64(receipts.count)))
                // The marker's receipt must be the one in the file, or the file is not the one folded before.
                if folded.count < firstNumber + Int64(receipts.count), receipts[skip - 1].mac != folded.mac {
                    throw markerError(journal)
                }
                receipts.removeFirst(skip)
            }
            guard let newest = receipts.last else { continue }
            // Every receipt read so far is in the log once this commits.
            let total = reader.count
            try db.transaction(immediate: true) { () throws(VSecureError) in
                _ = try insert(receipts.map(\.event))
                let value = withUnsafeBytes(of: total.bigEndian) { Array($0) } + newest.mac
                try db.prepare("INSERT OR REPLACE INTO audit_meta(key, value) VALUES (?1, ?2)").bind(1, marker).bind(2, blob: value).run()
            }
        }
        if let damaged = reader.damagedAt {
            damagedReceipt = damaged
            receiptsNotice = "launch receipt \(damaged) in \(Quoted(journal)) was edited, moved or cut short; it and the receipts after it stay there, out of the log"
            return
        }
        // Everything is in the log: start the file afresh (the next launch writes a new nonce).
        guard ftruncate(fd, 0) == 0 else { throw PrivateFiles.ioError("cannot empty", path: journal) }
    }

    private func markerError(_ journal: String) -> VSecureError {
        VSecureError(.integrity, "the audit log's record of the receipts already added from \(Quoted(journal)) does not match the file",
                     hint: "run `vsecure audit:verify`; keep the receipts file as evidence and move it away")
    }

    // MARK: - Reading

    /// Entries passing `filter`, oldest first (or newest first), at most `filter.limit`;
    /// `hasMore` when more follow (ask again with `after`, or `before`, set to the last one's
    /// sequence number).
    public func entries(_ filter: AuditFilter) throws(VSecureError) -> (entries: [AuditEntry], hasMore: Bool) {
        var conditions: [String] = []
        var texts: [String] = []
        func text(_ column: String, _ value: String?, collation: String = "") {
            guard let value else { return }
            texts.append(value)
            conditions.append("\(column) = ?\(texts.count)\(collation)")
        }
        text("resource", filter.resource?.rawValue)
        text("action", filter.action?.rawValue)
        text("result", filter.outcome?.rawValue)
        // Emails are stored lowercased, and `user@host` actors have a host of any case: the
        // actor matches without regard to ASCII case (`ANA@example.com` finds ana@example.com).
        text("actor", filter.actor, collation: " COLLATE NOCASE")
        text("environment", filter.environment)
        if let name = filter.name {
            texts.append(name)
            let n = texts.count
            conditions.append("(name = ?\(n) OR EXISTS (SELECT 1 FROM json_each(event, '$.items') WHERE json_extract(value, '$.name') = ?\(n)))")
        }
        // Numbers are inlined: they are Int64s, not text from outside.
        if let since = filter.since { conditions.append("time >= \(since.secondsSinceEpoch)") }
        if let until = filter.until { conditions.append("time < \(until.secondsSinceEpoch)") }
        if let after = filter.after { conditions.append("seq > \(after)") }
        if let before = filter.before { conditions.append("seq < \(before)") }
        let limit = max(1, filter.limit)
        let sql = "SELECT seq, event, mac FROM audit_entries" + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))
            + " ORDER BY seq\(filter.newestFirst ? " DESC" : "") LIMIT \(limit + 1)"
        let statement = try db.prepare(sql)
        for (index, value) in texts.enumerated() { statement.bind(Int32(index + 1), value) }
        var result: [AuditEntry] = []
        while try statement.step() {
            guard result.count < limit else { return (result, true) }
            result.append(try entry(statement))
        }
        return (result, false)
    }

    /// The entry with sequence number `seq`, or nil.
    public func entry(seq: Int64) throws(VSecureError) -> AuditEntry? {
        let statement = try db.prepare("SELECT seq, event, mac FROM audit_entries WHERE seq = ?1")
        statement.bind(1, seq)
        guard try statement.step() else { return nil }
        return try entry(statement)
    }

    private func entry(_ statement: SQLiteStatement) throws(VSecureError) -> AuditEntry {
        let seq = statement.int64(0)
        guard let json = try? JSONParser.parse(statement.blob(1)), let event = AuditEvent(json: json) else {
            throw VSecureError(.integrity, "audit entry \(seq) is not readable: it is damaged or was edited",
                               hint: "run `vsecure audit:verify`")
        }
        return AuditEntry(seq: seq, event: event, mac: statement.blob(2))
    }

    public func contains(seq: Int64) throws(VSecureError) -> Bool {
        let statement = try db.prepare("SELECT 1 FROM audit_entries WHERE seq = ?1")
        statement.bind(1, seq)
        return try statement.step()
    }

    /// The number of entries.
    public func count() throws(VSecureError) -> Int64 {
        try db.scalarInt("SELECT count(*) FROM audit_entries")
    }

    // MARK: - Verification

    /// Whether each column of an entry row (as `verify` selects them) has the storage class that
    /// `insert` gives it. The filter columns copy what the MAC covers, and `verify` compares
    /// their values; this catches the edits a comparison of values lets through, which still
    /// change what a filter finds: a time of `N + 0.5` reads back as `N`, and text cast to a BLOB
    /// reads back as the same bytes but no longer equals the text a filter binds.
    private static func storedAsWritten(_ statement: SQLiteStatement) -> Bool {
        func isText(_ column: Int32) -> Bool { statement.storageClass(column) == SQLITE_TEXT }
        func isTextOrNull(_ column: Int32) -> Bool { isText(column) || statement.storageClass(column) == SQLITE_NULL }
        return statement.storageClass(1) == SQLITE_INTEGER && isText(2) && isText(3) && isText(4)
            && isTextOrNull(5) && isTextOrNull(6) && isTextOrNull(7) && isText(8) && statement.storageClass(9) == SQLITE_BLOB
    }

    /// Checks the chain from the first entry through `through` (default: all, and then the
    /// anchor) and reports the first entry that was edited, removed, moved, or cut off.
    public func verify(through last: Int64? = nil) throws(VSecureError) -> AuditVerification {
        let statement = try db.prepare("""
            SELECT seq, time, resource, action, result, actor, environment, name, event, mac FROM audit_entries
            """ + (last.map { " WHERE seq <= \($0)" } ?? "") + " ORDER BY seq")
        var previous = Self.chainStart(key: key, logID: logID)
        var expected: Int64 = 1
        var checked: Int64 = 0
        func result(_ problem: AuditVerification.Problem?) -> AuditVerification {
            AuditVerification(checked: checked, headSeq: expected - 1, headMAC: hexString(previous), problem: problem)
        }
        while try statement.step() {
            let seq = statement.int64(0)
            if seq > expected { return result(.removed(seq: expected)) }
            let eventBytes = statement.blob(8)
            let parsed = (try? JSONParser.parse(eventBytes)).flatMap { json -> (Int64?, AuditEvent?) in
                guard case .object(let members) = json else { return (nil, nil) }
                var claimed: Int64?
                if case .int(let n)? = members.first(where: { $0.0 == "seq" })?.1 { claimed = n }
                return (claimed, AuditEvent(json: json))
            }
            if let claimed = parsed?.0, claimed != seq { return result(.reordered(seq: seq, claims: claimed)) }
            let mac = Self.entryMAC(key: key, logID: logID, previous: previous, seq: seq, event: eventBytes)
            guard Self.equal(mac, statement.blob(9)), let event = parsed?.1, Self.storedAsWritten(statement),
                  event.time.secondsSinceEpoch == statement.int64(1), event.resource.rawValue == statement.text(2),
                  event.action.rawValue == statement.text(3), event.outcome.rawValue == statement.text(4),
                  event.actor.user == statement.optionalText(5), event.environment == statement.optionalText(6),
                  event.name == statement.optionalText(7)
            else { return result(.edited(seq: seq)) }
            previous = mac
            expected += 1
            checked += 1
        }
        if let last {
            if expected - 1 < last { return result(.removed(seq: expected)) }
            return result(nil)
        }
        let anchor: (seq: Int64, mac: [UInt8])
        do { anchor = try head() } catch { return result(.anchorInvalid) }
        if anchor.seq > expected - 1 { return result(.truncated(lastSeq: expected - 1, anchoredSeq: anchor.seq)) }
        if anchor.seq < expected - 1 || !Self.equal(anchor.mac, previous) { return result(.anchorInvalid) }
        if let damagedReceipt { return result(.receiptDamaged(number: damagedReceipt, file: ReceiptJournal.path(forLog: path))) }
        return result(nil)
    }
}

extension AuditLog: AuditReader {
    public func auditEntries(_ filter: AuditFilter) throws(VSecureError) -> (entries: [AuditEntry], hasMore: Bool) {
        try entries(filter)
    }

    public func verifyAudit() throws(VSecureError) -> AuditVerification {
        try verify()
    }
}
