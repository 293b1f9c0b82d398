import Foundation
import Testing
import TestSupport

/// An import larger than the kernel's default cap on mappings per process (vm.max_map_count,
/// 65,530): one locked allocation per value used to exhaust it and trap, and the duplicate check
/// was quadratic. 70,000 lines must import in one transaction, in seconds.
@Suite("secrets:import at scale")
struct LargeImportTests {
    @Test func importsMoreValuesThanTheMappingCap() throws {
        let vault = try Vault()
        let count = 70_000
        var text = ""
        text.reserveCapacity(count * 40)
        for index in 0..<count { text += "BULK_\(index)=value-\(index)-0123456789abcdef\n" }
        let file = try vault.directory.write("bulk.env", text)
        let started = Date()
        let result = try vault.run(["secrets:import", file, "--env", "production"], timeout: 300)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutText == "Imported \(count) secrets into production: \(count) created, 0 updated, 0 unchanged\n")
        #expect(Date().timeIntervalSince(started) < 120, "the import stays linear")
        #expect(try vault.value("BULK_69999", ["--env", "production"]) == Array("value-69999-0123456789abcdef".utf8))
        #expect(try vault.value("BULK_0", ["--env", "production"]) == Array("value-0-0123456789abcdef".utf8))
    }
}
