import VSecureCore

extension LocalVault {
    /// A live secret's attributes and its current version, sealed, from one statement (one
    /// snapshot, so the two agree). Opening the value is the caller's, with
    /// `open(_:environment:into:)`, into memory it chooses (the server reuses one locked buffer).
    /// The server's hot path: one cached statement instead of a transaction of three.
    public func sealedCurrent(environment: EnvironmentName, name: SecretName) throws(VSecureError) -> (SecretSummary, SealedSecret) {
        try checkEnvironment(environment)
        let statement = try db.prepare("""
            SELECT s.id, s.current_version, s.tags, s.metadata, s.expires_at, s.description, s.created_at, s.updated_at,
                   v.value_length, v.sealed
            FROM secrets s JOIN versions v ON v.secret_id = s.id AND v.version = s.current_version
            WHERE s.environment = ?1 AND s.name = ?2 AND s.deleted_at IS NULL
            """)
        statement.bind(1, environment.rawValue).bind(2, name.rawValue)
        guard try statement.step() else { throw notFound(environment, name) }
        return decodeSealedCurrent(statement, environment: environment, name: name)
    }

    /// The same, with the secret's rotation policy and record from the same statement (a left
    /// join), for the server's single read, which answers with both.
    public func sealedCurrentWithRotation(environment: EnvironmentName,
                                          name: SecretName) throws(VSecureError) -> (SecretSummary, SealedSecret, (RotationPolicy, RotationRecord)?) {
        guard formatVersion >= 2 else {
            let (secret, sealed) = try sealedCurrent(environment: environment, name: name)
            return (secret, sealed, nil)
        }
        try checkEnvironment(environment)
        let statement = try db.prepare("""
            SELECT s.id, s.current_version, s.tags, s.metadata, s.expires_at, s.description, s.created_at, s.updated_at,
                   v.value_length, v.sealed, \(Self.rotationColumns)
            FROM secrets s JOIN versions v ON v.secret_id = s.id AND v.version = s.current_version
            LEFT JOIN rotation r ON r.secret_id = s.id
            WHERE s.environment = ?1 AND s.name = ?2 AND s.deleted_at IS NULL
            """)
        statement.bind(1, environment.rawValue).bind(2, name.rawValue)
        guard try statement.step() else { throw notFound(environment, name) }
        let (secret, sealed) = decodeSealedCurrent(statement, environment: environment, name: name)
        return (secret, sealed, try Self.decodeRotation(statement, from: 10))
    }

    private func decodeSealedCurrent(_ statement: SQLiteStatement, environment: EnvironmentName,
                                     name: SecretName) -> (SecretSummary, SealedSecret) {
        let expiresAt = statement.optionalInt64(4).map(Timestamp.init(secondsSinceEpoch:))
        let secret = SecretSummary(id: statement.text(0), environment: environment, name: name, currentVersion: statement.int(1),
                                   attributes: SecretAttributes(tags: VaultFormat.decodeTags(statement.text(2)),
                                                                metadata: VaultFormat.decodeMetadata(statement.text(3)),
                                                                expiresAt: expiresAt, description: statement.optionalText(5)),
                                   createdAt: Timestamp(secondsSinceEpoch: statement.int64(6)),
                                   updatedAt: Timestamp(secondsSinceEpoch: statement.int64(7)))
        let sealed = SealedSecret(name: name, version: secret.currentVersion, expiresAt: expiresAt, valueLength: statement.int(8),
                                  selectedByTags: false, sealed: statement.blob(9))
        return (secret, sealed)
    }
}
