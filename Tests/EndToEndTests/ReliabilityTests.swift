import Foundation
import Testing
import TestSupport

/// Crashes, concurrent writers and tampering, through the real binary. Serialized so that the
/// timing-sensitive cases do not compete with each other for the two cores.
@Suite("Reliability", .serialized, .noValuesOnStderr)
struct ReliabilityTests {
    /// Every version's value, read in one shell loop (one line per version; values here hold no
    /// newline). A version that fails to decrypt shows up as `FAILED n`.
    func allValues(_ vault: Vault, _ name: String, count: Int) throws -> [String] {
        let result = try vault.shell("""
            v=1
            while [ $v -le \(count) ]; do
              "$VSECURE" secrets:get \(name) --version $v || printf 'FAILED %s' $v
              echo
              v=$((v + 1))
            done
            """, timeout: 240)
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.isEmpty, "\(result.stderr)")
        return result.stdoutText.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    @Test(.timeLimit(.minutes(3)))
    func sigkillAtRandomMomentsNeverLosesAnAcknowledgedVersion() throws {
        let vault = try Vault()
        try vault.create("KILLED", "value-0")
        let ackLog = vault.directory.file("acknowledged.log")
        let failLog = vault.directory.file("failures.log")
        try Data().write(to: URL(fileURLWithPath: failLog))
        // Each round starts numbering at START, so values only ever increase.
        let loop = """
            n=$START
            while :; do
              n=$((n + 1))
              printf 'value-%s' "$n" | "$VSECURE" secrets:update KILLED --quiet >/dev/null 2>>"$FAILLOG"
              status=$?
              if [ $status -eq 0 ]; then
                echo "value-$n" >> "$ACKLOG"
              elif [ $status -ne 137 ]; then
                echo "exit $status for value-$n" >> "$FAILLOG"
              fi
            done
            """
        var generator = SystemRandomNumberGenerator()
        let kills = 60
        for round in 1...kills {
            var env = vault.environment()
            env["VSECURE"] = Binaries.vsecure
            env["START"] = String(round * 1_000_000)
            env["ACKLOG"] = ackLog
            env["FAILLOG"] = failLog
            let group = try ProcessGroup("/bin/sh", ["-c", loop], environment: env)
            usleep(UInt32.random(in: 20_000...200_000, using: &generator))
            group.killGroup()
        }

        // Only complete lines count: a kill may land in the middle of the shell's echo.
        let logged = (try? String(contentsOfFile: ackLog, encoding: .utf8)) ?? ""
        var acknowledged = logged.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if !logged.hasSuffix("\n") { acknowledged.removeLast() }
        acknowledged.removeAll { $0.isEmpty }
        #expect(acknowledged.count >= 20, "too few updates finished between kills to mean anything: \(acknowledged.count)")
        #expect(try String(contentsOfFile: failLog, encoding: .utf8) == "", "an update failed without being killed")

        let check = try vault.run(["vault:status", "--check", "--output", "json"])
        #expect(check.status == 0, "\(check)")
        #expect(try object(JSONSerialization.jsonObject(with: Data(check.stdout))).string("integrity") == "ok")
        if Vault.hasSQLite3 {
            #expect(try vault.sqlite("PRAGMA integrity_check").stdoutText == "ok\n")
        }

        let history = try versions(vault, "KILLED")
        let numbers = history.compactMap { $0.int("version") }
        #expect(numbers == Array(1...numbers.count), "versions are contiguous")
        let values = try allValues(vault, "KILLED", count: numbers.count)
        #expect(values.count == numbers.count)
        #expect(values.allSatisfy { $0.hasPrefix("value-") }, "every version decrypts: \(values.filter { !$0.hasPrefix("value-") })")
        let stored = Set(values)
        let lost = acknowledged.filter { !stored.contains($0) }
        #expect(lost.isEmpty, "acknowledged but lost: \(lost)")
        #expect(history.count >= acknowledged.count + 1)
    }

    @Test(.timeLimit(.minutes(3)))
    func fourWritersTimesTwoHundredUpdatesLoseNothing() throws {
        let vault = try Vault()
        try vault.create("RACED", "initial")
        let result = try vault.shell("""
            for p in 1 2 3 4; do
              (
                for i in $(seq 200); do
                  printf 'p%s-%s' "$p" "$i" | "$VSECURE" secrets:update RACED --quiet >/dev/null 2>>"stderr-$p.log" \
                    || echo "p$p-$i exit $?" >> failures.log
                done
              ) &
            done
            wait
            touch failures.log
            cat failures.log stderr-*.log
            """, timeout: 300)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdoutText.isEmpty, "errors reached the user:\n\(result.stdoutText)")

        let history = try versions(vault, "RACED")
        #expect(history.compactMap { $0.int("version") } == Array(1...801))
        #expect(history.first?.string("action") == "create")
        #expect(history.dropFirst().allSatisfy { $0.string("action") == "update" })

        let values = try allValues(vault, "RACED", count: 801)
        #expect(values.first == "initial")
        let written = Set((1...4).flatMap { p in (1...200).map { "p\(p)-\($0)" } })
        #expect(Set(values.dropFirst()) == written, "every acknowledged update is a version, exactly once")
        #expect(values.count == 801)
        // Each writer's updates land in the order it made them.
        for p in 1...4 {
            let order = values.enumerated().compactMap { index, value -> Int? in
                value.hasPrefix("p\(p)-") ? Int(value.dropFirst("p\(p)-".count)) : nil
            }
            #expect(order == Array(1...200), "writer \(p) out of order")
        }
    }

    // MARK: - Tampering

    static func authenticationFailure(_ version: Int, _ name: String, _ env: String) -> String {
        """
        vsecure: error: version \(version) of \(name) in \(env) failed authentication: the vault was altered or damaged
        vsecure: hint: restore the vault from a backup; other secrets are unaffected

        """
    }

    func sealedHex(_ vault: Vault, _ name: String, _ version: Int, env: String = "development") throws -> String {
        try vault.sqlite("""
            SELECT hex(v.sealed) FROM versions v JOIN secrets s ON s.id = v.secret_id
            WHERE s.name = '\(name)' AND s.environment = '\(env)' AND v.version = \(version)
            """).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func setSealed(_ vault: Vault, _ name: String, _ version: Int, hex: String, env: String = "development") throws {
        try vault.sqlite("""
            UPDATE versions SET sealed = X'\(hex)'
            WHERE secret_id = (SELECT id FROM secrets WHERE name = '\(name)' AND environment = '\(env)') AND version = \(version)
            """)
    }

    @Test(.enabled(if: Vault.hasSQLite3), .timeLimit(.minutes(3)))
    func everyFlippedCiphertextByteIsAnAuthenticationErrorNamingTheSecret() throws {
        let vault = try Vault()
        try vault.create("TAMPERED", "tamper-SECRET-old")
        try vault.update("TAMPERED", "tamper-SECRET-new")
        try vault.create("BYSTANDER", "bystander-SECRET")
        let original = try sealedHex(vault, "TAMPERED", 2)
        var box = try #require(Data(hexString: original)).map { $0 }
        // 24-byte nonce, the value, 16-byte tag.
        #expect(box.count == 24 + 17 + 16)
        for position in box.indices {
            box[position] ^= 0x01
            try setSealed(vault, "TAMPERED", 2, hex: box.hexString)
            box[position] ^= 0x01
            let result = try vault.run(["secrets:get", "TAMPERED"])
            #expect(result.status == 8, "byte \(position): \(result)")
            #expect(result.stdout.isEmpty, "byte \(position) printed \(result.stdout)")
            #expect(result.stderr == Self.authenticationFailure(2, "TAMPERED", "development"), "byte \(position)")
            expectNoLeak("tamper-SECRET", result)
        }
        // Still tampered: other commands refuse too, and nothing is half-printed or written.
        let before = try vault.snapshot()
        let export = try vault.run(["secrets:export"])
        expectFailure(export, 8, "version 2 of TAMPERED in development failed authentication")
        let json = try vault.run(["secrets:get", "TAMPERED", "--output", "json"])
        expectFailure(json, 8, "version 2 of TAMPERED in development failed authentication")
        let rollback = try vault.run(["secrets:rollback", "TAMPERED", "--version", "2"])
        #expect(rollback.status == 4 || rollback.status == 8, "\(rollback)")
        let diff = try vault.run(["secrets:diff", "TAMPERED", "--reveal"])
        #expect(diff.status == 8, "\(diff)")
        #expect(!diff.stdoutText.contains("tamper-SECRET"))
        #expect(try vault.snapshot() == before)
        // Other versions and secrets are unaffected.
        #expect(try vault.value("TAMPERED", ["--version", "1"]) == bytes("tamper-SECRET-old"))
        #expect(try vault.value("BYSTANDER") == bytes("bystander-SECRET"))
        // Restored, it opens again.
        try setSealed(vault, "TAMPERED", 2, hex: original)
        #expect(try vault.value("TAMPERED") == bytes("tamper-SECRET-new"))
    }

    @Test(.enabled(if: Vault.hasSQLite3))
    func aTruncatedOrEmptiedCiphertextIsAnAuthenticationError() throws {
        let vault = try Vault()
        try vault.create("TRUNCATED", "truncated-SECRET-value")
        let original = try sealedHex(vault, "TRUNCATED", 1)
        for hex in [String(original.dropLast(2)), String(original.prefix(48)), String(original.prefix(20)), ""] {
            try setSealed(vault, "TRUNCATED", 1, hex: hex)
            let result = try vault.run(["secrets:get", "TRUNCATED"])
            #expect(result.status == 8, "\(hex.count / 2) bytes: \(result)")
            #expect(result.stdout.isEmpty)
            #expect(result.stderr == Self.authenticationFailure(1, "TRUNCATED", "development"))
        }
    }

    @Test(.enabled(if: Vault.hasSQLite3))
    func aCiphertextMovedToAnotherRowIsAnAuthenticationError() throws {
        let vault = try Vault()
        // Same lengths everywhere, so only the associated data can tell the boxes apart.
        try vault.create("MOVED", "moved-SECRET-v1")
        try vault.update("MOVED", "moved-SECRET-v2")
        try vault.create("OTHER", "other-SECRET-v1")
        try vault.create("MOVED", "stage-SECRET-v1", ["--env", "staging"])
        let movedV1 = try sealedHex(vault, "MOVED", 1)
        let movedV2 = try sealedHex(vault, "MOVED", 2)
        let otherV1 = try sealedHex(vault, "OTHER", 1)
        let stagedV1 = try sealedHex(vault, "MOVED", 1, env: "staging")

        // An older version of the same secret in the current row (a replayed value).
        try setSealed(vault, "MOVED", 2, hex: movedV1)
        var result = try vault.run(["secrets:get", "MOVED"])
        #expect(result.status == 8 && result.stdout.isEmpty, "\(result)")
        #expect(result.stderr == Self.authenticationFailure(2, "MOVED", "development"))
        try setSealed(vault, "MOVED", 2, hex: movedV2)

        // Another secret's box.
        try setSealed(vault, "MOVED", 1, hex: otherV1)
        result = try vault.run(["secrets:get", "MOVED", "--version", "1"])
        #expect(result.status == 8 && result.stdout.isEmpty, "\(result)")
        #expect(result.stderr == Self.authenticationFailure(1, "MOVED", "development"))

        // The same name and version from another environment.
        try setSealed(vault, "MOVED", 1, hex: stagedV1)
        result = try vault.run(["secrets:get", "MOVED", "--version", "1"])
        #expect(result.status == 8 && result.stdout.isEmpty, "\(result)")
        expectNoLeak("stage-SECRET", result)

        // Two rows swapped: both refuse.
        try setSealed(vault, "MOVED", 1, hex: movedV1)
        try setSealed(vault, "OTHER", 1, hex: movedV2)
        try setSealed(vault, "MOVED", 2, hex: otherV1)
        for (name, version) in [("OTHER", 1), ("MOVED", 2)] {
            let swapped = try vault.run(["secrets:get", name, "--version", String(version)])
            #expect(swapped.status == 8 && swapped.stdout.isEmpty, "\(swapped)")
            #expect(swapped.stderr == Self.authenticationFailure(version, name, "development"))
        }
        #expect(try vault.value("MOVED", ["--version", "1"]) == bytes("moved-SECRET-v1"))
        #expect(try vault.value("MOVED", ["--env", "staging"]) == bytes("stage-SECRET-v1"))
    }
}

extension Data {
    init?(hexString: String) {
        guard hexString.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = hexString.startIndex
        while index < hexString.endIndex {
            let next = hexString.index(index, offsetBy: 2)
            guard let byte = UInt8(hexString[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        self.init(bytes)
    }
}

extension Array where Element == UInt8 {
    var hexString: String { map { String(format: "%02X", $0) }.joined() }
}
