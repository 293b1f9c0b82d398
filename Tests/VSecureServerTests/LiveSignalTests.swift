import Foundation
import Testing
import TestSupport
import VSecureCore
import VSecureVault

/// The real server under write load, stopped by SIGTERM (graceful: in-flight requests finish,
/// exit 0) or SIGKILL (a crash: the store must still pass an integrity check). Either way,
/// every write the server acknowledged with a 2xx is there after a restart, and decrypts.
@Suite("Live server: signals under write load", .serialized, .timeLimit(.minutes(3)))
struct LiveSignalTests {
    static let secretNames = ["LOAD_A", "LOAD_B"]
    static let writers = 4

    typealias Ack = AcknowledgedWrite

    /// `writers` shell loops, each PUTting `w<writer>-<i>` (i increasing) to one of the
    /// secrets with its own curl, recording `name version value` for every 2xx answer and the
    /// curl exit code and HTTP status of every other one. Bounded by count and by a stop file.
    static let writerScript = #"""
        #!/bin/sh
        url=$1; out=$2; writers=$3; max=$4
        loop() {
            w=$1; name=$2; i=0
            while [ "$i" -lt "$max" ] && [ ! -e "$out/stop" ]; do
                i=$((i + 1))
                value="w$w-$i"
                code=$(curl -q -s --noproxy '*' --max-time 15 -o "$out/body.$w" -w '%{http_code}' -X PUT \
                    -H "@$out/auth" -H 'Content-Type: application/json' \
                    --data-binary "{\"value\":\"$value\"}" "$url/v1/security/secrets/$name?environment=development")
                rc=$?
                case "$code" in
                    2??)
                        version=$(sed -n 's/.*"version":\([0-9][0-9]*\).*/\1/p' "$out/body.$w")
                        echo "$name $version $value" >> "$out/acks.$w" ;;
                    *)
                        echo "$rc $code" >> "$out/failures.$w"
                        # The server is gone or going: do not spin.
                        sleep 0.05 ;;
                esac
            done
        }
        w=1
        while [ "$w" -le "$writers" ]; do
            if [ $((w % 2)) -eq 1 ]; then name=LOAD_A; else name=LOAD_B; fi
            loop "$w" "$name" &
            w=$((w + 1))
        done
        wait
        """#

    /// The write load against a server, and what it saw acknowledged.
    final class Load: @unchecked Sendable {
        let directory: String
        let process: LiveProcess

        init(store: LiveStore, url: String) throws {
            directory = store.directory.file("load")
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try store.directory.write("load/auth", "Authorization: Bearer \(store.adminToken)\n")
            let script = try store.directory.write("load/writers.sh", LiveSignalTests.writerScript, mode: 0o700)
            process = try LiveProcess("/bin/sh", [script, url, directory, String(LiveSignalTests.writers), "3000"],
                                      environment: minimalEnvironment(home: store.home), logPath: directory + "/writers.log")
        }

        /// Complete lines of the writers' files with `prefix`.
        func lines(_ prefix: String) -> [String] {
            var result: [String] = []
            for writer in 1...LiveSignalTests.writers {
                guard let text = try? String(contentsOfFile: "\(directory)/\(prefix).\(writer)", encoding: .utf8) else { continue }
                var complete = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
                if !text.hasSuffix("\n"), !complete.isEmpty { complete.removeLast() }
                result += complete
            }
            return result
        }

        var acks: [Ack] {
            lines("acks").compactMap { line in
                let parts = line.split(separator: " ").map(String.init)
                guard parts.count == 3, let version = Int(parts[1]) else { return nil }
                return Ack(name: parts[0], version: version, value: parts[2])
            }
        }

        /// curl exit code and HTTP status of every write that was not acknowledged.
        var failures: [String] { lines("failures") }

        /// Waits (bounded) until at least `count` writes were acknowledged.
        func waitForAcks(_ count: Int, timeout: TimeInterval) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if acks.count >= count { return true }
                usleep(50_000)
            }
            return false
        }

        /// Tells the loops to stop and waits for them (then kills whatever is left).
        func stop() {
            _ = FileManager.default.createFile(atPath: directory + "/stop", contents: nil)
            if process.wait(timeout: 30) == nil { process.killGroup() }
        }
    }

    /// Creates the secrets the writers update; their version 1 is acknowledged too.
    static func createSecrets(_ client: LiveClient) throws -> [Ack] {
        var acks: [Ack] = []
        for name in secretNames {
            let made = try client.post("/v1/security/secrets", liveJSON(["name": name, "value": "initial-\(name)", "environment": "development"]))
            guard made.status == 201, let version = made.json.int("version") else { throw TestFailure("create \(name): \(made)") }
            acks.append(Ack(name: name, version: version, value: "initial-\(name)"))
        }
        return acks
    }

    /// Restarts the server on the same store and checks every acknowledged write: its version
    /// is listed, and reading that version returns the acknowledged value. Also: no two
    /// acknowledgements claim the same version of a secret.
    static func verify(_ acks: [Ack], store: LiveStore) throws {
        let duplicates = Dictionary(grouping: acks) { "\($0.name) v\($0.version)" }.filter { $0.value.count > 1 }
        #expect(duplicates.isEmpty, "two acknowledged writes claim one version: \(duplicates)")

        let server = try LiveServer(store: store)
        let client = LiveClient(baseURL: server.baseURL, token: store.adminToken, scratch: store.directory)
        for name in secretNames {
            let versions = try client.get("/v1/security/secrets/\(name)/versions?environment=development")
            #expect(versions.status == 200, "\(versions)")
            let listed = Set(versions.json.liveObjects("data").compactMap { $0.int("version") })
            let missing = acks.filter { $0.name == name && !listed.contains($0.version) }
            #expect(missing.isEmpty, "acknowledged versions of \(name) missing after the restart: \(missing)")
        }
        // Every acknowledged version, read back over one keep-alive connection.
        let bad = try AcknowledgedWrite.missing(acks, from: server.baseURL, authFile: store.directory.file("load/auth"), store: store,
                                                configName: "verify.curl")
        #expect(bad.isEmpty, "acknowledged writes that do not read back: \(bad.prefix(10))")
        #expect(server.stop(signal: SIGTERM, timeout: 15) == 0)
    }

    @Test("SIGTERM under write load: in-flight requests finish, exit 0, every acknowledged write survives a restart")
    func sigtermUnderLoad() throws {
        let store = try LiveStore()
        let server = try LiveServer(store: store)
        let client = LiveClient(baseURL: server.baseURL, token: store.adminToken, scratch: store.directory)
        var acks = try Self.createSecrets(client)

        let load = try Load(store: store, url: server.baseURL)
        defer { load.stop() }
        // A few seconds of writes (fewer on a busy machine, but never none).
        _ = load.waitForAcks(200, timeout: 10)
        #expect(load.acks.count >= 20, "the writers got too few acknowledgements: \(load.failures.prefix(5))")

        // A request certainly in flight when the signal arrives: a chunked body that takes
        // two seconds to send. The server must wait for it, answer it, and only then exit.
        let slowDir = store.directory.file("slow")
        try FileManager.default.createDirectory(atPath: slowDir, withIntermediateDirectories: true)
        let slowScript = try store.directory.write("slow/slow.sh", """
            { printf '{"value":"slow-'; sleep 2; printf 'request"}'; } | \
            curl -q -s -v --noproxy '*' --max-time 30 -T - -X PUT -H 'Expect:' -H "@\(store.directory.file("load/auth"))" \
                -H 'Content-Type: application/json' -o \(slowDir)/body -w '%{http_code}' \
                '\(server.baseURL)/v1/security/secrets/LOAD_A?environment=development' > \(slowDir)/status 2> \(slowDir)/trace
            """, mode: 0o700)
        let slow = try LiveProcess("/bin/sh", [slowScript], environment: minimalEnvironment(home: store.home), logPath: slowDir + "/log")
        // Wait until curl has sent the request head, then give the server a moment to read it.
        func headSent() -> Bool { (try? String(contentsOfFile: slowDir + "/trace", encoding: .utf8))?.contains("> PUT") ?? false }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, !headSent() { usleep(20_000) }
        #expect(headSent(), "the slow request never started")
        usleep(500_000)

        let acksBefore = load.acks.count
        let signalled = Date()
        let status = server.stop(signal: SIGTERM, timeout: 15)
        let drainSeconds = Date().timeIntervalSince(signalled)
        #expect(status == 0, "the server's exit status after SIGTERM: \(status.map(String.init) ?? "still running"); log:\n\(server.process.log)")
        #expect(drainSeconds < 10, "SIGTERM took \(drainSeconds) s")

        #expect(slow.wait(timeout: 30) != nil)
        let slowStatus = (try? String(contentsOfFile: slowDir + "/status", encoding: .utf8)) ?? ""
        let slowBody = (try? Data(contentsOf: URL(fileURLWithPath: slowDir + "/body"))) ?? Data()
        let slowJSON = (try? JSONSerialization.jsonObject(with: slowBody)) as? [String: Any] ?? [:]
        #expect(slowStatus == "200", "the in-flight request was not answered: \(slowStatus) \(String(decoding: slowBody, as: UTF8.self))")
        if slowStatus == "200", let version = slowJSON.int("version") {
            acks.append(Ack(name: "LOAD_A", version: version, value: "slow-request"))
        }

        load.stop()
        acks += load.acks
        let failures = load.failures
        print("SIGTERM: \(acks.count) acknowledged writes (\(acksBefore) before the signal), drain \(String(format: "%.2f", drainSeconds)) s; "
              + "\(failures.count) unacknowledged attempts, by curl exit/HTTP status: \(Dictionary(grouping: failures) { $0 }.mapValues(\.count))")
        // While the server ran, nothing was refused: every failure is after the signal
        // (connection refused, 7; or a connection closed while draining, 52/56).
        #expect(failures.allSatisfy { ["7 000", "52 000", "56 000"].contains($0) }, "unexpected failures: \(failures.prefix(10))")

        try Self.verify(acks, store: store)
    }

    @Test("SIGKILL under write load: the store passes an integrity check and every acknowledged write survives")
    func sigkillUnderLoad() throws {
        let store = try LiveStore()
        let server = try LiveServer(store: store)
        let client = LiveClient(baseURL: server.baseURL, token: store.adminToken, scratch: store.directory)
        var acks = try Self.createSecrets(client)

        let load = try Load(store: store, url: server.baseURL)
        defer { load.stop() }
        // A few seconds of writes (fewer on a busy machine, but never none).
        _ = load.waitForAcks(300, timeout: 10)
        #expect(load.acks.count >= 20, "the writers got too few acknowledgements: \(load.failures.prefix(5))")

        let status = server.process.killGroup()
        #expect(status == 128 + SIGKILL)
        load.stop()
        acks += load.acks
        let failures = load.failures
        print("SIGKILL: \(acks.count) acknowledged writes; \(failures.count) unacknowledged attempts, by curl exit/HTTP status: "
              + "\(Dictionary(grouping: failures) { $0 }.mapValues(\.count))")

        // The server restarts on the files as the crash left them (WAL included) and recovers
        // them itself; every acknowledged write is there.
        let walLeft = FileManager.default.fileExists(atPath: store.vaultPath + "-wal")
        try Self.verify(acks, store: store)

        // Then SQLite's own integrity check of both databases, and the library's, which opens
        // the vault and decrypts its header.
        if Vault.hasSQLite3 {
            for path in [store.vaultPath, store.registryPath] {
                let check = try runProcess(Vault.sqlite3, [path, "PRAGMA integrity_check;"], environment: minimalEnvironment(home: store.home))
                #expect(check.status == 0 && check.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "ok",
                        "integrity_check of \(path): \(check)")
            }
        }
        let vault = try LocalVault.open(at: store.vaultPath, keys: KeySource(keyFilePath: store.keyPath) { () throws(VSecureError) in
            throw VSecureError(.key, "no passphrase in this test")
        })
        let vaultStatus = try vault.status(checkIntegrity: true)
        #expect(vaultStatus.integrityOK)
        #expect(vaultStatus.secretCount == Self.secretNames.count)
        #expect(vaultStatus.versionCount >= acks.count)
        print("SIGKILL: the crash left \(walLeft ? "a" : "no") WAL file; \(vaultStatus.versionCount) versions after the restart")
    }
}
