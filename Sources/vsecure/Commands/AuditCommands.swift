import ArgumentParser
import VSecureCore
import VSecureStore

/// The filters shared by `audit:logs` and `audit:export`.
struct AuditFilterOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Only this resource: \(AuditEvent.Resource.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "kind"))
    var resource: String?

    @Option(name: .long, help: ArgumentHelp("Only this action: \(AuditEvent.Action.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "action"))
    var action: String?

    @Option(name: .long, help: ArgumentHelp("Only successes or only failures.", valueName: "success|failure"))
    var result: String?

    @Option(name: .long, help: ArgumentHelp("Only what this user did (an email, a service account, or user@host for a local vault).", valueName: "user"))
    var actor: String?

    @Option(name: .long, help: ArgumentHelp("Only this environment.", valueName: "name"))
    var env: String?

    @Option(name: .long, help: ArgumentHelp("Only entries about this secret (also launches and batch reads that served it).", valueName: "secret"))
    var name: String?

    @Option(name: .long, help: ArgumentHelp("From this long ago (24h, 7d) or this time (2026-11-01T00:00:00Z).", valueName: "when"))
    var since: String?

    @Option(name: .long, help: ArgumentHelp("Before this long ago or this time.", valueName: "when"))
    var until: String?

    func filter(now: Timestamp) throws(VSecureError) -> AuditFilter {
        var filter = AuditFilter()
        let fields: [(String, String?)] = [("resource", resource), ("action", action), ("result", result), ("actor", actor),
                                           ("environment", env), ("name", name), ("since", since), ("until", until)]
        for case let (field, text?) in fields {
            do { try filter.set(field, text, now: now) } catch {
                var error = error
                error.message = "--\(field == "environment" ? "env" : field): \(error.message)"
                throw error
            }
        }
        return filter
    }
}

enum AuditTableFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}

enum AuditExportFormat: String, ExpressibleByArgument, CaseIterable {
    case jsonl, csv
}

struct AuditLogs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit:logs",
        abstract: "Show audit entries: who read or changed what, and when (newest last).",
        discussion: """
        Reads the local vault's audit log (beside the vault: vault.audit.db), or the server's \
        with an endpoint (scope audit:read). Shows the newest --limit entries that pass every \
        filter given. Entries never hold a value or a token.
        """
    )

    @OptionGroup var location: StoreOptions
    @OptionGroup var filters: AuditFilterOptions

    @Option(name: .long, help: "At most this many entries (the newest).")
    var limit: Int = 50

    @Option(name: .long, help: "Output format: table or json.")
    var output: AuditTableFormat = .table

    func validate() throws {
        guard (1...1000).contains(limit) else { throw ValidationError("--limit must be from 1 to 1000") }
    }

    func run() throws {
        var filter = try filters.filter(now: ProcessEnvironment.now)
        filter.limit = limit
        filter.newestFirst = true
        let reader = try location.openAuditReader()
        let entries = Array(try reader.auditEntries(filter).entries.reversed())
        if output == .json {
            Console.out(JSONValue.array(entries.map(\.json)).serialized())
            return
        }
        guard !entries.isEmpty else {
            Console.note("no audit entries match")
            return
        }
        let rows = entries.map { entry -> [String] in
            let event = entry.event
            return [String(entry.seq), event.time.iso8601, event.actor.user ?? "-", event.resource.rawValue, event.action.rawValue,
                    event.outcome.rawValue, AuditPresentation.subject(event)]
        }
        Console.out(Presentation.table(["SEQ", "TIME", "ACTOR", "RESOURCE", "ACTION", "RESULT", "SUBJECT"], rows))
    }
}

struct AuditExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit:export",
        abstract: "Write every matching audit entry to stdout, as JSON lines or CSV (oldest first).",
        discussion: "For a SIEM or an archive: `vsecure audit:export --format jsonl --since 30d > audit.jsonl`."
    )

    @OptionGroup var location: StoreOptions
    @OptionGroup var filters: AuditFilterOptions

    @Option(name: .long, help: "jsonl (one JSON entry per line, with its MAC) or csv.")
    var format: AuditExportFormat = .jsonl

    func run() throws {
        var filter = try filters.filter(now: ProcessEnvironment.now)
        filter.limit = 1000
        let reader = try location.openAuditReader()
        if format == .csv {
            Console.out(AuditPresentation.csvHeader)
        }
        while true {
            let (entries, hasMore) = try reader.auditEntries(filter)
            for entry in entries {
                Console.out(format == .csv ? AuditPresentation.csvRow(entry) : entry.json.serialized(indent: nil))
            }
            guard hasMore, let last = entries.last else { break }
            filter.after = last.seq
        }
    }
}

struct AuditVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit:verify",
        abstract: "Check the audit log's chain of MACs and its anchor; report the first entry that was changed.",
        discussion: """
        Exit 0 when every entry and the anchor check out; exit 8 when an entry was edited, \
        removed, moved, or the end of the log was cut off (the entry is named). The head \
        (last sequence number and MAC) is printed: keep it elsewhere to detect a later rollback \
        of the whole log.
        """
    )

    @OptionGroup var location: StoreOptions
    @OptionGroup var output: OutputOption

    func run() throws {
        let reader = try location.openAuditReader()
        let result = try reader.verifyAudit()
        if output.json {
            Console.out(result.json.serialized())
        } else if result.isIntact {
            Console.out("intact: \(result.checked) entr\(result.checked == 1 ? "y" : "ies"); head \(result.headSeq) \(result.headMAC)")
        }
        if let problem = result.problemDescription {
            var error = VSecureError(.integrity, "the audit log was tampered with: \(problem)",
                                     hint: result.headSeq > 0 ? "entries 1 to \(result.headSeq) check out; restore the log from a backup and compare"
                                         : "restore the log from a backup and compare")
            if result.problem == .edited(seq: 1) {
                error.hints.append("when the very first entry fails, check that the key (audit.key) is this log's")
            }
            throw error
        }
    }
}

enum AuditPresentation {
    /// What an entry is about, in one cell: `production/API_KEY v3`, or the names a launch read.
    static func subject(_ event: AuditEvent) -> String {
        var text = [event.environment, event.name].compactMap { $0 }.joined(separator: "/")
        if let version = event.version { text += " v\(version)" }
        if !event.items.isEmpty {
            let items = event.items.map { item in item.version.map { "\(item.name) v\($0)" } ?? item.name }
            let shown = items.prefix(4).joined(separator: ", ") + (items.count > 4 ? ", +\(items.count - 4) more" : "")
            text += (text.isEmpty ? "" : ": ") + shown
        }
        let notes = event.details.filter { ["reason", "runId", "path"].contains($0.0) }.map { "\($0.0)=\($0.1)" }
        if !notes.isEmpty { text += (text.isEmpty ? "" : " ") + "(" + notes.joined(separator: ", ") + ")" }
        return text.isEmpty ? "-" : text
    }

    static let csvHeader = "seq,time,actor,key_id,resource,action,result,environment,name,version,items,address,request_id,details,mac"

    static func csvRow(_ entry: AuditEntry) -> String {
        let e = entry.event
        let fields: [String] = [
            String(entry.seq), e.time.iso8601, e.actor.user ?? "", e.actor.keyID ?? "", e.resource.rawValue, e.action.rawValue,
            e.outcome.rawValue, e.environment ?? "", e.name ?? "", e.version.map { String($0) } ?? "",
            e.items.map { item in item.version.map { "\(item.name)@\($0)" } ?? item.name }.joined(separator: " "),
            e.request?.address ?? "", e.request?.requestID ?? "",
            e.details.map { "\($0.0)=\($0.1)" }.joined(separator: "; "), hexString(entry.mac),
        ]
        return fields.map(csvField).joined(separator: ",")
    }

    /// RFC 4180: quoted when it holds a comma, quote or line break; a leading =, +, - or @ is
    /// prefixed with a quote mark so a spreadsheet does not run it as a formula.
    static func csvField(_ text: String) -> String {
        var text = text
        if let first = text.first, "=+-@".contains(first) { text = "'" + text }
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
    }
}
