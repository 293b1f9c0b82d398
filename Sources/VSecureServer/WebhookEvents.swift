import Synchronization
import VSecureCore
import VSecureCrypto
import VSecureStore

/// What webhooks announce about a secret. The body names the secret, its versions, times and a
/// reason; it never holds a value (rotation failure reasons are value-free by construction,
/// see `RotationFailure`).
public struct SecretEvent: Sendable {
    public enum Kind: String, CaseIterable, Sendable {
        case expiring = "secret.expiring"
        case expired = "secret.expired"
        case rotated = "secret.rotated"
        case rotationFailed = "secret.rotation_failed"
    }

    /// Sent only by `POST /webhooks/{id}/test`; nobody subscribes to it.
    public static let ping = "ping"

    public var id: String
    public var type: String
    public var createdAt: Timestamp
    public var environment: EnvironmentName
    public var name: SecretName
    public var version: Int?
    public var previousVersion: Int?
    public var expiresAt: Timestamp?
    /// When a rotation is due (`secret.expiring` inside a policy's notice window).
    public var dueAt: Timestamp?
    public var reason: String?

    public init(_ kind: Kind, at createdAt: Timestamp, environment: EnvironmentName, name: SecretName, version: Int? = nil,
                previousVersion: Int? = nil, expiresAt: Timestamp? = nil, dueAt: Timestamp? = nil, reason: String? = nil) {
        id = Self.newID()
        type = kind.rawValue
        self.createdAt = createdAt
        self.environment = environment
        self.name = name
        self.version = version
        self.previousVersion = previousVersion
        self.expiresAt = expiresAt
        self.dueAt = dueAt
        self.reason = reason
    }

    static func newID() -> String { "evt_" + hexString(Sodium.randomBytes(8)) }

    /// The access path filters match: `production/API_KEY`.
    public var path: String { "\(environment.rawValue)/\(name.rawValue)" }

    /// `{"id", "type", "createdAt", "data": {…}}`, compact JSON. Every data member is present,
    /// null when it does not apply, so receivers see one shape for every event type.
    public var body: [UInt8] {
        let data: [(String, JSONValue)] = [
            ("environment", .string(environment.rawValue)),
            ("name", .string(name.rawValue)),
            ("version", version.map { .int($0) } ?? .null),
            ("previousVersion", previousVersion.map { .int($0) } ?? .null),
            ("expiresAt", .optional(expiresAt?.iso8601)),
            ("dueAt", .optional(dueAt?.iso8601)),
            ("reason", .optional(reason)),
        ]
        return Self.envelope(id: id, type: type, createdAt: createdAt, data: .object(data))
    }

    static func envelope(id: String, type: String, createdAt: Timestamp, data: JSONValue) -> [UInt8] {
        Array(JSONValue.object([("id", .string(id)), ("type", .string(type)), ("createdAt", .string(createdAt.iso8601)),
                                ("data", data)]).serialized(indent: nil).utf8)
    }
}

/// The hook through which `SecretRotator` reports every rotation it finishes. Nothing listens
/// until a `WebhookDispatcher` attaches itself; reporting then waits only for the events to be
/// queued in `server.db`, never for a delivery.
public final class SecretEventRelay: Sendable {
    public typealias Listener = @Sendable (RotationResult) async -> Void
    private let listener = Mutex<Listener?>(nil)

    public init() {}

    public func attach(_ listener: @escaping Listener) {
        self.listener.withLock { $0 = listener }
    }

    public func detach() {
        listener.withLock { $0 = nil }
    }

    func rotationFinished(_ result: RotationResult) async {
        guard let listener = listener.withLock({ $0 }) else { return }
        await listener(result)
    }
}
