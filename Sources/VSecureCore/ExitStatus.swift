/// The exit codes of `vsecure` and `vsecure-run`. The table is part of the public interface
/// (README "Exit codes"); add new codes, never renumber old ones.
public enum ExitStatus: Int32, Sendable, CaseIterable {
    case success = 0
    /// A bug or an unexpected system failure.
    case internalError = 1
    /// Bad command-line input: unknown flag, malformed name, duration, date, tag or metadata.
    case usage = 2
    /// A named secret or version does not exist (for the launcher: a required secret is missing).
    case notFound = 3
    /// The operation conflicts with the current state: the secret exists, or `--if-version` failed.
    case conflict = 4
    /// The secret has expired and `--allow-expired` was not given.
    case expired = 5
    /// No vault at the given path (run `vsecure vault:init`), or the path is not a vault file.
    case vaultMissing = 6
    /// The key is wrong or unusable: wrong key file or passphrase, unsafe key-file permissions,
    /// a symlink, or the wrong length.
    case key = 7
    /// The vault is corrupted or was tampered with, or it has a newer format than this build reads.
    case integrity = 8
    /// The file system refused: disk full, permission denied, read-only.
    case io = 9
    /// The launcher's manifest is malformed.
    case manifest = 10
    /// The launcher refused to build the child's environment (a NUL byte in a value, a protected
    /// variable, two sources for one variable).
    case unsafeEnvironment = 11
    /// The server refused the API key (401) or the operation (403).
    case accessDenied = 12
    /// The server could not be reached, timed out, failed TLS, or answered with something that is
    /// not a vsecure response.
    case remoteUnreachable = 13
    /// The operation needs a vsecure server (roles, grants).
    case needsServer = 14
    /// A rotation failed (`secrets:rotate`), or at least one did (`rotation:run`); nothing
    /// changed for the failed secrets, and `rotation:run` retries them on its next run.
    case rotationFailed = 15
    /// The store cannot do this yet: rotation against a vsecure server.
    case unsupported = 16
    /// The command was found but cannot be executed.
    case commandNotExecutable = 126
    /// The command was not found.
    case commandNotFound = 127
}
