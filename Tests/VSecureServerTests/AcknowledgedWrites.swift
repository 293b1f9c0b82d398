import Foundation
import TestSupport

/// One acknowledged write: the version the server reported and the value sent.
struct AcknowledgedWrite: Hashable, CustomStringConvertible {
    var name: String
    var version: Int
    var value: String
    var description: String { "\(name) v\(version) = \(value)" }

    /// Reads every write back at its version from `baseURL` over one keep-alive curl connection
    /// (`authFile` holds the Authorization header) and returns those that are missing or
    /// different, with what the server answered.
    static func missing(_ acks: [AcknowledgedWrite], from baseURL: String, authFile: String, store: LiveStore,
                        configName: String) throws -> [String] {
        let config = store.directory.file(configName)
        var lines = ["header = \"@\(authFile)\"", "silent", "noproxy = \"*\"", "max-time = 60", "write-out = \"\\n%{http_code}\\n\""]
        for ack in acks {
            lines.append("url = \"\(baseURL)/v1/security/secrets/\(ack.name)?environment=development&version=\(ack.version)\"")
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: config, atomically: true, encoding: .utf8)
        let read = try runProcess(LiveTools.curl, ["-q", "-K", config], environment: minimalEnvironment(home: store.home), timeout: 120)
        guard read.status == 0 else { return ["curl failed (\(read.status)): \(read.stderr)"] }
        let output = read.stdoutText.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var missing: [String] = []
        for (index, ack) in acks.enumerated() {
            guard 2 * index + 1 < output.count else { missing.append("\(ack): no answer"); continue }
            let body = output[2 * index], status = output[2 * index + 1]
            let json = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
            if status != "200" || json.string("value") != ack.value || json.int("version") != ack.version {
                missing.append("\(ack): HTTP \(status) \(body)")
            }
        }
        return missing
    }
}
