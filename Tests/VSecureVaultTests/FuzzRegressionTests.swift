import Testing
import VSecureCore
@testable import VSecureVault

/// Inputs the fuzz targets under Fuzz/ found, kept as tests (and in Fuzz/corpus/ as seeds).
@Suite("Fuzz regressions: vault")
struct VaultFuzzRegressionTests {
    // FuzzVaultRow, Fuzz/corpus/FuzzVaultRow/regression-default-environment: the header listed
    // environments without the default one, and the vault opened; every command without --env
    // then failed on an "unknown environment" instead of reporting a damaged vault.
    @Test("a header whose default environment is not one of its environments is an integrity error")
    func defaultEnvironmentOutsideTheList() throws {
        let fixture = try VaultFixture()
        try fixture.vault.db.execute("UPDATE vault_meta SET value = 'producting' WHERE key = 'environments'")
        let error = #expect(throws: VSecureError.self) { try fixture.reopen() }
        #expect(error?.status == .integrity)
        #expect(error?.message.contains("bad environment list") == true)
    }
}
