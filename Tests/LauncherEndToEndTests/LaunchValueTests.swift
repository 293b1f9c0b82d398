import Foundation
import Testing
import TestSupport

@Suite("vsecure-run delivers exact bytes")
struct LaunchValueTests {
    @Test("values reach the child byte for byte", arguments: [
        ("newline", Array("line one\nline two\n".utf8)),
        ("equals", Array("a=b=c==".utf8)),
        ("quotes", Array(#"it's "quoted" \ back"#.utf8)),
        ("command substitution", Array("$(touch /tmp/vsecure-pwned) `id` ${HOME}".utf8)),
        ("non-ASCII", Array("pässwörd ✓ 密码".utf8)),
        ("invalid UTF-8", [0x41, 0xFF, 0xFE, 0x42]),
        ("empty", []),
    ])
    func exactBytes(label: String, value: [UInt8]) throws {
        let fixture = try LaunchFixture()
        try fixture.secret("VALUE", value)
        try fixture.manifest("version: 1\nsecrets: [VALUE]\n")
        let result = try fixture.childValue("VALUE", ["--env", "production"])
        #expect(result.status == 0, "\(label): \(result)")
        #expect(result.stdout == value, "\(label)")
    }

    @Test("a 100 KiB value arrives whole")
    func largeValue() throws {
        let fixture = try LaunchFixture()
        let value = Array(LaunchFixture.canary(100 * 1024).utf8)
        try fixture.secret("BIG", value, ["--tags", "big"])
        // No manifest: --env and --tags alone select the secret.
        let result = try fixture.childValue("BIG", ["--env", "production", "--tags", "big"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == value)
    }

    @Test("a NUL byte refuses the launch, naming the variable, and the child never starts")
    func nulRefused() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("HAS_NUL", [0x61, 0x00, 0x62])
        try fixture.manifest("version: 1\nsecrets: [HAS_NUL]\n")
        let marker = fixture.directory.file("started")
        let result = try fixture.launch(["--env", "production", "--", "/bin/sh", "-c", "touch \(marker)"])
        #expect(result.status == 11, "\(result)")
        #expect(result.stderr.contains("HAS_NUL"))
        #expect(result.stderr.contains("NUL"))
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test("file: true delivers through /dev/fd, byte-exact, NUL allowed, nothing on disk")
    func fileDelivery() throws {
        let fixture = try LaunchFixture()
        let value: [UInt8] = Array("-----BEGIN KEY-----\n".utf8) + [0x00, 0xFF] + Array(LaunchFixture.canary().utf8) + [0x0A]
        try fixture.secret("TLS_KEY", value)
        try fixture.manifest("version: 1\nsecrets:\n  - name: TLS_KEY\n    file: true\n")
        let result = try fixture.launch(["--env", "production", "--", "/bin/sh", "-c", "echo \"$TLS_KEY\" >&2; cat \"$TLS_KEY\""])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == value)
        #expect(result.stderr.hasPrefix("/dev/fd/"), "\(result.stderr)")
    }

    @Test("templates are built from several secrets, with $$ as a dollar")
    func templates() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("DB_USER", "app")
        try fixture.secret("DB_PASSWORD", "p@ss:w/rd")
        try fixture.manifest("""
            version: 1
            templates:
              DSN: "postgres://${DB_USER}:${DB_PASSWORD}@db:5432/app?cost=$$5"
            """)
        let (result, env, _) = try fixture.childEnvironment(["--env", "production"])
        #expect(result.status == 0, "\(result)")
        #expect(env["DSN"] == Array("postgres://app:p@ss:w/rd@db:5432/app?cost=$5".utf8))
        #expect(env["DB_USER"] == nil, "a template reference is not exported on its own")
    }
}
