import ArgumentParser
import VSecureCore
import VSecureCrypto
import VSecureStore
import VSecureVault

struct SecretsDiff: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets:diff",
        abstract: "Compare two versions: tags, metadata, expiry, and whether the value changed (length, fingerprint).",
        discussion: """
        By default the previous version is compared with the current one. The current version's \
        attributes are the secret's attributes as they are now. --reveal also prints a line diff of the \
        two values (useful for PEM or JSON), after a warning on stderr; like secrets:get, it refuses \
        an expired secret (exit 5) unless --allow-expired is given.
        """
    )

    @Argument(help: ArgumentHelp("The secret's name.", valueName: "name"))
    var name: String

    @OptionGroup var location: StoreOptions
    @OptionGroup var environment: EnvironmentOption

    @Option(name: .long, help: ArgumentHelp("The older version (default: the one before --to).", valueName: "n"))
    var from: Int?

    @Option(name: .long, help: ArgumentHelp("The newer version (default: the current one).", valueName: "n"))
    var to: Int?

    @Flag(name: .long, help: "Also print a line diff of the values themselves.")
    var reveal = false

    @Flag(name: .customLong("allow-expired"), help: "With --reveal: print the values even if the secret has expired.")
    var allowExpired = false

    @OptionGroup var output: OutputOption

    func run() throws {
        let secretName = try SecretName(name)
        let store = try location.open()
        let history = try store.versions(environment: try environment.explicit(), name: secretName)
        let env = history.secret.environment
        let change = try VersionDiff(secret: history.secret, versions: history.versions, from: from, to: to)
        let older = change.older, newer = change.newer
        // The values first, so that a refusal (an expired secret) prints nothing on stdout.
        var oldValue: SecureBytes?, newValue: SecureBytes?
        if reveal {
            oldValue = try Self.value(store, env, secretName, older.version, allowExpired: allowExpired)
            newValue = try Self.value(store, env, secretName, newer.version, allowExpired: allowExpired)
            Console.warning("--reveal prints secret values of \(secretName) to stdout")
        }

        if output.json {
            Console.out(change.json.serialized())
        } else {
            var lines = ["\(secretName) in \(env): version \(older.version) → \(newer.version)"]
            lines.append(change.valueChanged
                ? "  value:    changed (\(older.valueLength) → \(newer.valueLength) bytes; fingerprint \(older.fingerprint) → \(newer.fingerprint))"
                : "  value:    unchanged (fingerprint \(newer.fingerprint))")
            let tagParts = change.tagsAdded.map { "+\($0)" } + change.tagsRemoved.map { "-\($0)" }
            lines.append("  tags:     " + (tagParts.isEmpty ? "unchanged" : tagParts.joined(separator: " ")))
            let metaParts = change.metadata.map { key, old, new -> String in
                switch (old, new) {
                case (nil, let new?): return "+\(key)=\(new)"
                case (_?, nil): return "-\(key)"
                case (let old?, let new?): return "\(key): \(old) → \(new)"
                default: return key
                }
            }
            lines.append("  metadata: " + (metaParts.isEmpty ? "unchanged" : metaParts.joined(separator: ", ")))
            let oldExpiry = older.attributes.expiresAt?.iso8601 ?? "never"
            let newExpiry = newer.attributes.expiresAt?.iso8601 ?? "never"
            lines.append("  expiry:   " + (oldExpiry == newExpiry ? "unchanged (\(newExpiry))" : "\(oldExpiry) → \(newExpiry)"))
            Console.out(lines.joined(separator: "\n"))
        }

        if let oldValue, let newValue {
            let diff = oldValue.withUnsafeBytes { a in newValue.withUnsafeBytes { b in LineDiff.render(a, b) } }
            diff.withUnsafeBytes { Console.outRaw($0) }
        }
    }
}

extension SecretsDiff {
    /// One version's value; an expired secret is refused as `secrets:get` refuses it.
    static func value(_ store: any SecretStore, _ env: EnvironmentName, _ name: SecretName, _ version: Int,
                      allowExpired: Bool) throws(VSecureError) -> SecureBytes {
        do {
            return try store.get(environment: env, name: name, version: version, allowExpired: allowExpired).value
        } catch {
            guard error.status == .expired else { throw error }
            var refused = error
            refused.hints = ["--allow-expired prints its values anyway"]
            throw refused
        }
    }
}

/// A line diff of two values (longest common subsequence), `-`/`+`/` ` prefixed. Only used by
/// `--reveal`, so the output is secret by design.
enum LineDiff {
    static func lines(_ bytes: UnsafeRawBufferPointer) -> [ArraySlice<UInt8>] {
        let all = Array(bytes)
        if all.isEmpty { return [] }
        var result = all.split(separator: 0x0A, omittingEmptySubsequences: false)
        if all.last == 0x0A { result.removeLast() }
        return result
    }

    static func render(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> [UInt8] {
        let x = lines(a), y = lines(b)
        let n = x.count, m = y.count
        var table = [[Int]](repeating: [Int](repeating: 0, count: m + 1), count: n + 1)
        if n > 0 && m > 0 {
            for i in stride(from: n - 1, through: 0, by: -1) {
                for j in stride(from: m - 1, through: 0, by: -1) {
                    table[i][j] = x[i] == y[j] ? table[i + 1][j + 1] + 1 : max(table[i + 1][j], table[i][j + 1])
                }
            }
        }
        var out: [UInt8] = []
        func emit(_ prefix: String, _ line: ArraySlice<UInt8>) {
            out += Array(prefix.utf8)
            out += line
            out.append(0x0A)
        }
        var i = 0, j = 0
        while i < n || j < m {
            if i < n, j < m, x[i] == y[j] { emit("  ", x[i]); i += 1; j += 1 }
            // Where both are possible, the old line first, as diff(1) prints a change.
            else if i < n, j == m || table[i + 1][j] >= table[i][j + 1] { emit("- ", x[i]); i += 1 }
            else { emit("+ ", y[j]); j += 1 }
        }
        return out
    }
}
