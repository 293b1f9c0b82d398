import VSecureCore

/// Why an SDK call failed. Switch on `kind`; `message` and `hints` are for people and may name
/// secrets, environments, tags, paths and versions, never a value or an API key.
public struct VSecureClientError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable, CaseIterable {
        /// A malformed name, environment, tag, metadata entry or expiry, an unknown environment,
        /// or a request the server refused as invalid (HTTP 400, 413).
        case invalidRequest
        /// No such secret or version (404).
        case notFound
        /// The secret exists already, `ifVersion` did not match, or a rollback to the current
        /// version (409).
        case conflict
        /// The secret has expired; pass `allowExpired: true` to read it anyway (410).
        case expired
        /// The API key was refused (401) or lacks a scope or an environment (403).
        case accessDenied
        /// The server cannot be reached, timed out, failed TLS, rate-limited the key past the
        /// retries, failed (5xx), or did not answer like a vsecure server.
        case unreachable
        /// No endpoint or API key configured, or the config or credentials file is unusable.
        case configuration
        /// Anything else: a bug or an unexpected system failure.
        case internalError
    }

    public var kind: Kind
    public var message: String
    public var hints: [String]

    public init(_ kind: Kind, _ message: String, hints: [String] = []) {
        self.kind = kind
        self.message = message
        self.hints = hints
    }

    init(_ error: VSecureError) {
        let kind: Kind
        switch error.status {
        case .usage: kind = .invalidRequest
        case .notFound: kind = .notFound
        case .conflict: kind = .conflict
        case .expired: kind = .expired
        case .accessDenied: kind = .accessDenied
        case .remoteUnreachable: kind = .unreachable
        case .key, .io, .vaultMissing: kind = .configuration
        default: kind = .internalError
        }
        self.init(kind, error.message, hints: error.hints)
    }

    public var description: String {
        hints.isEmpty ? message : message + " (" + hints.joined(separator: "; ") + ")"
    }
}
