#if canImport(Glibc)
import Glibc
#endif
import VSecureCore
import VSecureCrypto
import VSecureRemote
import VSecureVault

/// The launch options after defaults and validation: flags, then environment variables, then
/// ~/.vsecure.
struct LaunchSettings {
    var explicitEnvironment: EnvironmentName?
    var tagSelections: [[Tag]]
    var only: [VariableName]
    var manifestPath: String?
    var manifestRequired: Bool
    var vaultPath: String
    /// Where a local launch's receipt is written (`VSECURE_AUDIT_LOG`, else beside the vault).
    var auditLogPath: String
    var keyFilePath: String
    var passphraseFile: String?
    var allowExpired: Bool
    var warnWithin: SecretDuration
    var endpoint: String?
    var caFile: String?
    var timeout: SecretDuration
    /// `--fallback` given (the manifest's `source.fallback` can also turn it on).
    var fallbackFlag: Bool
    var maxStaleFlag: SecretDuration?
    /// Where offline caches live: $VSECURE_CACHE_DIR, else $XDG_CACHE_HOME/vsecure, else ~/.cache/vsecure.
    var cacheDirectory: String

    init(_ options: LaunchArguments) throws(VSecureError) {
        explicitEnvironment = try (options.environment ?? LauncherConsole.string("VSECURE_ENV")).map { (text: String) throws(VSecureError) in
            try EnvironmentName(text)
        }
        tagSelections = []
        for list in options.tagSelections {
            var tags: [Tag] = []
            for item in list { tags.append(try Tag(item)) }
            tagSelections.append(tags)
        }
        only = []
        for item in options.only { only.append(try VariableName(item)) }
        for item in options.keep where !item.isEmpty { _ = try VariableName(item) }
        for item in options.allowOverride { _ = try VariableName(item) }
        if let explicit = options.manifest ?? LauncherConsole.string("VSECURE_MANIFEST") {
            manifestPath = explicit
            manifestRequired = true
        } else {
            manifestPath = access("vsecure.yml", F_OK) == 0 ? "vsecure.yml" : nil
            manifestRequired = false
        }
        let home = LauncherConsole.string("HOME") ?? "/"
        vaultPath = options.vault ?? LauncherConsole.string("VSECURE_VAULT") ?? home + "/.vsecure/vault.db"
        keyFilePath = options.keyFile ?? LauncherConsole.string("VSECURE_KEY_FILE") ?? home + "/.vsecure/vault.key"
        auditLogPath = LauncherConsole.string("VSECURE_AUDIT_LOG") ?? AuditLog.defaultPath(forVault: vaultPath)
        passphraseFile = options.passphraseFile ?? LauncherConsole.string("VSECURE_PASSPHRASE_FILE")
        allowExpired = options.allowExpired
        endpoint = options.endpoint ?? LauncherConsole.string("VSECURE_ENDPOINT")
        caFile = options.caCert ?? LauncherConsole.string("VSECURE_CA_CERT")
        timeout = try (options.timeout ?? LauncherConsole.string("VSECURE_TIMEOUT")).map { (text: String) throws(VSecureError) in
            try SecretDuration(parsing: text)
        } ?? SecretDuration(seconds: 10)
        fallbackFlag = options.fallback
        maxStaleFlag = try options.maxStale.map { (text: String) throws(VSecureError) in try SecretDuration(parsing: text) }
        cacheDirectory = LauncherConsole.string("VSECURE_CACHE_DIR")
            ?? LauncherConsole.string("XDG_CACHE_HOME").map { $0 + "/vsecure" }
            ?? home + "/.cache/vsecure"
        warnWithin = try options.warnWithin.map { (text: String) throws(VSecureError) in try SecretDuration(parsing: text) }
            ?? SecretDuration(seconds: 7 * 86_400)
    }

    func loadManifest() throws(VSecureError) -> Manifest? {
        guard let manifestPath else { return nil }
        let fd = open(manifestPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw VSecureError(.manifest, "cannot read the manifest \(Quoted(manifestPath)): \(PrivateFiles.errnoText())",
                               hint: manifestRequired ? "check --manifest or VSECURE_MANIFEST" : nil)
        }
        defer { close(fd) }
        // Sized from fstat (plus one byte to notice growth), so a small manifest costs a small read.
        var info = stat()
        let expected = fstat(fd, &info) == 0 && info.st_mode & S_IFMT == S_IFREG ? Int(info.st_size) : ManifestParser.maxBytes
        var bytes = [UInt8](repeating: 0, count: min(expected, ManifestParser.maxBytes) + 1)
        let count = bytes.withUnsafeMutableBytes { PrivateFiles.readFully(fd, into: $0) }
        guard count >= 0 else { throw VSecureError(.manifest, "cannot read the manifest \(Quoted(manifestPath)): \(PrivateFiles.errnoText())") }
        bytes.removeLast(bytes.count - count)
        return try ManifestParser.parse(bytes, path: manifestPath)
    }

    /// The server to fetch from, with the API key from VSECURE_API_KEY (read into locked memory;
    /// the launcher removes it from the child's environment).
    func remoteEndpoint(_ url: String) throws(VSecureError) -> RemoteEndpoint {
        let url = try ClientConfig.checkEndpoint(url)
        guard let raw = getenv("VSECURE_API_KEY"), strlen(raw) > 0 else {
            throw VSecureError(.accessDenied, "a server endpoint is set but VSECURE_API_KEY is empty", hint: "export VSECURE_API_KEY=vsec_…")
        }
        var endpoint = RemoteEndpoint(baseURL: url, apiKey: SecureBytes(copying: UnsafeRawBufferPointer(start: raw, count: strlen(raw))))
        endpoint.caFile = caFile
        endpoint.timeoutMilliseconds = Int(timeout.seconds) * 1000
        if LauncherConsole.string("VSECURE_VERIFY_SSL").map({ ["false", "0", "no"].contains($0.lowercased()) }) == true {
            endpoint.verifyTLS = false
            LauncherConsole.warning("VSECURE_VERIFY_SSL=false: the server's certificate is NOT checked; anyone on the path can read these secrets")
        }
        return endpoint
    }

    /// A passphrase vault's passphrase: `--passphrase-file`, else VSECURE_PASSPHRASE. The
    /// launcher never prompts: it usually runs where nobody could answer.
    func passphrase() throws(VSecureError) -> SecureBytes {
        if let passphraseFile {
            let fd = open(passphraseFile, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw VSecureError(.key, "cannot read the passphrase file \(Quoted(passphraseFile)): \(PrivateFiles.errnoText())") }
            defer { close(fd) }
            let buffer = SecureBytes(count: 4097)
            var count = buffer.withUnsafeMutableBytes { PrivateFiles.readFully(fd, into: $0) }
            guard count >= 0, count <= 4096 else { throw VSecureError(.key, "the passphrase file \(Quoted(passphraseFile)) is unreadable or too long") }
            buffer.withUnsafeBytes { raw in
                if count > 0 && raw[count - 1] == 0x0A { count -= 1 }
                if count > 0 && raw[count - 1] == 0x0D { count -= 1 }
            }
            guard count > 0 else { throw VSecureError(.key, "the passphrase file \(Quoted(passphraseFile)) is empty") }
            return buffer.slice(0..<count)
        }
        if let raw = getenv("VSECURE_PASSPHRASE"), strlen(raw) > 0 {
            return SecureBytes(copying: UnsafeRawBufferPointer(start: raw, count: strlen(raw)))
        }
        throw VSecureError(.key, "this vault is protected by a passphrase", hint: "pass it with --passphrase-file or VSECURE_PASSPHRASE")
    }
}
