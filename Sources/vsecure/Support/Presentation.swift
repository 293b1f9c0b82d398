import VSecureCore
import VSecureVault

/// How secrets, versions and vaults look in text and JSON. Never a value.
enum Presentation {
    static func expiry(_ expiresAt: Timestamp?, now: Timestamp) -> String {
        guard let expiresAt else { return "never" }
        if expiresAt <= now { return "expired" }
        return "expires in \(SecretDuration.approximate(seconds: expiresAt.secondsSinceEpoch - now.secondsSinceEpoch))"
    }

    static func tags(_ tags: [Tag]) -> String { tags.isEmpty ? "-" : tags.map(\.rawValue).joined(separator: ",") }

    static func json(_ secret: SecretSummary, now: Timestamp) -> [(String, JSONValue)] {
        secret.jsonMembers(now: now)
    }

    static func json(_ version: VersionSummary) -> JSONValue { version.json }

    /// The card `create` and `update` print.
    static func card(_ title: String, _ secret: SecretSummary, now: Timestamp) -> String {
        var lines = [title]
        lines.append("  id:          \(secret.id)")
        lines.append("  environment: \(secret.environment)")
        lines.append("  version:     \(secret.currentVersion)")
        lines.append("  tags:        \(tags(secret.attributes.tags))")
        if !secret.attributes.metadata.isEmpty {
            lines.append("  metadata:    " + secret.attributes.metadata.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
        }
        if let expiresAt = secret.attributes.expiresAt {
            lines.append("  expires:     \(expiresAt.iso8601) (\(expiry(expiresAt, now: now)))")
        } else {
            lines.append("  expires:     never")
        }
        return lines.joined(separator: "\n")
    }

    /// Left-aligned columns separated by two spaces.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        func render(_ cells: [String]) -> String {
            var line = ""
            for (index, cell) in cells.enumerated() {
                line += index == cells.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count + 2)
            }
            return line
        }
        return ([render(header)] + rows.map(render)).joined(separator: "\n")
    }
}
