#if canImport(Glibc)
import Glibc
#endif
import VSecureCore
import VSecureCrypto

/// Reads secret bytes (values, passphrases) into locked memory, from a file, stdin or a
/// terminal prompt without echo. Values keep their exact bytes; only prompts drop the newline
/// that ends the typed line.
enum SecretInput {
    /// `missing` is the exit status when there is no file at `path`: bad input for a value or an
    /// import, a key error for a passphrase file (as for a missing key file).
    static func readFile(_ path: String, limit: Int, what: String, missing: ExitStatus = .usage) throws(VSecureError) -> SecureBytes {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            var error = PrivateFiles.ioError("cannot read \(what) from", path: path, code: code)
            if code == ENOENT { error.status = missing }
            throw error
        }
        defer { close(fd) }
        // A directory opens but cannot be read: the error names the path, as a missing file's does.
        return try readAll(fd, limit: limit, what: what, path: path)
    }

    static func readStdin(limit: Int, what: String) throws(VSecureError) -> SecureBytes {
        try readAll(STDIN_FILENO, limit: limit, what: what)
    }

    private static func readAll(_ fd: Int32, limit: Int, what: String, path: String? = nil) throws(VSecureError) -> SecureBytes {
        let buffer = SecureBytes(count: limit + 1)
        let count = buffer.withUnsafeMutableBytes { PrivateFiles.readFully(fd, into: $0) }
        guard count >= 0 else {
            throw VSecureError(.io, "cannot read \(what)\(path.map { " from \(Quoted($0))" } ?? ""): \(PrivateFiles.errnoText())")
        }
        guard count <= limit else {
            throw VSecureError(.usage, "\(what) is larger than the limit of \(limit) bytes")
        }
        return buffer.slice(0..<count)
    }

    /// Reads one line from the controlling terminal with echo off.
    static func prompt(_ text: String, limit: Int, noTerminal: VSecureError) throws(VSecureError) -> SecureBytes {
        let tty = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard tty >= 0 else { throw noTerminal }
        defer { close(tty) }
        var saved = termios()
        let haveTermios = tcgetattr(tty, &saved) == 0
        if haveTermios {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            quiet.c_lflag |= tcflag_t(ECHONL)
            tcsetattr(tty, TCSAFLUSH, &quiet)
        }
        defer { if haveTermios { tcsetattr(tty, TCSAFLUSH, &saved) } }
        var promptText = text
        promptText.withUTF8 { Console.writeAll(tty, UnsafeRawBufferPointer($0)) }
        let buffer = SecureBytes(count: limit + 1)
        var count = 0
        let ok = buffer.withUnsafeMutableBytes { raw -> Bool in
            var byte: UInt8 = 0
            while true {
                let n = read(tty, &byte, 1)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 || byte == 0x0A { break }
                guard count < limit else { return false }
                raw[count] = byte
                count += 1
            }
            byte = 0
            return true
        }
        guard ok else { throw VSecureError(.usage, "the typed value is longer than \(limit) bytes") }
        if count > 0 && buffer.withUnsafeBytes({ $0[count - 1] }) == 0x0D { count -= 1 }
        return buffer.slice(0..<count)
    }
}

enum Passphrase {
    static let limit = 4096

    /// `--passphrase-file`, else $VSECURE_PASSPHRASE, else a prompt (twice with `confirm`).
    static func read(file: String?, prompt: String, confirm: Bool) throws(VSecureError) -> SecureBytes {
        let passphrase: SecureBytes
        if let file {
            passphrase = try stripNewline(SecretInput.readFile(file, limit: limit, what: "the passphrase", missing: .key))
        } else if let raw = getenv("VSECURE_PASSPHRASE"), strlen(raw) > 0 {
            passphrase = SecureBytes(copying: UnsafeRawBufferPointer(start: raw, count: strlen(raw)))
        } else {
            let noTerminal = VSecureError(.key, "a passphrase is needed and there is no terminal to ask for it",
                                          hint: "pass it with --passphrase-file or VSECURE_PASSPHRASE")
            passphrase = try SecretInput.prompt(prompt, limit: limit, noTerminal: noTerminal)
            if confirm {
                let again = try SecretInput.prompt("Repeat the passphrase: ", limit: limit, noTerminal: noTerminal)
                guard passphrase.isEqual(to: again) else { throw VSecureError(.usage, "the passphrases do not match; nothing was changed") }
            }
        }
        guard passphrase.count > 0 else { throw VSecureError(.usage, "the passphrase is empty") }
        return passphrase
    }

    /// A passphrase file written by `echo` ends with a newline that is not part of it.
    static func stripNewline(_ bytes: SecureBytes) -> SecureBytes {
        var end = bytes.count
        bytes.withUnsafeBytes { raw in
            if end > 0 && raw[end - 1] == 0x0A { end -= 1 }
            if end > 0 && raw[end - 1] == 0x0D { end -= 1 }
        }
        return end == bytes.count ? bytes : bytes.slice(0..<end)
    }
}
