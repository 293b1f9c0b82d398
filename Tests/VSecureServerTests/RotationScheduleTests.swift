import Foundation
import Testing
import TestSupport
import VSecureCore
@testable import VSecureServer
import VSecureVault

/// The server's rotation schedule: in-process on the fixture's clock beside a concurrent
/// `vsecure rotation:run` (VSECURE_TEST_NOW) on the same vault, and live in `vsecure-server serve`.
@Suite("Rotation schedule")
struct RotationScheduleTests {
    static let day: Int64 = 86_400

    /// `vsecure rotation:run` on the fixture's vault at `now`.
    static func cliRun(_ server: ServerFixture, now: Timestamp) throws -> ProcessResult {
        try runProcess(Binaries.vsecure, ["rotation:run", "--output", "json", "--vault", server.directory.file("vault.db"),
                                          "--key-file", server.directory.file("vault.key")],
                       environment: minimalEnvironment(home: server.directory.path)
                           .merging(["VSECURE_TEST_NOW": String(now.secondsSinceEpoch)]) { $1 },
                       timeout: 120)
    }

    @Test("a pass rotates what is due at that instant, once; manual policies are left alone")
    func duePass() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("TOKEN", value: "v-1", key: admin,
                                          extra: ["rotationPolicy": ["period": "30d", "generate": ["length": 16]]])
            try await client.createSecret("MANUAL", value: "v-2", key: admin, extra: ["rotationPolicy": ["period": "1d"]])
        }
        let rotator = try #require(server.service.rotator)
        server.clock.advance(seconds: 30 * Self.day - 1)
        #expect(await rotator.rotateDue(logger: ServerFixture.quietLogger).isEmpty)
        server.clock.advance(seconds: 1)
        let results = await rotator.rotateDue(logger: ServerFixture.quietLogger)
        #expect(results.map(\.name.rawValue) == ["TOKEN"])
        #expect(results.first?.outcome == .rotated(from: 1, to: 2))
        #expect(await rotator.rotateDue(logger: ServerFixture.quietLogger).isEmpty)
        #expect(try await server.versionCount("TOKEN") == 2)
        #expect(try await server.versionCount("MANUAL") == 1)
        // The schedule's rotation is in the audit log, by the schedule, with both versions.
        let rotations = try server.service.audit.withLog { (log: AuditLog) throws(VSecureError) in
            try log.entries(AuditFilter(action: .rotated, limit: 10)).entries
        }
        #expect(rotations.count == 1)
        #expect(rotations.first?.event.actor.user == "vsecure-server (rotation schedule)")
        #expect(rotations.first?.event.name == "TOKEN" && rotations.first?.event.version == 2)
        #expect(rotations.first?.event.detail("previousVersion") == "1")
    }

    @Test("the schedule and a concurrent CLI rotation:run rotate each due secret exactly once")
    func concurrentWithCLI() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        let names = (1...40).map { "TOKEN_\($0)" }
        try await server.test { client in
            for name in names {
                try await client.createSecret(name, value: "v-\(name)", key: admin,
                                              extra: ["rotationPolicy": ["period": "1d", "generate": ["length": 24]]])
            }
        }
        server.clock.advance(seconds: Self.day)
        let now = server.clock.now
        let rotator = try #require(server.service.rotator)
        let cli = Task.detached { try Self.cliRun(server, now: now) }
        // The pass starts once the CLI is rotating, so the two work through the list together.
        let started = Date()
        while try await server.storedSecrets().allSatisfy({ $0.currentVersion == 1 }), Date().timeIntervalSince(started) < 20 {
            try await Task.sleep(for: .milliseconds(2))
        }
        let scheduled = await rotator.rotateDue(logger: ServerFixture.quietLogger)
        let cliResult = try await cli.value
        #expect(cliResult.status == 0, "\(cliResult)")
        let cliRotated = cliResult.stdoutText.components(separatedBy: "\"outcome\": \"rotated\"").count - 1
        let serverRotated = scheduled.filter { if case .rotated = $0.outcome { true } else { false } }.count
        print("concurrent rotation split: cli \(cliRotated), server \(serverRotated)")
        #expect(cliRotated + serverRotated == names.count, "cli \(cliRotated), server \(serverRotated): \(cliResult.stdoutText)")
        for name in names {
            #expect(try await server.versionCount(name) == 2, "\(name)")
        }
        // Nothing is due any more, for either.
        #expect(await rotator.rotateDue(logger: ServerFixture.quietLogger).isEmpty)
        let again = try Self.cliRun(server, now: now)
        #expect(again.status == 0 && !again.stdoutText.contains("\"rotated\""), "\(again)")
    }

    @Test("live: serve --rotation-interval 1s rotates a due secret once beside CLI runs, logs names and versions only, and stops on SIGTERM")
    func live() throws {
        let store = try LiveStore()
        // Created 31 days ago (the CLI's test clock) with a 30-day policy: due now, in real time.
        let monthAgo = Int64(Date().timeIntervalSince1970) - 31 * Self.day
        var env = minimalEnvironment(home: store.home)
        env["VSECURE_VAULT"] = store.vaultPath
        env["VSECURE_KEY_FILE"] = store.keyPath
        var created = env
        created["VSECURE_TEST_NOW"] = String(monthAgo)
        let create = try runProcess(Binaries.vsecure, ["secrets:create", "LIVE_TOKEN", "-", "--env", "production", "--rotation-period", "30d",
                                                       "--rotation-generate", "length=32,charset=alnum"],
                                    environment: created, stdin: .text("v-live-original"), timeout: 60)
        #expect(create.status == 0, "\(create)")
        let server = try LiveServer(store: store, extraArguments: ["--rotation-interval", "1s", "--log-level", "info"])
        var cliRuns: [ProcessResult] = []
        let deadline = Date().addingTimeInterval(30)
        var versions: [[String: Any]] = []
        let client = LiveClient(baseURL: server.baseURL, token: store.adminToken, scratch: store.directory)
        while Date() < deadline {
            cliRuns.append(try runProcess(Binaries.vsecure, ["rotation:run", "--output", "json"], environment: env, timeout: 60))
            let reply = try client.get("/v1/security/secrets/LIVE_TOKEN/versions?environment=production")
            versions = reply.json.liveObjects("data")
            if versions.count >= 2 { break }
            usleep(200_000)
        }
        // Give any double rotation the chance to happen before counting.
        usleep(2_500_000)
        cliRuns.append(try runProcess(Binaries.vsecure, ["rotation:run", "--output", "json"], environment: env, timeout: 60))
        versions = try client.get("/v1/security/secrets/LIVE_TOKEN/versions?environment=production").json.liveObjects("data")
        #expect(versions.map { $0["action"] as? String } == ["create", "rotate"], "\(versions)")
        for run in cliRuns { #expect(run.status == 0, "\(run)") }
        let rotatedByCLI = cliRuns.contains { $0.stdoutText.contains("\"rotated\"") }
        let status = server.stop(signal: SIGTERM, timeout: 30)
        #expect(status == 0, "exit status after SIGTERM: \(String(describing: status))\n\(server.process.log)")
        let log = server.process.log
        if !rotatedByCLI {
            #expect(log.contains("rotated production/LIVE_TOKEN: version 1 → 2"), "\(log)")
        }
        #expect(!log.contains("v-live-original"))
        let value = try runProcess(Binaries.vsecure, ["secrets:get", "LIVE_TOKEN", "--env", "production"], environment: env, timeout: 60)
        #expect(!value.stdoutText.isEmpty && !log.contains(value.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)),
                "the new value is never logged")
    }

    @Test("live: --rotation-interval 0 turns the schedule off")
    func scheduleOff() throws {
        let store = try LiveStore()
        var env = minimalEnvironment(home: store.home)
        env["VSECURE_VAULT"] = store.vaultPath
        env["VSECURE_KEY_FILE"] = store.keyPath
        var past = env
        past["VSECURE_TEST_NOW"] = String(Int64(Date().timeIntervalSince1970) - 2 * Self.day)
        let create = try runProcess(Binaries.vsecure, ["secrets:create", "DUE", "-", "--rotation-period", "1d", "--rotation-generate", "length=16"],
                                    environment: past, stdin: .text("v-due"), timeout: 60)
        #expect(create.status == 0, "\(create)")
        let server = try LiveServer(store: store, extraArguments: ["--rotation-interval", "0"])
        usleep(2_000_000)
        let client = LiveClient(baseURL: server.baseURL, token: store.adminToken, scratch: store.directory)
        let got = try client.get("/v1/security/secrets/DUE")
        #expect(got.json["version"] as? Int == 1, "\(got)")
        #expect((got.json["rotation"] as? [String: Any])?["state"] as? String == "overdue", "\(got)")
        #expect(server.stop(signal: SIGTERM, timeout: 30) == 0)
    }

    @Test("serve refuses a bad --rotation-interval or --allow-rotation-commands with exit 2", arguments: [
        ["--rotation-interval", "soon"], ["--rotation-interval", "-1m"], ["--allow-rotation-commands", "relative/dir"],
        ["--allow-rotation-commands", "/"], ["--allow-rotation-commands", "/srv/../bin"],
    ])
    func badFlags(_ flags: [String]) throws {
        let store = try LiveStore()
        let result = try runProcess(LiveTools.server, ["serve", "--data", store.dataPath, "--insecure-http", "--listen", "127.0.0.1:0"] + flags,
                                    environment: minimalEnvironment(home: store.home), timeout: 60)
        #expect(result.status == 2, "\(flags): \(result)")
        #expect(result.stderr.hasPrefix("vsecure-server: error: "), "\(result)")
    }
}
