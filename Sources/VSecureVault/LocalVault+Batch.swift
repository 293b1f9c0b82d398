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
    /// True when a tag selection matched it (it may also have been asked for by name).
    public internal(set) var selectedByTags: Bool
    let sealed: [UInt8]
    /// From its rotation policy, if it has one: when the next rotation is due, and how long
    /// before that to warn. (Last, with defaults, so readers that do not ask keep compiling.)
    public internal(set) var rotationDueAt: Timestamp? = nil
    public internal(set) var rotationNotifyBefore: SecretDuration? = nil
}

extension LocalVault {
    /// One query for everything a launch needs: the named secrets plus, for each tag selection,
    /// every secret of the environment carrying all of its tags. Deleted secrets are never
    /// returned; a name that does not exist is simply absent from the result.
    public func fetchSealed(environment: EnvironmentName, names: [SecretName], tagSelections: [[Tag]]) throws(VSecureError) -> [SealedSecret] {
        try checkEnvironment(environment)
        let selections = tagSelections.filter { !$0.isEmpty }
        if names.isEmpty && selections.isEmpty { return [] }
        // The last column says which part of the union found the row: 0 by name, 1 by tags.
        // A format-1 vault left unmigrated on a read-only file system has no rotation table.
        let hasRotation = formatVersion >= 2
        func columns(_ selectedByTags: Int) -> String {
            """
            SELECT s.name, s.current_version, s.expires_at, v.value_length, v.sealed, \(selectedByTags),
                \(hasRotation ? "r.next_due_at, r.notify_before" : "NULL, NULL")
            FROM secrets s JOIN versions v ON v.secret_id = s.id AND v.version = s.current_version
                \(hasRotation ? "LEFT JOIN rotation r ON r.secret_id = s.id" : "")
            WHERE s.environment = ?1 AND s.deleted_at IS NULL
            """
        }
        var parts: [String] = []
        if !names.isEmpty { parts.append(columns(0) + " AND s.name IN (SELECT value FROM json_each(?2))") }
        for index in selections.indices {
            let list = Int32(3 + 2 * index), count = list + 1
            parts.append(columns(1) + """
                 AND s.id IN (SELECT secret_id FROM secret_tags WHERE tag IN (SELECT value FROM json_each(?\(list)))
                              GROUP BY secret_id HAVING count(*) = ?\(count))
                """)
        }
        // Names and tags have grammars without quotes or backslashes, so they are valid JSON strings as-is.
        // Joined by hand: `joined(separator:)` is generic code in the standard library, which
        // costs its first caller a conformance lookup at run time (see StringIndex).
        var sql = ""
        for part in parts { sql += sql.isEmpty ? part : " UNION ALL " + part }
        // Built as bytes, one allocation: string concatenation cost a launch of 100 names about
        // 130,000 instructions.
        func jsonList(_ strings: [String]) -> String {
            var length = 2
            for string in strings { length += string.utf8.count + 3 }
            var list: [UInt8] = []
            list.reserveCapacity(length)
            list.append(UInt8(ascii: "["))
            for (index, string) in strings.enumerated() {
                if index > 0 { list.append(UInt8(ascii: ",")) }
                list.append(UInt8(ascii: "\""))
                list.append(contentsOf: string.utf8)
                list.append(UInt8(ascii: "\""))
            }
            list.append(UInt8(ascii: "]"))
            return String(decoding: list, as: UTF8.self)
        }
        let statement = try db.prepare(sql)
        statement.bind(1, environment.rawValue)
            .bind(2, jsonList(names.map(\.rawValue)))
        for (index, selection) in selections.enumerated() {
            let unique = StringIndex(selection.map(\.rawValue)).keys
            statement.bind(Int32(3 + 2 * index), jsonList(unique))
                .bind(Int32(4 + 2 * index), unique.count)
        }
        // Rows by name, numbered as in `result` (a StringIndex rather than a Dictionary: see there).
        var positions = StringIndex(capacity: names.count)
        var result: [SealedSecret] = []
        result.reserveCapacity(names.count)
        while try statement.step() {
            let text = statement.text(0)
            let selected = statement.int(5) == 1
            if let position = positions.index(of: text) {
                if selected { result[position].selectedByTags = true }
                continue
            }
            guard let name = try? SecretName(text) else { continue }
            positions.insert(text)
            result.append(SealedSecret(name: name, version: statement.int(1),
                                       expiresAt: statement.optionalInt64(2).map(Timestamp.init(secondsSinceEpoch:)),
                                       valueLength: statement.int(3), selectedByTags: selected, sealed: statement.blob(4),
                                       rotationDueAt: statement.optionalInt64(6).map(Timestamp.init(secondsSinceEpoch:)),
                                       rotationNotifyBefore: statement.optionalInt64(7).map(SecretDuration.init(seconds:))))
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

