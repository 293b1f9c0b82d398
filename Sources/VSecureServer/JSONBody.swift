import Hummingbird
import NIOCore
import VSecureCore
import VSecureCrypto

/// A request body parsed strictly (duplicate keys, deep nesting and non-JSON refused), with
/// typed field access whose errors name the field and never echo its content.
struct JSONBody: Sendable {
    let members: [(String, JSONValue)]
    /// The body as received, for idempotency digests.
    var raw: [UInt8] = []

    static func parse(_ request: Request, limit: Int, timeoutSeconds: Int64 = 30) async throws -> JSONBody {
        try parse(bytes: try await collect(request, limit: limit, timeoutSeconds: timeoutSeconds))
    }

    /// A body already collected (`collect`), parsed as `parse(_:limit:timeoutSeconds:)` does.
    static func parse(bytes: [UInt8]) throws -> JSONBody {
        let value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch {
            throw APIError(.validationError, error.message)
        }
        guard case .object(let members) = value else { throw APIError(.validationError, "the body must be a JSON object") }
        var body = JSONBody(members: members)
        body.raw = bytes
        return body
    }

    /// A JSON request's body as bytes: 415 unless it is `application/json`, 413 past `limit`
    /// (a declared length at once, a chunked body as soon as it passes), 408 when it has not
    /// arrived whole within `timeoutSeconds`.
    static func collect(_ request: Request, limit: Int, timeoutSeconds: Int64) async throws -> [UInt8] {
        // The media type exactly, optionally followed by parameters such as charset.
        let type = request.headers[.contentType]?.lowercased() ?? ""
        let mediaType = type.split(separator: ";", maxSplits: 1).first.map { String($0.filter { !$0.isWhitespace }) } ?? ""
        guard mediaType == "application/json" else {
            throw APIError(.unsupportedMediaType, "the body must be application/json")
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw APIError(.payloadTooLarge, "the request body is \(length) bytes; the limit is \(limit)")
        }
        var buffer = try await withThrowingTaskGroup(of: ByteBuffer.self) { group in
            group.addTask { try await request.body.collect(upTo: limit) }
            group.addTask {
                try await Task.sleep(for: .seconds(timeoutSeconds))
                throw APIError(.requestTimeout, "the request body did not arrive within \(timeoutSeconds) seconds")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }

    init(members: [(String, JSONValue)]) { self.members = members }

    func rejectUnknown(_ allowed: Set<String>) throws {
        if let unknown = members.first(where: { !allowed.contains($0.0) }) {
            throw APIError(.validationError, "unknown field \(Quoted(unknown.0))", details: ["allowed": allowed.sorted().joined(separator: ", ")])
        }
    }

    subscript(key: String) -> JSONValue? { members.first { $0.0 == key }?.1 }

    func has(_ key: String) -> Bool { self[key] != nil }

    func string(_ key: String) throws -> String? {
        switch self[key] {
        case nil, .null?: return nil
        case .string(let text)?: return text
        default: throw APIError(.validationError, "field \(Quoted(key)) must be a string")
        }
    }

    func int(_ key: String) throws -> Int? {
        switch self[key] {
        case nil, .null?: return nil
        case .int(let value)?: return Int(value)
        default: throw APIError(.validationError, "field \(Quoted(key)) must be a whole number")
        }
    }

    func bool(_ key: String) throws -> Bool? {
        switch self[key] {
        case nil, .null?: return nil
        case .bool(let value)?: return value
        default: throw APIError(.validationError, "field \(Quoted(key)) must be true or false")
        }
    }

    func strings(_ key: String) throws -> [String]? {
        switch self[key] {
        case nil, .null?: return nil
        case .array(let items)?:
            var out: [String] = []
            for item in items {
                guard case .string(let text) = item else { throw APIError(.validationError, "field \(Quoted(key)) must be a list of strings") }
                out.append(text)
            }
            return out
        default: throw APIError(.validationError, "field \(Quoted(key)) must be a list of strings")
        }
    }

    func stringMap(_ key: String) throws -> [(String, String)]? {
        switch self[key] {
        case nil, .null?: return nil
        case .object(let members)?:
            var out: [(String, String)] = []
            for (name, value) in members {
                guard case .string(let text) = value else { throw APIError(.validationError, "field \(Quoted(key)).\(Quoted(name)) must be a string") }
                out.append((name, text))
            }
            return out
        default: throw APIError(.validationError, "field \(Quoted(key)) must be an object of strings")
        }
    }

    func object(_ key: String) throws -> JSONBody? {
        switch self[key] {
        case nil, .null?: return nil
        case .object(let members)?: return JSONBody(members: members)
        default: throw APIError(.validationError, "field \(Quoted(key)) must be an object")
        }
    }

    /// `value` (text) or `valueBase64` (any bytes), into locked memory.
    func secretValue(required: Bool) throws -> SecureBytes? {
        let text = try string("value")
        let encoded = try string("valueBase64")
        if text != nil && encoded != nil { throw APIError(.validationError, "give either value or valueBase64, not both") }
        if let text {
            var copy = text
            return copy.withUTF8 { SecureBytes(copying: UnsafeRawBufferPointer($0)) }
        }
        if let encoded {
            guard let bytes = Base64.decode(encoded) else { throw APIError(.validationError, "field 'valueBase64' is not valid base64") }
            var mutable = bytes
            defer { Sodium.wipe(&mutable) }
            return mutable.withUnsafeBytes { SecureBytes(copying: $0) }
        }
        if required { throw APIError(.validationError, "field 'value' is required") }
        return nil
    }
}

/// JSON responses.
enum JSONResponse {
    static func make(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ResponseJSON.body(value)))
    }
}
