import Foundation
import Testing
import TestSupport

/// `vsecure-run --endpoint` against a server that misbehaves: a fake on loopback (python3's
/// http.server) answers every request in one bad way. Each case must end with a clear error,
/// within the timeout, and no child.
@Suite("vsecure-run against a misbehaving server", .serialized)
struct RemoteFaultTests {
    static let fakeServer = """
        import http.server, sys, time
        mode = sys.argv[2]
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get('Content-Length', 0)))
                if mode == 'stall':
                    time.sleep(30)
                    return
                bodies = {
                    'html': (200, 'text/html', b'<html><body>Sign in</body></html>'),
                    'garbage': (200, 'application/json', bytes(range(256))),
                    'truncated': (200, 'application/json', b'{"environment":"production","data":[{"name":"A","version":1,"val'),
                    'error500': (500, 'application/json', b'{"error":{"code":"INTERNAL_ERROR","message":"boom","details":{}}}'),
                    'wrongshape': (200, 'application/json', b'{"data":[{"name":"A"}]}'),
                }
                status, kind, body = bodies[mode]
                self.send_response(status)
                self.send_header('Content-Type', kind)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass
        server = http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), Handler)
        print('ready', flush=True)
        server.serve_forever()
        """

    @Test("a bad answer or a stall: a clear error within the timeout, and no child",
          arguments: ["html", "garbage", "truncated", "error500", "wrongshape", "stall"])
    func misbehaving(mode: String) throws {
        let directory = try TemporaryDirectory(prefix: "vsecure-fault")
        let script = try directory.write("fake.py", Self.fakeServer)
        let port = try liveFreeLoopbackPort()
        let fake = try LiveProcess("/usr/bin/python3", [script, String(port), mode],
                                   environment: minimalEnvironment(home: directory.path), logPath: directory.file("fake.log"))
        defer { _ = fake.killGroup() }
        let deadline = Date().addingTimeInterval(20)
        while !fake.log.contains("ready"), Date() < deadline { usleep(20_000) }
        #expect(fake.log.contains("ready"), "the fake server did not start: \(fake.log)")

        let manifest = try directory.write("vsecure.yml", "version: 1\nsecrets: [A]\n")
        let marker = directory.file("started")
        var env = minimalEnvironment(home: directory.path)
        env["VSECURE_API_KEY"] = "vsec_key_0123456789abcdef_not-checked-by-the-fake"
        env["VSECURE_ENV"] = "production"
        let started = Date()
        let result = try runProcess(Binaries.directory + "/vsecure-run",
                                    ["--endpoint", "http://127.0.0.1:\(port)", "--timeout", "2s", "--manifest", manifest,
                                     "--", "/usr/bin/touch", marker],
                                    environment: env, workingDirectory: directory.path, timeout: 30)
        let elapsed = Date().timeIntervalSince(started)
        #expect(result.status == 13, "\(mode): \(result)")
        #expect(result.stderr.hasPrefix("vsecure-run: error: "), "\(mode): \(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: marker), "\(mode): no child may start")
        #expect(!result.stderr.contains("not-checked-by-the-fake"), "the API key never reaches a message")
        if mode == "stall" {
            #expect(elapsed >= 1.8 && elapsed <= 2.2 + 0.5, "gives up at its 2 s timeout (took \(elapsed) s)")
        } else {
            #expect(elapsed < 2.5, "\(mode) took \(elapsed) s")
        }
    }
}
