#if canImport(Glibc)
import Glibc
#endif
import CLinux
import VSecureCore

/// Files that hold key material or the vault: created 0600 inside a 0700 directory whatever
/// the umask, never through a symlink. Every system call of the package's file handling goes
/// through here, with EINTR retried in one place.
public enum PrivateFiles {
    public static let keyFileBytes = 32

    static func retrying<T: BinaryInteger>(_ call: () -> T) -> T {
        while true {
            let result = call()
            if result >= 0 || vsecure_errno() != EINTR { return result }
        }
    }

    public static func errnoText(_ code: Int32 = vsecure_errno()) -> String {
        String(cString: strerror(code))
    }

    public static func ioError(_ what: String, path: String, code: Int32 = vsecure_errno()) -> VSecureError {
        // A missing vault is reported by LocalVault.open itself; here ENOENT is a missing
        // directory or input file, an I/O problem.
        var error = VSecureError(.io, "\(what) \(Quoted(path)): \(errnoText(code))")
        if code == ENOSPC { error.hints.append("the disk is full; nothing was changed") }
        if code == EACCES || code == EPERM { error.hints.append("check the permissions of \(path)") }
        return error
    }

    public enum Kind { case missing, regular, directory, symlink, other }

    public static func kind(of path: String) -> Kind {
        var info = stat()
        guard lstat(path, &info) == 0 else { return .missing }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return .regular
        case S_IFDIR: return .directory
        case S_IFLNK: return .symlink
        default: return .other
        }
    }

    /// Creates the directory (and missing parents) with mode 0700; an existing directory is
    /// left as it is unless it is the one vsecure would create, which is tightened to 0700.
    public static func ensureDirectory(_ path: String, tighten: Bool) throws(VSecureError) {
        if path.isEmpty || path == "/" || path == "." { return }
        switch kind(of: path) {
        case .directory:
            if tighten { _ = chmod(path, 0o700) }
            return
        case .missing:
            let parent = parentDirectory(of: path)
            if parent != path { try ensureDirectory(parent, tighten: false) }
            guard mkdir(path, 0o700) == 0 || vsecure_errno() == EEXIST else {
                throw ioError("cannot create directory", path: path)
            }
            _ = chmod(path, 0o700)
        case .symlink:
            // A symlinked parent directory is the user's choice (e.g. a mounted volume); only the
            // files themselves must not be links.
            return
        case .regular, .other:
            throw VSecureError(.io, "\(Quoted(path)) exists and is not a directory")
        }
    }

    /// Nil when `path` is a directory owned by this user that nobody else can write to (the
    /// owner of a directory can replace the files in it); otherwise why not.
    public static func privateDirectoryProblem(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return errnoText() }
        guard info.st_mode & S_IFMT == S_IFDIR else { return "it is not a directory" }
        guard info.st_uid == geteuid() else { return "it belongs to another user" }
        guard info.st_mode & 0o022 == 0 else { return "others can write to it (mode \(octal(info.st_mode & 0o777)))" }
        return nil
    }

    public static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    /// Creates a new file, mode 0600, refusing an existing file or a symlink, and writes `bytes`
    /// into it durably.
    public static func createFile(_ path: String, contents: UnsafeRawBufferPointer) throws(VSecureError) {
        let fd = vsecure_open_create_exclusive(path, 0o600)
        guard fd >= 0 else {
            if vsecure_errno() == EEXIST { throw VSecureError(.conflict, "\(Quoted(path)) already exists", hint: "vsecure never overwrites a key or vault file; move it away first") }
            if vsecure_errno() == ELOOP { throw VSecureError(.io, "\(Quoted(path)) is a symlink; refusing to write through it") }
            throw ioError("cannot create", path: path)
        }
        defer { _ = close(fd) }
        _ = fchmod(fd, 0o600)
        var offset = 0
        while offset < contents.count {
            let n = retrying { write(fd, contents.baseAddress! + offset, contents.count - offset) }
            guard n > 0 else {
                let code = vsecure_errno()
                _ = unlink(path)
                throw ioError("cannot write", path: path, code: code)
            }
            offset += n
        }
        guard fsync(fd) == 0 else {
            let code = vsecure_errno()
            _ = unlink(path)
            throw ioError("cannot write", path: path, code: code)
        }
    }

    /// Replaces `path` with a 0600 file holding `contents`: written under a temporary name in
    /// the same directory, then renamed over it, so a reader sees the old file or the new one.
    /// For caches: a crash may lose the new file, never leave half of it.
    public static func replaceFile(_ path: String, contents: UnsafeRawBufferPointer) throws(VSecureError) {
        let staging = path + ".tmp-\(getpid())"
        _ = unlink(staging)
        try createFile(staging, contents: contents)
        guard rename(staging, path) == 0 else {
            let code = vsecure_errno()
            _ = unlink(staging)
            throw ioError("cannot replace", path: path, code: code)
        }
    }

    public enum ReadFailure: Error {
        case missing
        case refused(String)
    }

    /// Reads a whole file that only its owner may read (ciphertext, never plaintext): refuses a
    /// symlink, anything but a regular file, another owner, group or world access, and more than
    /// `maxBytes`.
    public static func readPrivateFile(_ path: String, maxBytes: Int) throws(ReadFailure) -> [UInt8] {
        try withOpenPrivateFile(path, maxBytes: maxBytes) { (fd: Int32, size: Int) throws(ReadFailure) -> [UInt8] in
            var bytes = [UInt8](repeating: 0, count: size)
            guard bytes.withUnsafeMutableBytes({ readFully(fd, into: $0) }) == size else { throw .refused("short read") }
            return bytes
        }
    }

    /// Like `readPrivateFile`, for a file that holds a secret (an API key): read into locked
    /// memory.
    public static func readPrivateSecret(_ path: String, maxBytes: Int) throws(ReadFailure) -> SecureBytes {
        try withOpenPrivateFile(path, maxBytes: maxBytes) { (fd: Int32, size: Int) throws(ReadFailure) -> SecureBytes in
            let buffer = SecureBytes(count: max(1, size))
            let count = buffer.withUnsafeMutableBytes { readFully(fd, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<size])) }
            guard count == size else { throw .refused("short read") }
            return buffer.slice(0..<size)
        }
    }

    /// Opens `path` without following a symlink and makes every check on the opened descriptor,
    /// so the file cannot be swapped between the check and the read.
    private static func withOpenPrivateFile<R>(_ path: String, maxBytes: Int,
                                               _ read: (Int32, Int) throws(ReadFailure) -> R) throws(ReadFailure) -> R {
        let fd = vsecure_open_read_nofollow(path)
        guard fd >= 0 else {
            if vsecure_errno() == ENOENT { throw .missing }
            throw .refused(vsecure_errno() == ELOOP ? "it is a symlink" : errnoText())
        }
        defer { _ = close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { throw .refused("it is not a regular file") }
        guard info.st_uid == geteuid() else { throw .refused("it belongs to another user") }
        guard info.st_mode & 0o077 == 0 else { throw .refused("it can be read by others (mode \(octal(info.st_mode & 0o777)))") }
        guard info.st_size <= maxBytes else { throw .refused("it is larger than \(maxBytes) bytes") }
        return try read(fd, Int(info.st_size))
    }

    /// Creates an empty 0600 file for SQLite to open, refusing symlinks and existing files.
    public static func createEmptyFile(_ path: String) throws(VSecureError) {
        try createFile(path, contents: UnsafeRawBufferPointer(start: nil, count: 0))
    }

    /// Reads a key file. Refused before anything is read: a missing file, a symlink, anything
    /// but a regular file, group or world access bits, a length other than 32 bytes.
    public static func readKeyFile(_ path: String) throws(VSecureError) -> SecureBytes {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if vsecure_errno() == ENOENT {
                throw VSecureError(.key, "key file \(Quoted(path)) does not exist",
                                   hint: "pass the vault's key with --key-file or VSECURE_KEY_FILE")
            }
            throw VSecureError(.key, "cannot read key file \(Quoted(path)): \(errnoText())")
        }
        guard info.st_mode & S_IFMT != S_IFLNK else {
            throw VSecureError(.key, "key file \(Quoted(path)) is a symlink; refusing to follow it",
                               hint: "point --key-file at the file itself")
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw VSecureError(.key, "key file \(Quoted(path)) is not a regular file")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw VSecureError(.key, "key file \(Quoted(path)) is accessible by group or others (mode \(octal(info.st_mode & 0o777)))",
                               hint: "run: chmod 600 \(path)")
        }
        guard info.st_size == keyFileBytes else {
            throw VSecureError(.key, "key file \(Quoted(path)) has \(info.st_size) bytes; a vsecure key file has exactly \(keyFileBytes)")
        }
        let fd = vsecure_open_read_nofollow(path)
        guard fd >= 0 else { throw VSecureError(.key, "cannot open key file \(Quoted(path)): \(errnoText())") }
        defer { _ = close(fd) }
        var opened = stat()
        guard fstat(fd, &opened) == 0, opened.st_ino == info.st_ino, opened.st_dev == info.st_dev,
              opened.st_size == keyFileBytes else {
            throw VSecureError(.key, "key file \(Quoted(path)) changed while it was being read")
        }
        let key = SecureBytes(keyCount: keyFileBytes)
        let complete = key.withUnsafeMutableBytes { buffer -> Bool in
            readFully(fd, into: buffer) == buffer.count
        }
        guard complete else { throw VSecureError(.key, "cannot read key file \(Quoted(path)): short read") }
        return key
    }

    /// Reads until `buffer` is full or end of file; returns the byte count, or -1 on error.
    public static func readFully(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var total = 0
        while total < buffer.count {
            let n = retrying { read(fd, buffer.baseAddress! + total, buffer.count - total) }
            if n < 0 { return -1 }
            if n == 0 { break }
            total += n
        }
        return total
    }

    static func octal(_ mode: mode_t) -> String {
        String(mode, radix: 8).count < 4 ? String(repeating: "0", count: 4 - String(mode, radix: 8).count) + String(mode, radix: 8) : String(mode, radix: 8)
    }
}
