#if canImport(Glibc)
import Glibc
#endif
import VSecureCore
import VSecureCrypto

func removeFile(_ path: String) {
    _ = unlink(path)
}

func renameDurably(from: String, to: String) throws(VSecureError) {
    guard rename(from, to) == 0 else {
        throw PrivateFiles.ioError("cannot rename \(Quoted(from)) to", path: to)
    }
    syncDirectory(of: to)
}

/// Gives the file at `from` the name `to` as well, never replacing an existing `to`, and syncs
/// the directory so the new name survives a crash.
func linkDurably(from: String, to: String) throws(VSecureError) {
    guard link(from, to) == 0 else {
        throw PrivateFiles.ioError("cannot create", path: to)
    }
    syncDirectory(of: to)
}

/// Syncs the directory holding `path`, so a name just made there survives a crash (best effort).
private func syncDirectory(of path: String) {
    let dir = open(PrivateFiles.parentDirectory(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if dir >= 0 {
        _ = fsync(dir)
        _ = close(dir)
    }
}

/// The size of a file in bytes, or 0 when it cannot be read.
func fileSize(_ path: String) -> Int {
    var info = stat()
    guard stat(path, &info) == 0 else { return 0 }
    return Int(info.st_size)
}
