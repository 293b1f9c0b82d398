#if canImport(Glibc)
import Glibc
#endif
import CLinux
import VSecureCore

/// `vsecure-run` is linked as a static executable: with no dynamic loader to start and no
/// shared libraries to map and relocate, a local launch costs about a sixth less
/// (docs/benchmarks.md). A static glibc program cannot safely `dlopen` libcurl (the library
/// brings a second copy of libc, and TLS through it crashes), so a launch from a server is
/// handed, before anything secret is read, to `vsecure-run-remote`: the same launcher linked
/// dynamically. It gets the same arguments and environment and does the whole launch itself.
enum RemoteHandOff {
    /// The name of the dynamically linked twin.
    static let twinName = "vsecure-run-remote"

    /// True when this process started without a dynamic loader (no `PT_INTERP`, so the kernel
    /// passes no interpreter base).
    static var isStaticExecutable: Bool { vsecure_is_static_executable() != 0 }

    /// Where the twin is looked for, relative to this executable's own directory: the installed
    /// layout (`PREFIX/bin` and `PREFIX/libexec/vsecure`) first, then beside it (a build
    /// directory, or an image that copied both binaries into one directory).
    static func candidates(executableDirectory directory: String) -> [String] {
        [directory + "/../libexec/vsecure/" + twinName, directory + "/" + twinName]
    }

    /// Replaces this process with the twin, passing `arguments` (argv[0] included) and the
    /// environment unchanged. Throws only when no twin can be executed.
    static func exec(_ arguments: [String]) throws(VSecureError) -> Never {
        guard let directory = executableDirectory() else {
            throw VSecureError(.remoteUnreachable, "cannot find \(twinName): /proc/self/exe cannot be read",
                               hint: "a launch from a server needs /proc mounted")
        }
        let paths = candidates(executableDirectory: directory)
        guard let path = paths.first(where: { access($0, X_OK) == 0 }) else {
            throw VSecureError(.remoteUnreachable, "a launch from a server runs \(twinName), and there is none at \(paths.map { Quoted($0).description }.joined(separator: " or "))",
                               hint: "install it with ./install.sh (into PREFIX/libexec/vsecure), or copy it beside vsecure-run")
        }
        let code = ArgumentVector(arguments).withArgv { argv in
            execve(path, argv, environ)
            return errno
        }
        throw VSecureError(.remoteUnreachable, "a launch from a server runs \(twinName), and \(Quoted(path)) could not be executed: \(String(cString: strerror(code)))")
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
