import Foundation
import Testing
import TestSupport

/// A damaged rotation row in the vault is reported for that secret alone: the others are still
/// listed and rotated.
@Suite("Damaged rotation policies", .noValuesOnStderr, .enabled(if: Vault.hasSQLite3, "needs the sqlite3 command to damage a row"))
struct RotationDamageTests {
    @Test("rotation:status shows it as damaged, rotation:run rotates the others and exits 15 naming it")
    func oneDamagedRow() throws {
        let vault = try Vault()
        let now = ["VSECURE_TEST_NOW": "2026-01-01T00:00:00Z"]
        let later = ["VSECURE_TEST_NOW": "2026-03-01T00:00:00Z"]
        for name in ["GOOD_TOKEN", "BAD_TOKEN"] {
            let created = try vault.run(["secrets:create", name, "-", "--quiet", "--env", "production", "--rotation-period", "30d",
                                         "--rotation-generate", "length=24,charset=hex"], stdin: .bytes(Array("SECRET-\(name)".utf8)), env: now)
            #expect(created.status == 0, "\(created)")
        }
        try vault.sqlite("UPDATE rotation SET source = 'teleport' WHERE secret_id = (SELECT id FROM secrets WHERE name = 'BAD_TOKEN')")

        let status = try vault.run(["rotation:status", "--env", "production", "--output", "json"], env: later)
        #expect(status.status == 0, "\(status)")
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout)) as? [[String: Any]])
        let states = Dictionary(uniqueKeysWithValues: entries.map { ($0["name"] as! String, $0["state"] as! String) })
        #expect(states == ["BAD_TOKEN": "damaged", "GOOD_TOKEN": "overdue"])

        let run = try vault.run(["rotation:run", "--env", "production"], env: later)
        #expect(run.status == 15, "\(run)")
        #expect(run.stdoutText.contains("rotated production/GOOD_TOKEN: version 1 → 2"), "\(run)")
        #expect(run.stdoutText.contains("failed  production/BAD_TOKEN: its rotation policy cannot be read"), "\(run)")
        #expect(run.stderr.contains("production/BAD_TOKEN"))
    }
}
