import VSecureCore

// Server request bodies. `JSONBody.parse` (VSecureServer) needs Hummingbird's Request, so this
// fuzzes what it runs on the bytes: `JSONParser.parse` (strict, depth 64), then the checks its
// field readers and routes apply to the values: names, environments, tags, metadata, durations,
// times, patterns and `valueBase64`. What parses must also survive `serialized()` and a re-parse.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let value: JSONValue
    do { value = try JSONParser.parse(bytes) } catch {
        guard error.message.hasPrefix("invalid JSON") else { fatalError("unexpected JSON error: \(error.message)") }
        return 0
    }
    for indent in [nil, 2] as [Int?] {
        let written = value.serialized(indent: indent)
        guard let again = try? JSONParser.parse(Array(written.utf8)), again == value else {
            fatalError("JSONValue does not read back from its serialized form:\n\(written)")
        }
    }
    guard case .object(let members) = value else { return 0 }
    for (key, member) in members {
        switch member {
        case .string(let text): check(field: key, text)
        case .array(let items):
            for case .string(let text) in items { check(field: key, text) }
        case .object(let inner):
            for (name, item) in inner {
                _ = try? MetadataEntry(key: name, value: { if case .string(let t) = item { return t } else { return "" } }())
            }
        default: break
        }
    }
    return 0
}

private func check(field: String, _ text: String) {
    switch field {
    case "valueBase64":
        if let decoded = Base64.decode(text) {
            let again = decoded.withUnsafeBytes { Base64.encode($0) }
            guard Base64.decode(again) == decoded else { fatalError("base64 round trip") }
        }
    case "name": _ = try? SecretName(text)
    case "environment": _ = try? EnvironmentName(text)
    case "tags": _ = try? Tag.parseLists([text])
    case "expiresIn", "period", "notifyBefore": _ = try? SecretDuration(parsing: text)
    case "expiresAt": _ = try? Timestamp(iso8601: text)
    case "pattern": _ = try? PathPattern(text)
    default:
        _ = try? SecretName(text)
        _ = try? SecretDuration(parsing: text)
    }
}
