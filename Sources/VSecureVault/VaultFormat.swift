import VSecureCore

/// The on-disk format, documented in docs/vault-format.md. Changing anything here changes
/// that document and the test vectors.
enum VaultFormat {
    /// Stored in `PRAGMA user_version`.
    static let currentVersion: Int64 = 2

    static let schemaV1 = """
    CREATE TABLE vault_meta(
        key TEXT PRIMARY KEY NOT NULL,
        value BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE secrets(
        id TEXT PRIMARY KEY NOT NULL,
        environment TEXT NOT NULL,
        name TEXT NOT NULL,
        current_version INTEGER NOT NULL,
        tags TEXT NOT NULL,
        metadata TEXT NOT NULL,
        expires_at INTEGER,
        description TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        deleted_at INTEGER,
        UNIQUE(environment, name)
    );
    CREATE TABLE secret_tags(
        tag TEXT NOT NULL,
        secret_id TEXT NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
        PRIMARY KEY(tag, secret_id)
    ) WITHOUT ROWID;
    CREATE INDEX secret_tags_by_secret ON secret_tags(secret_id);
    CREATE TABLE versions(
        secret_id TEXT NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        sealed BLOB NOT NULL,
        value_length INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        action TEXT NOT NULL,
        actor TEXT NOT NULL,
        source_version INTEGER,
        created_at INTEGER NOT NULL,
        tags TEXT NOT NULL,
        metadata TEXT NOT NULL,
        expires_at INTEGER,
        description TEXT,
        PRIMARY KEY(secret_id, version)
    ) WITHOUT ROWID;
    """

    /// Format 2 adds one table: a secret's rotation policy and what happened to it. A row exists
    /// only for a secret that has a policy; values and associated data are unchanged.
    static let rotationTable = """
    CREATE TABLE rotation(
        secret_id TEXT PRIMARY KEY NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
        period INTEGER NOT NULL,
        notify_before INTEGER,
        source TEXT NOT NULL,
        length INTEGER,
        charset TEXT,
        argv TEXT,
        last_rotated_at INTEGER NOT NULL,
        next_due_at INTEGER NOT NULL,
        failing_since INTEGER,
        last_failure_at INTEGER,
        last_failure TEXT,
        failure_count INTEGER NOT NULL DEFAULT 0,
        claim TEXT,
        claimed_until INTEGER
    ) WITHOUT ROWID;
    """

    /// A new vault: format 1's tables plus format 2's.
    static var schema: String { schemaV1 + "\n" + rotationTable }

    /// Forward migrations: `migrations[n]` takes a vault from format n+1 to n+2.
    static let migrations: [String] = [rotationTable]

    enum MetaKey {
        static let vaultID = "vault_id"
        static let createdAt = "created_at"
        static let keyProtection = "key_protection"
        static let wrappedDataKey = "wrapped_data_key"
        static let kdfSalt = "kdf_salt"
        static let kdfOpsLimit = "kdf_opslimit"
        static let kdfMemLimit = "kdf_memlimit"
        static let environments = "environments"
        static let defaultEnvironment = "default_environment"
    }

    static let vaultIDBytes = 16

    /// Associated data of a value box: binds it to its vault, environment, name and version, so
    /// a box copied to another row fails authentication instead of opening as another secret.
    static func valueAssociatedData(vaultID: [UInt8], environment: String, name: String, version: Int) -> [UInt8] {
        // Built in place, one allocation (a launch builds one per value).
        let label = "vsecure/value/v1".utf8
        var ad: [UInt8] = []
        ad.reserveCapacity(label.count + 1 + vaultID.count + 2 + environment.utf8.count + 2 + name.utf8.count + 8)
        ad.append(contentsOf: label)
        ad.append(0)
        ad.append(contentsOf: vaultID)
        appendLengthPrefixed(&ad, environment.utf8)
        appendLengthPrefixed(&ad, name.utf8)
        for shift in stride(from: 56, through: 0, by: -8) { ad.append(UInt8(truncatingIfNeeded: UInt64(version) >> UInt64(shift))) }
        return ad
    }

    /// Associated data of the wrapped data key: binds it to the vault and to how it is protected.
    static func dataKeyAssociatedData(vaultID: [UInt8], protection: KeyProtection) -> [UInt8] {
        var ad = Array("vsecure/data-key/v1".utf8)
        ad.append(0)
        ad += vaultID
        appendLengthPrefixed(&ad, Array(protection.rawValue.utf8))
        return ad
    }

    private static func appendLengthPrefixed(_ out: inout [UInt8], _ bytes: some Collection<UInt8>) {
        out.append(UInt8(bytes.count >> 8))
        out.append(UInt8(bytes.count & 0xFF))
        out.append(contentsOf: bytes)
    }

    // Tags and metadata are stored as text: tags comma-joined (their grammar has no comma),
    // metadata as `key=value` lines (values have no control characters).
    static func encodeTags(_ tags: [Tag]) -> String { tags.map(\.rawValue).joined(separator: ",") }

    static func decodeTags(_ text: String) -> [Tag] {
        text.split(separator: ",").compactMap { try? Tag(String($0)) }
    }

    static func encodeMetadata(_ entries: [MetadataEntry]) -> String {
        entries.map { "\($0.key)=\($0.value)" }.joined(separator: "\n")
    }

    static func decodeMetadata(_ text: String) -> [MetadataEntry] {
        text.split(separator: "\n").compactMap { try? MetadataEntry(parsing: String($0)) }
    }
}

/// How the data key is wrapped.
public enum KeyProtection: String, Sendable {
    /// By a 32-byte key file.
    case keyFile = "keyfile"
    /// By a key derived from a passphrase with Argon2id.
    case passphrase
}
