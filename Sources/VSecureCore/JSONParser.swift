/// Ordinary JSON documents (`secrets:import` files, API request bodies) as `JSONValue`s, read by
/// the package's one JSON reader, `LockedJSON`: strict, bounded depth, duplicate keys refused,
/// whole numbers only, invalid UTF-8 refused. Errors give line and column, never the text of a
/// string, which may be a secret.
public enum JSONParser {
    public static let maxDepth = 64
    static let failure = LockedJSON.Failure(status: .usage, subject: "invalid JSON", maxDepth: maxDepth)

    public static func parse(_ bytes: [UInt8]) throws(VSecureError) -> JSONValue {
        try bytes.withRawBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) -> JSONValue in
            try value(of: try LockedJSON.parse(raw, failure: failure), in: raw)
        }
    }

    private static func value(of node: LockedJSON.Node, in bytes: UnsafeRawBufferPointer) throws(VSecureError) -> JSONValue {
        switch node {
        case .null: return .null
        case .bool(let flag): return .bool(flag)
        case .number(let range):
            // The reader has checked the grammar and the range of every number.
            return .int(Int64(LockedJSON.text(range, in: bytes)) ?? 0)
        case .string(let range, let escaped):
            let decoded = try LockedJSON.decodedBytes(range, escaped: escaped, in: bytes, failure: failure)
            guard let text = String(validating: decoded, as: UTF8.self) else {
                throw VSecureError(.usage, "invalid JSON: a string is not valid UTF-8 (at byte \(range.lowerBound))")
            }
            return .string(text)
        case .array(let items):
            var values: [JSONValue] = []
            values.reserveCapacity(items.count)
            for item in items { values.append(try value(of: item, in: bytes)) }
            return .array(values)
        case .object(let members):
            var values: [(String, JSONValue)] = []
            values.reserveCapacity(members.count)
            for (key, item) in members { values.append((key, try value(of: item, in: bytes))) }
            return .object(values)
        }
    }
}
