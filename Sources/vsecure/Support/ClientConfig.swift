#if canImport(Glibc)
import Glibc
#endif
import VSecureCore
import VSecureCrypto

/// `~/.vsecure/config.json` (or `$VSECURE_CONFIG_DIR/config.json`): where the server is and
/// how to reach it. Never the API key: that lives in `credentials` beside it, mode 0600, bound
/// to the endpoint it was verified against, so changing the endpoint never sends the key to
/// another host.
struct ClientConfig {
    /// The settings `config:set` accepts, in the order `config:show` lists them.
    enum Key: String, CaseIterable {
        case endpoint, caCert, timeout

        var environmentVariable: String {
            switch self {
            case .endpoint: return "VSECURE_ENDPOINT"
            case .caCert: return "VSECURE_CA_CERT"
            case .timeout: return "VSECURE_TIMEOUT"
            }
        }

        static func named(_ text: String) throws(VSecureError) -> Key {
            guard let key = Key(rawValue: text) else {
                var error = VSecureError.usage("unknown config key \(Quoted(text))",
                                               hint: "the keys are: \(Key.allCases.map(\.rawValue).joined(separator: ", "))")
                if text.lowercased().contains("key") || text.lowercased().contains("token") {
                    error.hints.append("the API key is not a setting: store it with `vsecure login` (it reads the key from stdin)")
                }
                throw error
            }
            return key
        }

        /// Checks a value before it is stored; returns it as it is stored.
        func validated(_ value: String) throws(VSecureError) -> String {
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

    static var directory: String {
        ProcessEnvironment.string("VSECURE_CONFIG_DIR") ?? VaultOptions.defaultDirectory
    }
    static var path: String { directory + "/config.json" }
    static var credentialsPath: String { directory + "/credentials" }

    var values: [Key: String] = [:]
    /// Members this version does not know, kept when the file is rewritten.
    var others: [(String, JSONValue)] = []

    static func checkEndpoint(_ url: String) throws(VSecureError) -> String {
        guard url.hasPrefix("https://") || url.hasPrefix("http://"), url.count > 8, !url.contains(" ") else {
            throw .usage("the endpoint \(Quoted(url)) must be a URL starting with https:// (or http:// on loopback)")
        }
        var trimmed = url
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        return trimmed
    }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/" + path
    }

    /// The file's settings; none when there is no file.
    static func load() throws(VSecureError) -> ClientConfig {
        let path = self.path
        guard PrivateFiles.kind(of: path) != .missing else { return ClientConfig() }
        let raw = try SecretInput.readFile(path, limit: 1 << 20, what: "the config file", missing: .io)
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
    func save() throws(VSecureError) {
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
    static func replaceFile(_ path: String, write: () throws(VSecureError) -> Void) throws(VSecureError) {
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
    struct Credentials {
        var endpoint: String
        var apiKey: SecureBytes
    }

    static func loadCredentials() throws(VSecureError) -> Credentials? {
        let path = credentialsPath
        switch PrivateFiles.kind(of: path) {
        case .missing: return nil
        case .regular: break
        default: throw VSecureError(.key, "the credentials file \(Quoted(path)) is not a regular file; refusing to read it")
        }
        var info = stat()
        if stat(path, &info) == 0, info.st_mode & 0o077 != 0 {
            throw VSecureError(.key, "the credentials file \(Quoted(path)) can be read by others (mode \(String(info.st_mode & 0o777, radix: 8)))",
                               hint: "run `chmod 600 \(path)`, and rotate the key if others may have read it")
        }
        let raw = try SecretInput.readFile(path, limit: 64 * 1024, what: "the credentials file", missing: .io)
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

    static func saveCredentials(endpoint: String, apiKey: SecureBytes) throws(VSecureError) {
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
}
