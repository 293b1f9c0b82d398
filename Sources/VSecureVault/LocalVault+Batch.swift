import VSecureCore
import VSecureCrypto

/// A secret's current version as stored: ciphertext and public attributes. Opening it needs the
/// vault's data key and a destination buffer, so the plaintext can be written straight into
/// the launcher's locked environment block and nowhere else.
public struct SealedSecret: Sendable {
    public let name: SecretName
    public let version: Int
    public let expiresAt: Timestamp?
    public let valueLength: Int
    let sealed: [UInt8]
}

extension LocalVault {
    /// One query for everything a launch needs: the named secrets plus every secret of the
    /// environment carrying all of `allTags` (when not empty). Deleted secrets are never returned.
    public func fetchSealed(environment: EnvironmentName, names: [SecretName], allTags: [Tag]) throws(VSecureError) -> [SealedSecret] {
        try checkEnvironment(environment)
        if names.isEmpty && allTags.isEmpty { return [] }
        let columns = """
            SELECT s.name, s.current_version, s.expires_at, v.value_length, v.sealed
            FROM secrets s JOIN versions v ON v.secret_id = s.id AND v.version = s.current_version
            WHERE s.environment = ?1 AND s.deleted_at IS NULL
            """
        var parts: [String] = []
        if !names.isEmpty { parts.append(columns + " AND s.name IN (SELECT value FROM json_each(?2))") }
        if !allTags.isEmpty {
            parts.append(columns + """
                 AND s.id IN (SELECT secret_id FROM secret_tags WHERE tag IN (SELECT value FROM json_each(?3))
                              GROUP BY secret_id HAVING count(*) = ?4)
                """)
        }
        // Names and tags have grammars without quotes or backslashes, so they are valid JSON strings as-is.
        let statement = try db.prepare(parts.joined(separator: " UNION ALL "))
        statement.bind(1, environment.rawValue)
            .bind(2, "[" + names.map { "\"\($0.rawValue)\"" }.joined(separator: ",") + "]")
            .bind(3, "[" + allTags.map { "\"\($0.rawValue)\"" }.joined(separator: ",") + "]")
            .bind(4, allTags.count)
        var seen = Set<String>()
        var result: [SealedSecret] = []
        result.reserveCapacity(names.count)
        while try statement.step() {
            let text = statement.text(0)
            guard seen.insert(text).inserted, let name = try? SecretName(text) else { continue }
            result.append(SealedSecret(name: name, version: statement.int(1),
                                       expiresAt: statement.optionalInt64(2).map(Timestamp.init(secondsSinceEpoch:)),
                                       valueLength: statement.int(3), sealed: statement.blob(4)))
        }
        return result
    }

    /// Decrypts `secret` into `destination`, which must be exactly `secret.valueLength` bytes.
    /// A box that fails authentication or does not match its recorded length is reported as
    /// tampering, naming the secret, and the destination is zeroed.
    public func open(_ secret: SealedSecret, environment: EnvironmentName, into destination: UnsafeMutableRawBufferPointer) throws(VSecureError) {
        guard AEAD.plaintextLength(ofBoxLength: secret.sealed.count) == secret.valueLength,
              destination.count == secret.valueLength else {
            throw tampered(environment, secret.name, secret.version)
        }
        let ad = VaultFormat.valueAssociatedData(vaultID: vaultID, environment: environment.rawValue,
                                                 name: secret.name.rawValue, version: secret.version)
        let opened = secret.sealed.withUnsafeBytes { box in
            Result { () throws(AEAD.Failure) in try AEAD.open(box, associatedData: ad, key: dataKey, into: destination) }
        }
        guard case .success = opened else { throw tampered(environment, secret.name, secret.version) }
    }
}
