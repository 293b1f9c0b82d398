import HTTPTypes
import Hummingbird
import NIOCore
import VSecureCore
import VSecureVault

extension HTTPField.Name {
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    static let idempotentReplayed = HTTPField.Name("Idempotent-Replayed")!
}

extension SecretService {
    /// Runs a write once per `Idempotency-Key`: a replay of the same request returns the first
    /// answer (and makes no second version); the same key with a different request is a 409.
    /// Lookup, operation and record happen in one actor turn, so two concurrent replays cannot
    /// both run the operation. Only answers without secret values are ever recorded.
    nonisolated func idempotent(_ request: Request, context: ServerContext, body: JSONBody,
                                _ operation: @escaping @Sendable (LocalVault, Timestamp) throws(VSecureError) -> (HTTPResponse.Status, JSONValue))
        async throws -> Response {
        var idempotencyKey: String?
        if let header = request.headers[.idempotencyKey] {
            guard (1...255).contains(header.utf8.count), header.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
                throw APIError(.validationError, "Idempotency-Key must be 1 to 255 printable characters")
            }
            idempotencyKey = header
        }
        let parts = [Array(request.method.rawValue.utf8), Array(request.uri.description.utf8), body.raw]
        let (status, bytes, replayed) = try await performOnce(keyID: context.apiKey?.id ?? "", idempotencyKey: idempotencyKey,
                                                              parts: parts, operation)
        var headers: HTTPFields = [.contentType: "application/json"]
        if replayed { headers[.idempotentReplayed] = "true" }
        return Response(status: HTTPResponse.Status(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    private func performOnce(keyID: String, idempotencyKey: String?, parts: [[UInt8]],
                             _ operation: (LocalVault, Timestamp) throws(VSecureError) -> (HTTPResponse.Status, JSONValue))
        throws -> (Int, [UInt8], Bool) {
        let now = clock()
        var digest: [UInt8] = []
        if let idempotencyKey {
            digest = registry.requestDigest(parts)
            if let stored = try APIError.wrap({ () throws(VSecureError) in try registry.storedResponse(keyID: keyID, idempotencyKey: idempotencyKey) }) {
                guard stored.requestHash == digest else {
                    throw APIError(.conflict, "this Idempotency-Key was used for a different request")
                }
                return (stored.status, stored.body, true)
            }
        }
        let (status, value) = try APIError.wrap { () throws(VSecureError) in try operation(vault, now) }
        let bytes = Array(value.serialized(indent: nil).utf8)
        if let idempotencyKey {
            try APIError.wrap { () throws(VSecureError) in
                try registry.storeResponse(keyID: keyID, idempotencyKey: idempotencyKey,
                                           response: .init(requestHash: digest, status: Int(status.code), body: bytes), now: now)
            }
        }
        return (Int(status.code), bytes, false)
    }
}
