import VSecureCore
import VSecureRemote

/// Reads `vsecure.yml` (format version 1, see docs/manifest.md) into a `Manifest`.
///
/// The format is a strict subset of YAML: unknown keys, duplicate keys, YAML 1.1 booleans,
/// anchors, aliases, tags and block scalars are errors rather than guesses, because a manifest
/// that means something other than what its author thinks decides which secrets a program gets.
public enum ManifestParser {
    /// Far above any real manifest (which lists names, not values); bounds what a hostile file
    /// can make the launcher allocate before it has started the program.
    public static let maxBytes = 1 << 20

    /// The format nests four levels (manifest → secrets → entry → environments). One more level
    /// is allowed so that a list or mapping written where a name belongs gets a precise
    /// "expected a name" error; anything deeper is refused while reading.
    static let limits = YAMLDocument.Limits(maxDepth: 5, maxNodes: 100_000)

    /// Parses manifest bytes. `path` is only used in messages.
    public static func parse(_ bytes: [UInt8], path: String) throws(VSecureError) -> Manifest {
        do {
            return try ManifestReader(path: path).read(bytes)
        } catch {
            throw error.error(path: path)
        }
    }
}

private enum Keys {
    static let manifest = ["version", "environment", "secrets", "select", "templates", "source"]
    static let entry = ["name", "as", "optional", "file", "environments"]
    static let select = ["tags"]
    static let source = ["endpoint", "fallback", "maxStale"]
}

private struct ManifestReader {
    let path: String

    func read(_ bytes: [UInt8]) throws(SourceProblem) -> Manifest {
        guard bytes.count <= ManifestParser.maxBytes else {
            throw SourceProblem(nil, "the manifest is \(bytes.count) bytes; the limit is 1 MiB",
                                hint: "a manifest lists secret names, never values; check that this is the right file")
        }
        // A lone `---` or `null` is a document without content: as empty as a file of comments.
        guard let root = try YAMLDocument.parse(bytes, limits: ManifestParser.limits), !root.isNull else {
            throw SourceProblem(nil, "manifest is empty",
                                hint: "a minimal manifest is two lines: 'version: 1' and 'secrets: [API_KEY]'")
        }
        let fields = try Fields(root, subject: "the manifest", expected: "a mapping with keys such as 'version:' and 'secrets:'")

        // The version is checked before unknown keys, so that a manifest written for a newer
        // format gets "upgrade vsecure" rather than a complaint about the keys it added.
        guard let versionNode = fields["version"] else {
            throw SourceProblem(fields.location, "the manifest has no 'version'", hint: "start the manifest with the line 'version: 1'")
        }
        var manifest = Manifest(version: try version(versionNode), path: path)
        try fields.rejectUnknown(allowed: Keys.manifest, in: "the manifest")

        for (key, value) in fields.entries {
            switch key.text {
            case "environment":
                manifest.environment = try name(value, "'environment'", expected: "an environment name") { text throws(VSecureError) in
                    try EnvironmentName(text)
                }
            case "secrets":
                manifest.secrets = try secrets(value)
            case "select":
                (manifest.selectTags, manifest.selectLocation) = try selectTags(value)
            case "templates":
                manifest.templates = try templates(value)
            case "source":
                manifest.source = try source(value)
            default:
                break  // "version", read above; unknown keys were refused
            }
        }
        try requireOneSourcePerVariable(manifest)
        return manifest
    }

    // MARK: Keys

    private func version(_ node: YAMLNode) throws(SourceProblem) -> Int {
        guard case .scalar(let scalar) = node, scalar.isPlain, !scalar.isNull,
              scalar.bytes.count <= 9, scalar.bytes.allSatisfy({ (0x30...0x39).contains($0) })
        else {
            throw mismatch(node, "'version'", expected: "the number \(Manifest.currentVersion)", hint: "write 'version: 1'")
        }
        let number = scalar.bytes.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        if number > Manifest.currentVersion {
            throw SourceProblem(scalar.location,
                                "this manifest is version \(number); this build of vsecure reads version \(Manifest.currentVersion)",
                                hint: "upgrade vsecure to use this manifest")
        }
        guard number == Manifest.currentVersion else {
            throw SourceProblem(scalar.location, "there is no manifest version \(number); the current version is \(Manifest.currentVersion)",
                                hint: "write 'version: 1'")
        }
        return number
    }

    private func secrets(_ node: YAMLNode) throws(SourceProblem) -> [ManifestEntry] {
        guard case .sequence(let items, _) = node else {
            throw mismatch(node, "'secrets'", expected: "a list", hint: "write 'secrets: [API_KEY, DATABASE_URL]' or one '- NAME' line per secret")
        }
        var entries: [ManifestEntry] = []
        for item in items {
            entries.append(try entry(item))
        }
        return entries
    }

    private func entry(_ node: YAMLNode) throws(SourceProblem) -> ManifestEntry {
        guard case .mapping = node else {
            let secret = try name(node, "each entry of 'secrets'", expected: "a secret name or a mapping with 'name:'") { text throws(VSecureError) in
                try SecretName(text)
            }
            return ManifestEntry(name: secret, location: node.location)
        }
        let fields = try Fields(node, subject: "a 'secrets' entry", expected: "a mapping")
        try fields.rejectUnknown(allowed: Keys.entry, in: "a 'secrets' entry")
        var secret: SecretName?
        var variable: VariableName?
        var optional = false
        var file = false
        var environmentNames: [EnvironmentName: SecretName] = [:]
        for (key, value) in fields.entries {
            switch key.text {
            case "name":
                secret = try name(value, "'name'", expected: "a secret name") { text throws(VSecureError) in try SecretName(text) }
            case "as":
                variable = try name(value, "'as'", expected: "a variable name") { text throws(VSecureError) in try VariableName(text) }
            case "optional":
                optional = try bool(value, "'optional'")
            case "file":
                file = try bool(value, "'file'")
            case "environments":
                environmentNames = try self.environmentNames(value)
            default:
                break  // unknown keys were refused
            }
        }
        guard let secret else {
            throw SourceProblem(node.location, "this 'secrets' entry has no 'name'", hint: "write '- name: SECRET_NAME' as its first line")
        }
        return ManifestEntry(name: secret, variable: variable, optional: optional, file: file,
                             environmentNames: environmentNames, location: node.location)
    }

    private func environmentNames(_ node: YAMLNode) throws(SourceProblem) -> [EnvironmentName: SecretName] {
        let fields = try Fields(node, subject: "'environments'", expected: "a mapping of environment names to secret names",
                                hint: "write 'environments: {production: OTHER_SECRET_NAME}'")
        var names: [EnvironmentName: SecretName] = [:]
        for (key, value) in fields.entries {
            let environment: EnvironmentName
            do {
                environment = try EnvironmentName(key.text)
            } catch {
                throw SourceProblem(key.location, wrapping: error)
            }
            names[environment] = try name(value, "each value of 'environments'", expected: "a secret name") { text throws(VSecureError) in
                try SecretName(text)
            }
        }
        return names
    }

    /// The tags of `select.tags` and where the list is.
    private func selectTags(_ node: YAMLNode) throws(SourceProblem) -> ([Tag], SourceLocation?) {
        let fields = try Fields(node, subject: "'select'", expected: "a mapping", hint: "write 'select: {tags: [api]}'")
        try fields.rejectUnknown(allowed: Keys.select, in: "'select'")
        guard let tagsNode = fields["tags"] else { return ([], nil) }
        guard case .sequence(let items, _) = tagsNode else {
            throw mismatch(tagsNode, "'tags'", expected: "a list of tags", hint: "write 'tags: [api]', even for a single tag")
        }
        var tags: [Tag] = []
        for item in items {
            let tag = try name(item, "each entry of 'tags'", expected: "a tag") { text throws(VSecureError) in try Tag(text) }
            // Repeating a tag does not change the selection; accept it like `--tags a,a`.
            if !tags.contains(tag) { tags.append(tag) }
        }
        return (tags, tags.isEmpty ? nil : tagsNode.location)
    }

    private func source(_ node: YAMLNode) throws(SourceProblem) -> ManifestSource {
        let fields = try Fields(node, subject: "'source'", expected: "a mapping",
                                hint: "write 'source: {endpoint: \"https://vsecure.example.com:8443\", fallback: true}'")
        try fields.rejectUnknown(allowed: Keys.source, in: "'source'")
        var source = ManifestSource()
        for (key, value) in fields.entries {
            switch key.text {
            case "endpoint":
                source.endpoint = try name(value, "'endpoint'", expected: "a URL such as https://vsecure.example.com:8443") { (text: String) throws(VSecureError) -> String in
                    try ClientConfig.checkEndpoint(text)
                }
            case "fallback":
                source.fallback = try bool(value, "'fallback'")
            case "maxStale":
                source.maxStale = try name(value, "'maxStale'", expected: "a duration such as 24h or 7d") { (text: String) throws(VSecureError) in
                    try SecretDuration(parsing: text)
                }
            default:
                break  // unknown keys were refused
            }
        }
        return source
    }

    private func templates(_ node: YAMLNode) throws(SourceProblem) -> [ManifestTemplate] {
        let fields = try Fields(node, subject: "'templates'", expected: "a mapping of variable names to template strings",
                                hint: "write 'templates: {DATABASE_DSN: \"postgres://${DB_USER}@db/app\"}'")
        var templates: [ManifestTemplate] = []
        for (key, value) in fields.entries {
            let variable: VariableName
            do {
                variable = try VariableName(key.text)
            } catch {
                throw SourceProblem(key.location, wrapping: error)
            }
            guard case .scalar(let scalar) = value, !scalar.isNull else {
                throw mismatch(value, "template \(Quoted(variable.rawValue))", expected: "a string such as \"${SECRET_NAME}\"")
            }
            let parts: [ManifestTemplate.Part]
            do {
                parts = try TemplateSyntax.parts(scalar.bytes)
            } catch {
                throw error.problem(template: variable, value: scalar)
            }
            templates.append(ManifestTemplate(variable: variable, parts: parts, location: key.location))
        }
        return templates
    }

    /// Every variable of the child has exactly one source in the manifest. (Conflicts with
    /// sources outside the manifest, such as `select.tags`, are found when it is resolved.)
    private func requireOneSourcePerVariable(_ manifest: Manifest) throws(SourceProblem) {
        // Sources are numbered: secrets first, then templates. The descriptions are only built
        // for the error, so a valid manifest costs one insert per variable.
        func describe(_ index: Int) -> (text: String, location: SourceLocation) {
            if index < manifest.secrets.count {
                let entry = manifest.secrets[index]
                let text = entry.variable == nil
                    ? "secret \(Quoted(entry.name.rawValue))"
                    : "secret \(Quoted(entry.name.rawValue)) (as \(Quoted(entry.variableName.rawValue)))"
                return (text, entry.location)
            }
            let template = manifest.templates[index - manifest.secrets.count]
            return ("template \(Quoted(template.variable.rawValue))", template.location)
        }
        // A StringIndex numbers each variable by its first source (see StringIndex for why not a Dictionary).
        let variables = manifest.secrets.map(\.variableName) + manifest.templates.map(\.variable)
        var sources = StringIndex(capacity: variables.count)
        var firstSource: [Int] = []
        firstSource.reserveCapacity(variables.count)
        for (index, variable) in variables.enumerated() {
            let entry = sources.insert(variable.rawValue)
            if entry.inserted { firstSource.append(index); continue }
            let first = firstSource[entry.index]
            let (firstText, firstLocation) = describe(first)
            let (text, location) = describe(index)
            throw SourceProblem(location, "variable \(Quoted(variable.rawValue)) has two sources: \(firstText) at \(firstLocation) and \(text) at \(location)",
                                hint: index < manifest.secrets.count
                                    ? "list each secret once, or give one of them another variable name with 'as:'"
                                    : "rename the template, or give the secret another variable name with 'as:'")
        }
    }

    // MARK: Values

    /// A name-like scalar validated by a VSecureCore type, with its message placed at the node.
    private func name<Name>(_ node: YAMLNode, _ subject: String, expected: String,
                            _ make: (String) throws(VSecureError) -> Name) throws(SourceProblem) -> Name {
        guard case .scalar(let scalar) = node, !scalar.isNull else {
            throw mismatch(node, subject, expected: expected)
        }
        guard !scalar.bytes.isEmpty else {
            throw SourceProblem(scalar.location, "\(subject) must be \(expected), found an empty string")
        }
        do {
            return try make(scalar.text)
        } catch {
            throw SourceProblem(scalar.location, wrapping: error)
        }
    }

    /// Exactly `true` or `false`: YAML 1.1 also reads yes/no/on/off (and `n`, famously Norway's
    /// country code) as booleans, and a manifest should mean the same to every reader.
    private func bool(_ node: YAMLNode, _ subject: String) throws(SourceProblem) -> Bool {
        guard case .scalar(let scalar) = node, scalar.isPlain, !scalar.isNull else {
            throw mismatch(node, subject, expected: "true or false", hint: "write true or false, without quotes")
        }
        switch scalar.text {
        case "true": return true
        case "false": return false
        case let word where Self.yaml11Booleans.contains(word):
            throw SourceProblem(scalar.location, "\(subject) must be true or false; \(Quoted(word)) is not accepted",
                                hint: "write true or false: other YAML spellings such as yes/no/on/off are refused to avoid surprises")
        default:
            throw mismatch(node, subject, expected: "true or false", hint: "write true or false, without quotes")
        }
    }

    private static let yaml11Booleans: Set<String> = {
        let words = ["y", "yes", "n", "no", "on", "off", "true", "false"]
        return Set(words.flatMap { [$0, $0.prefix(1).uppercased() + $0.dropFirst(), $0.uppercased()] })
    }()
}

/// Builds the "expected X, found Y" message for a node of the wrong type.
private func mismatch(_ node: YAMLNode, _ subject: String, expected: String, hint: String? = nil) -> SourceProblem {
    SourceProblem(node.location, "\(subject) must be \(expected), found \(node.kindDescription)", hint: hint)
}

/// The entries of one mapping, with keys checked to be names that appear once.
private struct Fields {
    let location: SourceLocation
    let entries: [(key: YAMLScalar, value: YAMLNode)]

    init(_ node: YAMLNode, subject: String, expected: String, hint: String? = nil) throws(SourceProblem) {
        guard case .mapping(let pairs, let location) = node else {
            throw mismatch(node, subject, expected: expected, hint: hint)
        }
        var entries: [(key: YAMLScalar, value: YAMLNode)] = []
        // Keys are compared as bytes. A StringIndex of their text (not a Dictionary: see there)
        // finds candidates; only a key whose text was seen before is compared byte for byte.
        var texts = StringIndex(capacity: pairs.count)
        for pair in pairs {
            guard case .scalar(let key) = pair.key, !key.isNull else {
                throw SourceProblem(pair.key.location, "a key in \(subject) must be a name, found \(pair.key.kindDescription)")
            }
            if !texts.insert(key.text).inserted, let first = entries.first(where: { $0.key.bytes == key.bytes }) {
                throw SourceProblem(key.location, "duplicate key \(Quoted(key.text)) in \(subject) (first at line \(first.key.location.line))",
                                    hint: "keep one of them")
            }
            entries.append((key, pair.value))
        }
        self.location = location
        self.entries = entries
    }

    subscript(key: String) -> YAMLNode? {
        entries.first { $0.key.text == key }?.value
    }

    func rejectUnknown(allowed: [String], in subject: String) throws(SourceProblem) {
        for (key, _) in entries where !allowed.contains(key.text) {
            throw SourceProblem(key.location, "unknown key \(Quoted(key.text)) in \(subject); the keys are: \(allowed.joined(separator: ", "))")
        }
    }
}

/// `${NAME}` references a secret, `$$` is a literal `$`; every other `$` is an error, so that a
/// typo such as `$NAME` or `${NAME` cannot silently become literal text.
enum TemplateSyntax {
    struct Failure: Error, Equatable {
        /// Byte offset into the template of the `$` (or byte) at fault.
        var offset: Int
        var message: String
        var hints: [String] = []

        func problem(template: VariableName, value: YAMLScalar) -> SourceProblem {
            // A character position, not the text: the value is not echoed in case a secret was
            // pasted into it by mistake.
            let character = String(decoding: value.bytes.prefix(offset), as: UTF8.self).count + 1
            var problem = SourceProblem(value.location, "template \(Quoted(template.rawValue)), character \(character): \(message)")
            problem.hints = hints
            return problem
        }
    }

    static func parts(_ bytes: [UInt8]) throws(Failure) -> [ManifestTemplate.Part] {
        let dollar = UInt8(ascii: "$")
        var parts: [ManifestTemplate.Part] = []
        var literal: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0 {
                throw Failure(offset: index, message: "a template cannot contain a NUL byte (environment values cannot hold one)")
            }
            guard byte == dollar else {
                literal.append(byte)
                index += 1
                continue
            }
            let next = index + 1 < bytes.count ? bytes[index + 1] : nil
            if next == dollar {
                literal.append(dollar)
                index += 2
                continue
            }
            guard next == UInt8(ascii: "{") else {
                throw Failure(offset: index, message: "'$' must start a reference such as ${API_KEY} or be doubled as $$",
                              hints: ["write $$ for a literal $"])
            }
            guard let close = bytes[(index + 2)...].firstIndex(of: UInt8(ascii: "}")) else {
                throw Failure(offset: index, message: "'${' has no closing '}'")
            }
            let reference = bytes[(index + 2)..<close]
            guard !reference.isEmpty else {
                throw Failure(offset: index, message: "'${}' names no secret", hints: ["write ${SECRET_NAME}"])
            }
            let secret: SecretName
            do {
                secret = try SecretName(String(decoding: reference, as: UTF8.self))
            } catch {
                throw Failure(offset: index, message: error.message, hints: error.hints)
            }
            if !literal.isEmpty {
                parts.append(.literal(literal))
                literal = []
            }
            parts.append(.secret(secret))
            index = close + 1
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        guard parts.contains(where: { if case .secret = $0 { true } else { false } }) else {
            throw Failure(offset: 0, message: "the template references no secret, so its value is not a secret",
                          hints: ["set a constant value in the environment instead, or reference a secret as ${SECRET_NAME}"])
        }
        return parts
    }
}
