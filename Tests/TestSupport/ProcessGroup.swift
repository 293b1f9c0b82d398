import Foundation

/// A child started as the leader of its own process group, so that it and everything it
/// spawned can be killed at once (`kill(-pgid, SIGKILL)`), as a crash or power cut would stop them.
public final class ProcessGroup: @unchecked Sendable {
    public let pid: pid_t
    private var reaped = false

    /// Starts `executable` with stdin from /dev/null and stdout/stderr appended to `logPath`
    /// (or /dev/null).
    public init(_ executable: String, _ arguments: [String], environment: [String: String], logPath: String? = nil) throws {
        pid = try Spawn.start(executable, arguments, environment: environment, redirections: [
            .open("/dev/null", O_RDONLY, 0),
            .open(logPath ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o600),
            .dup(1, 2),
        ])
    }

    /// SIGKILLs the whole group and reaps the leader; returns its exit status (137).
    @discardableResult
    public func killGroup() -> Int32 {
        kill(-pid, SIGKILL)
        return wait()
    }

    /// Waits for the leader to exit; returns its exit code, or 128 + N for signal N.
    @discardableResult
    public func wait() -> Int32 {
        guard !reaped else { return 0 }
        reaped = true
        return waitStatus(pid)
    }

    deinit {
        if !reaped { killGroup() }
    }
}
