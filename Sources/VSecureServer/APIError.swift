import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import VSecureCore

/// An error as the API reports it: `{"error": {"code", "message", "details"}}`. Messages name
/// secrets, environments and fields, never values or tokens.
public struct APIError: Error, Sendable {
    public enum Code: String, Sendable {
        case authenticationRequired = "AUTHENTICATION_REQUIRED"
        case permissionDenied = "PERMISSION_DENIED"
        case resourceNotFound = "RESOURCE_NOT_FOUND"
        case validationError = "VALIDATION_ERROR"
        case conflict = "CONFLICT"
        case secretExpired = "SECRET_EXPIRED"
        /// A rotation was tried and failed (a command exited non-zero, printed nothing, …);
        /// nothing changed. 422, not 5xx, so that clients do not retry it blindly.
        case rotationFailed = "ROTATION_FAILED"
        case payloadTooLarge = "PAYLOAD_TOO_LARGE"
        case unsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE"
        case rateLimitExceeded = "RATE_LIMIT_EXCEEDED"
        case requestTimeout = "REQUEST_TIMEOUT"
        case serviceUnavailable = "SERVICE_UNAVAILABLE"
        case internalError = "INTERNAL_ERROR"

        var status: HTTPResponse.Status {
            switch self {
            case .authenticationRequired: return .unauthorized
            case .permissionDenied: return .forbidden
            case .resourceNotFound: return .notFound
            case .validationError: return .badRequest
            case .conflict: return .conflict
            case .secretExpired: return .gone
            case .rotationFailed: return .unprocessableContent
            case .payloadTooLarge: return .contentTooLarge
            case .unsupportedMediaType: return .unsupportedMediaType
            case .rateLimitExceeded: return .tooManyRequests
            case .requestTimeout: return .requestTimeout
            case .serviceUnavailable: return .serviceUnavailable
            case .internalError: return .internalServerError
            }
        }
    }

    public var code: Code
    public var message: String
    public var details: [String: String]
    public var headers: HTTPFields

    public init(_ code: Code, _ message: String, details: [String: String] = [:], headers: HTTPFields = [:]) {
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers
    }

    static let unauthenticated = APIError(.authenticationRequired, "a valid API key is required",
                                          headers: [.wwwAuthenticate: "Bearer realm=\"vsecure\""])

    /// A request whose audit entry could not be written: refused, and nothing leaves.
    static let auditUnavailable = APIError(.serviceUnavailable, "the audit log cannot be written; the request was refused")

    /// A user named by a request does not exist (`details.reason: noSuchUser`, which the CLI
    /// turns into a hint naming its own commands).
    static func noSuchUser(_ reference: String) -> APIError {
        APIError(.resourceNotFound, "no user \(Quoted(reference))",
                 details: ["reason": "noSuchUser", "hint": "list users with GET /v1/security/users; create one with POST /v1/security/users"])
    }

    /// The API's reading of a domain error.
    init(_ error: VSecureError) {
        let code: Code
        switch error.status {
        case .usage: code = .validationError
        case .notFound: code = .resourceNotFound
        case .conflict: code = .conflict
        case .expired: code = .secretExpired
        case .unsafeEnvironment, .manifest: code = .validationError
        case .io:
            // Storage trouble (a full disk, a read-only or failing file system): retryable, and
            // said in words of our own, since the store's message names its paths.
            self.init(.serviceUnavailable, "the server's storage cannot be written now (full, read-only or failing); nothing was changed",
                      headers: [.retryAfter: "30"])
            return
        default: code = .internalError
        }
        self.init(code, code == .internalError && error.status != .integrity ? "the server could not complete the request" : error.message,
                  details: error.hints.isEmpty || code == .internalError ? [:] : ["hint": error.hints.joined(separator: " ")])
    }

    func response() -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: code.status, headers: fields, body: .init(byteBuffer: body()))
    }

    /// `{"error": {"code", "message", "details"}}`.
    func body() -> ByteBuffer {
        ResponseJSON.body(.object([("error", .object([
            ("code", .string(code.rawValue)),
            ("message", .string(message)),
            ("details", .object(details.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
        ]))]))
    }
}

/// Refuses a request whose declared `Content-Length` passes the body cap (413) before any route
/// runs, including routes that take no body. A chunked body is cut off by the routes that read
/// one (`JSONBody.collect`); the others never read theirs.
struct BodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let limit: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw APIError(.payloadTooLarge, "the request body is \(length) bytes; the limit is \(limit)")
        }
        return try await next(request, context)
    }
}

/// Turns every thrown error into the API's error shape, so no handler path can answer with
/// another format or leak an internal description.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response()
        } catch let error as VSecureError {
            if APIError(error).code == .internalError {
                context.logger.error("request failed", metadata: ["status": "\(error.status)", "path": "\(request.uri.path)"])
            }
            return APIError(error).response()
        } catch is NIOTooManyBytesError {
            return APIError(.payloadTooLarge, "the request body is larger than the limit").response()
        } catch let error as HTTPError {
            switch error.status {
            case .notFound: return APIError(.resourceNotFound, "no such route: \(request.method) \(request.uri.path)").response()
            case .methodNotAllowed: return APIError(.validationError, "method \(request.method) is not allowed here").response()
            case .contentTooLarge: return APIError(.payloadTooLarge, "the request body is larger than the limit").response()
            default: return APIError(.validationError, error.body ?? "invalid request").response()
            }
        } catch {
            context.logger.error("unexpected error", metadata: ["type": "\(type(of: error))", "path": "\(request.uri.path)"])
            return APIError(.internalError, "the server could not complete the request").response()
        }
    }
}
