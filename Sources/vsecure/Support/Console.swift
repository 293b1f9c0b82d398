#if canImport(Glibc)
import Glibc
#endif
import VSecureCore
import VSecureCrypto
import VSecureRemote

/// Where vsecure speaks: data on stdout, messages on stderr as `vsecure: error: …` and
/// `vsecure: hint: …`. Colour only on a terminal and never when NO_COLOR is set.
enum Console {
    static let program = "vsecure"

    static var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) == 1 }
    static var stdinIsTerminal: Bool { isatty(STDIN_FILENO) == 1 }

    static var colorOnStderr: Bool {
        if ProcessEnvironment.string("NO_COLOR") != nil { return false }
        return isatty(STDERR_FILENO) == 1 && (ProcessEnvironment.string("TERM") ?? "dumb") != "dumb"
    }

    static func paint(_ text: String, _ code: String) -> String {
        colorOnStderr ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    static func writeErr(_ text: String) {
        var copy = text
        copy.withUTF8 { writeAll(STDERR_FILENO, UnsafeRawBufferPointer($0)) }
    }

    static func out(_ text: String) {
        var copy = text + "\n"
        copy.withUTF8 { writeAll(STDOUT_FILENO, UnsafeRawBufferPointer($0)) }
    }

    static func outRaw(_ bytes: UnsafeRawBufferPointer) {
        writeAll(STDOUT_FILENO, bytes)
    }

    static func error(_ message: String) { writeErr("\(program): \(paint("error:", "1;31")) \(message)\n") }
    static func warning(_ message: String) { writeErr("\(program): \(paint("warning:", "1;33")) \(message)\n") }
    static func hint(_ message: String) { writeErr("\(program): \(paint("hint:", "36")) \(message)\n") }
    static func note(_ message: String) { writeErr("\(program): \(message)\n") }

    static func report(_ failure: VSecureError) {
        error(failure.message)
        for line in failure.hints { hint(line) }
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                if fd == STDOUT_FILENO && stdoutError == 0 { stdoutError = errno }
                return
            }
            offset += n
        }
    }

    /// The errno of the first failed write to stdout (a full disk, a closed descriptor). The
    /// output is then incomplete, so the command must not exit 0: `vsecure secrets:get K > file`
    /// would otherwise look like it saved the value.
    nonisolated(unsafe) static var stdoutError: Int32 = 0

    static func checkOutputWasWritten() throws(VSecureError) {
        guard stdoutError == 0 else {
            throw VSecureError(.io, "cannot write the output: \(String(cString: strerror(stdoutError)))",
                               hint: "the output is incomplete; check where stdout goes (a full disk, a closed pipe)")
        }
    }
}

/// The process environment, read without copying secret variables into Swift strings.
enum ProcessEnvironment {
    static func string(_ name: String) -> String? { ClientEnvironment.string(name) }

    static var home: String { ClientEnvironment.home }

    /// Who the version records name: `VSECURE_ACTOR`, else `user@host`.
    static var actor: String { LocalIdentity.actor(override: string("VSECURE_ACTOR")) }

    /// The clock, or, in a debug build, the test hook `VSECURE_TEST_NOW` (ISO 8601 or epoch
    /// seconds; docs/rotation.md). A release build ignores it, so no one can backdate its audit
    /// entries or step past an expiry by setting a variable.
    static var now: Timestamp {
        #if DEBUG
        let testNow = string("VSECURE_TEST_NOW")
        #else
        let testNow: String? = nil
        #endif
        guard let text = testNow else { return Timestamp(secondsSinceEpoch: Int64(time(nil))) }
        do { return try Timestamp(testNow: text) } catch {
            Console.report(error)
            exit(ExitStatus.usage.rawValue)
        }
    }
}
