import Foundation

/// What a finished process left behind: stdout as exact bytes, stderr as bytes and text, and
/// the exit status (128 + N when it was killed by signal N).
public struct ProcessResult: Sendable, CustomStringConvertible {
    public var stdout: [UInt8]
    public var stderrBytes: [UInt8]
    public var status: Int32
    public var timedOut: Bool

    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderr: String { String(decoding: stderrBytes, as: UTF8.self) }

    public var description: String {
        "exit \(status)\(timedOut ? " (timed out)" : "")\n--- stdout ---\n\(stdoutText)\n--- stderr ---\n\(stderr)"
    }
}

/// Where a child's stdin comes from.
public enum StandardInput: Sendable {
    /// /dev/null: not a terminal, and empty.
    case null
    /// These bytes, through a pipe that is closed after them.
    case bytes([UInt8])
    /// A file opened for reading.
    case file(String)

    public static func text(_ text: String) -> StandardInput { .bytes(Array(text.utf8)) }
}

/// A minimal environment for a child: PATH, HOME and NO_COLOR=1, nothing inherited.
public func minimalEnvironment(home: String) -> [String: String] {
    ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": home, "NO_COLOR": "1"]
}

/// Runs `executable` with `arguments` and exactly `environment`, and collects its output;
/// stdout and stderr are pipes. `rawEntries` are appended to the environment block as given,
/// in order: `NAME=VALUE` bytes that a dictionary of strings cannot hold (a name that is not
/// UTF-8, the same name twice). The child leads its own process group: after `timeout` seconds
/// the whole group (a shell and everything it started) is killed with SIGKILL.
public func runProcess(_ executable: String, _ arguments: [String], environment: [String: String],
                       rawEntries: [[UInt8]] = [], stdin: StandardInput = .null, workingDirectory: String? = nil,
                       timeout: TimeInterval = 120) throws -> ProcessResult {
    let outPipe = try PipePair(), errPipe = try PipePair()
    var inPipe: PipePair?
    var redirections: [Spawn.Redirection] = [.dup(outPipe.write, 1), .dup(errPipe.write, 2)]
    switch stdin {
    case .null: redirections.append(.open("/dev/null", O_RDONLY, 0))
    case .file(let path): redirections.append(.open(path, O_RDONLY, 0))
    case .bytes:
        let pipe = try PipePair()
        redirections.append(.dup(pipe.read, 0))
        inPipe = pipe
    }
    let pid = try Spawn.start(executable, arguments, environment: environment, rawEntries: rawEntries, redirections: redirections,
                              workingDirectory: workingDirectory)
    // The parent's copies of the child's ends must go, or the readers never see end of file.
    outPipe.closeWrite()
    errPipe.closeWrite()
    inPipe?.closeRead()

    let out = Collected(), err = Collected()
    let done = DispatchGroup()
    for (pipe, sink) in [(outPipe, out), (errPipe, err)] {
        done.enter()
        Thread.detachNewThread {
            sink.set(readToEnd(pipe.read))
            pipe.closeRead()
            done.leave()
        }
    }
    if let inPipe, case .bytes(let bytes) = stdin {
        Thread.detachNewThread {
            // The child may exit without reading everything: EPIPE ends the write (SIGPIPE is
            // ignored in the test runner).
            writeAll(inPipe.write, bytes)
            inPipe.closeWrite()
        }
    }
    let exit = ExitWatch(pid: pid)
    var timedOut = false
    if exit.exited.wait(timeout: .now() + timeout) == .timedOut {
        timedOut = true
        kill(-pid, SIGKILL)
        exit.exited.wait()
    }
    // A grandchild that kept the pipes open is killed with the group, or at least not waited for.
    if done.wait(timeout: .now() + 10) == .timedOut { kill(-pid, SIGKILL) }
    return ProcessResult(stdout: out.get(), stderrBytes: err.get(), status: exit.status, timedOut: timedOut)
}

/// Runs a `/bin/sh -c` script with the minimal environment plus `environment`.
public func runShell(_ script: String, home: String, environment: [String: String] = [:],
                     stdin: StandardInput = .null, workingDirectory: String? = nil,
                     timeout: TimeInterval = 120) throws -> ProcessResult {
    try runProcess("/bin/sh", ["-c", script], environment: minimalEnvironment(home: home).merging(environment) { $1 },
                   stdin: stdin, workingDirectory: workingDirectory, timeout: timeout)
}

/// Quotes `text` for a POSIX shell script.
public func shellQuoted(_ text: String) -> String {
    "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

// MARK: - Plumbing

/// posix_spawn with the child as leader of a new process group.
enum Spawn {
    enum Redirection {
        case dup(Int32, Int32)
        case open(String, Int32, mode_t)
    }

    static func start(_ executable: String, _ arguments: [String], environment: [String: String], rawEntries: [[UInt8]] = [],
                      redirections: [Redirection], workingDirectory: String? = nil) throws -> pid_t {
        _ = ignoreSIGPIPE
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A new process group, default signal dispositions (the test runner ignores SIGPIPE;
        // its children must not inherit that), and an empty signal mask.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for redirection in redirections {
            switch redirection {
            case .dup(let from, let to): posix_spawn_file_actions_adddup2(&actions, from, to)
            case .open(let path, let flags, let mode):
                let target: Int32 = flags & O_ACCMODE == O_RDONLY ? 0 : 1
                posix_spawn_file_actions_addopen(&actions, target, path, flags, mode)
            }
        }
        if let workingDirectory {
            guard let addchdir = addChdir else { throw TestFailure("posix_spawn_file_actions_addchdir_np is missing") }
            _ = addchdir(&actions, workingDirectory)
        }

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let raw: [UnsafeMutablePointer<CChar>?] = rawEntries.map { entry in
            let copy = UnsafeMutablePointer<CChar>.allocate(capacity: entry.count + 1)
            for (offset, byte) in entry.enumerated() { copy[offset] = CChar(bitPattern: byte) }
            copy[entry.count] = 0
            return copy
        }
        defer { for pointer in raw { pointer?.deallocate() } }
        let named: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") }
        defer { for pointer in argv + named { free(pointer) } }
        let envp = named + raw + [nil]
        var pid: pid_t = 0
        let rc = descriptorLock.withLock { posix_spawn(&pid, executable, &actions, &attributes, argv, envp) }
        guard rc == 0 else { throw TestFailure("cannot start \(executable): \(String(cString: strerror(rc)))") }
        return pid
    }
}

/// Held while a pipe is made and marked close-on-exec, and while a child is spawned, so that no
/// child inherits another test's pipe (which would delay that test's end of file).
let descriptorLock = NSLock()

/// glibc's posix_spawn_file_actions_addchdir_np, which Swift does not import (it is behind
/// _GNU_SOURCE in <spawn.h>).
private let addChdir: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32)? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32).self)
}()

/// Waits for a child on its own thread, so the caller can wait with a timeout.
final class ExitWatch: @unchecked Sendable {
    let exited = DispatchSemaphore(value: 0)
    private(set) var status: Int32 = -1

    init(pid: pid_t) {
        Thread.detachNewThread { [self] in
            status = waitStatus(pid)
            exited.signal()
        }
    }
}

/// Reaps `pid`; returns its exit code, or 128 + N for signal N.
func waitStatus(_ pid: pid_t) -> Int32 {
    var raw: Int32 = 0
    while waitpid(pid, &raw, 0) < 0 {
        if errno != EINTR { return -1 }
    }
    let signal = raw & 0x7F
    return signal == 0 ? (raw >> 8) & 0xFF : 128 + signal
}

/// A pipe whose ends are closed at most once.
final class PipePair: @unchecked Sendable {
    let read: Int32
    let write: Int32
    private let lock = NSLock()
    private var readOpen = true, writeOpen = true

    init() throws {
        var fds: [Int32] = [0, 0]
        let ok = descriptorLock.withLock { () -> Bool in
            guard pipe(&fds) == 0 else { return false }
            _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
            return true
        }
        guard ok else { throw TestFailure("pipe failed: errno \(errno)") }
        read = fds[0]
        write = fds[1]
    }

    func closeRead() { lock.withLock { if readOpen { readOpen = false; close(read) } } }
    func closeWrite() { lock.withLock { if writeOpen { writeOpen = false; close(write) } } }
    deinit { closeRead(); closeWrite() }
}

private func readToEnd(_ fd: Int32) -> [UInt8] {
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n > 0 { result += buffer[0..<n]; continue }
        if n < 0 && errno == EINTR { continue }
        return result
    }
}

private func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    bytes.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += n
        }
    }
}

private final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var data: [UInt8] = []
    func set(_ value: [UInt8]) { lock.withLock { data = value } }
    func get() -> [UInt8] { lock.withLock { data } }
}

/// A write to a pipe whose reader has exited must fail with EPIPE, not kill the test runner.
private let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()
