#if canImport(Glibc)
import Glibc
#endif
import VSecureCore
import VSecureCrypto

/// `~/.vsecure/config.json` (or `$VSECURE_CONFIG_DIR/config.json`): where the server is and
/// how to reach it. Never the API key: that lives in `credentials` beside it, mode 0600, bound
/// to the endpoint it was verified against, so changing the endpoint never sends the key to
/// another host.
///
/// Shared by the `vsecure` CLI and the VSecureClient SDK, so both find a server the same way.
public struct ClientConfig: Sendable {
    /// The settings `config:set` accepts, in the order `config:show` lists them.
    public enum Key: String, CaseIterable, Sendable {
        case endpoint, caCert, timeout

        public var environmentVariable: String {
            switch self {
            case .endpoint: return "VSECURE_ENDPOINT"
            case .caCert: return "VSECURE_CA_CERT"
            case .timeout: return "VSECURE_TIMEOUT"
            }
        }

        public static func named(_ text: String) throws(VSecureError) -> Key {
            guard let key = Key(rawValue: text) else {
                var error = VSecureError.usage("unknown config key \(Quoted(text))",
                                               hint: "the keys are: \(Key.allCases.map(\.rawValue).joined(separator: ", "))")
                if text.lowercased().containsText("key") || text.lowercased().containsText("token") {
                    error.hints.append("the API key is not a setting: store it with `vsecure login` (it reads the key from stdin)")
                }
                throw error
            }
            return key
        }

        /// Checks a value before it is stored; returns it as it is stored.
        public func validated(_ value: String) throws(VSecureError) -> String {
            switch self {
            case .endpoint: return try ClientConfig.checkEndpoint(value)
            case .caCert:
                guard PrivateFiles.kind(of: value) == .regular else {
                    throw VSecureError.usage("no CA file at \(Quoted(value))", hint: "give the path of a PEM CA bundle")
                }
                return ClientConfig.absolute(value)
            case .timeout:
                _ = try SecretDuration(parsing: value)
                return value
            }
        }
    }

    /// `$VSECURE_CONFIG_DIR`, else `~/.vsecure`.
    public static var directory: String {
        ClientEnvironment.string("VSECURE_CONFIG_DIR") ?? ClientEnvironment.home + "/.vsecure"
    }
    public static var path: String { directory + "/config.json" }
    public static var credentialsPath: String { directory + "/credentials" }

    public var values: [Key: String] = [:]
    /// Members this version does not know, kept when the file is rewritten.
    public var others: [(String, JSONValue)] = []

    public init() {}

    /// Checks a server URL before any API key is sent to it: `https://host[:port][/path]`, or
    /// `http://` only to a loopback host (127.0.0.0/8, `localhost`, `[::1]`), because over plain
    /// HTTP the key and every value cross the network in clear. No user info (`user@host`), no
    /// query or fragment, no spaces or control characters. Returns it without trailing slashes.
    public static func checkEndpoint(_ url: String) throws(VSecureError) -> String {
        // A URL with user info may carry a password: messages show it without that part.
        var shown = url
        if let at = url.lastIndex(of: "@") {
            let scheme = url.hasPrefix("https://") ? "https://" : url.hasPrefix("http://") ? "http://" : ""
            shown = scheme + "***" + String(url[at...])
        }
        let bad = VSecureError(.usage, "the endpoint \(Quoted(shown)) must be a URL starting with https:// (or http:// on loopback)",
                               hint: url.contains("@") ? "credentials never go in the URL: the API key comes from VSECURE_API_KEY or `vsecure login`" : nil)
        let bytes = Array(url.utf8)
        guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }), !url.contains("?"), !url.contains("#") else { throw bad }
        let plain: Bool
        let rest: Substring
        if url.hasPrefix("https://") {
            plain = false
            rest = url.dropFirst(8)
        } else if url.hasPrefix("http://") {
            plain = true
            rest = url.dropFirst(7)
        } else {
            throw bad
        }
        let authority = rest.prefix { $0 != "/" }
        guard !authority.isEmpty, !authority.contains("@") else { throw bad }
        let host: Substring
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw bad }
            host = authority[...close]
        } else {
            host = authority.prefix { $0 != ":" }
        }
        guard !host.isEmpty else { throw bad }
        if plain && !isLoopback(host) {
            throw VSecureError(.usage, "the endpoint \(Quoted(shown)) is plain http:// to a host that is not loopback; the API key and the values would cross the network in clear",
                               hint: "use https:// (with --cacert for a private CA)")
        }
        var trimmed = url
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        return trimmed
    }

    static func isLoopback(_ host: Substring) -> Bool {
        if host == "localhost" || host == "[::1]" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "127" else { return false }
        return parts.allSatisfy { part in !part.isEmpty && part.count <= 3 && part.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } && (Int(part) ?? 256) <= 255 }
    }

    public static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/" + path
    }

    /// The file's settings; none when there is no file.
    public static func load() throws(VSecureError) -> ClientConfig {
        let path = self.path
        guard PrivateFiles.kind(of: path) != .missing else { return ClientConfig() }
        let raw = try readFile(path, limit: 1 << 20, what: "the config file")
        let bytes = raw.withUnsafeBytes { Array($0) }
        let document: JSONValue
        do { document = try JSONParser.parse(bytes) } catch {
            throw VSecureError.usage("the config file \(Quoted(path)) is not valid JSON: \(error.message)",
                                     hint: "fix it, or remove it and run `vsecure login` again")
        }
        guard case .object(let members) = document else {
            throw VSecureError.usage("the config file \(Quoted(path)) must hold a JSON object")
        }
        var config = ClientConfig()
        for (name, value) in members {
            if let key = Key(rawValue: name) {
                guard case .string(let text) = value else {
                    throw VSecureError.usage("\(name) in the config file \(Quoted(path)) must be a string")
                }
                config.values[key] = text
            } else {
                config.others.append((name, value))
            }
        }
        return config
    }

    /// Replaces the file (written beside it, then renamed), in a 0700 directory.
    public func save() throws(VSecureError) {
        var members: [(String, JSONValue)] = Key.allCases.compactMap { key in values[key].map { (key.rawValue, .string($0)) } }
        members += others
        let text = JSONValue.object(members).serialized() + "\n"
        let bytes = Array(text.utf8)
        try Self.replaceFile(Self.path) { () throws(VSecureError) in
            try bytes.withRawBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
                try PrivateFiles.createFile(Self.path + ".tmp", contents: raw)
            }
        }
    }

    /// Creates the directory (0700), lets `write` create `path.tmp` (0600), and renames it over `path`.
    public static func replaceFile(_ path: String, write: () throws(VSecureError) -> Void) throws(VSecureError) {
        try PrivateFiles.ensureDirectory(directory, tighten: true)
        let staging = path + ".tmp"
        _ = unlink(staging)
        try write()
        guard rename(staging, path) == 0 else {
            let error = PrivateFiles.ioError("cannot replace", path: path)
            _ = unlink(staging)
            throw error
        }
    }

    // MARK: - Credentials

    /// The stored API key and the endpoint it belongs to. The file is `ENDPOINT\nKEY`.
    public struct Credentials: Sendable {
        public var endpoint: String
        public var apiKey: SecureBytes
    }

    public static func loadCredentials() throws(VSecureError) -> Credentials? {
        let path = credentialsPath
        let raw: SecureBytes
        do {
            raw = try PrivateFiles.readPrivateSecret(path, maxBytes: 64 * 1024)
        } catch {
            switch error {
            case .missing:
                return nil
            case .refused(let reason):
                throw VSecureError(.key, "refusing to read the credentials file \(Quoted(path)): \(reason)",
                                   hint: reason.containsText("read by others")
                                       ? "run `chmod 600 \(path)`, and rotate the key if others may have read it"
                                       : "run `vsecure login` again")
            }
        }
        let newline = raw.withUnsafeBytes { $0.firstIndex(of: 0x0A) }
        guard let newline else {
            throw VSecureError(.key, "the credentials file \(Quoted(path)) is malformed", hint: "run `vsecure login` again")
        }
        let endpoint = raw.withUnsafeBytes { String(decoding: UnsafeRawBufferPointer(rebasing: $0[0..<newline]), as: UTF8.self) }
        var end = raw.count
        raw.withUnsafeBytes { bytes in
            while end > newline + 1 && (bytes[end - 1] == 0x0A || bytes[end - 1] == 0x0D) { end -= 1 }
        }
        return Credentials(endpoint: endpoint, apiKey: raw.slice((newline + 1)..<end))
    }

    public static func saveCredentials(endpoint: String, apiKey: SecureBytes) throws(VSecureError) {
        let prefix = Array((endpoint + "\n").utf8)
        let contents = SecureBytes(count: prefix.count + apiKey.count + 1)
        contents.withUnsafeMutableBytes { out in
            prefix.withUnsafeBytes { out.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: prefix.count) }
            apiKey.withUnsafeBytes { key in
                if key.count > 0 { (out.baseAddress! + prefix.count).copyMemory(from: key.baseAddress!, byteCount: key.count) }
            }
            out[out.count - 1] = 0x0A
        }
        try replaceFile(credentialsPath) { () throws(VSecureError) in
            try contents.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
                try PrivateFiles.createFile(credentialsPath + ".tmp", contents: raw)
            }
        }
    }

    /// A whole small file, read into locked memory (the credentials file holds the API key).
    /// A missing file is `.io`.
    static func readFile(_ path: String, limit: Int, what: String) throws(VSecureError) -> SecureBytes {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw PrivateFiles.ioError("cannot read \(what) from", path: path, code: errno) }
        defer { close(fd) }
        let buffer = SecureBytes(count: limit + 1)
        let count = buffer.withUnsafeMutableBytes { PrivateFiles.readFully(fd, into: $0) }
        guard count >= 0 else { throw VSecureError(.io, "cannot read \(what): \(PrivateFiles.errnoText())") }
        guard count <= limit else { throw VSecureError(.usage, "\(what) is larger than the limit of \(limit) bytes") }
        return buffer.slice(0..<count)
    }
}

/// The process environment, read without copying secret variables into Swift strings.
public enum ClientEnvironment {
    /// A variable's value; nil when unset or empty. Never used for secret variables.
    public static func string(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }

    public static var home: String {
        if let home = string("HOME") { return home }
        // Not from NSS in the static vsecure-run (ProcessImage.isStatic).
        if !ProcessImage.isStatic, let entry = getpwuid(geteuid()), let dir = entry.pointee.pw_dir { return String(cString: dir) }
        return "/"
    }
}

/// One effective setting and where it came from, for `config:show`.
public struct SettingSource: Sendable {
    public var value: String
    public var source: String

    public init(value: String, source: String) {
        self.value = value
        self.source = source
    }
}

/// The server settings in effect: flags, then environment variables, then the config file.
public struct RemoteSettings: Sendable {
    public var endpoint: SettingSource
    public var caCert: SettingSource?
    public var timeout: SettingSource?

    /// nil when the local vault is meant.
    public static func resolve(flagEndpoint: String?, flagCACert: String?, explicitVault: String?) throws(VSecureError) -> RemoteSettings? {
        let config = try ClientConfig.load()
        let endpoint: SettingSource
        if let flagEndpoint {
            endpoint = SettingSource(value: flagEndpoint, source: "--endpoint")
        } else if explicitVault != nil {
            return nil
        } else if let text = ClientEnvironment.string("VSECURE_ENDPOINT") {
            endpoint = SettingSource(value: text, source: "VSECURE_ENDPOINT")
        } else if ClientEnvironment.string("VSECURE_VAULT") != nil {
            return nil
        } else if let text = config.values[.endpoint] {
            endpoint = SettingSource(value: text, source: ClientConfig.path)
        } else {
            return nil
        }
        return RemoteSettings(endpoint: endpoint, caCert: setting(.caCert, flag: flagCACert, flagName: "--cacert", config: config),
                              timeout: setting(.timeout, flag: nil, flagName: "", config: config))
    }

    /// The settings of a program that only ever talks to a server (the SDK): `VSECURE_ENDPOINT`,
    /// else the config file's endpoint (`VSECURE_VAULT` means nothing here); nil when neither is
    /// set. CA and timeout come from the variables, else the config file, as for the CLI.
    public static func resolveServer() throws(VSecureError) -> RemoteSettings? {
        let config = try ClientConfig.load()
        guard let endpoint = setting(.endpoint, flag: nil, flagName: "", config: config) else { return nil }
        return RemoteSettings(endpoint: endpoint, caCert: setting(.caCert, flag: nil, flagName: "", config: config),
                              timeout: setting(.timeout, flag: nil, flagName: "", config: config))
    }

    public static func setting(_ key: ClientConfig.Key, flag: String?, flagName: String, config: ClientConfig) -> SettingSource? {
        if let flag { return SettingSource(value: flag, source: flagName) }
        if let text = ClientEnvironment.string(key.environmentVariable) { return SettingSource(value: text, source: key.environmentVariable) }
        if let text = config.values[key] { return SettingSource(value: text, source: ClientConfig.path) }
        return nil
    }

    /// Where the API key comes from: VSECURE_API_KEY, else the credentials file when it was
    /// stored for this endpoint. Never argv.
    public static func apiKey(for endpoint: String) throws(VSecureError) -> (key: SecureBytes, source: String)? {
        if let raw = getenv("VSECURE_API_KEY"), strlen(raw) > 0 {
            return (SecureBytes(copying: UnsafeRawBufferPointer(start: raw, count: strlen(raw))), "VSECURE_API_KEY")
        }
        guard let stored = try ClientConfig.loadCredentials() else { return nil }
        guard stored.endpoint == endpoint else {
            throw VSecureError(.accessDenied, "the stored API key is for \(stored.endpoint), not \(endpoint)",
                               hint: "run `vsecure login --endpoint \(endpoint)`, or set VSECURE_API_KEY")
        }
        return (stored.apiKey, ClientConfig.credentialsPath)
    }

    /// `warn` reports `VSECURE_VERIFY_SSL=false` (the CLI prints it as `vsecure: warning: …`).
    public func remoteEndpoint(warn: (String) -> Void) throws(VSecureError) -> RemoteEndpoint {
        let url = try ClientConfig.checkEndpoint(endpoint.value)
        guard let key = try Self.apiKey(for: url) else {
            throw VSecureError(.accessDenied, "no API key for \(url)",
                               hint: "store one with `vsecure login --endpoint \(url)` (it reads the key from stdin), or set VSECURE_API_KEY")
        }
        return try Self.endpoint(url: url, apiKey: key.key, caCert: caCert?.value, timeout: timeout?.value, warn: warn)
    }

    public static func endpoint(url: String, apiKey: SecureBytes, caCert: String?, timeout: String?,
                                warn: (String) -> Void) throws(VSecureError) -> RemoteEndpoint {
        var remote = RemoteEndpoint(baseURL: url, apiKey: apiKey)
        if let caCert {
            guard PrivateFiles.kind(of: caCert) == .regular else {
                throw VSecureError.usage("no CA file at \(Quoted(caCert))", hint: "check --cacert, VSECURE_CA_CERT or `vsecure config:get caCert`")
            }
            remote.caFile = caCert
        }
        let duration = try timeout.map { (text: String) throws(VSecureError) in try SecretDuration(parsing: text) } ?? SecretDuration(seconds: 10)
        remote.timeoutMilliseconds = Int(min(duration.seconds, 3600)) * 1000
        if ClientEnvironment.string("VSECURE_VERIFY_SSL").map({ ["false", "0", "no"].contains($0.lowercased()) }) == true {
            remote.verifyTLS = false
            warn("VSECURE_VERIFY_SSL=false: the server's certificate is NOT checked; anyone on the path can read these secrets and the API key")
        }
        return remote
    }
}
