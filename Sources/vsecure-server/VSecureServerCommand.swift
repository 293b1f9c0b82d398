import ArgumentParser
import Foundation
import Hummingbird
import Logging
import VSecureCore
import VSecureCrypto
import VSecureServer
import VSecureVault

@main
struct VSecureServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vsecure-server",
        abstract: "Serve a vsecure store over HTTPS to many machines, with API keys.",
        version: "0.1.0",
        subcommands: [Init.self, Serve.self]
    )

    static func main() async {
        umask(0o077)
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as VSecureError {
            FileHandle.standardError.write(Data(("vsecure-server: error: \(failure.message)\n" + failure.hints.map { "vsecure-server: hint: \($0)\n" }.joined()).utf8))
            Foundation.exit(failure.status.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data("vsecure-server: error: \(fullMessage(for: error).replacingOccurrences(of: "Error: ", with: ""))\n".utf8))
            Foundation.exit(ExitStatus.usage.rawValue)
        }
    }
}

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a server's store (vault, key file, registry) and a first admin API key, printed once."
    )

    @Option(name: .long, help: ArgumentHelp("The data directory (created, mode 0700).", valueName: "dir"))
    var data: String

    @Option(name: .long, help: ArgumentHelp("Environments the store accepts.", valueName: "list"))
    var environments: String = "development,staging,production"

    func run() throws {
        let configuration = ServerConfiguration(dataDirectory: data)
        if FileManager.default.fileExists(atPath: configuration.vaultPath) {
            throw VSecureError(.conflict, "\(data) already holds a store; refusing to overwrite it")
        }
        try PrivateFiles.ensureDirectory(data, tighten: true)
        var envs: [EnvironmentName] = []
        for item in environments.split(separator: ",") { envs.append(try EnvironmentName(String(item))) }
        let now = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
        let vault = try LocalVault.create(at: configuration.vaultPath, protection: .keyFile(path: configuration.keyFilePath),
                                          environments: envs, now: now)
        // Opening the registry makes the `admin` service account (role `admins`) and the default
        // policy that lets admins do everything; the first key belongs to that account.
        let registry = try ServerRegistry(path: configuration.registryPath, vault: vault)
        let (key, token) = try registry.createKey(name: "admin", scopes: Scope.allCases.map(\.rawValue), environments: nil,
                                                  expiresAt: nil, userID: try registry.adminUserID(), now: now)
        FileHandle.standardError.write(Data("vsecure-server: created the store in \(data); the API key \(key.id) of the service account admin (role admins) is printed once below\n".utf8))
        print(token)
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the store over HTTPS (plain HTTP only on loopback, with --insecure-http).",
        discussion: """
        Settings come from flags, then VSECURE_SERVER_* environment variables (LISTEN, TLS_CERT, \
        TLS_KEY, INSECURE_HTTP, RATE_LIMIT, MAX_BODY_BYTES, LOG_LEVEL, ROTATION_INTERVAL, \
        ALLOW_ROTATION_COMMANDS, IDLE_TIMEOUT, FAST_READS, WEBHOOK_CACERT), then a JSON config file (--config) with the \
        same names in camelCase (listen, tlsCert, tlsKey, insecureHttp, rateLimit, maxBodyBytes, logLevel, rotationInterval, \
        allowRotationCommands, idleTimeout, fastReads, webhookCacert). SIGTERM drains in-flight requests, stops the rotation schedule \
        (finishing a rotation in progress), then exits.
        """
    )

    @Option(name: .long, help: ArgumentHelp("The data directory made by `init`.", valueName: "dir"))
    var data: String

    @Option(name: .long, help: ArgumentHelp("Address to listen on (default 127.0.0.1:8443).", valueName: "host:port"))
    var listen: String?

    @Option(name: .customLong("tls-cert"), help: ArgumentHelp("PEM certificate chain.", valueName: "file"))
    var tlsCert: String?

    @Option(name: .customLong("tls-key"), help: ArgumentHelp("PEM private key.", valueName: "file"))
    var tlsKey: String?

    @Flag(name: .customLong("insecure-http"), help: "Serve plain HTTP (loopback addresses only).")
    var insecureHTTP = false

    @Flag(name: .customLong("allow-insecure-remote"), help: "Allow plain HTTP on a non-loopback address. Dangerous.")
    var allowInsecureRemote = false

    @Option(name: .long, help: ArgumentHelp("A JSON config file.", valueName: "file"))
    var config: String?

    @Option(name: .customLong("rate-limit"), help: ArgumentHelp("Requests per second per API key (default 200, burst twice that).", valueName: "n"))
    var rateLimit: Double?

    @Option(name: .customLong("max-body-bytes"), help: ArgumentHelp("Largest request body accepted (default 1048576).", valueName: "n"))
    var maxBodyBytes: Int?

    @Option(name: .customLong("rotation-interval"),
            help: ArgumentHelp("How often to rotate due secrets, e.g. 30s or 5m; 0 turns the schedule off (default 1m).", valueName: "duration"))
    var rotationInterval: String?

    @Option(name: .customLong("allow-rotation-commands"),
            help: ArgumentHelp("Accept and run rotation commands, but only programs directly in this directory. Without it, API clients may set generate and manual policies only.", valueName: "dir"))
    var allowRotationCommands: String?

    @Option(name: .customLong("log-level"), help: ArgumentHelp("trace, debug, info, notice, warning, error (default info).", valueName: "level"))
    var logLevel: String?

    @Option(name: .customLong("idle-timeout"),
            help: ArgumentHelp("Close a connection idle this long, e.g. 30s or 2m (default 60s).", valueName: "duration"))
    var idleTimeout: String?

    @Flag(name: .customLong("no-fast-reads"),
          help: "Send single-secret reads through the router like every other route, instead of answering them on the event loop (same answers, slower).")
    var noFastReads = false

    @Option(name: .customLong("webhook-cacert"),
            help: ArgumentHelp("Also trust the CA certificates in this PEM file for HTTPS webhook receivers (besides the system's).", valueName: "file"))
    var webhookCACert: String?

    func run() async throws {
        let file = try loadConfigFile()
        let env = ProcessInfo.processInfo.environment
        func setting(_ flag: String?, _ envName: String, _ key: String) -> String? {
            flag ?? env["VSECURE_SERVER_" + envName] ?? (file[key].map { "\($0)" })
        }
        var configuration = ServerConfiguration(dataDirectory: data)
        if let listen = setting(listen, "LISTEN", "listen") { try configuration.setListen(listen) }
        configuration.tlsCertificate = setting(tlsCert, "TLS_CERT", "tlsCert")
        configuration.tlsPrivateKey = setting(tlsKey, "TLS_KEY", "tlsKey")
        configuration.insecureHTTP = insecureHTTP || ["1", "true"].contains(setting(nil, "INSECURE_HTTP", "insecureHttp") ?? "")
        configuration.allowInsecureRemote = allowInsecureRemote
        if let text = setting(rateLimit.map { String($0) }, "RATE_LIMIT", "rateLimit") {
            guard let rate = Double(text), rate > 0 else { throw VSecureError.usage("the rate limit must be a positive number") }
            configuration.limits.ratePerKey = rate
            configuration.limits.burstPerKey = max(2 * rate, 1)
        }
        if let text = setting(maxBodyBytes.map(String.init), "MAX_BODY_BYTES", "maxBodyBytes") {
            guard let bytes = Int(text), bytes >= 1024 else { throw VSecureError.usage("the body limit must be at least 1024 bytes") }
            configuration.limits.maxBodyBytes = bytes
        }
        if let text = setting(rotationInterval, "ROTATION_INTERVAL", "rotationInterval") {
            configuration.rotation.intervalSeconds = text == "0" ? 0 : try SecretDuration(parsing: text).seconds
        }
        if let directory = setting(allowRotationCommands, "ALLOW_ROTATION_COMMANDS", "allowRotationCommands") {
            try configuration.rotation.allowCommands(in: directory)
        }
        if let text = setting(idleTimeout, "IDLE_TIMEOUT", "idleTimeout") {
            let seconds = try SecretDuration(parsing: text).seconds
            guard seconds >= 1 else { throw VSecureError.usage("the idle timeout must be at least 1s") }
            configuration.limits.idleTimeoutSeconds = seconds
        }
        if noFastReads || ["0", "false"].contains(setting(nil, "FAST_READS", "fastReads") ?? "") { configuration.fastReads = false }
        configuration.webhookCACertificates = setting(webhookCACert, "WEBHOOK_CACERT", "webhookCacert")
        LoggingSystem.bootstrap { label in ServerLogHandler(label: label) }
        _ = runConcurrencyOnEventLoops()
        var logger = Logger(label: "vsecure-server")
        let levelText = setting(logLevel, "LOG_LEVEL", "logLevel") ?? "info"
        guard let level = Logger.Level(rawValue: levelText) else { throw VSecureError.usage("unknown log level \(Quoted(levelText))") }
        logger.logLevel = level
        let scheme = configuration.insecureHTTP ? "http" : "https"
        let host = configuration.host, configuredPort = configuration.port
        let app = try await buildApplication(configuration, logger: logger) { channel in
            let port = channel.localAddress?.port ?? configuredPort
            FileHandle.standardError.write(Data("vsecure-server: serving \(scheme)://\(host):\(port)\n".utf8))
        }
        try await app.runService()
    }

    private func loadConfigFile() throws -> [String: Any] {
        guard let config else { return [:] }
        guard let data = FileManager.default.contents(atPath: config) else { throw VSecureError.usage("cannot read the config file \(Quoted(config))") }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw VSecureError.usage("the config file \(Quoted(config)) is not a JSON object")
        }
        let known: Set<String> = ["listen", "tlsCert", "tlsKey", "insecureHttp", "rateLimit", "maxBodyBytes", "logLevel",
                                  "rotationInterval", "allowRotationCommands", "idleTimeout", "fastReads", "webhookCacert"]
        if let unknown = object.keys.first(where: { !known.contains($0) }) {
            throw VSecureError.usage("unknown setting \(Quoted(unknown)) in \(config)", hint: "known settings: \(known.sorted().joined(separator: ", "))")
        }
        return object
    }
}
