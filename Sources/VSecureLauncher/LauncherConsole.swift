#if canImport(Glibc)
import Glibc
#endif
import VSecureCore

/// stderr and stdout for the launcher, without Foundation. Messages never carry values.
enum LauncherConsole {
    static func write(_ fd: Int32, _ text: String) {
        var copy = text
        copy.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                offset += n
            }
        }
    }

    static func out(_ text: String) { write(STDOUT_FILENO, text + "\n") }
    static func error(_ failure: VSecureError) {
        write(STDERR_FILENO, "vsecure-run: error: \(failure.message)\n" + failure.hints.map { "vsecure-run: hint: \($0)\n" }.joined())
    }
    static func warning(_ text: String) { write(STDERR_FILENO, "vsecure-run: warning: \(text)\n") }
    static func note(_ text: String) { write(STDERR_FILENO, "vsecure-run: \(text)\n") }

    static func string(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }
}
