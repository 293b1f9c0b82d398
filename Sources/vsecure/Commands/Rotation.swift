import ArgumentParser
import VSecureCore
import VSecureStore

/// `--timeout` for the commands that may run a rotation command.
struct RotationTimeoutOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Kill a rotation command that runs longer than this (default 60s).", valueName: "duration"))
    var timeout: String?

    func settings() throws(VSecureError) -> RotationSettings {
        guard let timeout else { return RotationSettings() }
        let duration = try SecretDuration(parsing: timeout)
        guard duration.seconds <= 3_600 else { throw VSecureError.usage("--timeout is at most 1h") }
        return RotationSettings(commandTimeout: duration)
    }
}

struct SecretsRotate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets:rotate",
        abstract: "Rotate a secret now: its policy makes the next value (a new version, action rotate).",
        discussion: """
        Works whether or not the secret is due. A failure (the rotation command exited non-zero, \
        printed nothing or timed out) changes nothing, is recorded (rotation:status shows it) and \
        exits 15. A manual policy cannot be rotated by vsecure: give the new value with secrets:update. \
        Against a server, the server makes the value (its own command timeout applies, and a \
        rotation command it does not run exits 16).
        """
    )

    @Argument(help: ArgumentHelp("The secret's name.", valueName: "name"))
    var name: String

    @OptionGroup var location: StoreOptions
    @OptionGroup var environment: EnvironmentOption
    @OptionGroup var timeout: RotationTimeoutOption
    @OptionGroup var output: OutputOption

    func run() throws {
        let secretName = try SecretName(name)
        let settings = try timeout.settings()
        let store = try rotatingStore(try location.open())
        let result = try store.rotate(environment: try environment.explicit(), name: secretName, onlyIfDue: false, settings: settings)
        switch result.outcome {
        case .rotated(let from, let to):
            if output.json {
                Console.out(JSONValue.object(RotationPresentation.json(result)).serialized())
            } else {
                Console.out("Rotated \(secretName) in \(result.environment): version \(from) → \(to)")
            }
        case .skipped(let reason):
            throw VSecureError(.conflict, "\(secretName) in \(result.environment) was not rotated: \(reason)", hint: "try again when that rotation has finished")
        case .failed(let reason):
            throw VSecureError(.rotationFailed, "rotating \(secretName) in \(result.environment) failed: \(reason)",
                               hints: ["nothing was changed; `vsecure rotation:status --env \(result.environment)` shows the failure",
                                       "the rotation command's stderr is not shown (it could hold a value): run it by hand to see it"])
        }
    }
}

struct RotationStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotation:status",
        abstract: "Each secret with a rotation policy or an expiry: last rotation, next due time, state.",
        discussion: """
        States: ok, notify (inside the policy's notify-before window, or expiring within it or \
        within --notify-within), due, overdue (due for a full period or a day, whichever is shorter), \
        expired, failing (the last rotation failed). docs/rotation.md has the exact rules. Without \
        --env, every environment.
        """
    )

    @OptionGroup var location: StoreOptions

    @Option(name: .long, help: ArgumentHelp("Only this environment (default: every environment; $VSECURE_ENV is not used here).", valueName: "name"))
    var env: String?

    @Option(name: .customLong("due-within"), help: ArgumentHelp("Only secrets due, expiring or failing within this long from now.", valueName: "duration"))
    var dueWithin: String?

    @Option(name: .customLong("notify-within"), help: ArgumentHelp("For secrets without notify-before: say notify this long before expiry (default 7d).", valueName: "duration"))
    var notifyWithin: String = "7d"

    @OptionGroup var output: OutputOption

    func run() throws {
        let now = ProcessEnvironment.now
        let environment = try env.map { (text: String) throws(VSecureError) in try EnvironmentName(text) }
        let window = try dueWithin.map { (text: String) throws(VSecureError) in try SecretDuration(parsing: text) }
        let notice = try SecretDuration(parsing: notifyWithin)
        let store = try rotatingStore(try location.open())
        var entries = try store.rotationEntries(environment: environment)
        if let window {
            let limit = now.adding(window)
            entries = entries.filter { entry in
                (entry.record.map { $0.nextDueAt <= limit || $0.failingSince != nil } ?? false) || (entry.expiresAt.map { $0 <= limit } ?? false)
            }
        }
        if output.json {
            Console.out(JSONValue.array(entries.map { .object(RotationPresentation.json($0, now: now, notice: notice)) }).serialized())
            return
        }
        guard !entries.isEmpty else {
            Console.note(window == nil ? "no secret has a rotation policy or an expiry" : "nothing is due, expiring or failing within \(dueWithin ?? "")")
            return
        }
        let rows = entries.map { entry -> [String] in
            [entry.environment.rawValue, entry.name.rawValue, entry.damaged ? "damaged" : entry.state(at: now, expiryNotice: notice).rawValue,
             entry.record?.lastRotatedAt.iso8601 ?? "-", entry.record?.nextDueAt.iso8601 ?? "-",
             entry.expiresAt?.iso8601 ?? "never", entry.policy.map { "every \($0.period), \($0.source.kind)" } ?? "-"]
        }
        Console.out(Presentation.table(["ENVIRONMENT", "NAME", "STATE", "LAST ROTATED", "NEXT DUE", "EXPIRES", "POLICY"], rows))
        for entry in entries {
            if let record = entry.record, let message = record.lastFailure, record.failingSince != nil {
                Console.warning("\(entry.name) in \(entry.environment): \(record.failureCount) failed rotation\(record.failureCount == 1 ? "" : "s") since \(record.failingSince?.iso8601 ?? "?"); last: \(message)")
            }
        }
    }
}

struct RotationRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotation:run",
        abstract: "Rotate every due secret once (for cron: */5 * * * * vsecure rotation:run).",
        discussion: """
        Due means the policy's next due time has come, including overdue and failing secrets \
        (failures are retried on every run). Safe at any frequency and concurrently: each secret's \
        due time is checked again inside the write transaction, and a rotation in progress is \
        claimed, so two runs rotate a due secret once. A failure is recorded and reported and does \
        not stop the others; the exit status is then 15. Manual policies are listed, never rotated. \
        Against a server, the server checks the due time again in its own write transaction \
        (with its own clock) and makes the values.
        """
    )

    @OptionGroup var location: StoreOptions

    @Option(name: .long, help: ArgumentHelp("Only this environment (default: every environment).", valueName: "name"))
    var env: String?

    @Flag(name: .customLong("dry-run"), help: "Say what is due; rotate nothing.")
    var dryRun = false

    @OptionGroup var timeout: RotationTimeoutOption
    @OptionGroup var output: OutputOption

    func run() throws {
        let now = ProcessEnvironment.now
        let environment = try env.map { (text: String) throws(VSecureError) in try EnvironmentName(text) }
        let settings = try timeout.settings()
        let store = try rotatingStore(try location.open())
        let entries = try store.rotationEntries(environment: environment)
        let due = entries.filter { entry in
            entry.record.map { RotationState.isDue(now, record: $0) } ?? false
        }
        var results: [RotationResult] = entries.filter(\.damaged).map { entry in
            RotationResult(environment: entry.environment, name: entry.name,
                           outcome: .failed(reason: "its rotation policy cannot be read: the vault was altered or damaged; set it again with secrets:update --rotation-period …"))
        }
        for entry in due {
            if case .manual? = entry.policy?.source {
                results.append(RotationResult(environment: entry.environment, name: entry.name,
                                              outcome: .skipped(reason: "manual policy, due since \(entry.record?.nextDueAt.iso8601 ?? "?"): give it a new value with secrets:update")))
                continue
            }
            if dryRun {
                results.append(RotationResult(environment: entry.environment, name: entry.name,
                                              outcome: .skipped(reason: "would rotate (\(entry.policy?.source.kind ?? "?")), due since \(entry.record?.nextDueAt.iso8601 ?? "?")")))
                continue
            }
            do {
                results.append(try store.rotate(environment: entry.environment, name: entry.name, onlyIfDue: true, settings: settings))
            } catch {
                // One secret's trouble (deleted meanwhile, a damaged box) does not stop the others.
                results.append(RotationResult(environment: entry.environment, name: entry.name, outcome: .failed(reason: error.message)))
            }
        }
        let failed = results.filter { if case .failed = $0.outcome { return true } else { return false } }
        if output.json {
            Console.out(JSONValue.object([("dryRun", .bool(dryRun)), ("results", .array(results.map { .object(RotationPresentation.json($0)) }))]).serialized())
        } else {
            for result in results {
                let path = "\(result.environment)/\(result.name)"
                switch result.outcome {
                case .rotated(let from, let to): Console.out("rotated \(path): version \(from) → \(to)")
                case .skipped(let reason): Console.out("skipped \(path): \(reason)")
                case .failed(let reason): Console.out("failed  \(path): \(reason)")
                }
            }
            if results.isEmpty { Console.note("nothing is due") }
        }
        if !failed.isEmpty {
            throw VSecureError(.rotationFailed, "\(failed.count) rotation\(failed.count == 1 ? "" : "s") failed: \(failed.map { "\($0.environment)/\($0.name)" }.joined(separator: ", ")); nothing was changed for \(failed.count == 1 ? "it" : "them")",
                               hints: ["they are retried on the next run; `vsecure rotation:status` shows each failure"])
        }
    }
}

/// How rotation entries and results look in JSON. Never a value.
enum RotationPresentation {
    static func json(_ entry: RotationEntry, now: Timestamp, notice: SecretDuration) -> [(String, JSONValue)] {
        var members: [(String, JSONValue)] = [
            ("environment", .string(entry.environment.rawValue)),
            ("name", .string(entry.name.rawValue)),
            ("path", .string("\(entry.environment.rawValue)/\(entry.name.rawValue)")),
            ("version", .int(entry.currentVersion)),
            ("state", .string(entry.damaged ? "damaged" : entry.state(at: now, expiryNotice: notice).rawValue)),
            ("expiresAt", .optional(entry.expiresAt?.iso8601)),
        ]
        if let policy = entry.policy {
            var source: [(String, JSONValue)] = [("kind", .string(policy.source.kind))]
            switch policy.source {
            case .generate(let length, let charset): source += [("length", .int(length)), ("charset", .string(charset.rawValue))]
            case .command(let argv): source.append(("argv", .array(argv.map(JSONValue.string))))
            case .manual: break
            }
            members.append(("policy", .object([("period", .string(policy.period.description)),
                                               ("notifyBefore", .optional(policy.notifyBefore?.description)),
                                               ("source", .object(source))])))
        } else {
            members.append(("policy", .null))
        }
        members.append(("lastRotatedAt", .optional(entry.record?.lastRotatedAt.iso8601)))
        members.append(("nextDueAt", .optional(entry.record?.nextDueAt.iso8601)))
        if let record = entry.record, let since = record.failingSince {
            members.append(("failing", .object([("since", .string(since.iso8601)), ("lastAt", .optional(record.lastFailureAt?.iso8601)),
                                                ("count", .int(record.failureCount)), ("message", .optional(record.lastFailure))])))
        } else {
            members.append(("failing", .null))
        }
        return members
    }

    static func json(_ result: RotationResult) -> [(String, JSONValue)] {
        var members: [(String, JSONValue)] = [("environment", .string(result.environment.rawValue)), ("name", .string(result.name.rawValue))]
        switch result.outcome {
        case .rotated(let from, let to): members += [("outcome", .string("rotated")), ("fromVersion", .int(from)), ("toVersion", .int(to))]
        case .skipped(let reason): members += [("outcome", .string("skipped")), ("reason", .string(reason))]
        case .failed(let reason): members += [("outcome", .string("failed")), ("reason", .string(reason))]
        }
        return members
    }
}
