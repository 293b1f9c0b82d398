import Testing
@testable import VSecureLauncher

@Suite("Protected variables (names compared as bytes)")
struct ProtectedVariablesTests {
    @Test("every listed name and every prefixed name is protected; near misses are not")
    func listedAndPrefixed() {
        for name in ProtectedVariables.nameList { #expect(ProtectedVariables.isProtected(name), "\(name)") }
        for name in ["LD_PRELOAD", "LD_", "DYLD_INSERT_LIBRARIES", "GLIBC_TUNABLES", "GLIBC_TUNABLES_X"] {
            #expect(ProtectedVariables.isProtected(name), "\(name)")
        }
        for name in ["", "PAT", "PATHS", "path", "XPATH", "LD", "L", "OLD_PATH", "MY_LD_PRELOAD", "GLIBC_TUNABLE", "NODE_ENV"] {
            #expect(!ProtectedVariables.isProtected(name), "\(name)")
        }
    }

    @Test("a name canonically equivalent to a listed one but spelled otherwise is another variable to the kernel and to getenv")
    func bytesNotCharacters() {
        // U+212A KELVIN SIGN is canonically equivalent to K, so Swift's == calls these equal.
        let kelvin = "VSECURE_\u{212A}EY_FILE"
        #expect(kelvin == "VSECURE_KEY_FILE")
        #expect(ProtectedVariables.isLauncherOnly("VSECURE_KEY_FILE"))
        #expect(!ProtectedVariables.isLauncherOnly(kelvin))
        #expect(!ProtectedVariables.isProtected("\u{212A}"))
    }
}
