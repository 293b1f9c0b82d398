import Foundation
import Testing
import VSecureCore
import VSecureCrypto
import VSecureStore
@testable import VSecureVault

/// The audit log on a real SQLite file: entries, filters, and every kind of tampering reported
/// at the right entry.
@Suite("Audit log")
struct AuditLogTests {
    final class Fixture {
        let directory: ScratchDirectory
        let path: String
        let keyPath: String
        var log: AuditLog

        init(entries: Int = 0) throws {
            directory = try ScratchDirectory()
            path = directory.child("vault.audit.db")
            keyPath = AuditLog.keyPath(forLog: path)
            log = try AuditLog.open(path: path, keyPath: keyPath, create: true)
            if entries > 0 { try log.append((1...entries).map { Self.event($0) }) }
        }

        static func event(_ n: Int, action: AuditEvent.Action = .accessed, user: String = "alice@example.com",
                          outcome: AuditEvent.Outcome = .success) -> AuditEvent {
            AuditEvent(time: time(1_800_000_000 + Int64(n) * 60), actor: AuditEvent.Actor(user: user, keyID: "key_0123456789abcdef", keyName: "ci"),
                       resource: .secrets, action: action, outcome: outcome, environment: "production", name: "SECRET_\(n)", version: n,
                       request: AuditEvent.Request(address: "127.0.0.1", userAgent: "test", requestID: "req-\(n)"))
        }

        func sql(_ statement: String) throws {
            try log.db.execute(statement)
        }

        func verify() throws -> AuditVerification { try log.verify() }
    }

    @Test("entries round-trip with every field, numbered from 1, and the chain verifies")
    func roundTrip() throws {
        let fixture = try Fixture()
        var event = Fixture.event(1)
        event.items = [AuditEvent.Item(name: "A", version: 2), AuditEvent.Item(name: "B", version: nil)]
        event.details = [("runId", "run_00112233"), ("reason", "because")]
        let numbers = try fixture.log.append([event, Fixture.event(2)])
        #expect(numbers == [1, 2])
        let stored = try #require(try fixture.log.entry(seq: 1))
        #expect(stored.event == event)
        #expect(stored.mac.count == 32)
        #expect(AuditEntry(json: stored.json) == stored)
        let result = try fixture.verify()
        #expect(result.isIntact)
        #expect(result.checked == 2 && result.headSeq == 2)
        #expect(result.headMAC == hexString(try #require(try fixture.log.entry(seq: 2)).mac))
        #expect(try fileMode(fixture.path) == 0o600)
        #expect(try fileMode(fixture.keyPath) == 0o600)
    }

    @Test("an older log's unused index on name is dropped when a writer opens it; its entries and chain are untouched")
    func unusedNameIndexDropped() throws {
        let fixture = try Fixture(entries: 3)
        func nameIndexes() throws -> Int64 {
            try fixture.log.db.scalarInt("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'audit_entries_name'")
        }
        #expect(try nameIndexes() == 0, "a new log has no such index")
        try fixture.sql("CREATE INDEX audit_entries_name ON audit_entries(name)")
        #expect(try nameIndexes() == 1)
        fixture.log = try AuditLog.open(path: fixture.path, keyPath: fixture.keyPath, create: false)
        #expect(try nameIndexes() == 0)
        #expect(try fixture.log.entries(AuditFilter(name: "SECRET_2")).entries.map(\.seq) == [2])
        let result = try fixture.verify()
        #expect(result.isIntact && result.checked == 3, "\(result)")
    }

    @Test("an empty file or another SQLite database in the log's place is refused as a damaged audit log, not called a vault")
    func notALog() throws {
        let fixture = try Fixture()
        for make in ["empty", "other database"] {
            let directory = try ScratchDirectory()
            let path = directory.child("app.audit.db"), keyPath = AuditLog.keyPath(forLog: path)
            try FileManager.default.copyItem(atPath: fixture.keyPath, toPath: keyPath)
            try PrivateFiles.createEmptyFile(path)
            if make == "other database" {
                let other = try SQLiteDatabase(path: path, create: false)
                try other.execute("CREATE TABLE notes(text TEXT)")
            }
            let error = #expect(throws: VSecureError.self) { _ = try AuditLog.open(path: path, keyPath: keyPath, create: false) }
            #expect(error?.status == .integrity, "\(make): \(String(describing: error))")
            #expect(error?.message.hasPrefix("the audit log \(Quoted(path)) is damaged or is not an audit log") == true
                    && error?.hints.contains { $0.contains("vault") } == false, "\(make): \(String(describing: error))")
        }
    }

    @Test("filters: resource, action, result, actor, name (also inside items), time window, pages both ways")
    func filters() throws {
        let fixture = try Fixture()
        var launch = Fixture.event(9)
        launch.name = nil
        launch.items = [AuditEvent.Item(name: "SECRET_3", version: 1)]
        try fixture.log.append([Fixture.event(1), Fixture.event(2, action: .updated), Fixture.event(3, user: "bob@example.com"),
                                Fixture.event(4, outcome: .failure), launch])
        func seqs(_ filter: AuditFilter) throws -> [Int64] { try fixture.log.entries(filter).entries.map(\.seq) }
        #expect(try seqs(AuditFilter(action: .updated)) == [2])
        #expect(try seqs(AuditFilter(outcome: .failure)) == [4])
        #expect(try seqs(AuditFilter(actor: "bob@example.com")) == [3])
        #expect(try seqs(AuditFilter(actor: "BOB@Example.com")) == [3], "the actor matches whatever its ASCII case")
        #expect(try seqs(AuditFilter(name: "SECRET_3")) == [3, 5])
        #expect(try seqs(AuditFilter(resource: .apiKeys)) == [])
        #expect(try seqs(AuditFilter(since: time(1_800_000_000 + 120), until: time(1_800_000_000 + 240))) == [2, 3])
        let first = try fixture.log.entries(AuditFilter(limit: 2))
        #expect(first.entries.map(\.seq) == [1, 2] && first.hasMore)
        let rest = try fixture.log.entries(AuditFilter(after: 2, limit: 10))
        #expect(rest.entries.map(\.seq) == [3, 4, 5] && !rest.hasMore)
        var newest = AuditFilter(limit: 2)
        newest.newestFirst = true
        #expect(try seqs(newest) == [5, 4])
        newest.before = 4
        #expect(try seqs(newest) == [3, 2])
        // The in-memory rule agrees with the SQL one.
        for filter in [AuditFilter(name: "SECRET_3"), AuditFilter(outcome: .failure), AuditFilter(since: time(1_800_000_000 + 120))] {
            let all = try fixture.log.entries(AuditFilter(limit: 100)).entries
            #expect(all.filter { filter.matches($0.event, seq: $0.seq) }.map(\.seq) == (try seqs(filter)))
        }
    }

    @Test("an edited entry is reported at its number: content, a filter column, or the MAC")
    func edited() throws {
        for edit in [
            "UPDATE audit_entries SET event = replace(event, 'SECRET_3', 'SECRET_X') WHERE seq = 3",
            "UPDATE audit_entries SET action = 'updated' WHERE seq = 3",
            "UPDATE audit_entries SET actor = 'mallory' WHERE seq = 3",
            "UPDATE audit_entries SET mac = zeroblob(32) WHERE seq = 3",
            "UPDATE audit_entries SET event = 'not json' WHERE seq = 3",
            // Values that read back the same but no longer match a filter as they did.
            "UPDATE audit_entries SET time = time + 0.5 WHERE seq = 3",
            "UPDATE audit_entries SET actor = CAST(actor AS BLOB) WHERE seq = 3",
            "UPDATE audit_entries SET name = CAST(name AS BLOB) WHERE seq = 3",
            "UPDATE audit_entries SET resource = CAST(resource AS BLOB) WHERE seq = 3",
            "UPDATE audit_entries SET event = CAST(event AS BLOB) WHERE seq = 3",
        ] {
            let fixture = try Fixture(entries: 5)
            try fixture.sql(edit)
            let result = try fixture.verify()
            #expect(result.problem == .edited(seq: 3), "\(edit)")
            #expect(result.checked == 2 && result.headSeq == 2)
        }
    }

    @Test("a removed entry, reordered entries, a cut tail and an edited anchor are each reported")
    func removedReorderedTruncated() throws {
        var fixture = try Fixture(entries: 6)
        try fixture.sql("DELETE FROM audit_entries WHERE seq = 4")
        #expect(try fixture.verify().problem == .removed(seq: 4))

        fixture = try Fixture(entries: 6)
        // Swap the contents of entries 2 and 5, leaving their numbers in place.
        try fixture.sql("""
            CREATE TEMP TABLE swap AS SELECT * FROM audit_entries WHERE seq IN (2, 5);
            UPDATE audit_entries SET time = (SELECT time FROM swap WHERE seq = 5), resource = (SELECT resource FROM swap WHERE seq = 5),
                action = (SELECT action FROM swap WHERE seq = 5), result = (SELECT result FROM swap WHERE seq = 5),
                actor = (SELECT actor FROM swap WHERE seq = 5), environment = (SELECT environment FROM swap WHERE seq = 5),
                name = (SELECT name FROM swap WHERE seq = 5), event = (SELECT event FROM swap WHERE seq = 5),
                mac = (SELECT mac FROM swap WHERE seq = 5) WHERE seq = 2;
            """)
        #expect(try fixture.verify().problem == .reordered(seq: 2, claims: 5))

        fixture = try Fixture(entries: 6)
        // Renumbering after a deletion hides the gap, not the move.
        try fixture.sql("DELETE FROM audit_entries WHERE seq = 3; UPDATE audit_entries SET seq = seq - 1 WHERE seq > 3")
        #expect(try fixture.verify().problem == .reordered(seq: 3, claims: 4))

        fixture = try Fixture(entries: 6)
        try fixture.sql("DELETE FROM audit_entries WHERE seq > 4")
        let cut = try fixture.verify()
        #expect(cut.problem == .truncated(lastSeq: 4, anchoredSeq: 6))
        #expect(cut.checked == 4)

        fixture = try Fixture(entries: 6)
        try fixture.sql("UPDATE audit_anchor SET seq = 5")
        #expect(try fixture.verify().problem == .anchorInvalid)

        fixture = try Fixture(entries: 6)
        try fixture.sql("DELETE FROM audit_anchor")
        #expect(try fixture.verify().problem == .anchorInvalid)
        // Nothing more is written to a log whose end cannot be trusted.
        let refused = #expect(throws: VSecureError.self) { try fixture.log.append([Fixture.event(7)]) }
        #expect(refused?.status == .integrity)
        #expect(try fixture.log.count() == 6)
    }

    @Test("launch receipts (.normal, one process each): the WAL is kept between launches but stays bounded, and the chain holds")
    func launchWALStaysBounded() throws {
        let directory = try ScratchDirectory()
        let path = directory.child("l.audit.db"), keyPath = directory.child("l.audit.key")
        var largest = 0
        for n in 1...300 {
            // A new connection per receipt, closed at once: what 300 launches do.
            let log = try AuditLog.open(path: path, keyPath: keyPath, create: true, durability: .normal)
            try log.append([Fixture.event(n)])
            largest = max(largest, (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0)
        }
        #expect(largest > 0, "the WAL was never kept between launches")
        #expect(largest <= AuditLog.launchWALLimit + 64 * 1024, "the WAL grew to \(largest) bytes")
        let log = try AuditLog.open(path: path, keyPath: keyPath, create: false)
        #expect(try log.count() == 300)
        #expect(try log.verify().isIntact)
    }

    @Test("verification through an entry checks only the entries up to it")
    func verifyThrough() throws {
        let fixture = try Fixture(entries: 5)
        try fixture.sql("UPDATE audit_entries SET action = 'deleted' WHERE seq = 4")
        #expect(try fixture.log.verify(through: 3).isIntact)
        #expect(try fixture.log.verify(through: 4).problem == .edited(seq: 4))
    }

    @Test("another key cannot extend or verify the chain; a log without its key, or a key without its log, is refused")
    func keys() throws {
        let fixture = try Fixture(entries: 3)
        // Under another key, nothing verifies and nothing can be appended.
        try Data(repeating: 7, count: 32).write(to: URL(fileURLWithPath: fixture.keyPath))
        let wrongKey = try AuditLog.open(path: fixture.path, keyPath: fixture.keyPath, create: false)
        #expect(throws: VSecureError.self) { try wrongKey.append([Fixture.event(4)]) }
        #expect(try wrongKey.verify().problem == .edited(seq: 1))

        try FileManager.default.removeItem(atPath: fixture.keyPath)
        let noKey = #expect(throws: VSecureError.self) { _ = try AuditLog.open(path: fixture.path, keyPath: fixture.keyPath, create: true) }
        #expect(noKey?.status == .key)

        let second = try Fixture(entries: 1)
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: second.path + suffix) }
        let noLog = #expect(throws: VSecureError.self) { _ = try AuditLog.open(path: second.path, keyPath: second.keyPath, create: true) }
        #expect(noLog?.status == .integrity)
        #expect(noLog?.message.contains("the log was removed") == true)
    }

    @Test("processes creating the log at the same moment get one log: one creates it, the others wait and open it")
    func createdAtOnce() async throws {
        for _ in 0..<5 {
            let directory = try ScratchDirectory()
            let path = directory.child("app.audit.db"), keyPath = AuditLog.keyPath(forLog: path)
            let ids = try await withThrowingTaskGroup(of: [UInt8].self) { group in
                for _ in 0..<4 {
                    group.addTask { try AuditLog.open(path: path, keyPath: keyPath, create: true).logID }
                }
                return try await group.reduce(into: [[UInt8]]()) { $0.append($1) }
            }
            #expect(ids.count == 4 && Set(ids.map { hexString($0) }).count == 1, "\(ids.map { hexString($0) })")
            let log = try AuditLog.open(path: path, keyPath: keyPath, create: false)
            #expect(try log.verify().isIntact)
            // Nothing is left under a temporary name.
            let left = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            #expect(!left.contains { $0.contains(".new-") }, "\(left)")
        }
    }

    @Test("a symlink where the log or its key would be is refused, and nothing is created through it")
    func symlinks() throws {
        let directory = try ScratchDirectory()
        let target = directory.child("elsewhere")
        try FileManager.default.createSymbolicLink(atPath: directory.child("a.audit.db"), withDestinationPath: target)
        let error = #expect(throws: VSecureError.self) {
            _ = try AuditLog.open(path: directory.child("a.audit.db"), keyPath: directory.child("a.audit.key"), create: true)
        }
        #expect(error?.message.contains("not a regular file") == true)
        #expect(!FileManager.default.fileExists(atPath: target))
        #expect(!FileManager.default.fileExists(atPath: directory.child("a.audit.key")))
    }

    @Test("the local store records reads, changes and imports; a value never reaches the log")
    func localStore() throws {
        let fixture = try VaultFixture()
        let directory = try ScratchDirectory()
        let log = try AuditLog.open(path: directory.child("v.audit.db"), keyPath: directory.child("v.audit.key"), create: true)
        let store = LocalSecretStore(vault: fixture.vault, actor: "carol@host", audit: log) { time(1_800_000_000) }
        let canary = "canary-7d1f0e-value"
        let value = Array(canary.utf8).withUnsafeBytes { SecureBytes(copying: $0) }
        _ = try store.create(NewSecret(name: secretName("DB_PASSWORD"), environment: env("production"), value: value,
                                       attributes: SecretAttributes()))
        _ = try store.get(environment: env("production"), name: secretName("DB_PASSWORD"), version: nil, allowExpired: false)
        _ = try store.update(environment: env("production"), name: secretName("DB_PASSWORD"), value: value, change: AttributeChange(),
                             ifVersion: nil)
        _ = try store.batchGet(environment: env("production"), names: [secretName("DB_PASSWORD"), secretName("MISSING")], allowExpired: false)
        _ = try store.rollback(environment: env("production"), name: secretName("DB_PASSWORD"), to: 1)
        try store.delete(environment: env("production"), name: secretName("DB_PASSWORD"), purge: false)
        // A failed operation records nothing.
        #expect(throws: VSecureError.self) {
            _ = try store.get(environment: env("production"), name: secretName("NOPE"), version: nil, allowExpired: false)
        }
        let entries = try log.entries(AuditFilter(limit: 100)).entries
        #expect(entries.map(\.event.action) == [.created, .accessed, .updated, .accessed, .rolledBack, .deleted])
        #expect(entries.allSatisfy { $0.event.actor.user == "carol@host" && $0.event.environment == "production" })
        #expect(entries[3].event.items == [AuditEvent.Item(name: "DB_PASSWORD", version: 2)])
        #expect(entries[4].event.version == 3)
        #expect(try log.verify().isIntact)
        // The canary appears nowhere in the log file, raw, hex or base64.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: log.path)) + ((try? Data(contentsOf: URL(fileURLWithPath: log.path + "-wal"))) ?? Data())
        for form in [canary, hexString(Array(canary.utf8)), Data(canary.utf8).base64EncodedString()] {
            #expect(bytes.range(of: Data(form.utf8)) == nil, "found \(form) in the log")
        }
    }
}
