#if canImport(Glibc)
import Glibc
#endif
import VSecureCore

/// PATH resolution done by hand: glibc's execvpe is not imported into Swift, and a shell must
/// never see the command line.
enum CommandLookup {
    static let defaultPath = "/usr/local/bin:/usr/bin:/bin"

    /// The file to execute: the command itself when it holds a `/`, else the first executable
    /// regular file of that name on `searchPath`.
    static func resolve(_ command: String, searchPath: String?) throws(VSecureError) -> String {
        guard !command.isEmpty else { throw VSecureError(.commandNotFound, "the command is empty") }
        if command.contains("/") {
            try checkExecutable(command, shownAs: command)
            return command
        }
        var sawNonExecutable: String?
        for directory in (searchPath ?? defaultPath).split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (directory.isEmpty ? "." : String(directory)) + "/" + command
            var info = stat()
            guard stat(candidate, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            if access(candidate, X_OK) == 0 { return candidate }
            if sawNonExecutable == nil { sawNonExecutable = candidate }
        }
        if let sawNonExecutable {
            throw VSecureError(.commandNotExecutable, "command \(Quoted(command)) is not executable (\(sawNonExecutable))",
                               hint: "chmod +x \(sawNonExecutable)")
        }
        throw VSecureError(.commandNotFound, "command \(Quoted(command)) not found in PATH",
                           hint: "give a path such as ./\(command), or check PATH")
    }

    private static func checkExecutable(_ path: String, shownAs: String) throws(VSecureError) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw VSecureError(.commandNotFound, "command \(Quoted(shownAs)) not found")
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw VSecureError(.commandNotExecutable, "command \(Quoted(shownAs)) is not a regular file")
        }
        guard access(path, X_OK) == 0 else {
            throw VSecureError(.commandNotExecutable, "command \(Quoted(shownAs)) is not executable", hint: "chmod +x \(shownAs)")
        }
    }

    /// The error for a failed `execve`, naming the command.
    static func execFailure(_ code: Int32, command: String) -> VSecureError {
        switch code {
        case ENOENT:
            return VSecureError(.commandNotFound, "command \(Quoted(command)) not found (or its interpreter is missing)")
        case ENOEXEC:
            return VSecureError(.commandNotExecutable, "command \(Quoted(command)) is not in an executable format",
                                hint: "a script needs a #! line, e.g. #!/bin/sh")
        case E2BIG:
            return VSecureError(.unsafeEnvironment, "the environment and arguments are too large for the kernel (E2BIG)",
                                hint: "deliver large secrets as files (file: true in the manifest)")
        default:
            return VSecureError(.commandNotExecutable, "cannot execute \(Quoted(command)): \(String(cString: strerror(code)))")
        }
    }
}

/// argv for execve: C strings of public arguments.
final class ArgumentVector {
    private var pointers: [UnsafeMutablePointer<CChar>?]

    init(_ arguments: [String]) {
        pointers = arguments.map { strdup($0) } + [nil]
    }

    deinit { for pointer in pointers { free(pointer) } }

    func withArgv<R>(_ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
