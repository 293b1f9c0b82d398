import NIOCore
import Synchronization
import VSecureCore
import VSecureCrypto
import VSecureVault

/// The server's store: the vault and the API-key registry behind one actor, because a SQLite
/// connection serves one caller at a time. Handlers call in with value types and get value
/// types back. The hot reads (one secret, a batch) do not enter the actor: they run on the
/// calling task, on `readers`, other connections to the same vault. What never changes while
/// the store is open (environments, the clock) and the API-key table (its own lock) are used
/// without entering the actor either.
public actor SecretService {
    let vault: LocalVault
    let registry: ServerRegistry
    nonisolated let readers: VaultReaders
    nonisolated let clock: @Sendable () -> Timestamp
    /// Authenticates requests from any thread.
    nonisolated let keys: APIKeyTable
    public nonisolated let defaultEnvironment: EnvironmentName
    public nonisolated let environments: [EnvironmentName]
    /// What rotation policies API clients may set, and how the server rotates.
    public nonisolated let rotationSettings: ServerRotationSettings
    /// Rotates on a connection of its own; nil when the service was built without one (then
    /// `POST …/rotate` answers 503).
    public nonisolated let rotator: SecretRotator?
    /// The audit log. A route that reads or changes anything answers only after its entry is
    /// durable (see `AuditTrail.record`).
    public nonisolated let audit: AuditTrail
    /// Writes sync to disk: the actor runs on a serial dispatch queue, never on an event loop.
    private nonisolated let executor = StoreExecutor()
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    public init(vault: LocalVault, readers: VaultReaders, registry: ServerRegistry, clock: @escaping @Sendable () -> Timestamp,
                rotationSettings: ServerRotationSettings = ServerRotationSettings(), rotator: SecretRotator? = nil,
                audit: AuditTrail) {
        self.audit = audit
        self.rotationSettings = rotationSettings
        self.rotator = rotator
        self.vault = vault
        self.readers = readers
        self.registry = registry
        self.clock = clock
        keys = registry.keys
        defaultEnvironment = vault.defaultEnvironment
        environments = vault.environments
    }

    public var now: Timestamp { clock() }

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

    /// What a single read found: the response body (the secret's attributes and one version's
    /// value), wiped if it is dropped unsent, and the current version, for the ETag.
    struct SecretRead: ~Copyable, Sendable {
        var body: SecretBody
        var currentVersion: Int
    }

    /// `GET /secrets/{name}`. The current version is opened into the locked scratch buffer and
    /// escaped from there into the response buffer.
    nonisolated func readSecret(environment: EnvironmentName, name: SecretName, version: Int?,
                                allowExpired: Bool) throws(VSecureError) -> SecretRead {
        let now = clock()
        let (body, currentVersion) = try readers.withReader { (vault: LocalVault, scratch: ValueScratch) throws(VSecureError) in
            try Self.readSecret(vault: vault, scratch: scratch, environment: environment, name: name, version: version,
                                allowExpired: allowExpired, now: now)
        }
        return SecretRead(body: SecretBody(body), currentVersion: currentVersion)
    }

    private static func readSecret(vault: LocalVault, scratch: ValueScratch, environment: EnvironmentName, name: SecretName,
                                   version: Int?, allowExpired: Bool,
                                   now: Timestamp) throws(VSecureError) -> (body: ByteBuffer, currentVersion: Int) {
        func checkExpiry(_ secret: SecretSummary) throws(VSecureError) {
            if let expiresAt = secret.attributes.expiresAt, expiresAt <= now, !allowExpired {
                throw VSecureError(.expired, "\(name) in \(environment) expired at \(expiresAt.iso8601)", hint: "allowExpired=true reads it anyway")
            }
        }
        // The members of `responseMembers` with `version` (the one read) and `currentVersion`
        // after `path`, written one by one instead of building the list first.
        func body(_ secret: SecretSummary, version: Int, rotation: (RotationPolicy, RotationRecord)?,
                  value: UnsafeRawBufferPointer) throws(VSecureError) -> ByteBuffer {
            let attributes = secret.attributes
            var json = ResponseJSON()
            json.openObject()
            json.member("id", .string(secret.id))
            json.member("name", .string(name.rawValue))
            json.member("environment", .string(environment.rawValue))
            json.member("path", .string(secret.path))
            json.member("version", .int(version))
            json.member("currentVersion", .int(secret.currentVersion))
            json.key("tags")
            json.openArray()
            for tag in attributes.tags { json.value(.string(tag.rawValue)) }
            json.closeArray()
            json.key("metadata")
            json.openObject()
            for entry in attributes.metadata { json.member(entry.key, .string(entry.value)) }
            json.closeObject()
            json.member("description", .optional(attributes.description))
            json.member("expiresAt", .optional(attributes.expiresAt?.iso8601))
            json.member("expired", .bool(secret.isExpired(at: now)))
            json.member("createdAt", .string(secret.createdAt.iso8601))
            json.member("updatedAt", .string(secret.updatedAt.iso8601))
            for (key, member) in RotationPolicyJSON.members(rotation, expiresAt: attributes.expiresAt, now: now) {
                json.member(key, member)
            }
            json.valueMembers(value)
            json.closeObject()
            return json.buffer
        }
        if let version {
            let (secret, info, value) = try vault.get(environment: environment, name: name, version: version)
            try checkExpiry(secret)
            let rotation = try vault.rotation(secretID: secret.id)
            return (try value.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
                try body(secret, version: info.version, rotation: rotation, value: raw)
            }, secret.currentVersion)
        }
        let (secret, sealed, rotation) = try vault.sealedCurrentWithRotation(environment: environment, name: name)
        try checkExpiry(secret)
        let response = try scratch.withBuffer(count: sealed.valueLength) { (raw: UnsafeMutableRawBufferPointer) throws(VSecureError) in
            try vault.open(sealed, environment: environment, into: raw)
            return try body(secret, version: sealed.version, rotation: rotation, value: UnsafeRawBufferPointer(raw))
        }
        return (response, secret.currentVersion)
    }

    /// What a batch read found: the response (wiped if it is dropped unsent) and the versions it
    /// served, or the first secret the caller may not read (then nothing was opened).
    enum BatchRead: ~Copyable, Sendable {
        case served(SecretBody, items: [AuditEvent.Item])
        case denied(SecretName)
    }

    /// `BatchRead` as it leaves the reader connection's lock (the result there must be copyable).
    private enum BatchFound: Sendable {
        case served(ByteBuffer, items: [AuditEvent.Item])
        case denied(SecretName)
    }

    /// `POST /secrets/batch/get`: every value of `names` and the tag selections, each opened in
    /// turn into the scratch buffer and escaped into the response. `permits` is asked about
    /// every secret found before any value is opened.
    nonisolated func readBatch(environment: EnvironmentName, names: [SecretName], tagSelections: [[VSecureCore.Tag]],
                               allowExpired: Bool, permits: (SecretName) -> Bool = { _ in true }) throws(VSecureError) -> BatchRead {
        let now = clock()
        let found = try readers.withReader { (vault: LocalVault, scratch: ValueScratch) throws(VSecureError) in
            try Self.readBatch(vault: vault, scratch: scratch, environment: environment, names: names, tagSelections: tagSelections,
                               allowExpired: allowExpired, now: now, permits: permits)
        }
        switch found {
        case .served(let body, let items): return .served(SecretBody(body), items: items)
        case .denied(let name): return .denied(name)
        }
    }

    private static func readBatch(vault: LocalVault, scratch: ValueScratch, environment: EnvironmentName, names: [SecretName],
                                  tagSelections: [[VSecureCore.Tag]], allowExpired: Bool, now: Timestamp,
                                  permits: (SecretName) -> Bool) throws(VSecureError) -> BatchFound {
        let sealed = try vault.fetchSealed(environment: environment, names: names, tagSelections: tagSelections)
        if let denied = sealed.first(where: { !permits($0.name) }) { return .denied(denied.name) }
        var items: [AuditEvent.Item] = []
        // Sized up front for the worst case (every byte a control character, escaped as \u00XX:
        // six bytes), so the buffer does not grow mid-response: growing copies the values
        // already written and frees the old storage unwiped. Past 1 MiB of values the estimate
        // assumes little escaping, to keep a large batch's reservation reasonable.
        let total = sealed.reduce(0) { $0 + $1.valueLength }
        let perByte = total <= 1 << 20 ? 6 : 2
        var json = ResponseJSON(capacity: 256 + perByte * total + 128 * sealed.count)
        json.openObject()
        json.key("environment")
        json.value(.string(environment.rawValue))
        json.key("data")
        json.openArray()
        var expired: [JSONValue] = []
        for secret in sealed {
            if let expiresAt = secret.expiresAt, expiresAt <= now, !allowExpired {
                expired.append(.string(secret.name.rawValue))
                continue
            }
            items.append(AuditEvent.Item(name: secret.name.rawValue, version: secret.version))
            json.openObject()
            for (key, member) in [("name", JSONValue.string(secret.name.rawValue)), ("version", .int(secret.version)),
                                  ("expiresAt", .optional(secret.expiresAt?.iso8601))] {
                json.key(key)
                json.value(member)
            }
            do throws(VSecureError) {
                try scratch.withBuffer(count: secret.valueLength) { (raw: UnsafeMutableRawBufferPointer) throws(VSecureError) in
                    try vault.open(secret, environment: environment, into: raw)
                    json.valueMembers(UnsafeRawBufferPointer(raw))
                }
            } catch {
                // A value that fails to open (a damaged or altered row) ends the read: the values
                // already written into the response are wiped before it is dropped.
                json.wipe()
                throw error
            }
            json.closeObject()
        }
        json.closeArray()
        let found = Set(sealed.map(\.name))
        json.key("missing")
        json.value(.array(names.filter { !found.contains($0) }.map { .string($0.rawValue) }))
        json.key("expired")
        json.value(.array(expired))
        json.closeObject()
        return .served(json.buffer, items: items)
    }
}

extension LocalVault {
    /// A secret as responses show it: its attributes, `rotationPolicy` and `rotation`.
    func responseMembers(_ secret: SecretSummary, now: Timestamp) throws(VSecureError) -> [(String, JSONValue)] {
        secret.jsonMembers(now: now)
            + RotationPolicyJSON.members(try rotation(secretID: secret.id), expiresAt: secret.attributes.expiresAt, now: now)
    }
}

/// One locked buffer (`sodium_malloc`: guard pages, locked, left out of core dumps) that values
/// are decrypted into for responses, instead of a new locked allocation (mmap, mprotect, mlock
/// and back) per value. Wiped after every use; a value larger than the buffer gets a locked
/// allocation of its own. Each read connection has its own, used under that connection's lock.
final class ValueScratch {
    private let storage: SecureBytes

    init(capacity: Int) {
        storage = SecureBytes(count: capacity)
    }

    func withBuffer<R, E: Error>(count: Int, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        guard count <= storage.count else {
            let large = SecureBytes(count: count)
            return try large.withUnsafeMutableBytes(body)
        }
        return try storage.withUnsafeMutableBytes { (whole: UnsafeMutableRawBufferPointer) throws(E) -> R in
            let slice = UnsafeMutableRawBufferPointer(rebasing: whole[0..<count])
            defer { if let base = slice.baseAddress, count > 0 { Sodium.wipe(base, count: count) } }
            return try body(slice)
        }
    }
}

/// Read-only use of the vault from any task: a few connections of their own to the vault file,
/// each with its scratch buffer, behind its own lock. WAL lets them read while the actor's
/// connection writes, and each read sees every write answered before it began (a write commits
/// before its answer is sent). A read takes the first free connection, or waits for one.
public final class VaultReaders: Sendable {
    struct Reader {
        let vault: LocalVault
        let scratch: ValueScratch
    }

    final class Slot: Sendable {
        let reader: Mutex<Reader>
        init(_ reader: consuming sending Reader) { self.reader = Mutex(reader) }
    }

    private let slots: [Slot]
    private let start = Atomic<UInt>(0)

    /// `count` connections (at least one), each opened by `open`.
    public init(count: Int, scratchBytes: Int = 16 * 1024, open: () throws(VSecureError) -> LocalVault) throws(VSecureError) {
        guard count >= 1 else { throw VSecureError.usage("a server needs at least one read connection") }
        var slots: [Slot] = []
        for _ in 0..<count {
            slots.append(Slot(Reader(vault: try open(), scratch: ValueScratch(capacity: scratchBytes))))
        }
        self.slots = slots
    }

    func withReader<R: Sendable>(_ body: (LocalVault, ValueScratch) throws(VSecureError) -> R) throws(VSecureError) -> R {
        let count = UInt(slots.count)
        let first = start.add(1, ordering: .relaxed).oldValue % count
        for offset in 0..<count {
            let slot = slots[Int((first + offset) % count)]
            if let result = try slot.reader.withLockIfAvailable({ (reader: inout Reader) throws(VSecureError) -> R in
                try body(reader.vault, reader.scratch)
            }) {
                return result
            }
        }
        return try slots[Int(first)].reader.withLock { (reader: inout Reader) throws(VSecureError) -> R in
            try body(reader.vault, reader.scratch)
        }
    }
}
