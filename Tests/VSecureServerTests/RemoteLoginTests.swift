import Foundation
import Testing
import TestSupport

/// `vsecure login`, `logout` and `config:*` against a live server: where the endpoint and the
/// key are kept, with which modes, and that the key never reaches config.json or argv.
@Suite("vsecure login and config", .serialized)
struct RemoteLoginTests {
    final class Setup: @unchecked Sendable {
        let live: LiveStore
        let server: LiveServer
        let home: TemporaryDirectory
        var configDirectory: String { home.file("cfg") }

        init() throws {
            live = try LiveStore()
            server = try LiveServer(store: live)
            home = try TemporaryDirectory(prefix: "vsecure-login")
        }

        func run(_ arguments: [String], stdin: StandardInput = .null, env extra: [String: String] = [:]) throws -> ProcessResult {
            var env = minimalEnvironment(home: home.path)
            env["VSECURE_CONFIG_DIR"] = configDirectory
            return try runProcess(Binaries.vsecure, arguments, environment: env.merging(extra) { $1 }, stdin: stdin,
                                  workingDirectory: home.path, timeout: 60)
        }

        func mode(_ path: String) throws -> Int {
            (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
        }

        func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
    }

    @Test("login checks the key, stores endpoint and key apart with private modes, and the commands use them")
    func loginAndUse() throws {
        let setup = try Setup()
        let login = try setup.run(["login", "--endpoint", setup.server.baseURL + "/"], stdin: .text(setup.live.adminToken + "\n"))
        #expect(login.status == 0, "\(login)")
        #expect(login.stdoutText.hasPrefix("Logged in to \(setup.server.baseURL)\n"), "\(login)")
        let config = setup.configDirectory + "/config.json", credentials = setup.configDirectory + "/credentials"
        #expect(try setup.mode(setup.configDirectory) == 0o700)
        #expect(try setup.mode(config) == 0o600)
        #expect(try setup.mode(credentials) == 0o600)
        #expect(!setup.read(config).contains(setup.live.adminToken))
        #expect(!setup.read(config).contains("vsec_"))
        #expect(setup.read(config).contains("\"endpoint\": \"\(setup.server.baseURL)\""), "\(setup.read(config))")
        #expect(setup.read(credentials).contains(setup.live.adminToken))
        #expect(!login.stdoutText.contains(setup.live.adminToken) && !login.stderr.contains(setup.live.adminToken))
        // No endpoint or key in the environment: the config and the credentials file are used.
        let created = try setup.run(["secrets:create", "VIA_LOGIN"], stdin: .text("stored-remotely"))
        #expect(created.status == 0, "\(created)")
        let read = try setup.run(["secrets:get", "VIA_LOGIN"])
        #expect(read.stdoutText == "stored-remotely", "\(read)")
        let viaCurl = try LiveClient(baseURL: setup.server.baseURL, token: setup.live.adminToken, scratch: setup.home)
            .get("/v1/security/secrets/VIA_LOGIN")
        #expect(viaCurl.status == 200, "\(viaCurl)")
        // config:show names sources and never prints the key.
        let show = try setup.run(["config:show"])
        #expect(show.status == 0, "\(show)")
        let lines = show.stdoutText.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(lines.contains("endpoint \(setup.server.baseURL) \(config)"), "\(show)")
        #expect(lines.contains("apiKey stored for \(setup.server.baseURL) \(credentials)"), "\(show)")
        #expect(lines.contains("caCert - not set"), "\(show)")
        #expect(!show.stdoutText.contains(setup.live.adminToken))
        let json = try setup.run(["config:show", "--output", "json"], env: ["VSECURE_API_KEY": setup.live.adminToken, "VSECURE_TIMEOUT": "5s"])
        #expect(json.status == 0 && !json.stdoutText.contains(setup.live.adminToken), "\(json)")
        let parsed = try JSONSerialization.jsonObject(with: Data(json.stdout)) as? [String: Any]
        let settings = parsed?["settings"] as? [String: Any]
        #expect((settings?["apiKey"] as? [String: Any])?["source"] as? String == "VSECURE_API_KEY")
        #expect((settings?["timeout"] as? [String: Any])?["value"] as? String == "5s")
        #expect(settings?["caCert"] is NSNull)
        // logout removes the key; the endpoint stays, so commands now say what is missing.
        let logout = try setup.run(["logout"])
        #expect(logout.status == 0, "\(logout)")
        #expect(!FileManager.default.fileExists(atPath: credentials))
        let after = try setup.run(["secrets:list"])
        #expect(after.status == 12, "\(after)")
        #expect(after.stderr.contains("no API key for \(setup.server.baseURL)"), "\(after)")
        #expect(try setup.run(["logout"]).status == 0)
    }

    @Test("a refused key is not stored; the key is never taken from argv")
    func refusedKey() throws {
        let setup = try Setup()
        let refused = try setup.run(["login", "--endpoint", setup.server.baseURL], stdin: .text("vsec_key_0000000000000000_wrong"))
        #expect(refused.status == 12, "\(refused)")
        #expect(!FileManager.default.fileExists(atPath: setup.configDirectory + "/credentials"))
        #expect(!FileManager.default.fileExists(atPath: setup.configDirectory + "/config.json"))
        let argv = try setup.run(["login", "--endpoint", setup.server.baseURL, setup.live.adminToken])
        #expect(argv.status == 2, "\(argv)")
        #expect(!FileManager.default.fileExists(atPath: setup.configDirectory + "/credentials"))
        let empty = try setup.run(["login", "--endpoint", setup.server.baseURL], stdin: .text(""))
        #expect(empty.status == 2, "\(empty)")
        let down = try setup.run(["login", "--endpoint", "http://127.0.0.1:\(try liveFreeLoopbackPort())"], stdin: .text(setup.live.adminToken),
                                 env: ["VSECURE_TIMEOUT": "2s"])
        #expect(down.status == 13, "\(down)")
        // A key stored for one endpoint is never sent to another.
        #expect(try setup.run(["login", "--endpoint", setup.server.baseURL], stdin: .text(setup.live.adminToken)).status == 0)
        let elsewhere = try setup.run(["secrets:list", "--endpoint", "http://127.0.0.1:1"])
        #expect(elsewhere.status == 12, "\(elsewhere)")
        #expect(elsewhere.stderr.contains("the stored API key is for \(setup.server.baseURL), not http://127.0.0.1:1"), "\(elsewhere)")
    }

    @Test("config:set, config:get and config:path; unknown keys are usage errors naming the key")
    func configCommands() throws {
        let setup = try Setup()
        let path = try setup.run(["config:path"])
        #expect(path.stdoutText == setup.configDirectory + "/config.json\n", "\(path)")
        let unset = try setup.run(["config:get", "endpoint"])
        #expect(unset.status == 3, "\(unset)")
        #expect(try setup.run(["config:set", "endpoint", "https://vault.example:8443/"]).status == 0)
        #expect(try setup.run(["config:set", "timeout", "30s"]).status == 0)
        #expect(try setup.run(["config:get", "endpoint"]).stdoutText == "https://vault.example:8443\n")
        #expect(try setup.run(["config:get", "timeout"]).stdoutText == "30s\n")
        #expect(try setup.run(["config:get", "endpoint"], env: ["VSECURE_ENDPOINT": "https://other:1"]).stdoutText == "https://other:1\n")
        #expect(try setup.mode(setup.configDirectory + "/config.json") == 0o600)
        let unknown = try setup.run(["config:set", "colour", "blue"])
        #expect(unknown.status == 2, "\(unknown)")
        #expect(unknown.stderr.hasPrefix("vsecure: error: unknown config key 'colour'\nvsecure: hint: the keys are: endpoint, caCert, timeout\n"), "\(unknown)")
        let apiKey = try setup.run(["config:set", "apiKey", "vsec_x"])
        #expect(apiKey.status == 2, "\(apiKey)")
        #expect(apiKey.stderr.contains("vsecure login"), "\(apiKey)")
        #expect(!setup.read(setup.configDirectory + "/config.json").contains("vsec_x"))
        #expect(try setup.run(["config:get", "nope"]).status == 2)
        #expect(try setup.run(["config:set", "endpoint", "ftp://x"]).status == 2)
        #expect(try setup.run(["config:set", "timeout", "soon"]).status == 2)
        #expect(try setup.run(["config:set", "caCert", setup.home.file("missing.pem")]).status == 2)
        for command in ["login", "logout", "config:set", "config:get", "config:show", "config:path"] {
            let help = try setup.run([command, "--help"])
            #expect(help.status == 0 && help.stdoutText.contains("USAGE: vsecure \(command)"), "\(command): \(help)")
        }
    }
}
