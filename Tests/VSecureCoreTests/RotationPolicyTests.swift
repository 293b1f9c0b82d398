import Testing
import VSecureCore

@Suite("Rotation policy parsing")
struct RotationPolicyTests {
    @Test("--rotation-generate: defaults, both keys, spacing, every charset spelling")
    func generate() throws {
        #expect(try RotationSource.generate(parsing: "length=32,charset=alnum") == .generate(length: 32, charset: .alnum))
        #expect(try RotationSource.generate(parsing: "charset=hex") == .generate(length: 32, charset: .hex))
        #expect(try RotationSource.generate(parsing: "length=8") == .generate(length: 8, charset: .alnum))
        #expect(try RotationSource.generate(parsing: "length = 64, charset = base64url") == .generate(length: 64, charset: .base64url))
        for spelling in ["ascii-printable", "asciiPrintable", "ascii_printable"] {
            #expect(try RotationSource.generate(parsing: "charset=\(spelling)") == .generate(length: 32, charset: .asciiPrintable))
        }
        for bad in ["", "length", "length=7", "length=4097", "length=x", "charset=utf8", "size=3", "length=9,,"] {
            #expect(throws: VSecureError.self, "\(bad)") { try RotationSource.generate(parsing: bad) }
        }
    }

    @Test("--rotation-command: split on spaces, extra arguments as they are, absolute paths only")
    func command() throws {
        #expect(try RotationSource.command(parsing: "/usr/bin/rotate  --user app ", extra: ["a b"]) == .command(argv: ["/usr/bin/rotate", "--user", "app", "a b"]))
        for bad in ["", "   ", "rotate --user app", "./rotate"] {
            let error = #expect(throws: VSecureError.self, "\(bad)") { try RotationSource.command(parsing: bad, extra: []) }
            #expect(error?.status == .usage)
        }
    }

    @Test("notify-before longer than the period is refused")
    func notifyWindow() throws {
        #expect(throws: VSecureError.self) {
            try RotationPolicy(period: SecretDuration(seconds: 60), notifyBefore: SecretDuration(seconds: 61), source: .manual)
        }
        #expect(try RotationPolicy(period: SecretDuration(seconds: 60), notifyBefore: SecretDuration(seconds: 60), source: .manual).notifyBefore?.seconds == 60)
    }

    @Test("VSECURE_TEST_NOW: epoch seconds or ISO 8601 with a zone; anything else is a usage error")
    func testNow() throws {
        #expect(try Timestamp(testNow: "1767225600") == Timestamp(secondsSinceEpoch: 1_767_225_600))
        #expect(try Timestamp(testNow: "2026-01-01T00:00:00Z") == Timestamp(secondsSinceEpoch: 1_767_225_600))
        #expect(try Timestamp(testNow: "2026-01-01T02:00:00+02:00") == Timestamp(secondsSinceEpoch: 1_767_225_600))
        for bad in ["", "-5", "yesterday", "2026-01-01T00:00:00", "12.5"] {
            let error = #expect(throws: VSecureError.self, "\(bad)") { try Timestamp(testNow: bad) }
            #expect(error?.status == .usage)
        }
    }
}
