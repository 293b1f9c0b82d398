#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Synchronization
import VSecureCore
import VSecureCrypto

/// Runs a rotation command (docs/rotation.md): `posix_spawn` without a shell, in its own process
/// group, with only the given environment; the current value is written to its stdin from
/// locked memory and its stdout is read into locked memory. Its stderr goes to /dev/null: it
/// might echo a value, and a failure message must not carry one.
public enum RotationCommand {
    public static let outputLimit = SecretValueRule.maximumBytes

    /// `forwardSignals`: while the command runs, SIGINT, SIGTERM and SIGHUP sent to this process
    /// (Ctrl-C reaches only the terminal's foreground process group, which the command is not
    /// in) are passed on to the command's group and kept for `deliverPendingSignal`, which the
    /// caller calls once it has recorded how the rotation ended. Without it a Ctrl-C would end
    /// vsecure and leave the command running on its own, its new value lost. The server, which
    /// handles its signals itself, does not ask for it.
    public static func run(argv: [String], environment: [String], input: SecureBytes?,
                           timeout: SecretDuration, forwardSignals: Bool = false) throws(RotationFailure) -> SecureBytes {
        guard let program = argv.first else { throw RotationFailure("the rotation command is empty") }
        var savedActions: [sigaction] = Array(repeating: .init(), count: 3)
        if forwardSignals { savedActions.withUnsafeMutableBufferPointer { vsecure_forward_begin($0.baseAddress) } }
        defer {
            if forwardSignals {
                let caught = savedActions.withUnsafeBufferPointer { vsecure_forward_end($0.baseAddress) }
                if caught != 0 { pendingSignal.store(caught, ordering: .relaxed) }
            }
        }
        var toChild: [Int32] = [-1, -1], fromChild: [Int32] = [-1, -1]
        guard pipe(&toChild) == 0 else { throw RotationFailure("cannot create a pipe: \(errnoText())") }
        guard pipe(&fromChild) == 0 else {
            close(toChild[0]); close(toChild[1])
            throw RotationFailure("cannot create a pipe: \(errnoText())")
        }
        for fd in toChild + fromChild { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t(), allSignals = sigset_t()
        sigemptyset(&noSignals)
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let cArguments = argv.map { strdup($0) } + [nil]
        let cEnvironment = environment.map { strdup($0) } + [nil]
        defer {
            for pointer in cArguments { free(pointer) }
            for pointer in cEnvironment { free(pointer) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, program, &actions, &attributes, cArguments, cEnvironment)
        close(toChild[0])
        close(fromChild[1])
        guard spawned == 0 else {
            close(toChild[1]); close(fromChild[0])
            throw RotationFailure("the rotation command \(program) could not be started: \(String(cString: strerror(spawned)))")
        }
        if forwardSignals { vsecure_forward_start(pid) }

        // Writing to a command that stopped reading must not kill vsecure.
        let previousPipeHandler = signal(SIGPIPE, SIG_IGN)
        defer { signal(SIGPIPE, previousPipeHandler) }
        let output = SecureBytes(count: outputLimit + 2)
        let deadline = monotonicSeconds() + Double(timeout.seconds)
        let exchanged = exchange(pid: pid, input: input, writeFD: toChild[1], readFD: fromChild[0], into: output, deadline: deadline)
        let status = exchanged.exitStatus ?? reap(pid, deadline: exchanged.timedOut ? 0 : deadline)

        if exchanged.timedOut || status == nil {
            throw RotationFailure("the rotation command \(program) did not finish within \(timeout) and was killed")
        }
        // Killed by vsecure for printing too much: that is the reason, not the signal.
        if exchanged.overflow {
            throw RotationFailure("the rotation command \(program) printed more than \(outputLimit) bytes (120 KiB)")
        }
        guard let status else { throw RotationFailure("the rotation command \(program) was lost") }
        if status & 0x7F != 0 {
            throw RotationFailure("the rotation command \(program) was killed by signal \(status & 0x7F)")
        }
        let code = (status >> 8) & 0xFF
        guard code == 0 else { throw RotationFailure("the rotation command \(program) exited with status \(code); nothing was changed") }
        var length = exchanged.length
        if length > 0, output.withUnsafeBytes({ $0[length - 1] }) == UInt8(ascii: "\n") { length -= 1 }
        guard length > 0 else { throw RotationFailure("the rotation command \(program) printed an empty value") }
        guard length <= outputLimit else {
            throw RotationFailure("the rotation command \(program) printed more than \(outputLimit) bytes (120 KiB)")
        }
        return output.slice(0..<length)
    }

    /// A signal caught while a command ran with `forwardSignals` (0: none).
    private static let pendingSignal = Atomic<Int32>(0)

    /// Raises the signal caught during the last command run with `forwardSignals`, if any, now
    /// that its own handling is restored: by default it ends the process, as it would have.
    public static func deliverPendingSignal() {
        let caught = pendingSignal.exchange(0, ordering: .relaxed)
        if caught != 0 { raise(caught) }
    }

    private struct Exchange {
        var length = 0
        var overflow = false
        var timedOut = false
        /// Set when the command exited before its stdout reached end of file (a process it
        /// started in the background still holds the pipe); the wait status, already reaped.
        var exitStatus: Int32?
    }

    /// How long stdout is still read after the command itself has exited.
    static let drainAfterExit = 0.2

    /// Feeds stdin and drains stdout at the same time, so a value larger than a pipe buffer
    /// cannot deadlock against a command that writes before it reads.
    private static func exchange(pid: pid_t, input: SecureBytes?, writeFD: Int32, readFD: Int32, into output: SecureBytes,
                                 deadline: Double) -> Exchange {
        var result = Exchange()
        var writeFD: Int32 = writeFD
        var written = 0
        let inputCount = input?.count ?? 0
        for fd in [writeFD, readFD] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        if inputCount == 0 { close(writeFD); writeFD = -1 }
        defer {
            if writeFD >= 0 { close(writeFD) }
            close(readFD)
        }
        var drainUntil: Double?
        while true {
            // The command's own exit decides, not the end of its stdout: something it left
            // running in the background may hold the pipe open. What it printed by then (and
            // within a short grace) is its output.
            if result.exitStatus == nil {
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid {
                    result.exitStatus = status
                    drainUntil = monotonicSeconds() + drainAfterExit
                }
            }
            if let drainUntil, monotonicSeconds() >= drainUntil { return result }
            let remaining = deadline - monotonicSeconds()
            if remaining <= 0 {
                result.timedOut = result.exitStatus == nil
                kill(-pid, SIGKILL)
                if result.exitStatus == nil { kill(pid, SIGKILL) }
                return result
            }
            var fds = [pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)]
            if writeFD >= 0 { fds.append(pollfd(fd: writeFD, events: Int16(POLLOUT), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), Int32(min(remaining * 1000 + 1, 50)))
            if ready < 0 && errno != EINTR { result.timedOut = true; return result }
            if ready <= 0 { continue }
            if writeFD >= 0, fds.count > 1, fds[1].revents != 0 {
                let n = input?.withUnsafeBytes { raw in write(writeFD, raw.baseAddress! + written, inputCount - written) } ?? 0
                if n > 0 { written += n }
                if written >= inputCount || (n < 0 && errno != EAGAIN && errno != EINTR) {
                    close(writeFD)
                    writeFD = -1
                }
            }
            if fds[0].revents != 0 {
                let space = output.count - result.length
                if space == 0 {
                    result.overflow = true
                    kill(-pid, SIGKILL)
                    if result.exitStatus == nil { kill(pid, SIGKILL) }
                    return result
                }
                let n = output.withUnsafeMutableBytes { raw in read(readFD, raw.baseAddress! + result.length, space) }
                if n > 0 { result.length += n; continue }
                if n == 0 { return result }
                if errno != EAGAIN && errno != EINTR { return result }
            }
        }
    }

    /// The wait status, or nil when the command had to be killed at `deadline`.
    private static func reap(_ pid: pid_t, deadline: Double) -> Int32? {
        var status: Int32 = 0
        while true {
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid { return status }
            if done < 0 && errno != EINTR { return nil }
            if monotonicSeconds() >= deadline {
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                return deadline == 0 ? status : nil
            }
            usleep(2_000)
        }
    }

    private static func monotonicSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
