import Foundation
import Testing
import TestSupport

/// The server killed with SIGKILL while concurrent writers create new secrets and update
/// shared ones, then restarted on the same data directory: every write it acknowledged with a
/// 2xx is there with the acknowledged version and value, `vsecure vault:status --check` passes
/// on the data directory's vault.db and vault.key, and `vsecure audit:verify --endpoint` finds
/// the audit chain intact. (LiveSignalTests covers updates only, checking the store through the
/// library; this one adds creates and checks through the CLI, the way an operator would.)
@Suite("Crash recovery: SIGKILL under creates and updates", .serialized, .timeLimit(.minutes(3)))
struct CrashRecoveryTests {
    static let writers = 4

    /// Each writer alternates: a create of a new secret `W<w>_<i>`, then two updates of
    /// `SHARED_<w mod 2>`. Every 2xx is logged `name version value`; every other outcome
    /// `curl-exit http-status`. Stops at a stop file or after `max` requests.
    static let writerScript = #"""
        #!/bin/sh
        url=$1; out=$2; writers=$3; max=$4
        loop() {
            w=$1; i=0
            while [ "$i" -lt "$max" ] && [ ! -e "$out/stop" ]; do
                i=$((i + 1))
                value="w$w-$i"
                if [ $((i % 3)) -eq 1 ]; then
                    name="W${w}_$i"; method=POST; path="/v1/security/secrets"
                    body="{\"name\":\"$name\",\"value\":\"$value\",\"environment\":\"development\"}"
                else
                    name="SHARED_$((w % 2))"; method=PUT; path="/v1/security/secrets/$name?environment=development"
                    body="{\"value\":\"$value\"}"
                fi
                code=$(curl -q -s --noproxy '*' --max-time 15 -o "$out/body.$w" -w '%{http_code}' -X "$method" \
                    -H "@$out/auth" -H 'Content-Type: application/json' --data-binary "$body" "$url$path")
                rc=$?
                case "$code" in
                    2??)
                        version=$(sed -n 's/.*"version":\([0-9][0-9]*\).*/\1/p' "$out/body.$w")
                        echo "$name $version $value" >> "$out/acks.$w" ;;
                    *)
                        echo "$rc $code" >> "$out/failures.$w"
                        sleep 0.05 ;;
                esac
            done
        }
        w=1
        while [ "$w" -le "$writers" ]; do
            loop "$w" &
            w=$((w + 1))
        done
        wait
        """#

    typealias Ack = AcknowledgedWrite

    /// Complete lines of the writers' `prefix.N` files (a kill can cut the last one).
    static func lines(_ directory: String, _ prefix: String) -> [String] {
        (1...writers).flatMap { writer -> [String] in
            guard let text = try? String(contentsOfFile: "\(directory)/\(prefix).\(writer)", encoding: .utf8) else { return [] }
            var complete = text.split(separator: "\n").map(String.init)
            if !text.hasSuffix("\n"), !complete.isEmpty { complete.removeLast() }
            return complete
        }
    }

    static func acks(_ directory: String) -> [Ack] {
        lines(directory, "acks").compactMap { line in
            let parts = line.split(separator: " ").map(String.init)
            guard parts.count == 3, let version = Int(parts[1]) else { return nil }
            return Ack(name: parts[0], version: version, value: parts[2])
        }
    }

    @Test("every acknowledged create and update survives; vault:status --check and audit:verify pass")
    func sigkillUnderCreatesAndUpdates() throws {
        let store = try LiveStore()
        var server: LiveServer? = try LiveServer(store: store)
        let client = LiveClient(baseURL: server!.baseURL, token: store.adminToken, scratch: store.directory)
        var acks: [Ack] = []
        for name in ["SHARED_0", "SHARED_1"] {
            let made = try client.post("/v1/security/secrets", liveJSON(["name": name, "value": "initial", "environment": "development"]))
            guard made.status == 201, let version = made.json.int("version") else { throw TestFailure("create \(name): \(made)") }
            acks.append(Ack(name: name, version: version, value: "initial"))
        }

        let load = store.directory.file("crash-load")
        try FileManager.default.createDirectory(atPath: load, withIntermediateDirectories: true)
        try store.directory.write("crash-load/auth", "Authorization: Bearer \(store.adminToken)\n")
        let script = try store.directory.write("crash-load/writers.sh", Self.writerScript, mode: 0o700)
        let writers = try LiveProcess("/bin/sh", [script, server!.baseURL, load, String(Self.writers), "5000"],
                                      environment: minimalEnvironment(home: store.home), logPath: load + "/writers.log")
        defer { writers.killGroup() }
        // A few seconds of load (fewer writes on a busy machine, but never none).
        let deadline = Date().addingTimeInterval(4)
        while Date() < deadline, Self.acks(load).count < 400 { usleep(50_000) }
        let acknowledgedBeforeKill = Self.acks(load).count
        #expect(acknowledgedBeforeKill >= 20, "too few writes were acknowledged: \(Self.lines(load, "failures").prefix(5))")

        #expect(server!.process.killGroup() == 128 + SIGKILL)
        server = nil
        _ = FileManager.default.createFile(atPath: load + "/stop", contents: nil)
        if writers.wait(timeout: 30) == nil { writers.killGroup() }
        acks += Self.acks(load)
        let failures = Self.lines(load, "failures")
        let creates = acks.filter { $0.name.hasPrefix("W") }.count
        print("CrashRecoveryTests: \(acks.count) acknowledged writes (\(creates) creates), \(failures.count) unacknowledged, "
              + "by curl exit/HTTP status: \(Dictionary(grouping: failures) { $0 }.mapValues(\.count))")
        #expect(creates > 0 && creates < acks.count, "the load mixed creates and updates")
        // While the server ran, nothing was refused: failures are only the connections it dropped.
        #expect(failures.allSatisfy { $0.hasSuffix(" 000") }, "writes refused before the kill: \(failures.prefix(10))")
        let duplicates = Dictionary(grouping: acks) { "\($0.name) v\($0.version)" }.filter { $0.value.count > 1 }
        #expect(duplicates.isEmpty, "two acknowledged writes claim one version: \(duplicates)")

        // Restarted on the same files: every acknowledged write, read back at its version.
        let restarted = try LiveServer(store: store)
        let lost = try AcknowledgedWrite.missing(acks, from: restarted.baseURL, authFile: "\(load)/auth", store: store,
                                                 configName: "crash-verify.curl")
        #expect(lost.isEmpty, "acknowledged writes missing or different after the restart: \(lost.prefix(10))")

        // The audit log survived the crash: its chain verifies through the server.
        var env = minimalEnvironment(home: store.home)
        env["VSECURE_API_KEY"] = store.adminToken
        let audit = try runProcess(Binaries.vsecure, ["audit:verify", "--endpoint", restarted.baseURL], environment: env, timeout: 120)
        #expect(audit.status == 0 && audit.stdoutText.hasPrefix("intact: "), "audit:verify after the crash: \(audit)")
        #expect(restarted.stop(signal: SIGTERM, timeout: 15) == 0)

        // The vault file itself, as an operator checks it: SQLite's integrity check and the header.
        let check = try runProcess(Binaries.vsecure, ["vault:status", "--check", "--output", "json", "--vault", store.vaultPath,
                                                      "--key-file", store.keyPath], environment: minimalEnvironment(home: store.home))
        #expect(check.status == 0, "\(check)")
        let status = (try? JSONSerialization.jsonObject(with: Data(check.stdout))) as? [String: Any] ?? [:]
        #expect(status.string("integrity") == "ok", "\(check)")
    }
}
