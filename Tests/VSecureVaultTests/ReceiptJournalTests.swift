import Foundation
import Testing
import VSecureCore
import VSecureCrypto
import VSecureStore
@testable import VSecureVault

/// Launch receipts waiting in `x.audit.receipts` (real files): appended by launches, folded into
/// the log's chain by the next open, in order and exactly once; tampering is reported by
/// `verify` at the right receipt, and the receipts before it still reach the log.
@Suite("Launch receipts file")
struct ReceiptJournalTests {
    final class Fixture {
        let directory: ScratchDirectory
        let path: String
        let keyPath: String
        var journal: String { ReceiptJournal.path(forLog: path) }

        init() throws {
            directory = try ScratchDirectory()
            path = directory.child("vault.audit.db")
            keyPath = AuditLog.keyPath(forLog: path)
            // The log exists before launches use the receipts file (the first launch creates it).
            _ = try AuditLog.open(path: path, keyPath: keyPath, create: true)
        }

        static func receipt(_ n: Int) -> AuditEvent {
            AuditEvent(time: Timestamp(secondsSinceEpoch: 1_800_000_000 + Int64(n)), actor: AuditEvent.Actor(user: "ci@runner"),
                       resource: .secrets, action: .accessed, environment: "production",
                       items: [AuditEvent.Item(name: "DB_PASSWORD", version: n), AuditEvent.Item(name: "API_KEY", version: 1)],
                       details: [("runId", runID(n)), ("via", "vsecure-run"), ("command", "/srv/app \"x\"\n")])
        }

        static func runID(_ n: Int) -> String { "run_" + String(format: "%016x", n) }

        func launch(_ range: ClosedRange<Int>) throws {
            for n in range { try ReceiptJournal.append(Self.receipt(n), logPath: path, keyPath: keyPath) }
        }

        func open() throws -> AuditLog { try AuditLog.open(path: path, keyPath: keyPath, create: false) }

        func runIDs(_ log: AuditLog) throws -> [String] {
            try log.entries(AuditFilter(limit: 1000)).entries.compactMap { entry in entry.event.details.first { $0.0 == "runId" }?.1 }
        }

        func lines() throws -> [String] {
            try String(contentsOfFile: journal, encoding: .utf8).split(separator: "\n").map(String.init)
        }

        func write(_ lines: [String]) throws {
            try (lines.joined(separator: "\n") + "\n").write(toFile: journal, atomically: false, encoding: .utf8)
        }
    }

    @Test("receipts wait in the file (0600), join the chain at the next open in launch order with their events unchanged, and the file is emptied")
    func fold() throws {
        let fixture = try Fixture()
        try fixture.launch(1...5)
        #expect(try fileMode(fixture.journal) == 0o600)
        let lines = try fixture.lines()
        #expect(lines.count == 6 && lines[0].hasPrefix("vsecure-receipts 1 "))
        let log = try fixture.open()
        #expect(log.receiptsNotice == nil)
        #expect(try log.count() == 5)
        let entries = try log.entries(AuditFilter(limit: 10)).entries
        #expect(entries.map(\.event) == (1...5).map(Fixture.receipt))
        #expect(try log.verify().isIntact)
        #expect(try Data(contentsOf: URL(fileURLWithPath: fixture.journal)).isEmpty)

        // The next launches start the file afresh, under a new nonce, and fold after the others.
        try fixture.launch(6...7)
        let again = try fixture.open()
        #expect(try fixture.runIDs(again) == (1...7).map(Fixture.runID))
        #expect(try again.verify().isIntact)
    }

    @Test("launches from many processes at once: every receipt is in the file once, and the chain holds")
    func concurrentLaunches() async throws {
        let fixture = try Fixture()
        let path = fixture.path, keyPath = fixture.keyPath
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    for n in 0..<25 { try ReceiptJournal.append(Fixture.receipt(worker * 100 + n), logPath: path, keyPath: keyPath) }
                }
            }
            try await group.waitForAll()
        }
        let log = try fixture.open()
        #expect(log.receiptsNotice == nil)
        #expect(try log.count() == 100)
        #expect(Set(try fixture.runIDs(log)).count == 100)
        #expect(try log.verify().isIntact)
    }

    @Test("a fold that committed but died before emptying the file is not added twice")
    func crashBeforeEmptying() throws {
        let fixture = try Fixture()
        try fixture.launch(1...3)
        let saved = try Data(contentsOf: URL(fileURLWithPath: fixture.journal))
        #expect(try fixture.open().count() == 3)
        // As if the process had died after its commit: the file is back with what was folded,
        // and a later launch adds to it.
        try saved.write(to: URL(fileURLWithPath: fixture.journal))
        try fixture.launch(4...4)
        let log = try fixture.open()
        #expect(try fixture.runIDs(log) == (1...4).map(Fixture.runID))
        #expect(try log.verify().isIntact)
    }

    @Test("read in small slices, receipts fold the same: in order, once, also after a fold that died before emptying the file")
    func slices() throws {
        let fixture = try Fixture()
        try fixture.launch(1...20)
        let saved = try Data(contentsOf: URL(fileURLWithPath: fixture.journal))
        #expect(saved.count > 3 * 1500, "each slice must hold only a few receipts")
        let log = try AuditLog.open(path: fixture.path, keyPath: fixture.keyPath, create: false, durability: .full, receiptsSlice: 1500)
        #expect(log.receiptsNotice == nil)
        #expect(try fixture.runIDs(log) == (1...20).map(Fixture.runID))
        #expect(try log.verify().isIntact)
        #expect(try Data(contentsOf: URL(fileURLWithPath: fixture.journal)).isEmpty)
        // The file comes back whole, as after a crash between the last commit and emptying it,
        // and more launches add to it: only the new ones are added, whatever the slices.
        try saved.write(to: URL(fileURLWithPath: fixture.journal))
        try fixture.launch(21...25)
        let again = try AuditLog.open(path: fixture.path, keyPath: fixture.keyPath, create: false, durability: .full, receiptsSlice: 2100)
        #expect(again.receiptsNotice == nil)
        #expect(try fixture.runIDs(again) == (1...25).map(Fixture.runID))
        #expect(try again.verify().isIntact)
    }

    @Test("an edited, removed or moved receipt is reported at its number; those before it reach the log, it and the rest stay in the file")
    func tampering() throws {
        for damage in ["edited", "removed", "moved", "cut"] {
            let fixture = try Fixture()
            try fixture.launch(1...5)
            var lines = try fixture.lines()
            switch damage {
            case "edited": lines[3] = lines[3].replacingOccurrences(of: "\"version\":3", with: "\"version\":4")
            case "removed": lines.remove(at: 3)
            case "moved": lines.swapAt(3, 4)
            default: break
            }
            if damage == "cut" {
                // A torn last line: the end of receipt 5 is missing.
                let text = lines.joined(separator: "\n")
                try String(text.dropLast(10)).write(toFile: fixture.journal, atomically: false, encoding: .utf8)
            } else {
                try fixture.write(lines)
            }
            let log = try fixture.open()
            let expected: Int64 = damage == "cut" ? 5 : 3
            #expect(log.receiptsNotice?.contains("launch receipt \(expected) in") == true, "\(damage): \(log.receiptsNotice ?? "nil")")
            #expect(try log.count() == expected - 1, "\(damage)")
            let result = try log.verify()
            #expect(result.problem == .receiptDamaged(number: expected, file: fixture.journal), "\(damage): \(result)")
            #expect(result.problemDescription?.contains("launch receipt \(expected)") == true)
            #expect(AuditVerification(json: result.json) == result)
            // Nothing is lost: the damaged part stays in the file, and a second open adds nothing twice.
            #expect(try fixture.lines().count >= 4)
            #expect(try fixture.open().count() == expected - 1)
            // A launch refuses to extend a file that does not end in a whole receipt.
            if damage == "cut" {
                #expect(throws: VSecureError.self) { try fixture.launch(6...6) }
            }
        }
    }

    @Test("receipts written under another key are reported, not added")
    func wrongKey() throws {
        let fixture = try Fixture()
        let other = fixture.directory.child("other.audit.key")
        try Data(repeating: 9, count: 32).write(to: URL(fileURLWithPath: other))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: other)
        try ReceiptJournal.append(Fixture.receipt(1), logPath: fixture.path, keyPath: other)
        let log = try fixture.open()
        #expect(try log.count() == 0)
        #expect(try log.verify().problem == .receiptDamaged(number: 1, file: fixture.journal))
    }

    @Test("a symlink or a directory in place of the receipts file is refused, and nothing is written through it")
    func notAFile() throws {
        let fixture = try Fixture()
        let target = fixture.directory.child("elsewhere")
        try FileManager.default.createSymbolicLink(atPath: fixture.journal, withDestinationPath: target)
        #expect(throws: VSecureError.self) { try fixture.launch(1...1) }
        #expect(!FileManager.default.fileExists(atPath: target))
        try FileManager.default.removeItem(atPath: fixture.journal)
        try FileManager.default.createDirectory(atPath: fixture.journal, withIntermediateDirectories: false)
        #expect(throws: VSecureError.self) { try fixture.launch(1...1) }
    }
}
