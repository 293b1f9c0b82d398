import Foundation
import Testing
import TestSupport

/// Docker does not run here, so each example's manifest is at least checked with --dry-run
/// against a vault holding its secrets.
@Suite("examples/ resolve")
struct ExamplesTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test("each example manifest resolves with --dry-run", arguments: [
        ("examples/docker/vsecure.yml", "production", ["DATABASE_URL", "TLS_PRIVATE_KEY"], [String]()),
        ("examples/github-actions/vsecure.yml", "staging", ["DATABASE_URL", "CI_TOKEN"], ["ci"]),
        ("examples/systemd/vsecure.yml", "production", ["DATABASE_URL", "SESSION_SECRET", "REDIS_PASSWORD"], []),
        ("examples/vsecure.yml", "development", ["DATABASE_URL", "REDIS_URL", "TLS_PRIVATE_KEY", "DB_USER", "DB_PASSWORD", "PUBLIC_API"], ["api", "public"]),
    ])
    func resolves(manifest: String, environment: String, secrets: [String], tags: [String]) throws {
        let fixture = try LaunchFixture()
        for name in secrets {
            let tagged = name == "CI_TOKEN" || name == "PUBLIC_API"
            try fixture.secret(name, "value-of-\(name)", env: environment, tagged ? ["--tags", tags.joined(separator: ",")] : [])
        }
        let result = try fixture.launch(["--manifest", Self.repository + "/" + manifest, "--dry-run", "--output", "json"],
                                        env: ["VSECURE_ENV": environment])
        #expect(result.status == 0, "\(manifest): \(result)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any])
        let variables = (object["variables"] as? [[String: Any]] ?? []).compactMap { $0["variable"] as? String }
        #expect(!variables.isEmpty)
        for name in secrets where name != "DB_USER" && name != "DB_PASSWORD" && name != "SESSION_SECRET" && name != "REDIS_PASSWORD" {
            #expect(variables.contains(name), "\(manifest) should inject \(name): \(variables)")
        }
        #expect(!result.stdoutText.contains("value-of-"))
    }

    @Test("the docker entrypoint script is valid sh")
    func entrypointParses() throws {
        let result = try runProcess("/bin/sh", ["-n", Self.repository + "/examples/docker/docker-entrypoint.sh"],
                                    environment: ["PATH": "/usr/bin:/bin"])
        #expect(result.status == 0, "\(result)")
    }
}
