import Foundation
import Testing
import TestSupport
import VSecureCore
@testable import VSecureServer
@testable import VSecureVault

/// The server's audit trail on a real SQLite file: concurrent requests are committed in groups,
/// every entry is there and chained, and a log that cannot be extended makes `record` throw.
@Suite("Audit trail (group commit)")
struct AuditTrailTests {
    static func event(_ n: Int) -> AuditEvent {
        AuditEvent(time: Timestamp(secondsSinceEpoch: 1_800_000_000), actor: AuditEvent.Actor(user: "svc-\(n % 7)", keyID: "key_00000000000000\(n % 10)0"),
                   resource: .secrets, action: .accessed, environment: "production", name: "S_\(n)", version: 1)
    }

    @Test("400 concurrent records: all durable, numbered without gaps, in fewer commits than entries")
    func groupCommit() async throws {
        let directory = try TemporaryDirectory(prefix: "vsecure-audit-trail")
        let trail = try AuditTrail(path: directory.file("audit.db"), keyPath: directory.file("audit.key"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0..<400 { group.addTask { try await trail.record(Self.event(n)) } }
            try await group.waitForAll()
        }
        let (count, verification, names) = try trail.withLog { (log: AuditLog) throws(VSecureError) in
            (try log.count(), try log.verify(), Set(try log.entries(AuditFilter(limit: 1000)).entries.compactMap(\.event.name)))
        }
        #expect(count == 400)
        #expect(verification.isIntact && verification.headSeq == 400)
        #expect(names == Set((0..<400).map { "S_\($0)" }))
        #expect(trail.commitCount < 400, "every entry had a commit of its own: \(trail.commitCount)")
        #expect(trail.commitCount >= 1)
    }

    @Test("a log whose anchor was changed underneath refuses: record throws and nothing is added")
    func failsClosed() async throws {
        let directory = try TemporaryDirectory(prefix: "vsecure-audit-trail")
        let trail = try AuditTrail(path: directory.file("audit.db"), keyPath: directory.file("audit.key"))
        try await trail.record(Self.event(1))
        // Another connection damages the anchor, as an intruder or a broken disk would.
        let other = try AuditLog.open(path: directory.file("audit.db"), keyPath: directory.file("audit.key"), create: false)
        try other.db.execute("UPDATE audit_anchor SET seq = 99")
        await #expect(throws: VSecureError.self) { try await trail.record(Self.event(2)) }
        #expect(try other.count() == 1)
        // And a server does not start on it.
        #expect(throws: VSecureError.self) { _ = try AuditTrail(path: directory.file("audit.db"), keyPath: directory.file("audit.key")) }
    }

    @Test("a server does not start on a log whose newest entries were cut off or whose entries table was dropped (exit 8)")
    func damagedLogRefused() async throws {
        for damage in ["DELETE FROM audit_entries WHERE seq > 1", "DROP TABLE audit_entries"] {
            let directory = try TemporaryDirectory(prefix: "vsecure-audit-trail")
            do {
                let trail = try AuditTrail(path: directory.file("audit.db"), keyPath: directory.file("audit.key"))
                for n in 1...3 { try await trail.record(Self.event(n)) }
            }
            let other = try AuditLog.open(path: directory.file("audit.db"), keyPath: directory.file("audit.key"), create: false)
            try other.db.execute(damage)
            let error = #expect(throws: VSecureError.self) {
                _ = try AuditTrail(path: directory.file("audit.db"), keyPath: directory.file("audit.key"))
            }
            #expect(error?.status == .integrity && error?.message.contains("audit log") == true, "\(damage): \(String(describing: error))")
        }
    }
}

/// The server's data is bound to its audit log: a log deleted with its key, or swapped for a
/// fresh one, stops the server instead of starting a new log that hides what was removed.
@Suite("Audit log binding")
struct AuditBindingTests {
    @Test("a server refuses to start on another audit log than the one it started with")
    func replacedLogRefused() throws {
        let store = try LiveStore()
        let configuration = ServerConfiguration(dataDirectory: store.dataPath)
        let clock: @Sendable () -> Timestamp = { Timestamp(secondsSinceEpoch: 1_800_000_000) }
        do { _ = try openService(configuration, clock: clock) }
        // The same log again: fine.
        do { _ = try openService(configuration, clock: clock) }
        for file in [configuration.auditLogPath, configuration.auditLogPath + "-wal", configuration.auditLogPath + "-shm",
                     configuration.auditKeyPath] {
            try? FileManager.default.removeItem(atPath: file)
        }
        let error = #expect(throws: VSecureError.self) { _ = try openService(configuration, clock: clock) }
        #expect(error?.status == .integrity)
        #expect(error?.message.contains("is not the one this server started with") == true)
    }
}
