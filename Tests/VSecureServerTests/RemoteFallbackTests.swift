import Foundation
import Testing
import TestSupport

/// `vsecure-run --fallback`: the encrypted offline cache of the last successful fetch stands in
/// only when the server cannot be reached (down, or answering 5xx), only while it is fresh
/// enough, never after a 401; and TLS and redirects never hand the key to someone else.
@Suite("vsecure-run offline fallback, TLS names and redirects", .serialized)
struct RemoteFallbackTests {
    static var launcher: String { Binaries.directory + "/vsecure-run" }

    /// A stand-in on loopback: `unavailable` answers 503 to everything; `redirect` answers 307
    /// pointing at a second listener that logs any request it receives.
    static let fakeServer = """
        import http.server, sys, threading
        port, mode, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
        class Catcher(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                with open(log, 'a') as f:
                    f.write('caught %s authorization=%s\\n' % (self.path, self.headers.get('Authorization')))
                self.send_response(200)
                self.send_header('Content-Length', '0')
                self.end_headers()
            do_GET = do_POST
            def log_message(self, *args):
                pass
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get('Content-Length', 0)))
                if mode == 'redirect':
                    self.send_response(307)
                    self.send_header('Location', 'http://127.0.0.1:%d%s' % (catcher.server_address[1], self.path))
                else:
                    self.send_response(503)
                    self.send_header('Retry-After', '0')
                body = b'{"error":{"code":"UNAVAILABLE","message":"down for maintenance","details":{}}}'
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass
        catcher = http.server.HTTPServer(('127.0.0.1', 0), Catcher)
        threading.Thread(target=catcher.serve_forever, daemon=True).start()
        server = http.server.HTTPServer(('127.0.0.1', port), Handler)
        print('ready', flush=True)
        server.serve_forever()
        """

    static func startFake(_ directory: TemporaryDirectory, port: Int, mode: String) throws -> (LiveProcess, log: String) {
        let script = try directory.write("fake-\(mode).py", fakeServer)
        let log = directory.file("caught-\(mode).log")
        let fake = try LiveProcess("/usr/bin/python3", [script, String(port), mode, log],
                                   environment: minimalEnvironment(home: directory.path), logPath: directory.file("fake-\(mode).out"))
        let deadline = Date().addingTimeInterval(20)
        while !fake.log.contains("ready"), Date() < deadline { usleep(20_000) }
        guard fake.log.contains("ready") else { throw TestFailure("the fake server did not start: \(fake.log)") }
        return (fake, log)
    }

    struct Setup {
        let store: LiveStore
        let server: LiveServer
        let client: LiveClient
        let cacheDirectory: String
        let manifest: String
        let marker: String
    }

    static func start() throws -> Setup {
        let store = try LiveStore()
        let server = try LiveServer(store: store)
        let client = LiveClient(baseURL: server.baseURL, token: store.adminToken, scratch: store.directory)
        let body = liveJSON(["name": "DB_PASSWORD", "value": "cached-value-\(UUID().uuidString)", "environment": "production"])
        let created = try client.post("/v1/security/secrets", body)
        guard created.status == 201 else { throw TestFailure("create failed: \(created)") }
        let manifest = try store.directory.write("vsecure.yml", "version: 1\nsecrets: [DB_PASSWORD]\n")
        return Setup(store: store, server: server, client: client, cacheDirectory: store.directory.file("cache"),
                     manifest: manifest, marker: store.directory.file("started"))
    }

    static func launch(_ setup: Setup, _ arguments: [String], key: String? = nil, endpoint: String? = nil,
                       env extra: [String: String] = [:]) throws -> ProcessResult {
        var env = minimalEnvironment(home: setup.store.home)
        env["VSECURE_API_KEY"] = key ?? setup.store.adminToken
        env["VSECURE_ENDPOINT"] = endpoint ?? setup.server.baseURL
        env["VSECURE_ENV"] = "production"
        env["VSECURE_CACHE_DIR"] = setup.cacheDirectory
        env["VSECURE_TIMEOUT"] = "3s"
        return try runProcess(launcher, arguments, environment: env.merging(extra) { $1 },
                              workingDirectory: setup.store.directory.path, timeout: 60)
    }

    static func value(_ setup: Setup) throws -> String {
        let got = try setup.client.get("/v1/security/secrets/DB_PASSWORD?environment=production")
        guard got.status == 200, let value = got.json["value"] as? String else { throw TestFailure("get failed: \(got)") }
        return value
    }

    static func cacheFiles(_ setup: Setup) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: setup.cacheDirectory)) ?? []).filter { $0.hasSuffix(".cache") }
    }

    @Test("server down: the fresh cache stands in, with a warning and VSECURE_STALE=1; without --fallback, no child")
    func downServer() throws {
        let setup = try Self.start()
        let value = try Self.value(setup)
        let printStale = ["--manifest", setup.manifest, "--", "/bin/sh", "-c", "printf '%s|%s' \"$DB_PASSWORD\" \"${VSECURE_STALE-unset}\""]

        // A successful fetch with --fallback writes the cache; a stale marker from the parent is not passed on.
        let online = try Self.launch(setup, ["--fallback"] + printStale, env: ["VSECURE_STALE": "1"])
        #expect(online.status == 0, "\(online)")
        #expect(online.stdoutText == value + "|unset")
        let files = Self.cacheFiles(setup)
        #expect(files.count == 1, "cache files: \(files)")
        let cachePath = setup.cacheDirectory + "/" + (files.first ?? "")
        let attributes = try FileManager.default.attributesOfItem(atPath: cachePath)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let directoryAttributes = try FileManager.default.attributesOfItem(atPath: setup.cacheDirectory)
        #expect((directoryAttributes[.posixPermissions] as? Int) == 0o700)
        let onDisk = try [UInt8](Data(contentsOf: URL(fileURLWithPath: cachePath)))
        #expect(!onDisk.containsSubsequence(Array(value.utf8)), "the cache holds the value only encrypted")
        #expect(!onDisk.containsSubsequence(Array("DB_PASSWORD".utf8)), "the cache holds the whole response encrypted, names too")

        #expect(setup.server.stop(signal: SIGTERM, timeout: 30) != nil)

        let stale = try Self.launch(setup, ["--fallback"] + printStale)
        #expect(stale.status == 0, "\(stale)")
        #expect(stale.stdoutText == value + "|1")
        #expect(stale.stderr.contains("warning:") && stale.stderr.contains("offline cache from"), "\(stale.stderr)")

        // The manifest setting does the same as the flag.
        let manifestFallback = try setup.store.directory.write("fallback.yml",
            "version: 1\nsecrets: [DB_PASSWORD]\nsource:\n  fallback: true\n  maxStale: 1h\n")
        let viaManifest = try Self.launch(setup, ["--manifest", manifestFallback, "--", "/usr/bin/printenv", "VSECURE_STALE"])
        #expect(viaManifest.status == 0, "\(viaManifest)")
        #expect(viaManifest.stdoutText == "1\n")

        let without = try Self.launch(setup, ["--manifest", setup.manifest, "--", "/usr/bin/touch", setup.marker])
        #expect(without.status == 13, "\(without)")

        // Another manifest (another request) has no cache of its own.
        let other = try setup.store.directory.write("other.yml", "version: 1\nsecrets: [DB_PASSWORD, OTHER]\n")
        let otherResult = try Self.launch(setup, ["--fallback", "--manifest", other, "--", "/usr/bin/touch", setup.marker])
        #expect(otherResult.status == 13, "\(otherResult)")
        #expect(otherResult.stderr.contains("there is none yet"), "\(otherResult.stderr)")

        // Another API key cannot use this key's cache.
        let otherKey = try Self.launch(setup, ["--fallback", "--manifest", setup.manifest, "--", "/usr/bin/touch", setup.marker],
                                       key: "vsec_key_00000000000000aa_someone-else")
        #expect(otherKey.status == 13, "\(otherKey)")

        // Too old: the age is checked against --max-stale.
        Thread.sleep(forTimeInterval: 2.2)
        let tooOld = try Self.launch(setup, ["--fallback", "--max-stale", "1s", "--manifest", setup.manifest, "--", "/usr/bin/touch", setup.marker])
        #expect(tooOld.status == 13, "\(tooOld)")
        #expect(tooOld.stderr.contains("older than the allowed"), "\(tooOld.stderr)")
        #expect(!tooOld.stderr.contains(value))

        // A damaged cache is refused, not trusted.
        var damaged = onDisk
        damaged[damaged.count - 5] ^= 0x01
        try Data(damaged).write(to: URL(fileURLWithPath: cachePath))
        let tampered = try Self.launch(setup, ["--fallback", "--manifest", setup.manifest, "--", "/usr/bin/touch", setup.marker])
        #expect(tampered.status == 13, "\(tampered)")
        #expect(tampered.stderr.contains("damaged"), "\(tampered.stderr)")
        #expect(!FileManager.default.fileExists(atPath: setup.marker), "no child was ever started")
    }

    @Test("a key the server refuses (401) never falls back to the cache")
    func revokedKeyNeverFallsBack() throws {
        let setup = try Self.start()
        let created = try setup.client.post("/v1/security/api-keys", liveJSON(["name": "launcher", "scopes": ["secrets:read"]]))
        guard created.status == 201, let key = created.json["key"] as? String, let id = created.json["id"] as? String else {
            throw TestFailure("api key create failed: \(created)")
        }
        let online = try Self.launch(setup, ["--fallback", "--manifest", setup.manifest, "--", "/bin/true"], key: key)
        #expect(online.status == 0, "\(online)")
        #expect(Self.cacheFiles(setup).count == 1)
        let revoked = try setup.client.delete("/v1/security/api-keys/\(id)")
        #expect((200..<300).contains(revoked.status), "\(revoked)")

        let refused = try Self.launch(setup, ["--fallback", "--manifest", setup.manifest, "--", "/usr/bin/touch", setup.marker], key: key)
        #expect(refused.status == 12, "\(refused)")
        #expect(!refused.stderr.contains("offline cache"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: setup.marker))
    }

    @Test("a server answering 503 counts as unreachable: the cache stands in")
    func unavailableServer() throws {
        let setup = try Self.start()
        let value = try Self.value(setup)
        let online = try Self.launch(setup, ["--fallback", "--manifest", setup.manifest, "--", "/bin/true"])
        #expect(online.status == 0, "\(online)")
        #expect(setup.server.stop(signal: SIGTERM, timeout: 30) != nil)
        // The stand-in takes the server's address, so the cache (bound to the endpoint) applies.
        let (fake, _) = try Self.startFake(setup.store.directory, port: setup.server.port, mode: "unavailable")
        defer { _ = fake.killGroup() }
        let stale = try Self.launch(setup, ["--fallback", "--manifest", setup.manifest, "--", "/usr/bin/printenv", "DB_PASSWORD"])
        #expect(stale.status == 0, "\(stale)")
        #expect(stale.stdoutText == value + "\n")
        #expect(stale.stderr.contains("503"), "\(stale.stderr)")
    }

    @Test("a redirect is not followed: the API key never reaches the other address")
    func redirectNotFollowed() throws {
        let directory = try TemporaryDirectory(prefix: "vsecure-redirect")
        let port = try liveFreeLoopbackPort()
        let (fake, caught) = try Self.startFake(directory, port: port, mode: "redirect")
        defer { _ = fake.killGroup() }
        let manifest = try directory.write("vsecure.yml", "version: 1\nsecrets: [A]\n")
        let marker = directory.file("started")
        var env = minimalEnvironment(home: directory.path)
        env["VSECURE_API_KEY"] = "vsec_key_0123456789abcdef_must-not-travel"
        env["VSECURE_ENV"] = "production"
        let result = try runProcess(Self.launcher, ["--endpoint", "http://127.0.0.1:\(port)", "--timeout", "3s", "--manifest", manifest,
                                                    "--", "/usr/bin/touch", marker],
                                    environment: env, workingDirectory: directory.path, timeout: 30)
        #expect(result.status == 13, "\(result)")
        #expect(result.stderr.contains("307"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: caught), "the redirect target received: \((try? String(contentsOfFile: caught, encoding: .utf8)) ?? "")")
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test("a manifest's source.endpoint never decides alone where the API key goes")
    func manifestEndpointIsPinnedNotTrusted() throws {
        let setup = try Self.start()
        let value = try Self.value(setup)
        let pinned = try setup.store.directory.write("pinned.yml",
            "version: 1\nenvironment: production\nsecrets: [DB_PASSWORD]\nsource:\n  endpoint: \(setup.server.baseURL)/\n")
        var env = minimalEnvironment(home: setup.store.home)
        env["VSECURE_API_KEY"] = setup.store.adminToken
        let command = ["--manifest", pinned, "--", "/usr/bin/printenv", "DB_PASSWORD"]

        // Only the manifest names the server: refused before any request.
        let alone = try runProcess(Self.launcher, command, environment: env, workingDirectory: setup.store.directory.path, timeout: 30)
        #expect(alone.status == 10, "\(alone)")
        #expect(alone.stderr.contains("sends the API key only to a server you name yourself"), "\(alone.stderr)")

        // The user names another server: refused, nothing sent.
        env["VSECURE_ENDPOINT"] = "http://127.0.0.1:9"
        let other = try runProcess(Self.launcher, command, environment: env, workingDirectory: setup.store.directory.path, timeout: 30)
        #expect(other.status == 10, "\(other)")
        #expect(other.stderr.contains("expects the server \(setup.server.baseURL)"), "\(other.stderr)")

        // The user names the same server (trailing slash or not): the launch goes ahead.
        env["VSECURE_ENDPOINT"] = setup.server.baseURL
        let same = try runProcess(Self.launcher, command, environment: env, workingDirectory: setup.store.directory.path, timeout: 30)
        #expect(same.status == 0, "\(same)")
        #expect(same.stdoutText == value + "\n")

        // Plain HTTP only on loopback, whoever names it.
        env["VSECURE_ENDPOINT"] = "http://192.0.2.10:8443"
        let cleartext = try runProcess(Self.launcher, ["--env", "production", "--tags", "x", "--", "/bin/true"], environment: env,
                                       workingDirectory: setup.store.directory.path, timeout: 30)
        #expect(cleartext.status == 2, "\(cleartext)")
        #expect(cleartext.stderr.contains("not loopback"), "\(cleartext.stderr)")
    }

    @Test("HTTPS: a certificate for another host name is refused")
    func wrongHostName() throws {
        let store = try LiveStore()
        let pki = try LivePKI(in: store.directory, subjectAltName: "DNS:vsecure.example.test")
        let server = try LiveServer(store: store, pki: pki)
        let manifest = try store.directory.write("vsecure.yml", "version: 1\nsecrets: [A]\n")
        let marker = store.directory.file("started")
        var env = minimalEnvironment(home: store.home)
        env["VSECURE_API_KEY"] = store.adminToken
        env["VSECURE_ENV"] = "production"
        let result = try runProcess(Self.launcher, ["--endpoint", server.baseURL, "--cacert", pki.caCertificate, "--timeout", "5s",
                                                    "--manifest", manifest, "--", "/usr/bin/touch", marker],
                                    environment: env, workingDirectory: store.directory.path, timeout: 30)
        #expect(result.status == 13, "\(result)")
        #expect(result.stderr.contains("TLS") || result.stderr.contains("certificate"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: marker))
    }
}

private extension Array where Element == UInt8 {
    func containsSubsequence(_ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= count else { return needle.isEmpty }
        return (0...(count - needle.count)).contains { Array(self[$0..<($0 + needle.count)]) == needle }
    }
}
