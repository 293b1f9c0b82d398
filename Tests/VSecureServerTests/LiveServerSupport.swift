import Foundation
import Testing
import TestSupport

// Support for the live tests: the `curl` CLI against a live server (LiveServer, in TestSupport).
// Nothing here touches anything but 127.0.0.1.

/// One curl exchange: curl's exit code, the HTTP status (0 if none), headers and body.
struct LiveCurlResult: CustomStringConvertible {
    var exitCode: Int32
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
    var stderr: String

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as a JSON object (empty when it is not one).
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
    }

    /// `error.code` of an error body.
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }

    func header(_ name: String) -> String? { headers[name.lowercased()] }

    var description: String { "curl exit \(exitCode), HTTP \(status): \(text) \(stderr)" }
}

/// curl against a live server: `-q` (no ~/.curlrc), no proxy, bounded time, a minimal
/// environment (no *_proxy variables).
struct LiveClient: Sendable {
    let baseURL: String
    var token: String?
    /// E.g. `--cacert ca.pem`.
    var curlOptions: [String] = []
    let scratch: TemporaryDirectory

    func request(_ method: String, _ path: String, json: String? = nil, headers: [String: String] = [:],
                 token overrideToken: String?? = .none, options: [String] = [], url: String? = nil) throws -> LiveCurlResult {
        let id = UUID().uuidString
        let headerFile = scratch.file("curl-\(id).headers")
        let bodyFile = scratch.file("curl-\(id).body")
        defer {
            try? FileManager.default.removeItem(atPath: headerFile)
            try? FileManager.default.removeItem(atPath: bodyFile)
        }
        var arguments = ["-q", "-s", "-S", "--noproxy", "*", "--max-time", "30", "-X", method,
                         "-D", headerFile, "-o", bodyFile, "-w", "%{http_code}"] + curlOptions + options
        let bearer = overrideToken ?? token
        // The token goes in a header file, not argv.
        if let bearer {
            let authFile = try scratch.write("curl-\(id).auth", "Authorization: Bearer \(bearer)\n")
            arguments += ["-H", "@" + authFile]
        }
        defer { try? FileManager.default.removeItem(atPath: scratch.file("curl-\(id).auth")) }
        for (name, value) in headers { arguments += ["-H", "\(name): \(value)"] }
        var stdin = StandardInput.null
        if let json {
            arguments += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
            stdin = .text(json)
        }
        arguments.append(url ?? baseURL + path)
        let result = try runProcess(LiveTools.curl, arguments, environment: minimalEnvironment(home: scratch.path),
                                    stdin: stdin, timeout: 60)
        var parsedHeaders: [String: String] = [:]
        if let text = try? String(contentsOfFile: headerFile, encoding: .utf8) {
            for line in text.split(whereSeparator: \.isNewline) {
                guard let colon = line.firstIndex(of: ":") else { continue }
                parsedHeaders[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        let body = (try? Data(contentsOf: URL(fileURLWithPath: bodyFile))).map { Array($0) } ?? []
        return LiveCurlResult(exitCode: result.status, status: Int(result.stdoutText) ?? 0, headers: parsedHeaders,
                          body: body, stderr: result.stderr)
    }

    func get(_ path: String, token: String?? = .none, options: [String] = []) throws -> LiveCurlResult {
        try request("GET", path, token: token, options: options)
    }

    func post(_ path: String, _ json: String, headers: [String: String] = [:], token: String?? = .none) throws -> LiveCurlResult {
        try request("POST", path, json: json, headers: headers, token: token)
    }

    func put(_ path: String, _ json: String, headers: [String: String] = [:], token: String?? = .none) throws -> LiveCurlResult {
        try request("PUT", path, json: json, headers: headers, token: token)
    }

    func delete(_ path: String, token: String?? = .none) throws -> LiveCurlResult {
        try request("DELETE", path, token: token)
    }
}

/// JSON text for a request body, from a literal dictionary.
func liveJSON(_ object: [String: Any], sourceLocation: Testing.SourceLocation = #_sourceLocation) -> String {
    jsonLiteral(object, sourceLocation: sourceLocation)
}

extension Dictionary where Key == String, Value == Any {
    func liveObject(_ key: String) -> [String: Any]? { self[key] as? [String: Any] }
    func liveObjects(_ key: String) -> [[String: Any]] { self[key] as? [[String: Any]] ?? [] }
    func liveBool(_ key: String) -> Bool? { self[key] as? Bool }
}
