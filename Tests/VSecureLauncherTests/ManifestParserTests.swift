#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
import TestSupport
import VSecureCore
@testable import VSecureLauncher

/// A manifest the parser must refuse, and a part of the message that pins the rule and the
/// location (`vsecure.yml:LINE:COLUMN: …`).
struct ManifestRejection: Sendable, CustomTestStringConvertible {
    var yaml: String
    var message: String
    var hint: String?
    var testDescription: String { message }

    init(_ yaml: String, _ message: String, hint: String? = nil) {
        self.yaml = yaml
        self.message = message
        self.hint = hint
    }
}

/// A manifest the parser must accept, and the exact model it must produce.
struct ManifestAcceptance: Sendable, CustomTestStringConvertible {
    var name: String
    var yaml: String
    var manifest: Manifest
    var testDescription: String { name }
}

private func at(_ line: Int, _ column: Int) -> VSecureCore.SourceLocation { VSecureCore.SourceLocation(line: line, column: column) }
private func secret(_ text: String) -> SecretName { literal(text, SecretName.init) }
private func variable(_ text: String) -> VariableName { literal(text, VariableName.init) }
private func environment(_ text: String) -> EnvironmentName { literal(text, EnvironmentName.init) }
private func tag(_ text: String) -> VSecureCore.Tag { literal(text, VSecureCore.Tag.init) }
private func literal(_ text: String) -> ManifestTemplate.Part { .literal(Array(text.utf8)) }
private func reference(_ text: String) -> ManifestTemplate.Part { .secret(secret(text)) }

private let rejections: [ManifestRejection] = [
    // The document as a whole
    ManifestRejection("", "vsecure.yml: manifest is empty", hint: "version: 1"),
    ManifestRejection("# nothing but a comment\n", "vsecure.yml: manifest is empty"),
    ManifestRejection("---\n", "vsecure.yml: manifest is empty"),
    ManifestRejection("version: 1\n---\nversion: 1\n", "vsecure.yml:2:1: a manifest is a single YAML document", hint: "'---'"),
    ManifestRejection("- A\n", "vsecure.yml:1:1: the manifest must be a mapping with keys such as 'version:' and 'secrets:', found a list"),
    ManifestRejection("version: 1\nsecrets: [A\n", "vsecure.yml:3:1: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at 2:10)"),
    ManifestRejection("version: 1\nsecrets:\n\t- A\n", "vsecure.yml:3:1: invalid YAML: found character that cannot start any token",
                      hint: "YAML indents with spaces; this file contains a tab"),
    ManifestRejection("version: 1\nsecrets: [A]\n  oops\n", "vsecure.yml:3:3: invalid YAML:"),

    // version
    ManifestRejection("secrets: [A]\n", "vsecure.yml:1:1: the manifest has no 'version'", hint: "version: 1"),
    ManifestRejection("version: 2\nsecrets_v2: [A]\n", "vsecure.yml:1:10: this manifest is version 2; this build of vsecure reads version 1",
                      hint: "upgrade vsecure"),
    ManifestRejection("version: 0\n", "vsecure.yml:1:10: there is no manifest version 0; the current version is 1"),
    ManifestRejection("version: '1'\n", "vsecure.yml:1:10: 'version' must be the number 1, found a quoted string"),
    ManifestRejection("version: 1.0\n", "vsecure.yml:1:10: 'version' must be the number 1, found a single value"),
    ManifestRejection("version:\nsecrets: [A]\n", "'version' must be the number 1, found an empty value"),
    ManifestRejection("version: [1]\n", "vsecure.yml:1:10: 'version' must be the number 1, found a list"),

    // Keys of every mapping
    ManifestRejection("version: 1\nsecret: [A]\n", "vsecure.yml:2:1: unknown key 'secret' in the manifest; the keys are: version, environment, secrets, select, templates, source"),
    ManifestRejection("version: 1\nsecrets: [A]\nsecrets: [B]\n", "vsecure.yml:3:1: duplicate key 'secrets' in the manifest (first at line 2)"),
    ManifestRejection("version: 1\n\"version\": 1\n", "vsecure.yml:2:1: duplicate key 'version' in the manifest (first at line 1)"),
    ManifestRejection("version: 1\n? [a]\n: b\n", "vsecure.yml:2:3: a key in the manifest must be a name, found a list"),
    ManifestRejection("version: 1\n~: b\n", "vsecure.yml:2:1: a key in the manifest must be a name, found an empty value"),
    ManifestRejection("version: 1\nsecrets:\n  - name: A\n    optinal: true\n",
                      "vsecure.yml:4:5: unknown key 'optinal' in a 'secrets' entry; the keys are: name, as, optional, file, environments"),
    ManifestRejection("version: 1\nsecrets:\n  - name: A\n    name: B\n", "vsecure.yml:4:5: duplicate key 'name' in a 'secrets' entry (first at line 3)"),
    ManifestRejection("version: 1\nselect:\n  tag: [api]\n", "vsecure.yml:3:3: unknown key 'tag' in 'select'; the keys are: tags"),
    // source
    ManifestRejection("version: 1\nsource:\n  fallbak: true\n",
                      "vsecure.yml:3:3: unknown key 'fallbak' in 'source'; the keys are: endpoint, fallback, maxStale"),
    ManifestRejection("version: 1\nsource: https://x\n", "vsecure.yml:2:9: 'source' must be a mapping"),
    ManifestRejection("version: 1\nsource:\n  endpoint: ftp://vault.example\n",
                      "vsecure.yml:3:13: the endpoint 'ftp://vault.example' must be a URL starting with https:// (or http:// on loopback)"),
    ManifestRejection("version: 1\nsource:\n  endpoint: http://10.0.0.7:8443\n",
                      "vsecure.yml:3:13: the endpoint 'http://10.0.0.7:8443' is plain http:// to a host that is not loopback"),
    ManifestRejection("version: 1\nsource:\n  endpoint: https://user:hunter2@vault.example\n",
                      "vsecure.yml:3:13: the endpoint 'https://***@vault.example' must be a URL"),
    ManifestRejection("version: 1\nsource:\n  fallback: yes\n", "vsecure.yml:3:13: 'fallback' must be true or false"),
    ManifestRejection("version: 1\nsource:\n  maxStale: 1 day\n", "vsecure.yml:3:13:"),
    ManifestRejection("version: 1\nsource:\n  maxStale: []\n", "vsecure.yml:3:13: 'maxStale' must be a duration such as 24h or 7d"),
    ManifestRejection("version: 1\nsecrets:\n  - name: A\n    environments:\n      production: B\n      production: C\n",
                      "vsecure.yml:6:7: duplicate key 'production' in 'environments' (first at line 5)"),
    ManifestRejection("version: 1\ntemplates:\n  DSN: \"${A}\"\n  DSN: \"${B}\"\n", "vsecure.yml:4:3: duplicate key 'DSN' in 'templates' (first at line 3)"),

    // environment
    ManifestRejection("version: 1\nenvironment: Production\n", "vsecure.yml:2:14: invalid environment name 'Production'", hint: "lower case"),
    ManifestRejection("version: 1\nenvironment: [dev]\n", "vsecure.yml:2:14: 'environment' must be an environment name, found a list"),

    // secrets
    ManifestRejection("version: 1\nsecrets: DATABASE_URL\n", "vsecure.yml:2:10: 'secrets' must be a list, found a single value", hint: "secrets: [API_KEY"),
    ManifestRejection("version: 1\nsecrets:\n", "'secrets' must be a list, found an empty value"),
    ManifestRejection("version: 1\nsecrets:\n  - [A]\n",
                      "vsecure.yml:3:5: each entry of 'secrets' must be a secret name or a mapping with 'name:', found a list"),
    ManifestRejection("version: 1\nsecrets: [9A]\n", "vsecure.yml:2:11: invalid secret name '9A'", hint: "names look like API_KEY"),
    ManifestRejection("version: 1\nsecrets: ['']\n", "vsecure.yml:2:11: each entry of 'secrets' must be a secret name or a mapping with 'name:', found an empty string"),
    ManifestRejection("version: 1\nsecrets:\n  - as: B\n", "vsecure.yml:3:5: this 'secrets' entry has no 'name'", hint: "- name: SECRET_NAME"),
    ManifestRejection("version: 1\nsecrets:\n  - name:\n", "'name' must be a secret name, found an empty value"),
    ManifestRejection("version: 1\nsecrets:\n  - name: {a: b}\n", "vsecure.yml:3:11: 'name' must be a secret name, found a mapping"),
    ManifestRejection("version: 1\nsecrets:\n  - name: A\n    as: 9X\n", "vsecure.yml:4:9: invalid variable name '9X'"),
    ManifestRejection("version: 1\nsecrets:\n  - name: A\n    optional: 3\n", "vsecure.yml:4:15: 'optional' must be true or false, found a single value"),
    ManifestRejection("version: 1\nsecrets:\n  - name: A\n    optional: yes\n", "vsecure.yml:4:15: 'optional' must be true or false; 'yes' is not accepted",
                      hint: "write true or false"),
    ManifestRejection("version: 1\nsecrets:\n  - name: A\n    optional: Off\n", "vsecure.yml:4:15: 'optional' must be true or false; 'Off' is not accepted"),
    ManifestRejection("version: 1\nsecrets:\n  - name: A\n    optional: TRUE\n", "vsecure.yml:4:15: 'optional' must be true or false; 'TRUE' is not accepted"),
    ManifestRejection("version: 1\nsecrets:\n  - name: A\n    optional: \"true\"\n", "vsecure.yml:4:15: 'optional' must be true or false, found a quoted string",
                      hint: "without quotes"),
    ManifestRejection("version: 1\nsecrets:\n  - name: A\n    file: [true]\n", "vsecure.yml:4:11: 'file' must be true or false, found a list"),
    ManifestRejection("version: 1\nsecrets:\n  - name: A\n    file: n\n", "vsecure.yml:4:11: 'file' must be true or false; 'n' is not accepted"),
    ManifestRejection("version: 1\nsecrets:\n  - name: A\n    environments: production\n",
                      "vsecure.yml:4:19: 'environments' must be a mapping of environment names to secret names, found a single value"),
    ManifestRejection("version: 1\nsecrets:\n  - name: A\n    environments: {Production: B}\n", "vsecure.yml:4:20: invalid environment name 'Production'"),
    ManifestRejection("version: 1\nsecrets:\n  - name: A\n    environments: {production: B-2}\n", "vsecure.yml:4:32: invalid secret name 'B-2'"),
    ManifestRejection("version: 1\nsecrets:\n  - name: A\n    environments:\n      production: [B]\n",
                      "vsecure.yml:5:19: each value of 'environments' must be a secret name, found a list"),

    // One source per variable
    ManifestRejection("version: 1\nsecrets: [A, B, A]\n", "vsecure.yml:2:17: variable 'A' has two sources: secret 'A' at 2:11 and secret 'A' at 2:17",
                      hint: "'as:'"),
    ManifestRejection("version: 1\nsecrets:\n  - API_KEY\n  - name: OTHER_KEY\n    as: API_KEY\n",
                      "vsecure.yml:4:5: variable 'API_KEY' has two sources: secret 'API_KEY' at 3:5 and secret 'OTHER_KEY' (as 'API_KEY') at 4:5"),
    ManifestRejection("version: 1\nsecrets: [DSN]\ntemplates:\n  DSN: \"${A}\"\n",
                      "vsecure.yml:4:3: variable 'DSN' has two sources: secret 'DSN' at 2:11 and template 'DSN' at 4:3"),

    // select
    ManifestRejection("version: 1\nselect: [api]\n", "vsecure.yml:2:9: 'select' must be a mapping, found a list", hint: "select: {tags: [api]}"),
    ManifestRejection("version: 1\nselect:\n  tags: api\n", "vsecure.yml:3:9: 'tags' must be a list of tags, found a single value", hint: "tags: [api]"),
    ManifestRejection("version: 1\nselect:\n  tags: [-x]\n", "vsecure.yml:3:10: invalid tag '-x'"),
    ManifestRejection("version: 1\nselect:\n  tags: [\"\"]\n", "vsecure.yml:3:10: each entry of 'tags' must be a tag, found an empty string"),
    ManifestRejection("version: 1\nselect:\n  tags:\n    - {a: b}\n", "vsecure.yml:4:7: each entry of 'tags' must be a tag, found a mapping"),

    // templates
    ManifestRejection("version: 1\ntemplates: [DSN]\n", "vsecure.yml:2:12: 'templates' must be a mapping of variable names to template strings, found a list"),
    ManifestRejection("version: 1\ntemplates:\n  9DSN: \"${A}\"\n", "vsecure.yml:3:3: invalid variable name '9DSN'"),
    ManifestRejection("version: 1\ntemplates:\n  DSN: [\"${A}\"]\n", "vsecure.yml:3:8: template 'DSN' must be a string such as \"${SECRET_NAME}\", found a list"),
    ManifestRejection("version: 1\ntemplates:\n  DSN:\n", "template 'DSN' must be a string such as \"${SECRET_NAME}\", found an empty value"),
    ManifestRejection("version: 1\ntemplates:\n  MODE: production\n",
                      "vsecure.yml:3:9: template 'MODE', character 1: the template references no secret, so its value is not a secret",
                      hint: "set a constant value in the environment instead"),
    ManifestRejection("version: 1\ntemplates:\n  PRICE: \"$$5\"\n", "vsecure.yml:3:10: template 'PRICE', character 1: the template references no secret"),
    ManifestRejection("version: 1\ntemplates:\n  DSN: \"db://$USER@${HOST}\"\n",
                      "vsecure.yml:3:8: template 'DSN', character 6: '$' must start a reference such as ${API_KEY} or be doubled as $$", hint: "$$"),
    ManifestRejection("version: 1\ntemplates:\n  DSN: \"${HOST}$\"\n", "vsecure.yml:3:8: template 'DSN', character 8: '$' must start a reference"),
    ManifestRejection("version: 1\ntemplates:\n  DSN: \"${HOST\"\n", "vsecure.yml:3:8: template 'DSN', character 1: '${' has no closing '}'"),
    ManifestRejection("version: 1\ntemplates:\n  DSN: \"a${}${B}\"\n", "vsecure.yml:3:8: template 'DSN', character 2: '${}' names no secret"),
    ManifestRejection("version: 1\ntemplates:\n  DSN: \"é${9B}\"\n", "vsecure.yml:3:8: template 'DSN', character 2: invalid secret name '9B'"),
    ManifestRejection("version: 1\ntemplates:\n  DSN: \"${A}\\0\"\n", "vsecure.yml:3:8: template 'DSN', character 5: a template cannot contain a NUL byte"),

    // YAML features the format leaves out
    ManifestRejection("version: 1\nsecrets: &list [A]\n", "vsecure.yml:2:10: anchors (&list) are not supported in a manifest"),
    ManifestRejection("version: 1\nenvironment: &e dev\n", "vsecure.yml:2:14: anchors (&e) are not supported in a manifest"),
    ManifestRejection("version: 1\nsecrets: [*a]\n", "vsecure.yml:2:11: aliases (*a) are not supported in a manifest"),
    ManifestRejection("version: !!int 1\n", "vsecure.yml:1:10: YAML tags ('tag:yaml.org,2002:int') are not supported in a manifest"),
    ManifestRejection("version: 1\nsecrets: !custom [A]\n", "vsecure.yml:2:10: YAML tags ('!custom') are not supported in a manifest"),
    ManifestRejection("version: 1\ntemplates:\n  DSN: |\n    ${A}\n", "vsecure.yml:3:8: block scalars ('|' and '>') are not supported in a manifest"),
    ManifestRejection("version: 1\ntemplates:\n  DSN: >\n    ${A}\n", "vsecure.yml:3:8: block scalars"),
    ManifestRejection("version: 1\nsecrets:\n  - name: A\n    environments:\n      production: [[B]]\n",
                      "vsecure.yml:5:20: lists and mappings are nested deeper than a manifest needs (at most 5 levels)"),
]

private let acceptances: [ManifestAcceptance] = [
    ManifestAcceptance(name: "minimal", yaml: "version: 1\n", manifest: Manifest(path: "vsecure.yml")),
    ManifestAcceptance(name: "document markers, a directive and comments",
                       yaml: "%YAML 1.1\n# comment\n---\nversion: 1   # trailing\nsecrets: []\n...\n",
                       manifest: Manifest(path: "vsecure.yml")),
    ManifestAcceptance(name: "CRLF line ends", yaml: "version: 1\r\nsecrets:\r\n  - A\r\n",
                       manifest: Manifest(secrets: [ManifestEntry(name: secret("A"), location: at(3, 5))], path: "vsecure.yml")),
    ManifestAcceptance(
        name: "every feature, block style",
        yaml: """
        version: 1
        environment: development
        secrets:
          - DATABASE_URL
          - "DOUBLE_QUOTED"
          - 'SINGLE_QUOTED'
          - name: STRIPE_KEY
            as: PAYMENT_STRIPE_KEY
            optional: true
            file: false
            environments:
              production: REDIS_PRIMARY_URL
              staging-eu: 'STAGING_KEY'
          - name: STRIPE_KEY
            file: true
            optional: false
        select:
          tags:
            - api
            - "db:primary"
            - api
        templates:
          DATABASE_DSN: "postgres://${DB_USER}:${DB_PASSWORD}@db:5432/app"
          PRICE: 'costs $$5 a ${UNIT}$$'
          BARE: ${ONLY}
          MERGED: a$$b$$${X}
          UNICODE: "é=${Y}"

        """,
        manifest: Manifest(
            environment: environment("development"),
            secrets: [
                ManifestEntry(name: secret("DATABASE_URL"), location: at(4, 5)),
                ManifestEntry(name: secret("DOUBLE_QUOTED"), location: at(5, 5)),
                ManifestEntry(name: secret("SINGLE_QUOTED"), location: at(6, 5)),
                ManifestEntry(name: secret("STRIPE_KEY"), variable: variable("PAYMENT_STRIPE_KEY"), optional: true, file: false,
                              environmentNames: [environment("production"): secret("REDIS_PRIMARY_URL"),
                                                 environment("staging-eu"): secret("STAGING_KEY")],
                              location: at(7, 5)),
                // The same secret under its own name as well: a second variable, not a conflict.
                ManifestEntry(name: secret("STRIPE_KEY"), file: true, location: at(14, 5)),
            ],
            selectTags: [tag("api"), tag("db:primary")],
            selectLocation: at(19, 5),
            templates: [
                ManifestTemplate(variable: variable("DATABASE_DSN"),
                                 parts: [literal("postgres://"), reference("DB_USER"), literal(":"), reference("DB_PASSWORD"),
                                         literal("@db:5432/app")],
                                 location: at(23, 3)),
                ManifestTemplate(variable: variable("PRICE"), parts: [literal("costs $5 a "), reference("UNIT"), literal("$")],
                                 location: at(24, 3)),
                ManifestTemplate(variable: variable("BARE"), parts: [reference("ONLY")], location: at(25, 3)),
                ManifestTemplate(variable: variable("MERGED"), parts: [literal("a$b$"), reference("X")], location: at(26, 3)),
                ManifestTemplate(variable: variable("UNICODE"), parts: [literal("é="), reference("Y")], location: at(27, 3)),
            ],
            path: "vsecure.yml"
        )
    ),
    ManifestAcceptance(
        name: "every feature, flow style",
        yaml: """
        {version: 1, environment: production,
         secrets: [A, "B", {name: C, as: D, optional: true, file: true, environments: {staging: E}}],
         select: {tags: [api, 'v2']},
         templates: {T: "${A}${B}"}}
        """,
        manifest: Manifest(
            environment: environment("production"),
            secrets: [
                ManifestEntry(name: secret("A"), location: at(2, 12)),
                ManifestEntry(name: secret("B"), location: at(2, 15)),
                ManifestEntry(name: secret("C"), variable: variable("D"), optional: true, file: true,
                              environmentNames: [environment("staging"): secret("E")], location: at(2, 20)),
            ],
            selectTags: [tag("api"), tag("v2")],
            selectLocation: at(3, 17),
            templates: [ManifestTemplate(variable: variable("T"), parts: [reference("A"), reference("B")], location: at(4, 14))],
            path: "vsecure.yml"
        )
    ),
    ManifestAcceptance(name: "empty collections", yaml: "version: 1\nsecrets: []\nselect: {}\ntemplates: {}\n",
                       manifest: Manifest(path: "vsecure.yml")),
    ManifestAcceptance(name: "select without tags", yaml: "version: 1\nselect: {tags: []}\n", manifest: Manifest(path: "vsecure.yml")),
    ManifestAcceptance(name: "source", yaml: "version: 1\nsource:\n  endpoint: https://vsecure.internal:8443\n  fallback: true\n  maxStale: 1h30m\n",
                       manifest: {
                           var manifest = Manifest(path: "vsecure.yml")
                           manifest.source = ManifestSource(endpoint: "https://vsecure.internal:8443", fallback: true,
                                                            maxStale: SecretDuration(seconds: 5_400))
                           return manifest
                       }()),
    ManifestAcceptance(name: "empty source", yaml: "version: 1\nsource: {}\n", manifest: Manifest(path: "vsecure.yml")),
]

@Suite struct ManifestParserTests {
    @Test(arguments: rejections)
    func rejects(_ rejection: ManifestRejection) {
        do {
            let manifest = try ManifestParser.parse(Array(rejection.yaml.utf8), path: "vsecure.yml")
            Issue.record("accepted: \(manifest)")
        } catch {
            #expect(error.status == .manifest)
            #expect(error.message.contains(rejection.message), "message: \(error.message)")
            if let hint = rejection.hint {
                #expect(error.hints.contains { $0.contains(hint) }, "hints: \(error.hints)")
            }
        }
    }

    @Test(arguments: acceptances)
    func accepts(_ acceptance: ManifestAcceptance) throws {
        let manifest = try ManifestParser.parse(Array(acceptance.yaml.utf8), path: "vsecure.yml")
        #expect(manifest == acceptance.manifest)
    }

    @Test func keepsThePathForMessages() throws {
        let manifest = try ManifestParser.parse(Array("version: 1\n".utf8), path: "config/app.yml")
        #expect(manifest.path == "config/app.yml")
        #expect(throws: VSecureError(.manifest, "config/app.yml:2:1: unknown key 'x' in the manifest; the keys are: "
                                     + "version, environment, secrets, select, templates, source")) {
            try ManifestParser.parse(Array("version: 1\nx: 1\n".utf8), path: "config/app.yml")
        }
    }

    @Test func refusesInvalidUTF8WithItsPosition() {
        let bytes = Array("version: 1\nsecrets: [A".utf8) + [0xFF] + Array("]\n".utf8)
        let error = #expect(throws: VSecureError.self) { try ManifestParser.parse(bytes, path: "vsecure.yml") }
        #expect(error?.message.hasPrefix("vsecure.yml:2:12: invalid YAML: ") == true, "\(String(describing: error))")
    }

    @Test func refusesAFileOverOneMebibyte() {
        let bytes = Array("version: 1\n".utf8) + [UInt8](repeating: UInt8(ascii: "#"), count: ManifestParser.maxBytes)
        #expect(throws: VSecureError(.manifest, "vsecure.yml: the manifest is \(bytes.count) bytes; the limit is 1 MiB",
                                     hint: "a manifest lists secret names, never values; check that this is the right file")) {
            try ManifestParser.parse(bytes, path: "vsecure.yml")
        }
    }

    @Test func refusesTooManyValues() {
        let items = Array(repeating: "A", count: ManifestParser.limits.maxNodes).joined(separator: ",")
        let error = #expect(throws: VSecureError.self) {
            try ManifestParser.parse(Array("version: 1\nsecrets: [\(items)]\n".utf8), path: "vsecure.yml")
        }
        #expect(error?.message.contains("the manifest has more than 100000 values") == true, "\(String(describing: error))")
    }

    @Test func refusesDeepNestingWithoutRecursingIntoIt() {
        // Far deeper than the limit: refused at the first level too many, not after reading it all.
        let depth = 10_000
        let yaml = "version: 1\nsecrets: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "\n"
        let error = #expect(throws: VSecureError.self) { try ManifestParser.parse(Array(yaml.utf8), path: "vsecure.yml") }
        #expect(error?.message.hasPrefix("vsecure.yml:2:14: lists and mappings are nested deeper") == true, "\(String(describing: error))")
    }

    @Test func messagesDoNotEchoTemplateText() {
        // A value pasted where a template belongs must not end up in a terminal or a CI log.
        let yaml = "version: 1\ntemplates:\n  TOKEN: \"sk_live_abc$123\"\n"
        let error = #expect(throws: VSecureError.self) { try ManifestParser.parse(Array(yaml.utf8), path: "vsecure.yml") }
        let shown = (error?.message ?? "") + (error?.hints.joined() ?? "")
        #expect(shown.contains("template 'TOKEN'") && !shown.contains("sk_live"), "\(shown)")
    }

    @Test func parsesTheExampleManifest() throws {
        let path = repositoryRoot() + "/examples/vsecure.yml"
        let bytes = try #require(readFile(path), "cannot read \(path)")
        let manifest = try ManifestParser.parse(bytes, path: path)
        #expect(manifest.version == 1)
        #expect(manifest.environment == environment("development"))
        #expect(manifest.secrets.map(\.variableName) == ["DATABASE_URL", "PAYMENT_STRIPE_KEY", "REDIS_URL", "TLS_PRIVATE_KEY", "SENTRY_DSN"].map(variable))
        #expect(manifest.secrets.map(\.optional) == [false, true, false, false, true])
        #expect(manifest.secrets.map(\.file) == [false, false, false, true, false])
        #expect(manifest.secrets[2].secretName(in: environment("production")) == secret("REDIS_PRIMARY_URL"))
        #expect(manifest.selectTags == [tag("api"), tag("public")])
        #expect(manifest.templates.map(\.variable) == [variable("DATABASE_DSN")])
        #expect(manifest.templates.first?.references == [secret("DB_USER"), secret("DB_PASSWORD")])
        #expect(manifest.templates.first?.parts.last == literal("@db:5432/app?application_name=$server"))
    }
}

/// Tests/VSecureLauncherTests/ThisFile.swift → the repository root.
private func repositoryRoot(_ file: String = #filePath) -> String {
    var components = file.split(separator: "/", omittingEmptySubsequences: false)
    components.removeLast(3)
    return components.joined(separator: "/")
}

/// Reads a whole file without Foundation, like the launcher itself.
private func readFile(_ path: String) -> [UInt8]? {
    guard let file = fopen(path, "rb") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = fread(&buffer, 1, buffer.count, file)
        if count <= 0 { break }
        bytes += buffer[..<count]
    }
    return bytes
}
