import Foundation
import Testing
import TestSupport

/// `vsecure-server` whose data directory is on a small tmpfs that fills up: a read whose audit
/// entry cannot be written is refused with 503 and no value (docs/audit.md, "On the server"),
/// a write fails without a 2xx, and once space is freed the same server answers again and its
/// audit log verifies.
@Suite("Disk full: the server refuses rather than answer unaudited", .serialized,
       .enabled(if: SmallDisk.canMount, "mounting a tmpfs needs root (CAP_SYS_ADMIN); SmallDisk.whyNot has the reason"))
struct DiskFullServerTests {
    /// Moves a fresh store's data directory onto a small tmpfs (the server is not running yet,
    /// so its files are closed and whole).
    static func moveOntoSmallDisk(_ store: LiveStore, megabytes: Int) throws -> SmallDisk {
        let original = store.dataPath + ".orig"
        try FileManager.default.moveItem(atPath: store.dataPath, toPath: original)
        let disk = try SmallDisk(at: store.dataPath, megabytes: megabytes)
        for name in try FileManager.default.contentsOfDirectory(atPath: original) {
            try FileManager.default.copyItem(atPath: original + "/" + name, toPath: store.dataPath + "/" + name)
            guard chmod(store.dataPath + "/" + name, 0o600) == 0 else { throw TestFailure("chmod \(name) failed") }
        }
        return disk
    }

    @Test("reads get 503 without a value while the audit log cannot be written; the server recovers when space is freed",
          .timeLimit(.minutes(3)))
    func serverOnAFullDisk() throws {
        let store = try LiveStore()
        let disk = try Self.moveOntoSmallDisk(store, megabytes: 4)
        defer { disk.unmount() }
        let server = try LiveServer(store: store)
        defer { server.process.killGroup() }
        let client = LiveClient(baseURL: server.baseURL, token: store.adminToken, scratch: store.directory)
        let value = "diskfull-server-SECRET-\(UUID().uuidString)"
        let created = try client.post("/v1/security/secrets", liveJSON(["name": "DB_PASSWORD", "value": value, "environment": "production"]))
        #expect(created.status == 201, "\(created)")
        let before = try client.get("/v1/security/secrets/DB_PASSWORD?environment=production")
        #expect(before.status == 200 && before.json.string("value") == value, "\(before)")

        try disk.fill()
        #expect(disk.availableBytes == 0)

        // A read: refused, and the answer carries no value.
        let read = try client.get("/v1/security/secrets/DB_PASSWORD?environment=production")
        #expect(read.status == 503, "a read on a full disk: \(read)")
        #expect(read.errorCode == "SERVICE_UNAVAILABLE", "\(read)")
        #expect(!read.text.contains(value) && !read.text.contains("diskfull-server-SECRET"), "no value without an audit entry: \(read)")
        // The same read through the router (a request with a Connection header is never a fast read).
        let routed = try client.get("/v1/security/secrets/DB_PASSWORD?environment=production", options: ["-H", "Connection: close"])
        #expect(routed.status == 503 && routed.errorCode == "SERVICE_UNAVAILABLE", "a routed read on a full disk: \(routed)")
        #expect(!routed.text.contains(value), "\(routed)")
        let batch = try client.post("/v1/security/secrets/batch/get", liveJSON(["environment": "production", "names": ["DB_PASSWORD"]]))
        #expect(batch.status == 503, "a batch read on a full disk: \(batch)")
        #expect(!batch.text.contains(value), "\(batch)")
        // The launcher gets no value either: exit 13 (unreachable, as for any 503), no child.
        let marker = store.directory.file("started")
        let manifest = try store.directory.write("vsecure.yml", "version: 1\nsecrets: [DB_PASSWORD]\n")
        var env = minimalEnvironment(home: store.home)
        env["VSECURE_API_KEY"] = store.adminToken
        env["VSECURE_ENV"] = "production"
        env["VSECURE_TIMEOUT"] = "5s"
        let launch = try runProcess(Binaries.vsecureRun, ["--endpoint", server.baseURL, "--manifest", manifest, "--", "/usr/bin/touch", marker],
                                    environment: env, workingDirectory: store.directory.path, timeout: 60)
        #expect(launch.status == 13, "\(launch)")
        #expect(!FileManager.default.fileExists(atPath: marker), "no child without the values")
        #expect(!launch.stderr.contains(value))
        // A write: not acknowledged.
        try disk.fill()
        let write = try client.put("/v1/security/secrets/DB_PASSWORD?environment=production", liveJSON(["value": "diskfull-server-SECRET-new"]))
        #expect(write.status >= 500, "a write on a full disk is not acknowledged: \(write)")
        #expect(server.process.isRunning, "the server stays up on a full disk")

        // Space again: the same server answers, and the refused write left nothing behind.
        disk.free()
        let after = try client.get("/v1/security/secrets/DB_PASSWORD?environment=production")
        #expect(after.status == 200 && after.json.string("value") == value, "after freeing space: \(after)")
        #expect(after.json.int("version") == 1, "\(after)")
        let rewrite = try client.put("/v1/security/secrets/DB_PASSWORD?environment=production", liveJSON(["value": "diskfull-server-SECRET-v2"]))
        #expect(rewrite.status == 200 && rewrite.json.int("version") == 2, "\(rewrite)")
        let verify = try runProcess(Binaries.vsecure, ["audit:verify", "--endpoint", server.baseURL], environment: env, timeout: 60)
        #expect(verify.status == 0 && verify.stdoutText.hasPrefix("intact: "), "the audit chain after the full disk: \(verify)")
        // Every value the server handed out has its entry: the reads before and after, none while full.
        let accessed = try client.get("/v1/security/audit-logs?action=accessed&name=DB_PASSWORD&limit=100")
        #expect(accessed.status == 200, "\(accessed)")
        let outcomes = accessed.json.liveObjects("data").compactMap { $0.string("result") }
        #expect(outcomes.filter { $0 == "success" }.count == 2, "two reads were answered with the value: \(accessed.text)")
    }
}
