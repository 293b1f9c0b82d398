/// `vsecure.yml`: what a program needs, never what the values are (the fetched values live in
/// the launcher's locked environment block, a different type altogether).
public struct Manifest: Equatable, Sendable {
    public static let currentVersion = 1

    public var version: Int
    /// The environment used when neither `--env` nor `VSECURE_ENV` is given.
    public var environment: EnvironmentName?
    public var secrets: [ManifestEntry]
    /// `select.tags`: every secret of the environment that carries all these tags.
    public var selectTags: [Tag]
    /// Where `select.tags` is in the file, for messages.
    public var selectLocation: SourceLocation?
    public var templates: [ManifestTemplate]
    /// `source:`: where the secrets come from when no flag or variable says otherwise.
    public var source: ManifestSource
    /// The file the manifest came from, for messages.
    public var path: String

    public init(version: Int = Manifest.currentVersion, environment: EnvironmentName? = nil, secrets: [ManifestEntry] = [],
                selectTags: [Tag] = [], selectLocation: SourceLocation? = nil, templates: [ManifestTemplate] = [],
                path: String = "vsecure.yml") {
        self.version = version
        self.environment = environment
        self.secrets = secrets
        self.selectTags = selectTags
        self.selectLocation = selectLocation
        self.templates = templates
        self.source = ManifestSource()
        self.path = path
    }
}

/// `source: {endpoint, fallback, maxStale}`. Every field is optional; flags and environment
/// variables win over it.
public struct ManifestSource: Equatable, Sendable {
    /// A vsecure server's URL; nil means the local vault.
    public var endpoint: String?
    /// Use the offline cache when the server cannot be reached.
    public var fallback: Bool?
    /// How old the offline cache may be.
    public var maxStale: SecretDuration?

    public init(endpoint: String? = nil, fallback: Bool? = nil, maxStale: SecretDuration? = nil) {
        self.endpoint = endpoint
        self.fallback = fallback
        self.maxStale = maxStale
    }
}

/// A place in a file, 1-based, for messages.
public struct SourceLocation: Equatable, Sendable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
    public var description: String { "\(line):\(column)" }
}

/// A portable environment variable name, `[A-Za-z_][A-Za-z0-9_]*`, at most 128 characters
/// (the same grammar as secret names).
public struct VariableName: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(_ text: String) throws(VSecureError) {
        let bytes = text.utf8
        guard !bytes.isEmpty, bytes.count <= SecretName.maxLength, SecretName.isValid(bytes) else {
            // NAME=VALUE given where a name was expected: the value is not shown.
            throw .usage("invalid variable name \(Quoted(SecretName.shown(text)))",
                         hint: "variable names are letters, digits and _, not starting with a digit")
        }
        rawValue = text
    }
    public init(_ name: SecretName) { rawValue = name.rawValue }
    public var description: String { rawValue }
    public static func < (a: VariableName, b: VariableName) -> Bool { a.rawValue < b.rawValue }
}

public struct ManifestEntry: Equatable, Sendable {
    public var name: SecretName
    /// `as:`; nil means the variable is named like the secret.
    public var variable: VariableName?
    public var optional: Bool
    /// `file: true`: delivered through a sealed memfd, the variable holds `/dev/fd/N`.
    public var file: Bool
    /// `environments: {production: OTHER_NAME}`: another secret name in one environment.
    public var environmentNames: [EnvironmentName: SecretName]
    public var location: SourceLocation

    public init(name: SecretName, variable: VariableName? = nil, optional: Bool = false, file: Bool = false,
                environmentNames: [EnvironmentName: SecretName] = [:], location: SourceLocation = SourceLocation(line: 0, column: 0)) {
        self.name = name
        self.variable = variable
        self.optional = optional
        self.file = file
        self.environmentNames = environmentNames
        self.location = location
    }

    public var variableName: VariableName { variable ?? VariableName(name) }

    public func secretName(in environment: EnvironmentName) -> SecretName {
        environmentNames[environment] ?? name
    }
}

/// `templates: {DATABASE_DSN: "postgres://${DB_USER}:${DB_PASSWORD}@db/app"}`. References name
/// secrets of the same environment; `$$` is a literal `$`.
public struct ManifestTemplate: Equatable, Sendable {
    public enum Part: Equatable, Sendable {
        case literal([UInt8])
        case secret(SecretName)
    }
    public var variable: VariableName
    public var parts: [Part]
    public var location: SourceLocation

    public init(variable: VariableName, parts: [Part], location: SourceLocation = SourceLocation(line: 0, column: 0)) {
        self.variable = variable
        self.parts = parts
        self.location = location
    }

    public var references: [SecretName] {
        parts.compactMap { if case .secret(let name) = $0 { return name } else { return nil } }
    }
}
