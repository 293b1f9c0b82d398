#if canImport(Glibc)
import Glibc
#endif
import VSecureCore
import VSecureCrypto

/// `vsecure-run` is linked as a static executable: with no dynamic loader to start and no
/// shared libraries to map and relocate, a local launch costs less (docs/benchmarks.md). A
/// static glibc program cannot safely `dlopen` libcurl (the library brings a second copy of
/// libc, and TLS through it crashes), so a launch from a server is handed, right after the
/// options are read and before anything secret is, to `vsecure-run-remote`: the same launcher
/// linked dynamically. It gets the same arguments and environment and does the whole launch.
enum RemoteHandOff {
    /// The name of the dynamically linked twin.
    static let twinName = "vsecure-run-remote"

    /// Where the twin is looked for, given this executable's own directory: the installed layout
    /// (`PREFIX/bin` and `PREFIX/libexec/vsecure`) first, then beside it (a build directory, or
    /// an image that copied both binaries into one directory).
    static func candidates(executableDirectory directory: String) -> [String] {
        let parent = directory.utf8.lastIndex(of: UInt8(ascii: "/")).map { String(directory[..<$0]) } ?? ""
        return [parent + "/libexec/vsecure/" + twinName, directory + "/" + twinName]
    }

    /// Replaces this process with the twin, passing `arguments` (argv[0] included) and the
    /// environment unchanged. Throws (exit 1: the installation is incomplete) only when no twin
    /// can be executed.
    static func exec(_ arguments: [String]) throws(VSecureError) -> Never {
        var own = stat()
        guard let directory = executableDirectory(), stat("/proc/self/exe", &own) == 0 else {
            throw VSecureError(.internalError, "cannot find \(twinName): /proc/self/exe cannot be read")
        }
        let paths = candidates(executableDirectory: directory)
        var notExecutable: String?
        for path in paths {
            var info = stat()
            guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            // Never this very file (a link to vsecure-run named like the twin): that would loop.
            guard info.st_dev != own.st_dev || info.st_ino != own.st_ino else { continue }
            guard access(path, X_OK) == 0 else {
                if notExecutable == nil { notExecutable = path }
                continue
            }
            let code = ArgumentVector(arguments).withArgv { argv in
                execve(path, argv, environ)
                return errno
            }
            throw VSecureError(.internalError, "a launch from a server runs \(twinName), and \(Quoted(path)) could not be executed: \(PrivateFiles.errnoText(code))",
                               hint: "reinstall it with ./install.sh")
        }
        if let notExecutable {
            throw VSecureError(.internalError, "a launch from a server runs \(twinName), and \(Quoted(notExecutable)) is not executable",
                               hint: "chmod +x \(notExecutable)")
        }
        throw VSecureError(.internalError, "a launch from a server runs \(twinName), and there is none at \(paths.map { Quoted($0).description }.joined(separator: " or "))",
                           hint: "install it with ./install.sh (into PREFIX/libexec/vsecure), or copy it beside vsecure-run")
    }

    private static func executableDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        let path = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return nil }
        return String(path[..<slash])
    }
}
