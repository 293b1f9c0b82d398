#if canImport(Glibc)
import Glibc
#endif
import CSQLite
import VSecureCrypto
import VSecureCore

/// Process-wide SQLite settings.
public enum SQLiteProcess {
    /// For a process in which only one thread ever uses SQLite, called before anything opens a
    /// database: SQLite then takes no mutexes and keeps no memory statistics, about 4 % of the
    /// instructions of a launch (docs/benchmarks.md). Returns false, changing nothing, once
    /// SQLite has been initialized.
    @discardableResult
    public static func useFromOneThreadOnly() -> Bool { vsecure_sqlite3_single_thread() == SQLITE_OK }
}

/// The funnel for SQLite: every C call and result code of the package lives in this file, and
/// leaves it as a `VSecureError`. Statements only ever bind ciphertext and public text.
final class SQLiteDatabase {
    private(set) var handle: OpaquePointer?
    let path: String
    /// Compiled statements not in use, by SQL text. Compiling a small query costs more than
    /// running it, so `prepare` hands these out again (reset, bindings cleared) instead.
    /// The SQL texts seen (a StringIndex rather than a Dictionary, which would cost every launch
    /// its generic metadata: see StringIndex), and by the same number its idle statement, if any.
    private var cachedSQL = StringIndex()
    private var idleStatements: [OpaquePointer?] = []
    private var idleCount = 0
    /// Bounds the cache for SQL built at run time (list filters, tag selections): at most this
    /// many idle statements, and twice as many SQL texts remembered.
    static let statementCacheLimit = 64

    /// `readOnly` opens a connection that never writes the database: it does not checkpoint or
    /// delete the WAL when it closes, so the `-wal` and `-shm` files it finds (or creates once)
    /// stay for the next reader instead of being made and unlinked on every launch.
    ///
    /// `exclusive` (read-write only) takes SQLite's exclusive locking mode before the first
    /// read: the WAL index lives in this process's memory instead of a shared `-shm` file, and
    /// other connections wait until this one closes. For short-lived writers (launch receipts),
    /// where setting up the shared index costs more than the write.
    ///
    /// `readIndexOnly` (read-only only) is for a process that reads once and exits (the
    /// launcher). When the `-shm` file exists, it is opened read-only (SQLite's `readonly_shm`):
    /// without it, the first connection to find no other connection on the database resets the
    /// shared index, truncating and re-growing `-shm` on disk, and every launch is such a first
    /// connection. Read-only, SQLite uses the index while another connection keeps it up to date,
    /// and otherwise rebuilds a private copy in memory from the WAL (empty once the last writer
    /// closed). Without a `-shm` file, the connection opens as usual and leaves one for the next.
    /// Not for long-lived readers beside a busy writer (the server): each read transaction
    /// without a live index rereads the whole WAL. `sharedIndexFound` replaces the look for
    /// `-shm` (tests that play the last writer removing it just after the look).
    init(path: String, create: Bool, readOnly: Bool = false, exclusive: Bool = false, readIndexOnly: Bool = false,
         sharedIndexFound: Bool? = nil) throws(VSecureError) {
        self.path = path
        // SQLite's NOFOLLOW refuses a symbolic link anywhere in the path, but only the file itself
        // must not be one (a home directory reached through a link is common).
        let opened = Self.resolvingDirectories(path)
        var flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_FULLMUTEX
        if create && !readOnly { flags |= SQLITE_OPEN_CREATE }
        var db: OpaquePointer?
        var firstRead: Int32?
        if readOnly && readIndexOnly && sharedIndexFound ?? (PrivateFiles.kind(of: path + "-shm") == .regular) {
            db = try Self.connect(Self.uri(opened, query: "readonly_shm=1"), flags: flags | SQLITE_OPEN_URI, reportedPath: path)
            firstRead = sqlite3_exec(db, "PRAGMA user_version", nil, nil, nil)
            // The last read-write connection may have closed, and removed `-shm`, since the look:
            // read-only, SQLite cannot create it (SQLITE_CANTOPEN). Then open as usual.
            if firstRead.map({ $0 & 0xFF == SQLITE_CANTOPEN }) == true {
                sqlite3_close_v2(db)
                db = try Self.connect(opened, flags: flags, reportedPath: path)
                firstRead = nil
            }
        } else {
            db = try Self.connect(opened, flags: flags, reportedPath: path)
        }
        if exclusive && !readOnly {
            _ = sqlite3_exec(db, "PRAGMA locking_mode=EXCLUSIVE", nil, nil, nil)
            handle = db
            return
        }
        // A WAL database needs room for its shared-memory index (`-shm`) before the first read.
        // On a full disk SQLite cannot size it and every read fails, yet a full disk must not
        // stop reads (docs/audit.md). Such a connection is opened again in exclusive locking
        // mode, which keeps the index in this process's memory: it holds the database's lock
        // until it closes (others wait), needs a read-write connection to take that lock, and a
        // write on it still fails, with the disk-full message.
        if Self.firstReadLacksSpace(db, result: firstRead) {
            sqlite3_close_v2(db)
            db = try Self.connect(opened, flags: (flags & ~(SQLITE_OPEN_READONLY | SQLITE_OPEN_CREATE)) | SQLITE_OPEN_READWRITE,
                                  reportedPath: path)
            _ = sqlite3_exec(db, "PRAGMA locking_mode=EXCLUSIVE", nil, nil, nil)
        }
        handle = db
    }

    /// `path` with the directories above its last component resolved (`realpath`), the last
    /// component as given; `path` itself when the directory cannot be resolved (SQLite then
    /// reports what is wrong with it).
    static func resolvingDirectories(_ path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return path }
        let directory = slash == path.utf8.startIndex ? "/" : String(path[..<slash])
        guard let resolved = realpath(directory, nil) else { return path }
        defer { free(resolved) }
        let base = String(cString: resolved)
        return (base == "/" ? "" : base) + String(path[slash...])
    }

    /// `file:` and the path with every byte outside letters, digits and `/-._~` percent-encoded
    /// (SQLite decodes %XX in a URI's path, and `?` or `#` would end it), then `?query`. An
    /// absolute path gets an empty authority (`file:///…`), so that one starting with `//` is
    /// not read as a host name.
    static func uri(_ path: String, query: String) -> String {
        let hexDigits = Array("0123456789ABCDEF".utf8)
        var bytes = Array((path.hasPrefix("/") ? "file://" : "file:").utf8)
        for byte in path.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "/"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                bytes.append(byte)
            default:
                bytes += [UInt8(ascii: "%"), hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]]
            }
        }
        bytes.append(UInt8(ascii: "?"))
        bytes += query.utf8
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `reportedPath`: the file to name in an error when `path` is a URI.
    private static func connect(_ path: String, flags: Int32, reportedPath: String? = nil) throws(VSecureError) -> OpaquePointer? {
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK else {
            let error = Self.error(rc, db: db, path: reportedPath ?? path, context: "cannot open vault")
            sqlite3_close_v2(db)
            throw error
        }
        sqlite3_extended_result_codes(db, 1)
        // Writers queue behind each other instead of failing; 30 s covers a stuck fsync.
        sqlite3_busy_timeout(db, 30_000)
        return db
    }

    /// SQLITE_IOERR_SHMSIZE and SQLITE_IOERR_SHMMAP (extended codes Swift does not import).
    private static let sharedMemoryErrors: Set<Int32> = [SQLITE_IOERR | (19 << 8), SQLITE_IOERR | (21 << 8)]

    /// Reads the header once (unless `result` is that read's, made already); true when it
    /// failed because the disk has no room (any other failure is left for the caller's first
    /// real statement to report).
    private static func firstReadLacksSpace(_ db: OpaquePointer?, result: Int32? = nil) -> Bool {
        let rc = result ?? sqlite3_exec(db, "PRAGMA user_version", nil, nil, nil)
        guard rc != SQLITE_OK else { return false }
        let extended = sqlite3_extended_errcode(db)
        return sharedMemoryErrors.contains(extended) || extended & 0xFF == SQLITE_FULL || sqlite3_system_errno(db) == ENOSPC
    }

    deinit {
        for case let statement? in idleStatements { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    /// True once a statement was refused because the database cannot be written (a read-only
    /// file or file system), as opposed to busy, damaged or failing storage.
    private(set) var refusedAsReadOnly = false

    /// No checkpoint when this connection closes, and the WAL file stays: for short-lived
    /// writers (launch receipts). Another connection, or the automatic checkpoint once the WAL
    /// has grown, copies the pages into the database later.
    func keepWALOnClose() throws(VSecureError) {
        let rc = vsecure_sqlite3_keep_wal_on_close(handle)
        guard rc == SQLITE_OK else { throw Self.error(rc, db: handle, path: path, context: "cannot configure the audit log") }
    }

    func execute(_ sql: String) throws(VSecureError) {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        sqlite3_free(message)
        guard rc == SQLITE_OK else {
            if rc & 0xFF == SQLITE_READONLY { refusedAsReadOnly = true }
            throw Self.error(rc, db: handle, path: path, context: "vault query failed")
        }
    }

    /// A statement for `sql`: a cached one when an idle one exists, else newly compiled. When
    /// the returned object is released, the statement is reset and becomes idle again, so two
    /// statements of the same SQL in use at once are simply two compiled statements.
    func prepare(_ sql: String) throws(VSecureError) -> SQLiteStatement {
        if let slot = cachedSQL.index(of: sql), let idle = idleStatements[slot] {
            idleStatements[slot] = nil
            idleCount -= 1
            return SQLiteStatement(idle, sql: sql, database: self)
        }
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard rc == SQLITE_OK, let statement else {
            throw Self.error(rc, db: handle, path: path, context: "vault query failed")
        }
        return SQLiteStatement(statement, sql: sql, database: self)
    }

    /// Called when a statement object is released: reset (which ends its read, if it was still
    /// stepping) and clear its bindings, then keep it for the next `prepare` of the same SQL.
    fileprivate func recycle(_ statement: OpaquePointer, sql: String) {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        guard idleCount < Self.statementCacheLimit else {
            sqlite3_finalize(statement)
            return
        }
        if let slot = cachedSQL.index(of: sql) {
            if idleStatements[slot] != nil {
                sqlite3_finalize(statement)
            } else {
                idleStatements[slot] = statement
                idleCount += 1
            }
            return
        }
        if cachedSQL.count >= 2 * Self.statementCacheLimit {
            // Forget the texts that have no idle statement.
            var kept = StringIndex(capacity: idleCount + 1)
            var keptStatements: [OpaquePointer?] = []
            for (slot, text) in cachedSQL.keys.enumerated() where idleStatements[slot] != nil {
                kept.insert(text)
                keptStatements.append(idleStatements[slot])
            }
            cachedSQL = kept
            idleStatements = keptStatements
        }
        cachedSQL.insert(sql)
        idleStatements.append(statement)
        idleCount += 1
    }

    /// Runs one statement through the cache (for BEGIN, COMMIT and the like).
    private func run(_ sql: String) throws(VSecureError) {
        try prepare(sql).run()
    }

    private var transactionDepth = 0

    /// Runs `body` in a transaction. Writers use IMMEDIATE so that two processes queue on the
    /// write lock at BEGIN (honouring the busy timeout) instead of deadlocking on upgrade.
    /// Nested calls become savepoints, so a batch of operations commits or fails as one.
    /// Starts a read transaction that lasts until the connection closes or
    /// `releaseReadTransaction` ends it (a single-read vault: see `LocalVault.open`), and its
    /// snapshot with it (a deferred `BEGIN` alone would take
    /// the snapshot at the next read); `transaction` inside it makes savepoints.
    func holdReadTransaction() throws(VSecureError) {
        try run("BEGIN")
        transactionDepth += 1
        _ = try scalarInt("PRAGMA user_version")
    }

    /// Ends the read transaction `holdReadTransaction` began (and lets go of its snapshot).
    /// Called outside any other transaction or savepoint; inside one the snapshot would stay.
    func releaseReadTransaction() throws(VSecureError) {
        precondition(transactionDepth == 1, "releaseReadTransaction inside another transaction")
        try run("COMMIT")
        transactionDepth = 0
    }

    func transaction<T>(immediate: Bool, _ body: () throws(VSecureError) -> T) throws(VSecureError) -> T {
        let nested = transactionDepth > 0
        try run(nested ? "SAVEPOINT nested" : (immediate ? "BEGIN IMMEDIATE" : "BEGIN"))
        transactionDepth += 1
        defer { transactionDepth -= 1 }
        let result: T
        do {
            result = try body()
            try run(nested ? "RELEASE nested" : "COMMIT")
        } catch {
            _ = sqlite3_exec(handle, nested ? "ROLLBACK TO nested; RELEASE nested" : "ROLLBACK", nil, nil, nil)
            if !nested { checkpointAfterCommit = false }
            throw error
        }
        if !nested && checkpointAfterCommit {
            checkpointAfterCommit = false
            // The transaction has committed: a checkpoint that fails now must not make it look
            // as if it had not. Its pages may remain, and `lastCheckpointComplete` says so.
            do { try truncatingCheckpoint() } catch { lastCheckpointComplete = false }
        }
        return result
    }

    private var checkpointAfterCommit = false

    /// False when the last `checkpointAndTruncateWAL` could not finish: another connection
    /// still using the WAL past the busy timeout (a reader on an older snapshot, or a writer)
    /// kept its frames from being all copied back and truncated away. Inside a transaction the
    /// checkpoint waits for the outermost commit, and this tells its outcome from then on.
    private(set) var lastCheckpointComplete = true

    /// Copies the WAL into the database and truncates it, so freed (and, with secure_delete,
    /// zeroed) pages replace the old ones. SQLite refuses a checkpoint inside a transaction
    /// (SQLITE_LOCKED), so inside a batch it runs once the batch has committed. Whether it got
    /// to the end is `lastCheckpointComplete`.
    func checkpointAndTruncateWAL() throws(VSecureError) {
        if transactionDepth > 0 {
            checkpointAfterCommit = true
            // Not known until the outermost commit; no earlier checkpoint's answer stands for it.
            lastCheckpointComplete = true
        } else {
            try truncatingCheckpoint()
        }
    }

    /// The pragma answers one row: busy (1 when a reader or writer kept it from finishing), the
    /// WAL's frames, the frames copied back.
    private func truncatingCheckpoint() throws(VSecureError) {
        let statement = try prepare("PRAGMA wal_checkpoint(TRUNCATE)")
        lastCheckpointComplete = try statement.step() ? statement.int64(0) == 0 : true
    }

    /// How long a statement waits on another connection's lock before it gives up (or, for a
    /// checkpoint, stops short); 30 s unless a test shortens it.
    func setBusyTimeout(milliseconds: Int32) {
        sqlite3_busy_timeout(handle, milliseconds)
    }

    /// Runs several vault operations as one transaction.
    func batch<T>(_ body: () throws(VSecureError) -> T) throws(VSecureError) -> T {
        try transaction(immediate: true, body)
    }

    func scalarInt(_ sql: String) throws(VSecureError) -> Int64 {
        let statement = try prepare(sql)
        guard try statement.step() else { return 0 }
        return statement.int64(0)
    }

    /// The first page of the WAL index this connection shares with every connection to the
    /// database, in this process or another (the `-shm` file, as SQLite maps it): its header
    /// (`WalIndexHdr`: frame count, change counter, salts) is rewritten by every commit before
    /// the commit returns, so comparing it is a change check that takes no lock. nil unless the
    /// database is in WAL mode with a shared index (not under exclusive locking, which keeps the
    /// index in private memory). Call after a first read; valid while this connection is open,
    /// for reading only.
    func sharedWALIndex() -> UnsafeRawPointer? {
        func pragma(_ sql: String) -> String? {
            guard let statement = try? prepare(sql), (try? statement.step()) == true else { return nil }
            return statement.text(0).lowercased()
        }
        guard pragma("PRAGMA journal_mode") == "wal", pragma("PRAGMA locking_mode") == "normal" else { return nil }
        var file: UnsafeMutablePointer<sqlite3_file>?
        guard sqlite3_file_control(handle, "main", SQLITE_FCNTL_FILE_POINTER, &file) == SQLITE_OK, let file,
              let methods = file.pointee.pMethods, methods.pointee.iVersion >= 2, let map = methods.pointee.xShmMap else { return nil }
        // Region 0 at SQLite's own WAL-index page size (WALINDEX_PGSZ), without extending the file.
        var region: UnsafeMutableRawPointer?
        guard map(file, 0, 32_768, 0, &region) == SQLITE_OK, let region else { return nil }
        return UnsafeRawPointer(region)
    }

    static func error(_ rc: Int32, db: OpaquePointer?, path: String, context: String) -> VSecureError {
        let primary = rc & 0xFF
        let detail = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
        switch primary {
        case SQLITE_NOTADB, SQLITE_CORRUPT:
            return VSecureError(.integrity, "\(Quoted(path)) is not a vsecure vault or is damaged (\(detail))",
                                hint: "restore the vault from a backup; `vsecure vault:status` checks a vault")
        case SQLITE_FULL:
            return VSecureError(.io, "\(context): the disk holding \(Quoted(path)) is full; nothing was changed")
        case SQLITE_BUSY, SQLITE_LOCKED:
            return VSecureError(.io, "\(context): the vault \(Quoted(path)) stayed locked by another process for 30 s")
        case SQLITE_READONLY, SQLITE_PERM, SQLITE_AUTH:
            return VSecureError(.io, "\(context): \(Quoted(path)) is read-only or not permitted (\(detail))")
        case SQLITE_CANTOPEN:
            return VSecureError(.vaultMissing, "\(context): cannot open \(Quoted(path)) (\(detail))")
        case SQLITE_IOERR where db.map { sqlite3_system_errno($0) == ENOSPC } == true:
            return VSecureError(.io, "\(context): the disk holding \(Quoted(path)) is full; nothing was changed")
        case SQLITE_IOERR:
            return VSecureError(.io, "\(context): I/O error on \(Quoted(path)) (\(detail))")
        default:
            return VSecureError(.internalError, "\(context): \(detail) (SQLite code \(rc))")
        }
    }
}

final class SQLiteStatement {
    private let statement: OpaquePointer
    private let sql: String
    private let database: SQLiteDatabase

    init(_ statement: OpaquePointer, sql: String, database: SQLiteDatabase) {
        self.statement = statement
        self.sql = sql
        self.database = database
    }

    deinit { database.recycle(statement, sql: sql) }

    @discardableResult
    func bind(_ index: Int32, _ text: String?) -> SQLiteStatement {
        if let text {
            var copy = text
            copy.withUTF8 { _ = vsecure_sqlite3_bind_text_copy(statement, index, UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), Int32($0.count)) }
        } else {
            sqlite3_bind_null(statement, index)
        }
        return self
    }

    @discardableResult
    func bind(_ index: Int32, _ value: Int64?) -> SQLiteStatement {
        if let value { sqlite3_bind_int64(statement, index, value) } else { sqlite3_bind_null(statement, index) }
        return self
    }

    @discardableResult
    func bind(_ index: Int32, _ value: Int) -> SQLiteStatement { bind(index, Int64(value)) }

    /// Binds public UTF-8 text given as bytes (stored as TEXT, so SQL's JSON functions read it).
    @discardableResult
    func bind(_ index: Int32, utf8 text: [UInt8]) -> SQLiteStatement {
        text.withUnsafeBytes {
            _ = vsecure_sqlite3_bind_text_copy(statement, index, ($0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!).assumingMemoryBound(to: CChar.self),
                                               Int32($0.count))
        }
        return self
    }

    /// Binds public bytes or ciphertext; SQLite copies them before returning.
    @discardableResult
    func bind(_ index: Int32, blob: [UInt8]) -> SQLiteStatement {
        blob.withUnsafeBytes { _ = vsecure_sqlite3_bind_blob_copy(statement, index, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32($0.count)) }
        return self
    }

    /// Steps once; true while a row is available.
    func step() throws(VSecureError) -> Bool {
        let rc = sqlite3_step(statement)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw SQLiteDatabase.error(rc, db: database.handle, path: database.path, context: "vault query failed")
        }
    }

    func run() throws(VSecureError) {
        while try step() {}
    }

    func reset() {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
    }

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }

    /// The column's storage class as stored (`SQLITE_INTEGER`, `SQLITE_TEXT`, `SQLITE_BLOB`…).
    func storageClass(_ column: Int32) -> Int32 { sqlite3_column_type(statement, column) }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }

    func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(statement, column)) }

    func optionalInt64(_ column: Int32) -> Int64? { isNull(column) ? nil : int64(column) }

    func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(statement, column) else { return "" }
        let count = Int(sqlite3_column_bytes(statement, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    func optionalText(_ column: Int32) -> String? { isNull(column) ? nil : text(column) }

    func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(statement, column))
        guard count > 0, let pointer = sqlite3_column_blob(statement, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    /// Lends the column's bytes without copying; valid only inside `body`.
    func withBlob<R>(_ column: Int32, _ body: (UnsafeRawBufferPointer) throws(VSecureError) -> R) throws(VSecureError) -> R {
        let count = Int(sqlite3_column_bytes(statement, column))
        let pointer = sqlite3_column_blob(statement, column)
        return try body(UnsafeRawBufferPointer(start: count > 0 ? pointer : nil, count: count))
    }
}
