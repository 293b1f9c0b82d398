/// The JSON shape of secrets and versions, shared by `vsecure --output json` and the HTTP API
/// so that scripts see the same fields local or remote. Never a value.
extension SecretSummary {
    public func jsonMembers(now: Timestamp) -> [(String, JSONValue)] {
        [
            ("id", .string(id)),
            ("name", .string(name.rawValue)),
            ("environment", .string(environment.rawValue)),
            ("path", .string(path)),
            ("version", .int(currentVersion)),
            ("tags", .array(attributes.tags.map { .string($0.rawValue) })),
            ("metadata", .object(attributes.metadata.map { ($0.key, .string($0.value)) })),
            ("description", .optional(attributes.description)),
            ("expiresAt", .optional(attributes.expiresAt?.iso8601)),
            ("expired", .bool(isExpired(at: now))),
            ("createdAt", .string(createdAt.iso8601)),
            ("updatedAt", .string(updatedAt.iso8601)),
        ]
    }
}

extension VersionSummary {
    public var json: JSONValue {
        .object([
            ("version", .int(version)),
            ("action", .string(action.rawValue)),
            ("actor", .string(actor)),
            ("createdAt", .string(createdAt.iso8601)),
            ("valueLength", .int(valueLength)),
            ("fingerprint", .string(fingerprint)),
            ("sourceVersion", sourceVersion.map { .int($0) } ?? .null),
            ("tags", .array(attributes.tags.map { .string($0.rawValue) })),
            ("metadata", .object(attributes.metadata.map { ($0.key, .string($0.value)) })),
            ("expiresAt", .optional(attributes.expiresAt?.iso8601)),
        ])
    }
}

/// A value in JSON: `value` when it is UTF-8 text, else `valueBase64`; `valueEncoding` says which.
public func jsonValueMembers(_ bytes: UnsafeRawBufferPointer) -> [(String, JSONValue)] {
    if let text = String(validating: bytes, as: UTF8.self) {
        return [("value", .string(text)), ("valueEncoding", .string("utf8"))]
    }
    return [("valueBase64", .string(Base64.encode(bytes))), ("valueEncoding", .string("base64"))]
}
