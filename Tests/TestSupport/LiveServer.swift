import Foundation

// The real `vsecure-server` binary started as a child process on a loopback port, for live
// tests (VSecureServerTests, VSecureClientTests). Nothing here touches anything but 127.0.0.1.

/// Where external tools are; the tests refuse to run with a PATH lookup into the unknown.
public enum LiveTools {
    public static let curl = find("curl")
    public static let openssl = find("openssl")
    public static var server: String { Binaries.directory + "/vsecure-server" }

    public static func find(_ name: String) -> String {
        for dir in ["/usr/bin", "/usr/local/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: dir + "/" + name) {
            return dir + "/" + name
        }
        return "/usr/bin/" + name
    }
}

/// A free TCP port on 127.0.0.1 (bound to port 0, read back, released). Another process can
/// take it before the server binds, so `LiveServer.start` retries on "Address already in use".
public func liveFreeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket() failed: errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw TestFailure("bind() failed: errno \(errno)") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw TestFailure("getsockname() failed: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A child process in its own process group, with stdout and stderr appended to a log file,
/// that can be signalled and waited for with a deadline. The whole group is SIGKILLed when the
/// object goes away, so no test leaves a server or a writer loop behind.
public final class LiveProcess: @unchecked Sendable {
    public let pid: pid_t
    public let logPath: String
    private let lock = NSLock()
    private var exitStatus: Int32?

    public init(_ executable: String, _ arguments: [String], environment: [String: String], logPath: String) throws {
        self.logPath = logPath
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The test runner's threads block signals (and ignore SIGPIPE); a child must start with
        // none blocked and the usual dispositions, or a shell's `wait` never sees SIGCHLD.
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw TestFailure("posix_spawn \(executable) failed: \(rc)") }
        pid = child
    }

    /// The exit status (128 + N after signal N) if the process has exited; never blocks.
    public var status: Int32? {
        lock.lock()
        defer { lock.unlock() }
        if let exitStatus { return exitStatus }
        var raw: Int32 = 0
        let rc = waitpid(pid, &raw, WNOHANG)
        guard rc == pid else { return nil }
        let low = raw & 0x7F
        exitStatus = low == 0 ? (raw >> 8) & 0xFF : 128 + low
        return exitStatus
    }

    public var isRunning: Bool { status == nil }

    /// Waits at most `timeout` seconds for the process to exit; nil if it is still running.
    public func wait(timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let status { return status }
            if Date() >= deadline { return nil }
            usleep(10_000)
        }
    }

    /// Sends `signal` to the process (not its group).
    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// SIGKILLs the whole group and reaps the leader.
    @discardableResult
    public func killGroup() -> Int32? {
        if isRunning { kill(-pid, SIGKILL) }
        return wait(timeout: 10)
    }

    public var log: String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    deinit {
        // The leader may be gone while children it started (curl loops) live on.
        kill(-pid, SIGKILL)
        _ = wait(timeout: 10)
    }
}

/// A data directory made by `vsecure-server init`, and the admin token it printed.
public final class LiveStore: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public let dataPath: String
    public let adminToken: String
    public var home: String { directory.path }

    public init() throws {
        directory = try TemporaryDirectory(prefix: "vsecure-live")
        dataPath = directory.file("data")
        let result = try runProcess(LiveTools.server, ["init", "--data", dataPath],
                                    environment: minimalEnvironment(home: directory.path), timeout: 60)
        guard result.status == 0 else { throw TestFailure("vsecure-server init failed: \(result)") }
        adminToken = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        guard adminToken.hasPrefix("vsec_") else { throw TestFailure("init printed no token: \(result)") }
    }

    public var vaultPath: String { dataPath + "/vault.db" }
    public var registryPath: String { dataPath + "/server.db" }
    public var keyPath: String { dataPath + "/vault.key" }
}

/// TLS material made with the openssl CLI: a CA, and a server certificate it signed for
/// 127.0.0.1 and localhost (subjectAltName), EC P-256 keys.
public struct LivePKI {
    public let caCertificate: String
    public let serverCertificate: String
    public let serverKey: String

    /// `subjectAltName`: the names the server certificate is valid for (a test of host-name
    /// checking gives it a name the client does not connect to).
    public init(in directory: TemporaryDirectory, subjectAltName: String = "IP:127.0.0.1, DNS:localhost") throws {
        let dir = directory.file("pki")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        caCertificate = dir + "/ca.pem"
        serverCertificate = dir + "/server.pem"
        serverKey = dir + "/server.key"
        let extensions = try directory.write("pki/server.ext", """
            basicConstraints = critical, CA:FALSE
            keyUsage = critical, digitalSignature, keyEncipherment
            extendedKeyUsage = serverAuth
            subjectAltName = \(subjectAltName)

            """)
        let steps: [[String]] = [
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", dir + "/ca.key", "-out", caCertificate, "-days", "2", "-subj", "/CN=vsecure live test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", serverKey, "-out", dir + "/server.csr", "-subj", "/CN=localhost"],
            ["x509", "-req", "-in", dir + "/server.csr", "-CA", caCertificate, "-CAkey", dir + "/ca.key",
             "-CAcreateserial", "-out", serverCertificate, "-days", "2", "-extfile", extensions],
        ]
        for step in steps {
            let result = try runProcess(LiveTools.openssl, step, environment: minimalEnvironment(home: directory.path),
                                        workingDirectory: dir, timeout: 60)
            guard result.status == 0 else { throw TestFailure("openssl \(step[0]) failed: \(result)") }
        }
    }
}

/// `vsecure-server serve` running on a loopback port, up (it logged `serving …`) once `init`
/// returns. SIGKILLed (with anything it started) when the object goes away.
public final class LiveServer: @unchecked Sendable {
    public let process: LiveProcess
    public let port: Int
    public let scheme: String
    public let host: String

    public var baseURL: String { "\(scheme)://\(host):\(port)" }

    /// Starts the server on `host` (a free port is chosen; retried if someone else takes it).
    /// With `pki`, HTTPS; otherwise `--insecure-http`.
    public init(store: LiveStore, pki: LivePKI? = nil, listenHost: String = "127.0.0.1", extraArguments: [String] = [],
         rateLimit: Int = 1_000_000, startTimeout: TimeInterval = 60) throws {
        scheme = pki == nil ? "http" : "https"
        host = "127.0.0.1"
        var lastLog = ""
        for attempt in 1...5 {
            let port = try liveFreeLoopbackPort()
            var arguments = ["serve", "--data", store.dataPath, "--listen", "\(listenHost):\(port)",
                             "--rate-limit", String(rateLimit), "--log-level", "warning"]
            if let pki {
                arguments += ["--tls-cert", pki.serverCertificate, "--tls-key", pki.serverKey]
            } else {
                arguments += ["--insecure-http"]
            }
            let logPath = store.directory.file("server-\(port)-\(attempt).log")
            let process = try LiveProcess(LiveTools.server, arguments + extraArguments,
                                          environment: minimalEnvironment(home: store.home), logPath: logPath)
            let deadline = Date().addingTimeInterval(startTimeout)
            var up = false
            while Date() < deadline {
                if process.log.contains("vsecure-server: serving \(scheme)://") { up = true; break }
                if !process.isRunning { break }
                usleep(20_000)
            }
            if up {
                self.process = process
                self.port = port
                return
            }
            lastLog = process.log
            process.killGroup()
            // Only a lost race for the port is worth another try.
            guard lastLog.contains("Address already in use") else { break }
        }
        throw TestFailure("vsecure-server did not start:\n\(lastLog)")
    }

    /// SIGTERM (or another signal) and the exit status within `timeout`; nil if still running.
    public func stop(signal: Int32, timeout: TimeInterval) -> Int32? {
        process.signal(signal)
        return process.wait(timeout: timeout)
    }

    deinit { process.killGroup() }
}

