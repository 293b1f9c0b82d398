import Foundation
import Testing
import TestSupport

/// `vsecure-run --endpoint` against the real server on loopback: one batch request per launch,
/// byte-exact values, the one-copy memory check over HTTP, and no child on any failure.
@Suite("vsecure-run against a live server", .serialized)
struct RemoteLaunchTests {
    static var launcher: String { Binaries.directory + "/vsecure-run" }

    struct Setup {
        let store: LiveStore
        let server: LiveServer
        let client: LiveClient
    }

    static func start(pki: Bool = false, logRequests: Bool = false) throws -> Setup {
        let store = try LiveStore()
        let certificates = pki ? try LivePKI(in: store.directory) : nil
        // At info the server logs one line per request, which lets a test count them.
        let server = try LiveServer(store: store, pki: certificates, extraArguments: logRequests ? ["--log-level", "info"] : [])
        var client = LiveClient(baseURL: server.baseURL, token: store.adminToken, scratch: store.directory)
        if let certificates { client.curlOptions = ["--cacert", certificates.caCertificate] }
        return Setup(store: store, server: server, client: client)
    }

    /// Stores a value through the API (base64, so any bytes go in exactly).
    static func put(_ setup: Setup, _ name: String, _ value: [UInt8], tags: [String] = []) throws {
        let body = liveJSON(["name": name, "valueBase64": Data(value).base64EncodedString(), "environment": "production", "tags": tags])
        let result = try setup.client.post("/v1/security/secrets", body)
        guard result.status == 201 else { throw TestFailure("create \(name) failed: \(result)") }
    }

    static func launch(_ setup: Setup, _ arguments: [String], env extra: [String: String] = [:], endpoint: String? = nil) throws -> ProcessResult {
        var env = minimalEnvironment(home: setup.store.home)
        env["VSECURE_API_KEY"] = setup.store.adminToken
        env["VSECURE_ENDPOINT"] = endpoint ?? setup.server.baseURL
        env["VSECURE_ENV"] = "production"
        return try runProcess(launcher, arguments, environment: env.merging(extra) { $1 }, workingDirectory: setup.store.directory.path, timeout: 60)
    }

    @Test("values arrive byte-exact, in one request, and the API key is not passed on")
    func exactValues() throws {
        let setup = try Self.start(logRequests: true)
        let values: [String: [UInt8]] = [
            "NEWLINES": Array("a\nb\r\n".utf8), "QUOTES": Array(#"it's "q" \ $(x) `y`"#.utf8),
            "UNICODE": Array("pässwörd ✓ 😀".utf8), "BINARY": [0x41, 0xFF, 0xFE, 0x00 + 1, 0x42], "EMPTY": [],
            "TAGGED": Array("from-tags".utf8),
        ]
        for (name, value) in values { try Self.put(setup, name, value, tags: name == "TAGGED" ? ["api"] : []) }
        let manifest = try setup.store.directory.write("vsecure.yml", "version: 1\nsecrets: [NEWLINES, QUOTES, UNICODE, BINARY, EMPTY]\n")
        let result = try Self.launch(setup, ["--manifest", manifest, "--tags", "api", "--", "/usr/bin/env", "-0"])
        #expect(result.status == 0, "\(result)")
        var env: [String: [UInt8]] = [:]
        for entry in result.stdout.split(separator: 0) {
            guard let eq = entry.firstIndex(of: UInt8(ascii: "=")) else { continue }
            env[String(decoding: entry[entry.startIndex..<eq], as: UTF8.self)] = Array(entry[(eq + 1)...])
        }
        for (name, value) in values { #expect(env[name] == value, "\(name)") }
        // The server counts: one batch request for five names and a tag selection.
        let batchRequests = setup.server.process.log.components(separatedBy: "\n")
            .filter { $0.contains("POST /v1/security/secrets/batch/get") }
        #expect(batchRequests.count == 1, "requests seen by the server: \(batchRequests)")
        #expect(batchRequests.first?.contains(" 200 ") == true)
        #expect(env["VSECURE_API_KEY"] == nil)
        #expect(!result.stderr.contains(setup.store.adminToken))
    }

    @Test("exactly one copy of each value in memory at execve, over HTTP")
    func oneCopyOverHTTP() throws {
        let setup = try Self.start()
        let values = (0..<20).map { _ in (0..<40).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! } }.map { String($0) }
        for (index, value) in values.enumerated() { try Self.put(setup, "S\(index)", Array(value.utf8)) }
        let manifest = try setup.store.directory.write("vsecure.yml", "version: 1\nsecrets:\n" + (0..<20).map { "  - S\($0)\n" }.joined())
        let needles = try setup.store.directory.write("needles.hex", (values + ["nowhere-\(UUID().uuidString)"])
            .map { $0.utf8.map { String(format: "%02x", $0) }.joined() }.joined(separator: "\n") + "\n")
        let report = setup.store.directory.file("report.txt")
        let result = try Self.launch(setup, ["--manifest", manifest, "--", "/bin/true"],
                                     env: ["VSECURE_TEST_MEMORY_SCAN": needles, "VSECURE_TEST_MEMORY_REPORT": report])
        #expect(result.status == 0, "\(result)")
        let lines = try String(contentsOfFile: report, encoding: .utf8).split(separator: "\n")
        let counts = lines.filter { $0.hasPrefix("needle ") }.compactMap { Int($0.split(separator: " ")[2]) }
        #expect(counts.count == 21)
        #expect(Array(counts.prefix(20)) == [Int](repeating: 1, count: 20), "copies per value: \(counts)")
        #expect(counts.last == 0)
    }

    @Test("a refused key, a missing secret, garbage and a dead server: a clear error and no child")
    func failures() throws {
        let setup = try Self.start()
        try Self.put(setup, "A", Array("1".utf8))
        let manifest = try setup.store.directory.write("vsecure.yml", "version: 1\nsecrets: [A]\n")
        let marker = setup.store.directory.file("started")
        let command = ["--manifest", manifest, "--", "/usr/bin/touch", marker]

        let badKey = try Self.launch(setup, command, env: ["VSECURE_API_KEY": "vsec_key_0000000000000000_nope"])
        #expect(badKey.status == 12, "\(badKey)")
        #expect(badKey.stderr.contains("refused the API key"))

        let missingManifest = try setup.store.directory.write("missing.yml", "version: 1\nsecrets: [A, NOT_THERE]\n")
        let missing = try Self.launch(setup, ["--manifest", missingManifest, "--", "/usr/bin/touch", marker])
        #expect(missing.status == 3, "\(missing)")
        #expect(missing.stderr.contains("NOT_THERE"))

        // Something that is not a vsecure server: /health answers JSON without `data`.
        let notOurs = try Self.launch(setup, command, endpoint: setup.server.baseURL + "/health#")
        #expect(notOurs.status != 0)

        let port = try liveFreeLoopbackPort()
        let started = Date()
        let dead = try Self.launch(setup, command + [], env: ["VSECURE_TIMEOUT": "3s"], endpoint: "http://127.0.0.1:\(port)")
        #expect(dead.status == 13, "\(dead)")
        #expect(dead.stderr.contains("cannot reach the server"))
        #expect(Date().timeIntervalSince(started) < 3.5, "gives up within its timeout")
        #expect(!FileManager.default.fileExists(atPath: marker), "no child was ever started")
    }

    @Test("the static vsecure-run hands a launch from a server to vsecure-run-remote: found in PREFIX/libexec/vsecure or beside it; missing, not executable or a link to vsecure-run itself: exit 1 naming it, and no child")
    func handOff() throws {
        let setup = try Self.start()
        try Self.put(setup, "HANDED", Array("v-handed".utf8))
        let manifest = try setup.store.directory.write("vsecure.yml", "version: 1\nsecrets: [HANDED]\n")
        let files = FileManager.default
        // Hard links: the same files under other paths (/proc/self/exe names the link), no copying.
        func place(_ binary: String, at path: String) throws {
            try files.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try files.linkItem(atPath: Binaries.directory + "/" + binary, toPath: path)
        }
        func launch(_ launcher: String, _ command: [String]) throws -> ProcessResult {
            var env = minimalEnvironment(home: setup.store.home)
            env["VSECURE_API_KEY"] = setup.store.adminToken
            env["VSECURE_ENDPOINT"] = setup.server.baseURL
            env["VSECURE_ENV"] = "production"
            return try runProcess(launcher, ["--manifest", manifest, "--"] + command, environment: env,
                                  workingDirectory: setup.store.directory.path, timeout: 60)
        }
        let marker = setup.store.directory.file("started")
        func expectRefused(_ launcher: String, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let refused = try launch(launcher, ["/usr/bin/touch", marker])
            #expect(refused.status == 1, "\(refused)", sourceLocation: sourceLocation)
            #expect(refused.stderr.contains("vsecure-run: error: a launch from a server runs vsecure-run-remote, and " + message), "\(refused)",
                    sourceLocation: sourceLocation)
            #expect(!FileManager.default.fileExists(atPath: marker), "no child was started", sourceLocation: sourceLocation)
            #expect(!refused.stderr.contains(setup.store.adminToken), sourceLocation: sourceLocation)
        }

        // As install.sh lays it out: PREFIX/bin/vsecure-run and PREFIX/libexec/vsecure/vsecure-run-remote.
        let prefix = setup.store.directory.file("prefix")
        try place("vsecure-run", at: prefix + "/bin/vsecure-run")
        try place("vsecure-run-remote", at: prefix + "/libexec/vsecure/vsecure-run-remote")
        let installed = try launch(prefix + "/bin/vsecure-run", ["/usr/bin/env"])
        #expect(installed.status == 0, "\(installed)")
        #expect(installed.stdoutText.split(separator: "\n").contains("HANDED=v-handed"), "\(installed)")
        #expect(!installed.stdoutText.contains(setup.store.adminToken), "the API key is not passed on")

        // Both in one directory, as an image that copies them side by side.
        let flat = setup.store.directory.file("flat")
        try place("vsecure-run", at: flat + "/vsecure-run")
        try place("vsecure-run-remote", at: flat + "/vsecure-run-remote")
        let beside = try launch(flat + "/vsecure-run", ["/usr/bin/env"])
        #expect(beside.status == 0 && beside.stdoutText.contains("HANDED=v-handed"), "\(beside)")

        // vsecure-run alone.
        let alone = setup.store.directory.file("alone")
        try place("vsecure-run", at: alone + "/vsecure-run")
        try expectRefused(alone + "/vsecure-run",
                          "there is none at '\(setup.store.directory.path)/libexec/vsecure/vsecure-run-remote' or '\(alone)/vsecure-run-remote'")

        // A twin that is vsecure-run itself (a link to it) would hand off forever: it is passed over.
        let looped = setup.store.directory.file("looped")
        try place("vsecure-run", at: looped + "/vsecure-run")
        try files.createSymbolicLink(atPath: looped + "/vsecure-run-remote", withDestinationPath: looped + "/vsecure-run")
        try expectRefused(looped + "/vsecure-run", "there is none at")

        // A twin without the execute bit is named as such.
        let plain = setup.store.directory.file("plain")
        try place("vsecure-run", at: plain + "/vsecure-run")
        try files.createDirectory(atPath: plain, withIntermediateDirectories: true)
        try Data("#!/bin/sh\n".utf8).write(to: URL(fileURLWithPath: plain + "/vsecure-run-remote"))
        try expectRefused(plain + "/vsecure-run", "'\(plain)/vsecure-run-remote' is not executable")
    }

    @Test("HTTPS: trusted with --cacert; an untrusted CA is refused")
    func tls() throws {
        let setup = try Self.start(pki: true)
        try Self.put(setup, "A", Array("over-tls".utf8))
        let manifest = try setup.store.directory.write("vsecure.yml", "version: 1\nsecrets: [A]\n")
        let ca = setup.store.directory.file("pki/ca.pem")
        let trusted = try Self.launch(setup, ["--manifest", manifest, "--cacert", ca, "--", "/usr/bin/printenv", "A"])
        #expect(trusted.status == 0, "\(trusted)")
        #expect(trusted.stdoutText == "over-tls\n")
        let untrusted = try Self.launch(setup, ["--manifest", manifest, "--", "/usr/bin/printenv", "A"])
        #expect(untrusted.status == 13, "\(untrusted)")
        #expect(untrusted.stderr.contains("TLS"))
    }
}
