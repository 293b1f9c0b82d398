import VSecureCore
import VSecureCrypto

/// A store that keeps rotation policies and rotates secrets (docs/rotation.md). Both stores are:
/// the local vault (`LocalSecretStore`) and a vsecure server (`RemoteStore`, over the server's
/// rotation API; the server makes the values).
public protocol RotatingSecretStore: SecretStore {
    /// `create` and setting `rotation` in one transaction.
    func create(_ secret: NewSecret, rotation: RotationPolicy) throws(VSecureError) -> SecretSummary

    /// `update` and, unless `rotation` is nil, setting (`.some(policy)`) or removing
    /// (`.some(nil)`) the policy, in one transaction.
    func update(environment: EnvironmentName?, name: SecretName, value: SecureBytes?, change: AttributeChange,
                ifVersion: Int?, rotation: RotationPolicy??) throws(VSecureError) -> SecretUpdate

    /// Every live secret that has a policy or an expiry, ordered by environment then name.
    func rotationEntries(environment: EnvironmentName?) throws(VSecureError) -> [RotationEntry]

    /// Rotates one secret now (`onlyIfDue: false`) or only when it is due (`rotation:run`). The
    /// due check is repeated inside the write transaction, so concurrent callers rotate a due
    /// secret once. A failure is recorded and returned, not thrown; errors that are not about
    /// this rotation (no such secret, no policy, a damaged vault) are thrown.
    func rotate(environment: EnvironmentName?, name: SecretName, onlyIfDue: Bool,
                settings: RotationSettings) throws(VSecureError) -> RotationResult
}

/// A secret as `rotation:status` shows it. Never a value.
public struct RotationEntry: Sendable, Equatable {
    public var environment: EnvironmentName
    public var name: SecretName
    public var currentVersion: Int
    public var expiresAt: Timestamp?
    public var policy: RotationPolicy?
    public var record: RotationRecord?
    /// The secret's rotation row could not be read (the vault was altered or damaged): it has
    /// no usable policy, and `rotation:run` reports it as failed instead of stopping.
    public var damaged = false

    public init(environment: EnvironmentName, name: SecretName, currentVersion: Int, expiresAt: Timestamp?,
                policy: RotationPolicy?, record: RotationRecord?) {
        self.environment = environment
        self.name = name
        self.currentVersion = currentVersion
        self.expiresAt = expiresAt
        self.policy = policy
        self.record = record
    }

    public func state(at now: Timestamp, expiryNotice: SecretDuration) -> RotationState {
        RotationState.at(now, policy: policy, record: record, expiresAt: expiresAt, expiryNotice: expiryNotice)
    }
}

public struct RotationSettings: Sendable {
    /// How long a rotation command may run before it is killed.
    public var commandTimeout: SecretDuration

    public static let defaultTimeout = SecretDuration(seconds: 60)

    public init(commandTimeout: SecretDuration = RotationSettings.defaultTimeout) {
        self.commandTimeout = commandTimeout
    }
}

/// What one rotation did.
public struct RotationResult: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable {
        case rotated(from: Int, to: Int)
        /// Not due, rotated meanwhile by someone else, being rotated by another run, or a
        /// manual policy (which only produces notices).
        case skipped(reason: String)
        /// Nothing was stored; the reason never contains a value.
        case failed(reason: String)
    }

    public var environment: EnvironmentName
    public var name: SecretName
    public var outcome: Outcome

    public init(environment: EnvironmentName, name: SecretName, outcome: Outcome) {
        self.environment = environment
        self.name = name
        self.outcome = outcome
    }
}
