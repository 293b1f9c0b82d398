import Foundation
import Testing
import TestSupport
import VSecureClient

@Suite("VSecureClient: typed errors and values that do not print")
struct ErrorTests {
    @Test("missing → notFound, existing → conflict, malformed → invalidRequest without a request")
    func statusKinds() async throws {
        let fixture = try ClientFixture()
        let secrets = fixture.client.secrets
        #expect(await errorKind { try await secrets.get("NOPE") } == .notFound)
        #expect(await errorKind { try await secrets.versions("NOPE") } == .notFound)
        #expect(await errorKind { try await secrets.delete("NOPE") } == .notFound)
        try await secrets.create("TAKEN", value: "conflict-value-7c1")
        let conflict = await thrownError { try await secrets.create("TAKEN", value: "conflict-value-7c1") }
        #expect(conflict?.kind == .conflict)
        #expect(conflict?.message.contains("TAKEN") == true)
        #expect(conflict.map { !"\($0)".contains("conflict-value-7c1") } == true)
        #expect(await errorKind { try await secrets.rollback("TAKEN") } != nil)
        #expect(await errorKind { try await secrets.get("TAKEN", environment: "nowhere") } == .invalidRequest)

        let before = fixture.client.requestCount
        #expect(await errorKind { try await secrets.get("not a name") } == .invalidRequest)
        #expect(await errorKind { try await secrets.get("OK", environment: "Bad Env") } == .invalidRequest)
        #expect(await errorKind { try await secrets.create("OK", value: "v", tags: ["no spaces"]) } == .invalidRequest)
        #expect(await errorKind { try await secrets.list(tags: ["bad tag"]) } == .invalidRequest)
        #expect(fixture.client.requestCount == before)
    }

    @Test("an expired secret is refused unless allowExpired")
    func expired() async throws {
        let fixture = try ClientFixture()
        try await fixture.client.secrets.create("SHORT", value: "brief", expiry: .after(.seconds(1)))
        // Expiry has whole-second resolution: past it within two seconds.
        try await Task.sleep(for: .milliseconds(2_100))
        #expect(await errorKind { try await fixture.client.secrets.get("SHORT") } == .expired)
        #expect(try await fixture.client.secrets.get("SHORT", allowExpired: true).utf8String() == "brief")
        let batch = try await fixture.client.secrets.batchGet(["SHORT"])
        #expect(batch.expired == ["SHORT"])
        #expect(batch.items.isEmpty)
    }

    @Test("a wrong API key → accessDenied, and the key is not in the message")
    func wrongKey() async throws {
        let fixture = try ClientFixture()
        let wrongKey = "vsec_key_0123456789abcdef_" + String(repeating: "A", count: 43)
        let client = try VSecureClient(endpoint: fixture.server.baseURL, apiKey: wrongKey)
        let error = await thrownError { try await client.secrets.get("ANY") }
        #expect(error?.kind == .accessDenied)
        #expect(error.map { !"\($0)".contains(wrongKey) && !"\($0)".contains(fixture.store.adminToken) } == true)
        #expect(await errorKind { try await client.secrets.list() } == .accessDenied)
    }

    @Test("no server → unreachable")
    func serverDown() async throws {
        let fixture = try ClientFixture()
        try await fixture.client.secrets.create("THERE", value: "v")
        try fixture.stopServer()
        let client = try VSecureClient(endpoint: fixture.server.baseURL, apiKey: fixture.store.adminToken, timeout: .seconds(2))
        // No wall-clock bound here: in the full suite on two cores, blocking tests can hold the
        // cooperative threads for minutes, so resuming this task says nothing about the client.
        // That the launcher and the CLI give up within their timeout is measured around a child
        // process (RemoteLaunchTests, RemoteCLITests), which is not starved that way.
        #expect(await errorKind { try await client.secrets.get("THERE") } == .unreachable)
        #expect(await errorKind { try await client.secrets.create("NEW", value: "v") } == .unreachable)
    }

    @Test("a malformed endpoint, an empty key or a missing CA file is a configuration error")
    func badConfiguration() throws {
        #expect(throws: VSecureClientError.self) { try VSecureClient(endpoint: "ftp://host", apiKey: "k") }
        do {
            _ = try VSecureClient(endpoint: "https://127.0.0.1:1", apiKey: "")
            Issue.record("an empty key was accepted")
        } catch {
            #expect(error.kind == .configuration)
        }
        do {
            _ = try VSecureClient(endpoint: "https://127.0.0.1:1", apiKey: "k", caFile: "/nonexistent/ca.pem")
            Issue.record("a missing CA file was accepted")
        } catch {
            #expect(error.kind == .configuration)
        }
    }

    @Test("description, debugDescription, interpolation and dump never show the value")
    func redaction() async throws {
        let fixture = try ClientFixture()
        let secret = "hunter2-correct-horse"
        try await fixture.client.secrets.create("PASSWORD", value: secret)
        let value = try await fixture.client.secrets.get("PASSWORD")
        var dumped = ""
        dump(value, to: &dumped)
        let batch = try await fixture.client.secrets.batchGet(["PASSWORD"])
        var dumpedBatch = ""
        dump(batch, to: &dumpedBatch)
        let fetched = try await fixture.client.secrets.fetch("PASSWORD")
        let renderings = [value.description, value.debugDescription, "\(value)", String(describing: value), String(reflecting: value),
                          dumped, dumpedBatch, "\(batch)", "\(fetched)", String(reflecting: fetched)]
        for text in renderings {
            #expect(!text.contains(secret), "\(text.count) characters")
            #expect(!text.contains("hunter2"))
        }
        #expect(value.description == "SecretValue(<redacted>, 21 bytes)")
        #expect(value.utf8String() == secret)
    }
}
