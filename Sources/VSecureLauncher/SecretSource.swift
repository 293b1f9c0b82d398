import VSecureCore
import VSecureRemote
import VSecureVault

/// What the launcher knows about a fetched secret before its value is written anywhere.
public struct FetchedSecret: Sendable {
    public var name: SecretName
    public var version: Int
    public var expiresAt: Timestamp?
    public var valueLength: Int
    public var selectedByTags: Bool
    /// The source's own handle for `writeValue`.
    public var slot: Int
    /// From a rotation policy (local vault only): the next due time and the notice window.
    public var rotationDueAt: Timestamp? = nil
    public var rotationNotifyBefore: SecretDuration? = nil

    public init(name: SecretName, version: Int, expiresAt: Timestamp?, valueLength: Int, selectedByTags: Bool, slot: Int) {
        self.name = name
        self.version = version
        self.expiresAt = expiresAt
        self.valueLength = valueLength
        self.selectedByTags = selectedByTags
        self.slot = slot
    }
}

/// The launcher's read seam: one batch read, then values written straight into caller-owned
/// (locked) memory. A remote server or another vault product is one new conforming type.
public protocol SecretSource: AnyObject {
    /// A short description for `--dry-run` ("local vault /path").
    var label: String { get }
    func fetch(environment: EnvironmentName, names: [SecretName], tagSelections: [[Tag]]) throws(VSecureError) -> [FetchedSecret]
    /// Writes the value into `destination`, exactly `secret.valueLength` bytes.
    func writeValue(of secret: FetchedSecret, into destination: UnsafeMutableRawBufferPointer) throws(VSecureError)
    /// Drops keys and fetched material; called before exec and on every failure.
    func close()
}

/// The embedded vault as a source: ciphertext is fetched in one query, each value is opened
/// straight into the destination.
public final class LocalVaultSource: SecretSource {
    private var vault: LocalVault?
    private var sealed: [SealedSecret] = []
    private var environment: EnvironmentName?
    public let label: String

    public init(vault: LocalVault) {
        self.vault = vault
        label = "local vault \(vault.path)"
    }

    public var defaultEnvironment: EnvironmentName? { vault?.defaultEnvironment }

    public func checkEnvironment(_ environment: EnvironmentName) throws(VSecureError) {
        try vault?.checkEnvironment(environment)
    }

    public func fetch(environment: EnvironmentName, names: [SecretName], tagSelections: [[Tag]]) throws(VSecureError) -> [FetchedSecret] {
        guard let vault else { throw VSecureError(.internalError, "the vault is closed") }
        self.environment = environment
        sealed = try vault.fetchSealed(environment: environment, names: names, tagSelections: tagSelections)
        return sealed.enumerated().map { slot, secret in
            var fetched = FetchedSecret(name: secret.name, version: secret.version, expiresAt: secret.expiresAt, valueLength: secret.valueLength,
                                        selectedByTags: secret.selectedByTags, slot: slot)
            fetched.rotationDueAt = secret.rotationDueAt
            fetched.rotationNotifyBefore = secret.rotationNotifyBefore
            return fetched
        }
    }

    public func writeValue(of secret: FetchedSecret, into destination: UnsafeMutableRawBufferPointer) throws(VSecureError) {
        guard let vault, let environment, sealed.indices.contains(secret.slot) else {
            throw VSecureError(.internalError, "the vault is closed")
        }
        try vault.open(sealed[secret.slot], environment: environment, into: destination)
    }

    public func close() {
        // Releasing the vault frees (and so wipes) the data key; the sealed boxes are ciphertext.
        vault = nil
        sealed = []
    }
}

/// A vsecure server as the launcher's source (see `RemoteSource`).
public final class RemoteLaunchSource: SecretSource {
    private let remote: RemoteSource

    public init(endpoint: RemoteEndpoint, fallback: FallbackPolicy? = nil, runID: String? = nil) {
        remote = RemoteSource(endpoint: endpoint, fallback: fallback, runID: runID)
    }

    public var label: String { stale == nil ? remote.label : "offline cache of \(remote.label)" }
    /// Set when the secrets came from the offline cache.
    public var stale: StaleNotice? { remote.stale }
    public var cacheProblem: String? { remote.cacheProblem }

    public func fetch(environment: EnvironmentName, names: [SecretName], tagSelections: [[Tag]]) throws(VSecureError) -> [FetchedSecret] {
        try remote.fetch(environment: environment, names: names, tagSelections: tagSelections).map {
            FetchedSecret(name: $0.name, version: $0.version, expiresAt: $0.expiresAt, valueLength: $0.valueLength,
                          selectedByTags: $0.selectedByTags, slot: $0.slot)
        }
    }

    public func writeValue(of secret: FetchedSecret, into destination: UnsafeMutableRawBufferPointer) throws(VSecureError) {
        try remote.writeValue(slot: secret.slot, into: destination)
    }

    public func close() { remote.close() }
}
