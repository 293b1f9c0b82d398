import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import TestSupport
import VSecureCore
@testable import VSecureServer

/// `POST /secrets/{name}/rotate` with an `Idempotency-Key` (docs/api.md, "Idempotency"): a
/// retry after a timeout must not rotate twice.
extension RotationRouteTests {
    /// The `rotated` audit entries of a secret (successes and failures).
    static func rotatedEntries(_ client: any TestClientProtocol, _ name: String, key: TestKey) async throws -> [[String: Any]] {
        let reply = try await client.send(.get, "/v1/security/audit-logs?action=rotated&name=\(name)&limit=1000", key: key)
        #expect(reply.status == .ok, "\(reply)")
        return reply.data
    }

    @Test("rotate with an Idempotency-Key: the replay returns the first answer, makes no second version and no second audit entry")
    func rotateReplay() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("TOKEN", value: "v-idem-rotate", key: admin, environment: "production", extra: [
                "rotationPolicy": ["period": "30d", "generate": ["length": 40, "charset": "alnum"]],
            ])
            server.clock.advance(seconds: 60)
            let body: [String: Any] = ["environment": "production"]
            let first = try await client.send(.post, "/v1/security/secrets/TOKEN/rotate", key: admin, json: body,
                                              headers: [.idempotencyKey: "rot-1"])
            #expect(first.status == .ok, "\(first)")
            #expect(first.int("version") == 2)
            #expect(first["rotated"] as? Bool == true)
            #expect(first.headers[.idempotentReplayed] == nil)
            let rotatedValue = try #require(try await client.send(.get, "/v1/security/secrets/TOKEN?environment=production", key: admin)
                .string("value"))

            server.clock.advance(seconds: 30)
            for _ in 0..<2 {
                let replay = try await client.send(.post, "/v1/security/secrets/TOKEN/rotate", key: admin, json: body,
                                                   headers: [.idempotencyKey: "rot-1"])
                #expect(replay.status == .ok)
                #expect(replay.text == first.text)
                #expect(replay.headers[.idempotentReplayed] == "true")
                // The recorded answer holds neither the old value nor the one the rotation made.
                expectNoLeak(replay, of: ["v-idem-rotate", rotatedValue])
            }
            #expect(try await client.send(.get, "/v1/security/secrets/TOKEN?environment=production", key: admin)
                .string("value") == rotatedValue)

            // The same key with another body, or another URL, is a conflict and runs nothing.
            let otherBody = try await client.send(.post, "/v1/security/secrets/TOKEN/rotate", key: admin,
                                                  json: ["environment": "production", "onlyIfDue": false],
                                                  headers: [.idempotencyKey: "rot-1"])
            expectError(otherBody, .conflict, "CONFLICT")
            let otherURL = try await client.send(.post, "/v1/security/secrets/TOKEN/rotate?environment=production", key: admin,
                                                 headers: [.idempotencyKey: "rot-1"])
            expectError(otherURL, .conflict, "CONFLICT")

            let entries = try await Self.rotatedEntries(client, "TOKEN", key: admin)
            #expect(entries.count == 1, "one rotation, one entry: \(entries)")
            #expect(entries.first?["version"] as? Int == 2)

            // A new key rotates again.
            let fresh = try await client.send(.post, "/v1/security/secrets/TOKEN/rotate", key: admin, json: body,
                                              headers: [.idempotencyKey: "rot-2"])
            #expect(fresh.int("version") == 3, "\(fresh)")
            #expect(fresh.headers[.idempotentReplayed] == nil)
        }
        let versions = try await server.versionCount("TOKEN", environment: "production")
        #expect(versions == 3)
    }

    @Test("rotate onlyIfDue with an Idempotency-Key: a replay returns the first answer even once the secret has become due")
    func rotateOnlyIfDueReplay() async throws {
        let server = try ServerFixture.make()
        let admin = server.admin
        try await server.test { client in
            // A 12-hour period, so that the secret falls due while the first answer is still kept
            // (Idempotency-Key records last 24 hours).
            try await client.createSecret("TOKEN", value: "v-idem-due", key: admin, extra: [
                "rotationPolicy": ["period": "12h", "generate": ["length": 32, "charset": "hex"]],
            ])
            let early = try await client.send(.post, "/v1/security/secrets/TOKEN/rotate?onlyIfDue=true", key: admin,
                                              headers: [.idempotencyKey: "due-1"])
            #expect(early.status == .ok, "\(early)")
            #expect(early["rotated"] as? Bool == false)
            #expect(early.string("skipped") == "not due until \(Self.iso(Self.day / 2))")

            server.clock.advance(seconds: Self.day / 2 + 60)
            let replay = try await client.send(.post, "/v1/security/secrets/TOKEN/rotate?onlyIfDue=true", key: admin,
                                               headers: [.idempotencyKey: "due-1"])
            #expect(replay.text == early.text)
            #expect(replay.headers[.idempotentReplayed] == "true")
            #expect(try await server.versionCount("TOKEN") == 1, "the replay rotated nothing")

            let due = try await client.send(.post, "/v1/security/secrets/TOKEN/rotate?onlyIfDue=true", key: admin,
                                            headers: [.idempotencyKey: "due-2"])
            #expect(due["rotated"] as? Bool == true, "\(due)")
            #expect(due.int("version") == 2)
            let dueAgain = try await client.send(.post, "/v1/security/secrets/TOKEN/rotate?onlyIfDue=true", key: admin,
                                                 headers: [.idempotencyKey: "due-2"])
            #expect(dueAgain.text == due.text)
            #expect(dueAgain.headers[.idempotentReplayed] == "true")
            #expect(try await Self.rotatedEntries(client, "TOKEN", key: admin).count == 1)
        }
        #expect(try await server.versionCount("TOKEN") == 2)
    }

    @Test("a refused or failed rotate is not recorded: the same Idempotency-Key runs again once the cause is fixed")
    func rotateFailureNotRecorded() async throws {
        let (server, directory, allowed, bad) = try serverRunningCommands()
        defer { withExtendedLifetime(directory) {} }
        let admin = server.admin
        try await server.test { client in
            // No policy: 409, not recorded.
            try await client.createSecret("PLAIN", value: "v-idem-plain", key: admin)
            let refused = try await client.send(.post, "/v1/security/secrets/PLAIN/rotate", key: admin, headers: [.idempotencyKey: "k-plain"])
            expectError(refused, .conflict, "CONFLICT")
            #expect(refused.errorDetails?["reason"] as? String == "noPolicy")
            let withPolicy = try await client.send(.put, "/v1/security/secrets/PLAIN", key: admin,
                                                   json: ["rotationPolicy": ["period": "30d", "generate": ["length": 32]]])
            #expect(withPolicy.status == .ok, "\(withPolicy)")
            let retried = try await client.send(.post, "/v1/security/secrets/PLAIN/rotate", key: admin, headers: [.idempotencyKey: "k-plain"])
            #expect(retried.status == .ok, "\(retried)")
            #expect(retried.headers[.idempotentReplayed] == nil)
            #expect(retried.int("version") == 2)

            // A failing command: 422, not recorded; with a working policy the same key rotates.
            try await client.createSecret("FAILS", value: "v-idem-fails", key: admin, extra: [
                "rotationPolicy": ["period": "1d", "command": [allowed + "/sh", bad]],
            ])
            let failed = try await client.send(.post, "/v1/security/secrets/FAILS/rotate", key: admin, headers: [.idempotencyKey: "k-fails"])
            expectError(failed, .unprocessableContent, "ROTATION_FAILED")
            let failedAgain = try await client.send(.post, "/v1/security/secrets/FAILS/rotate", key: admin, headers: [.idempotencyKey: "k-fails"])
            expectError(failedAgain, .unprocessableContent, "ROTATION_FAILED")
            #expect(failedAgain.headers[.idempotentReplayed] == nil, "a failure is tried again, not replayed")
            #expect(try await client.send(.put, "/v1/security/secrets/FAILS", key: admin,
                                          json: ["rotationPolicy": ["period": "1d", "generate": ["length": 32]]]).status == .ok)
            let fixed = try await client.send(.post, "/v1/security/secrets/FAILS/rotate", key: admin, headers: [.idempotencyKey: "k-fails"])
            #expect(fixed.status == .ok, "\(fixed)")
            #expect(fixed.headers[.idempotentReplayed] == nil)
            #expect(fixed.int("version") == 2)
            let entries = try await Self.rotatedEntries(client, "FAILS", key: admin)
            #expect(entries.map { $0["result"] as? String } == ["failure", "failure", "success"], "\(entries)")
        }
        #expect(try await server.versionCount("PLAIN") == 2)
        #expect(try await server.versionCount("FAILS") == 2)
    }

    @Test("rotation commands that wait on one server do not hold up a rotation on another (each rotator has its own thread)")
    func rotatorsDoNotShareThreads() async throws {
        let (directory, allowed) = try commandDirectory()
        let started = directory.file("started"), release = directory.file("release"), finished = directory.file("finished")
        // Signals that it runs, waits (at most 50 s, inside the 60 s command timeout) until the
        // test lets it finish, then marks that a slow command has ended.
        let slow = try directory.write("slow.sh", """
            cat >/dev/null
            : > "$1"
            i=0
            while [ ! -e "$2" ] && [ $i -lt 500 ]; do sleep 0.1; i=$((i+1)); done
            : > "$3"
            printf 'slow-new-value'
            """)
        let quick = try directory.write("quick.sh", "cat >/dev/null\nprintf 'quick-new-value'\n")
        var settings = ServerRotationSettings()
        try settings.allowCommands(in: allowed)
        let busy = try ServerFixture.make(rotation: settings), other = try ServerFixture.make(rotation: settings)
        try await busy.test { busyClient in
            // Two waiting rotations: as many as NIO's shared blocking pool has threads here.
            for name in ["SLOW_A", "SLOW_B"] {
                try await busyClient.createSecret(name, value: "v-\(name)", key: busy.admin, extra: [
                    "rotationPolicy": ["period": "1d", "command": [allowed + "/sh", slow, started, release, finished]],
                ])
            }
            async let first = busyClient.send(.post, "/v1/security/secrets/SLOW_A/rotate", key: busy.admin)
            async let second = busyClient.send(.post, "/v1/security/secrets/SLOW_B/rotate", key: busy.admin)
            let deadline = Date().addingTimeInterval(90)  // generous: a loaded CI machine took 20 s to run a rotation
            while !FileManager.default.fileExists(atPath: started), Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(FileManager.default.fileExists(atPath: started), "the first slow command did not start")

            // No time limit (a loaded machine may take seconds): the other server's rotation must
            // answer while the slow commands still wait, not once one of them has ended.
            try await other.test { client in
                try await client.createSecret("QUICK", value: "v-quick", key: other.admin, extra: [
                    "rotationPolicy": ["period": "1d", "command": [allowed + "/sh", quick]],
                ])
                let rotated = try await client.send(.post, "/v1/security/secrets/QUICK/rotate", key: other.admin)
                #expect(rotated.status == .ok, "\(rotated)")
                #expect(!FileManager.default.fileExists(atPath: finished), "it waited for a slow command of the other server to end")
            }
            #expect(FileManager.default.createFile(atPath: release, contents: nil))
            #expect(try await first.status == .ok)
            #expect(try await second.status == .ok)
        }
    }

    @Test("while a rotate with an Idempotency-Key runs, the same key is 409 inProgress; once it has answered, a replay")
    func rotateConcurrentRetry() async throws {
        let (directory, allowed) = try commandDirectory()
        let started = directory.file("started"), release = directory.file("release")
        // Signals that it runs, then waits (at most 30 s) until the test lets it finish.
        let slow = try directory.write("slow.sh", """
            cat >/dev/null
            : > "$1"
            i=0
            while [ ! -e "$2" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
            printf 'slow-new-value'
            """)
        var settings = ServerRotationSettings()
        try settings.allowCommands(in: allowed)
        let server = try ServerFixture.make(rotation: settings)
        let admin = server.admin
        try await server.test { client in
            try await client.createSecret("SLOW", value: "v-idem-slow", key: admin, extra: [
                "rotationPolicy": ["period": "1d", "command": [allowed + "/sh", slow, started, release]],
            ])
            async let first = client.send(.post, "/v1/security/secrets/SLOW/rotate", key: admin, headers: [.idempotencyKey: "k-slow"])
            let deadline = Date().addingTimeInterval(90)  // generous: a loaded CI machine took 20 s to run a rotation
            while !FileManager.default.fileExists(atPath: started), Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(FileManager.default.fileExists(atPath: started), "the rotation command did not start")

            let during = try await client.send(.post, "/v1/security/secrets/SLOW/rotate", key: admin, headers: [.idempotencyKey: "k-slow"])
            expectError(during, .conflict, "CONFLICT")
            #expect(during.errorDetails?["reason"] as? String == "inProgress", "\(during)")
            #expect(during.headers[.idempotentReplayed] == nil)

            #expect(FileManager.default.createFile(atPath: release, contents: nil))
            let answered = try await first
            #expect(answered.status == .ok, "\(answered)")
            #expect(answered.int("version") == 2)
            let after = try await client.send(.post, "/v1/security/secrets/SLOW/rotate", key: admin, headers: [.idempotencyKey: "k-slow"])
            #expect(after.text == answered.text)
            #expect(after.headers[.idempotentReplayed] == "true")
            #expect(try await client.send(.get, "/v1/security/secrets/SLOW", key: admin).string("value") == "slow-new-value")
            #expect(try await Self.rotatedEntries(client, "SLOW", key: admin).count == 1)
        }
        #expect(try await server.versionCount("SLOW") == 2)
    }
}
