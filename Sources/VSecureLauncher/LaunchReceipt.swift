#if canImport(Glibc)
import Glibc
#endif
import VSecureCore
import VSecureCrypto
import VSecureVault

/// The audit entry of a local launch: one `accessed` entry listing every secret (and version)
/// the program gets, with the run id the program sees as VSECURE_RUN_ID, so its logs can be
/// joined to the audit log. Written before `execve`; if it cannot be written, the launch goes on
/// with a warning (see `record`).
///
/// The receipt goes to the log's receipts file (`ReceiptJournal`): one MAC'd, chained line
/// appended with one `write` and no sync, which the next `vsecure` command folds into the log.
/// It survives the launcher or the program crashing, but a power cut in the next moments can
/// lose it (docs/audit.md). Only the first launch on a vault without a log opens the log
/// itself, to create it and its key.
enum LaunchReceipt {
    /// `run_` and 16 hex digits of libsodium randomness.
    static func newRunID() -> String {
        "run_" + hexString(Sodium.randomBytes(8))
    }

    static func record(runID: String, settings: LaunchSettings, environment: EnvironmentName, injections: [Injection],
                       command: [String]) throws(VSecureError) {
        // (Throws only for a bad VSECURE_TEST_NOW.)
        var items: [AuditEvent.Item] = []
        var seen = StringIndex(capacity: injections.count)
        for secret in injections.flatMap(\.secrets) where seen.insert(secret.name.rawValue).inserted {
            items.append(AuditEvent.Item(name: secret.name.rawValue, version: secret.version))
        }
        var details: [(String, String)] = [("runId", runID), ("via", "vsecure-run")]
        if let program = command.first { details.append(("command", program)) }
        if let parent = LauncherConsole.string("VSECURE_RUN_ID") { details.append(("parentRunId", String(parent.prefix(64)))) }
        let event = AuditEvent(time: try Launcher.currentTime(),
                               actor: AuditEvent.Actor(user: LocalIdentity.actor(override: LauncherConsole.string("VSECURE_ACTOR"))),
                               resource: .secrets, action: .accessed, environment: environment.rawValue, items: items, details: details)
        write(event, settings: settings, what: "the launch receipt", then: "launching anyway")
    }

    /// After `execve` failed (a bad interpreter or binary format, E2BIG: what the path lookup
    /// before the receipt cannot see): a second entry under the same run id, `accessed
    /// failure` with the reason, so the log does not read as if the program got its secrets.
    static func recordExecFailure(runID: String, settings: LaunchSettings, environment: EnvironmentName, code: Int32,
                                  command: [String]) {
        var details: [(String, String)] = [("runId", runID), ("via", "vsecure-run"), ("reason", "exec_failed"),
                                           ("error", String(cString: strerror(code)))]
        if let program = command.first { details.append(("command", program)) }
        guard let now = try? Launcher.currentTime() else { return }
        let event = AuditEvent(time: now, actor: AuditEvent.Actor(user: LocalIdentity.actor(override: LauncherConsole.string("VSECURE_ACTOR"))),
                               resource: .secrets, action: .accessed, outcome: .failure, environment: environment.rawValue, details: details)
        write(event, settings: settings, what: "the failed launch's receipt", then: "the launch receipt before it stands alone")
    }

    private static func write(_ event: AuditEvent, settings: LaunchSettings, what: String, then: String) {
        let path = settings.auditLogPath
        let keyPath = AuditLog.keyPath(forLog: path)
        do {
            if PrivateFiles.kind(of: path) == .regular && PrivateFiles.kind(of: keyPath) == .regular {
                try ReceiptJournal.append(event, logPath: path, keyPath: keyPath)
            } else {
                // No log yet (or only half of one, which `open` reports): the log's own rules apply.
                let log = try AuditLog.open(path: path, keyPath: keyPath, create: true, durability: .normal)
                try log.append([event])
            }
        } catch {
            // A local vault's log is a record, not a barrier: whoever holds the key can read the
            // vault directly, and a full disk or a read-only image must not stop a program.
            LauncherConsole.warning("\(what) was not written to the audit log \(path): \(error.message); \(then)")
        }
    }
}
