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
    let dir = open(PrivateFiles.parentDirectory(of: to), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
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
