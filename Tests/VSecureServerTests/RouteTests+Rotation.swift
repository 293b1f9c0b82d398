import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import TestSupport
import VSecureCore
@testable import VSecureServer
import VSecureVault

/// `rotationPolicy` and `POST /secrets/{name}/rotate`, in-process (docs/api.md, "Rotation").
@Suite("Rotation routes")
struct RotationRouteTests {
    static let day: Int64 = 86_400
    static func iso(_ offset: Int64) -> String { Timestamp(secondsSinceEpoch: TestClock.start.secondsSinceEpoch + offset).iso8601 }

    /// Bad policies, each refused with VALIDATION_ERROR naming the field; nothing is stored.
    static var invalid: [(Any, String)] { [
        ("30d", "rotationPolicy"),
        ([String: Any](), "rotationPolicy.period"),
        (["period": "abc"], "rotationPolicy.period"),
        (["period": 30], "rotationPolicy.period"),
        (["period": "0s"], "rotationPolicy.period"),
        (["period": "30d", "notifyBefore": "31d"], "rotationPolicy.notifyBefore"),
        (["period": "30d", "notifyBefore": "soon"], "rotationPolicy.notifyBefore"),
        (["period": "30d", "enabled": "yes"], "rotationPolicy.enabled"),
        (["period": "30d", "generate": ["length": 4]], "rotationPolicy.generate.length"),
        (["period": "30d", "generate": ["length": 5000]], "rotationPolicy.generate.length"),
        (["period": "30d", "generate": ["charset": "emoji"]], "rotationPolicy.generate.charset"),
        (["period": "30d", "generate": ["size": 32]], "rotationPolicy.generate.size"),
        (["period": "30d", "generate": "length=32"], "rotationPolicy.generate"),
        (["period": "30d", "generate": [String: Any](), "command": ["/bin/true"]], "rotationPolicy"),
        (["period": "30d", "command": ["relative/program"]], "rotationPolicy.command"),
        (["period": "30d", "command": [String]()], "rotationPolicy.command"),
        (["period": "30d", "color": "red"], "rotationPolicy.color"),
    ] }

    @Test("invalid policies are 400 VALIDATION_ERROR naming the field, on create and update")
    func validation() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("EXISTING", value: "v-existing", key: admin)
            for (policy, field) in Self.invalid {
                let created = try await client.send(.post, "/v1/security/secrets", key: admin,
                                                    json: ["name": "NEW", "value": "v-new", "rotationPolicy": policy])
                expectError(created, .badRequest, "VALIDATION_ERROR")
                #expect(created.errorDetails?["field"] as? String == field, "\(policy): \(created)")
                expectNoLeak(created, of: ["v-new"])
                let updated = try await client.send(.put, "/v1/security/secrets/EXISTING", key: admin, json: ["rotationPolicy": policy])
                expectError(updated, .badRequest, "VALIDATION_ERROR")
                #expect(updated.errorDetails?["field"] as? String == field, "\(policy): \(updated)")
            }
        }
        #expect(try await server.storedSecrets().map(\.name.rawValue) == ["EXISTING"])
        #expect(try await server.versionCount("EXISTING") == 1)
    }

    @Test("a policy is created with the secret, shown by GET and list, changed alone, and removed by null or enabled: false")
    func lifecycle() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            let created = try await client.createSecret("TOKEN", value: "v-token-1", key: admin, extra: [
                "rotationPolicy": ["enabled": true, "period": "30d", "notifyBefore": "7d", "generate": ["length": 40, "charset": "hex"]],
            ])
            let policy = try #require(created["rotationPolicy"] as? [String: Any], "\(created)")
            // Durations come back in their shortest spelling, as rotation:status shows them.
            #expect(policy["period"] as? String == "4w2d")
            #expect(policy["notifyBefore"] as? String == "1w")
            #expect(policy["enabled"] as? Bool == true)
            #expect((policy["generate"] as? [String: Any])?["length"] as? Int == 40)
            #expect((policy["generate"] as? [String: Any])?["charset"] as? String == "hex")
            let rotation = try #require(created["rotation"] as? [String: Any], "\(created)")
            #expect(rotation["state"] as? String == "ok")
            #expect(rotation["lastRotatedAt"] as? String == Self.iso(0))
            #expect(rotation["nextDueAt"] as? String == Self.iso(30 * Self.day))

            server.clock.advance(seconds: 23 * Self.day)
            let got = try await client.send(.get, "/v1/security/secrets/TOKEN", key: admin)
            #expect((got["rotation"] as? [String: Any])?["state"] as? String == "notify", "\(got)")
            let listed = try await client.listSecrets(key: admin)
            #expect((listed.data.first?["rotationPolicy"] as? [String: Any])?["period"] as? String == "4w2d", "\(listed)")
            #expect((listed.data.first?["rotation"] as? [String: Any])?["state"] as? String == "notify")

            // Only the policy changes: no new version, and the period counts from the last value.
            let changed = try await client.send(.put, "/v1/security/secrets/TOKEN", key: admin,
                                                json: ["rotationPolicy": ["period": "20d"]])
            #expect(changed.status == .ok, "\(changed)")
            #expect(changed["valueChanged"] as? Bool == false)
            #expect(changed.int("version") == 1)
            #expect((changed["rotationPolicy"] as? [String: Any])?["generate"] == nil, "no generate: a manual policy")
            #expect((changed["rotation"] as? [String: Any])?["nextDueAt"] as? String == Self.iso(20 * Self.day))
            #expect((changed["rotation"] as? [String: Any])?["state"] as? String == "overdue")

            // A stale ifVersion changes nothing, policy included.
            let stale = try await client.send(.put, "/v1/security/secrets/TOKEN", key: admin,
                                              json: ["rotationPolicy": NSNull(), "ifVersion": 7])
            expectError(stale, .conflict, "CONFLICT")

            let removed = try await client.send(.put, "/v1/security/secrets/TOKEN", key: admin, json: ["rotationPolicy": NSNull()])
            #expect(removed.status == .ok, "\(removed)")
            #expect(removed["rotationPolicy"] is NSNull && removed["rotation"] is NSNull, "\(removed)")

            try await client.createSecret("OTHER", value: "v-other", key: admin, extra: ["rotationPolicy": ["period": "1d"]])
            let disabled = try await client.send(.put, "/v1/security/secrets/OTHER", key: admin,
                                                 json: ["rotationPolicy": ["enabled": false]])
            #expect(disabled["rotationPolicy"] is NSNull, "\(disabled)")
            let plain = try await client.createSecret("PLAIN", value: "v-plain", key: admin)
            #expect(plain["rotationPolicy"] is NSNull && plain["rotation"] is NSNull)
        }
    }

    @Test("POST …/rotate makes a generated value now: version 2, action rotate, the length and charset asked")
    func rotateNow() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let writer = try await server.makeKey(lacking: .secretsWrite)
        try await server.test { client in
            try await client.createSecret("TOKEN", value: "v-first-token", key: admin, environment: "production", extra: [
                "rotationPolicy": ["period": "30d", "generate": ["length": 48, "charset": "hex"]],
            ])
            expectError(try await client.send(.post, "/v1/security/secrets/TOKEN/rotate?environment=production", key: writer),
                        .forbidden, "PERMISSION_DENIED")
            server.clock.advance(seconds: 3600)
            let rotated = try await client.send(.post, "/v1/security/secrets/TOKEN/rotate", key: admin,
                                                json: ["environment": "production"])
            #expect(rotated.status == .ok, "\(rotated)")
            #expect(rotated.int("version") == 2)
            #expect(rotated.int("previousVersion") == 1)
            #expect(rotated["value"] == nil)
            #expect((rotated["rotation"] as? [String: Any])?["lastRotatedAt"] as? String == Self.iso(3600))
            expectNoLeak(rotated, of: ["v-first-token"])

            let got = try await client.send(.get, "/v1/security/secrets/TOKEN?environment=production", key: admin)
            let value = try #require(got.string("value"))
            #expect(value.utf8.count == 48)
            #expect(value.utf8.allSatisfy { Array("0123456789abcdef".utf8).contains($0) })
            let versions = try await client.send(.get, "/v1/security/secrets/TOKEN/versions?environment=production", key: admin)
            #expect(versions.data.map { $0["action"] as? String } == ["create", "rotate"], "\(versions)")
            #expect(versions.data.last?["actor"] as? String == "admin (\(admin.id))")

            // The body is optional: an empty one with a JSON Content-Type (as `curl -X POST -H
            // 'Content-Type: application/json'` sends) is no body; a body that is not JSON is 400.
            let empty = try await client.send(.post, "/v1/security/secrets/TOKEN/rotate?environment=production", key: admin, bytes: [])
            #expect(empty.status == .ok && empty.int("version") == 3, "\(empty)")
            expectError(try await client.send(.post, "/v1/security/secrets/TOKEN/rotate?environment=production", key: admin, body: "{"),
                        .badRequest, "VALIDATION_ERROR")
        }
    }

    @Test("rotate: no policy and a manual policy are 409; an unknown secret is 404")
    func rotateRefusals() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("PLAIN", value: "v-plain", key: admin)
            try await client.createSecret("MANUAL", value: "v-manual", key: admin, extra: ["rotationPolicy": ["period": "30d"]])
            expectError(try await client.send(.post, "/v1/security/secrets/PLAIN/rotate", key: admin), .conflict, "CONFLICT")
            let manual = try await client.send(.post, "/v1/security/secrets/MANUAL/rotate", key: admin)
            expectError(manual, .conflict, "CONFLICT")
            #expect(manual.errorMessage?.contains("manual") == true, "\(manual)")
            expectError(try await client.send(.post, "/v1/security/secrets/NOPE/rotate", key: admin), .notFound, "RESOURCE_NOT_FOUND")
        }
        #expect(try await server.versionCount("PLAIN") == 1)
        #expect(try await server.versionCount("MANUAL") == 1)
    }

    @Test("command policies: refused without --allow-rotation-commands, even when set through the vault; the schedule leaves them")
    func commandsRefusedByDefault() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            let refused = try await client.send(.post, "/v1/security/secrets", key: admin, json: [
                "name": "DB", "value": "v-db", "rotationPolicy": ["period": "1d", "command": ["/bin/sh", "-c", "echo pwned"]],
            ])
            expectError(refused, .badRequest, "VALIDATION_ERROR")
            #expect(refused.errorDetails?["field"] as? String == "rotationPolicy.command")
            #expect(refused.errorMessage?.contains("--allow-rotation-commands") == true, "\(refused)")
            try await client.createSecret("DB", value: "v-db", key: admin)
        }
        // As `vsecure secrets:update --rotation-command` on the same vault would set it.
        let policy = try RotationPolicy(period: SecretDuration(seconds: Self.day), source: .command(argv: ["/bin/sh", "-c", "echo pwned"]))
        let name = try SecretName("DB"), environment = try EnvironmentName("development")
        try await server.service.withVault { vault, now throws(VSecureError) in
            try vault.setRotationPolicy(environment: environment, name: name, policy: policy, now: now)
        }
        server.clock.advance(seconds: 2 * Self.day)
        try await server.test { client in
            let rotate = try await client.send(.post, "/v1/security/secrets/DB/rotate", key: admin)
            expectError(rotate, .conflict, "CONFLICT")
        }
        let rotator = try #require(server.service.rotator)
        #expect(await rotator.rotateDue(logger: ServerFixture.quietLogger).isEmpty)
        #expect(try await server.versionCount("DB") == 1)
    }

    /// A directory of allowed programs: `sh` (a link to /bin/sh, so nothing just written is
    /// executed) and the scripts it runs.
    func commandDirectory() throws -> (TemporaryDirectory, String) {
        let directory = try TemporaryDirectory(prefix: "vsecure-rotation-commands")
        let allowed = directory.file("bin")
        try FileManager.default.createDirectory(atPath: allowed, withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: allowed + "/sh", withDestinationPath: "/bin/sh")
        return (directory, allowed)
    }

    /// A server that runs rotation commands from a directory holding `sh`, and `bad`, a script
    /// that fails with status 3. Keep `directory` alive for as long as the server is used.
    func serverRunningCommands() throws -> (server: ServerFixture, directory: TemporaryDirectory, allowed: String, bad: String) {
        let (directory, allowed) = try commandDirectory()
        let bad = try directory.write("bad.sh", "cat >/dev/null\nexit 3\n")
        var settings = ServerRotationSettings()
        try settings.allowCommands(in: allowed)
        return (try ServerFixture.make(rotation: settings), directory, allowed, bad)
    }

    @Test("with --allow-rotation-commands DIR: programs directly in DIR only; a run gets the contract, a failure is ROTATION_FAILED and changes nothing")
    func allowedCommands() async throws {
        let (directory, allowed) = try commandDirectory()
        let good = try directory.write("good.sh", "read old\nprintf 'new-%s-%s' \"$VSECURE_SECRET_VERSION\" \"${#old}\"\n")
        let bad = try directory.write("bad.sh", "cat >/dev/null\nexit 3\n")
        var settings = ServerRotationSettings()
        try settings.allowCommands(in: allowed + "/")
        let server = try ServerFixture.make(rotation: settings)
        let admin = server.admin
        try await server.test { client in
            for program in ["/bin/sh", allowed + "/../bin/sh", allowed, allowed + "/sub/sh", allowed + "sh", directory.file("bin2/sh")] {
                let refused = try await client.send(.post, "/v1/security/secrets", key: admin, json: [
                    "name": "DB", "value": "v-db-secret", "rotationPolicy": ["period": "1d", "command": [program, good]],
                ])
                expectError(refused, .badRequest, "VALIDATION_ERROR")
                #expect(refused.errorDetails?["field"] as? String == "rotationPolicy.command", "\(program): \(refused)")
            }
            let created = try await client.createSecret("DB", value: "v-db-secret", key: admin, extra: [
                "rotationPolicy": ["period": "1d", "command": [allowed + "/sh", good]],
            ])
            #expect((created["rotationPolicy"] as? [String: Any])?["command"] as? [String] == [allowed + "/sh", good])
            let rotated = try await client.send(.post, "/v1/security/secrets/DB/rotate", key: admin)
            #expect(rotated.status == .ok, "\(rotated)")
            expectNoLeak(rotated, of: ["v-db-secret"])
            let got = try await client.send(.get, "/v1/security/secrets/DB", key: admin)
            #expect(got.string("value") == "new-1-11", "the version in the environment, the value (11 bytes) on stdin: \(got)")

            try await client.createSecret("FAILS", value: "v-fails-secret", key: admin, extra: [
                "rotationPolicy": ["period": "1d", "command": [allowed + "/sh", bad]],
            ])
            let failed = try await client.send(.post, "/v1/security/secrets/FAILS/rotate", key: admin)
            expectError(failed, .unprocessableContent, "ROTATION_FAILED")
            #expect(failed.errorMessage?.contains("status 3") == true, "\(failed)")
            expectNoLeak(failed, of: ["v-fails-secret"])
            let after = try await client.send(.get, "/v1/security/secrets/FAILS", key: admin)
            #expect(after.int("version") == 1)
            #expect((after["rotation"] as? [String: Any])?["state"] as? String == "failing", "\(after)")
            #expect((after["rotation"] as? [String: Any])?["failureCount"] as? Int == 1)
        }
    }

    @Test("rotate with onlyIfDue: not due or manual is 200 rotated: false with the reason and changes nothing; due rotates once")
    func rotateOnlyIfDue() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("TOKEN", value: "v-only-if-due", key: admin, environment: "production", extra: [
                "rotationPolicy": ["period": "1d", "generate": ["length": 32, "charset": "alnum"]],
            ])
            try await client.createSecret("MANUAL", value: "v-manual", key: admin, extra: ["rotationPolicy": ["period": "1d"]])
            let early = try await client.send(.post, "/v1/security/secrets/TOKEN/rotate", key: admin,
                                              json: ["environment": "production", "onlyIfDue": true])
            #expect(early.status == .ok, "\(early)")
            #expect(early["rotated"] as? Bool == false)
            #expect(early.string("skipped") == "not due until \(Self.iso(Self.day))", "\(early)")
            #expect(early.int("version") == 1)
            #expect(early["previousVersion"] == nil)
            expectNoLeak(early, of: ["v-only-if-due"])
            // The query form, and a manual policy: skipped with its reason, not refused.
            let manual = try await client.send(.post, "/v1/security/secrets/MANUAL/rotate?onlyIfDue=true", key: admin)
            #expect(manual.status == .ok, "\(manual)")
            #expect(manual["rotated"] as? Bool == false)
            #expect(manual.string("skipped") == "not due until \(Self.iso(Self.day))", "\(manual)")
            expectError(try await client.send(.post, "/v1/security/secrets/TOKEN/rotate?onlyIfDue=maybe&environment=production", key: admin),
                        .badRequest, "VALIDATION_ERROR")

            server.clock.advance(seconds: Self.day)
            let due = try await client.send(.post, "/v1/security/secrets/TOKEN/rotate?onlyIfDue=true", key: admin,
                                            json: ["environment": "production"])
            #expect(due.status == .ok, "\(due)")
            #expect(due["rotated"] as? Bool == true)
            #expect(due.int("version") == 2)
            #expect(due.int("previousVersion") == 1)
            let again = try await client.send(.post, "/v1/security/secrets/TOKEN/rotate", key: admin,
                                              json: ["environment": "production", "onlyIfDue": true])
            #expect(again["rotated"] as? Bool == false, "rotated at the due time, it is due again a day later: \(again)")
            #expect(again.int("version") == 2)
            let manualDue = try await client.send(.post, "/v1/security/secrets/MANUAL/rotate", key: admin, json: ["onlyIfDue": true])
            #expect(manualDue["rotated"] as? Bool == false)
            #expect(manualDue.string("skipped")?.hasPrefix("manual policy, due since") == true, "\(manualDue)")
        }
        #expect(try await server.versionCount("MANUAL") == 1)
    }

    @Test("refusals say why in details.reason: noPolicy, manualPolicy, commandNotAllowed; a failure carries details.failure")
    func rotateRefusalReasons() async throws {
        let (server, directory, allowed, bad) = try serverRunningCommands()
        defer { withExtendedLifetime(directory) {} }
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("PLAIN", value: "v-plain", key: admin)
            try await client.createSecret("MANUAL", value: "v-manual", key: admin, extra: ["rotationPolicy": ["period": "30d"]])
            try await client.createSecret("FAILS", value: "v-fails-secret", key: admin, extra: [
                "rotationPolicy": ["period": "1d", "command": [allowed + "/sh", bad]],
            ])
            let plain = try await client.send(.post, "/v1/security/secrets/PLAIN/rotate", key: admin)
            #expect(plain.errorDetails?["reason"] as? String == "noPolicy", "\(plain)")
            let manual = try await client.send(.post, "/v1/security/secrets/MANUAL/rotate", key: admin)
            #expect(manual.errorDetails?["reason"] as? String == "manualPolicy", "\(manual)")
            let outside = try await client.send(.post, "/v1/security/secrets", key: admin, json: [
                "name": "DB", "value": "v-db", "rotationPolicy": ["period": "1d", "command": ["/bin/sh", "-c", "true"]],
            ])
            expectError(outside, .badRequest, "VALIDATION_ERROR")
            #expect(outside.errorDetails?["reason"] as? String == "commandNotAllowed", "\(outside)")
            let failed = try await client.send(.post, "/v1/security/secrets/FAILS/rotate", key: admin)
            expectError(failed, .unprocessableContent, "ROTATION_FAILED")
            #expect(failed.errorDetails?["failure"] as? String == "the rotation command \(allowed)/sh exited with status 3; nothing was changed", "\(failed)")
            expectNoLeak(failed, of: ["v-fails-secret"])
        }
        // A command policy set through the vault, on a server that runs none: 409 commandNotAllowed.
        let strict = try ServerFixture.make()
        let policy = try RotationPolicy(period: SecretDuration(seconds: Self.day), source: .command(argv: ["/bin/true"]))
        try await strict.test { client in try await client.createSecret("DB", value: "v-db", key: strict.admin) }
        try await strict.service.withVault { vault, now throws(VSecureError) in
            try vault.setRotationPolicy(environment: try EnvironmentName("development"), name: try SecretName("DB"), policy: policy, now: now)
        }
        try await strict.test { client in
            let refused = try await client.send(.post, "/v1/security/secrets/DB/rotate", key: strict.admin)
            expectError(refused, .conflict, "CONFLICT")
            #expect(refused.errorDetails?["reason"] as? String == "commandNotAllowed", "\(refused)")
        }
    }
}
