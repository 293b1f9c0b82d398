import VSecureCore
import VSecureCrypto
import VSecureVault

/// The server's store: the vault and the API-key registry behind one actor, because a SQLite
/// connection serves one caller at a time. Handlers call in with value types and get value
/// types back.
public actor SecretService {
    let vault: LocalVault
    let registry: ServerRegistry
    let clock: @Sendable () -> Timestamp

    public init(vault: LocalVault, registry: ServerRegistry, clock: @escaping @Sendable () -> Timestamp) {
        self.vault = vault
        self.registry = registry
        self.clock = clock
    }

    public var now: Timestamp { clock() }
    public var defaultEnvironment: EnvironmentName { vault.defaultEnvironment }
    public var environments: [EnvironmentName] { vault.environments }

    /// Runs `body` with the vault on the actor. Everything that touches SQLite goes through here.
    func withVault<T: Sendable>(_ body: (LocalVault, Timestamp) throws(VSecureError) -> T) throws(VSecureError) -> T {
        try body(vault, clock())
    }

    func withRegistry<T: Sendable>(_ body: (ServerRegistry, Timestamp) throws(VSecureError) -> T) throws(VSecureError) -> T {
        try body(registry, clock())
    }

    /// A cheap query that proves the vault answers, for `/ready`.
    func isReady() -> Bool {
        (try? vault.status(checkIntegrity: false)) != nil
    }
}
