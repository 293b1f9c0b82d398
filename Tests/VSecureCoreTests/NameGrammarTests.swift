import Testing
import VSecureCore

@Suite("Name, tag and metadata grammars")
struct NameGrammarTests {
    static let refusedSecretNames: [(String, String)] = [
        ("", "secret name is empty"),
        ("1ABC", "invalid secret name"),
        ("API-KEY", "invalid secret name"),
        ("API KEY", "invalid secret name"),
        (" API_KEY", "invalid secret name"),
        ("API_KEY ", "invalid secret name"),
        ("API/KEY", "invalid secret name"),
        ("/etc/passwd", "invalid secret name"),
        ("..", "invalid secret name"),
        ("../API_KEY", "invalid secret name"),
        ("API.KEY", "invalid secret name"),
        ("API=KEY", "invalid secret name"),
        ("$API", "invalid secret name"),
        ("API\u{0}KEY", "invalid secret name"),
        ("API\nKEY", "invalid secret name"),
        ("API\tKEY", "invalid secret name"),
        ("\u{1B}[31mRED", "invalid secret name"),
        ("API\u{7F}", "invalid secret name"),
        ("ÄPI_KEY", "invalid secret name"),
        (String(repeating: "A", count: 129), "is 129 characters long; the limit is 128"),
    ]

    @Test("secret names of the environment-variable grammar are accepted",
          arguments: ["API_KEY", "_", "a", "_x1", "abc123", "DATABASE_URL", "Z9_", String(repeating: "A", count: 128)])
    func acceptsSecretName(_ text: String) throws {
        let name = try SecretName(text)
        #expect(name.rawValue == text)
        #expect(name.description == text)
    }

    @Test("secret names outside the grammar are refused with a usage error", arguments: refusedSecretNames)
    func refusesSecretName(_ text: String, _ message: String) {
        let error = #expect(throws: VSecureError.self) { try SecretName(text) }
        #expect(error?.status == .usage)
        #expect(error?.message.contains(message) == true, "\(String(describing: error?.message))")
    }

    @Test("a refused name is quoted with control bytes escaped, so it cannot forge terminal output")
    func refusedNameIsEscaped() {
        let error = #expect(throws: VSecureError.self) { try SecretName("BAD\nvsecure: fake\u{1B}[0m") }
        let message = error?.message ?? ""
        #expect(!message.contains("\n"))
        #expect(!message.contains("\u{1B}"))
        #expect(message.contains("'BAD\\x0avsecure: fake\\x1b[0m'"))
    }

    @Test("Quoted escapes quotes, backslashes and non-ASCII bytes and cuts long text")
    func quoted() {
        #expect(Quoted("plain").description == "'plain'")
        #expect(Quoted("it's").description == "'it\\x27s'")
        #expect(Quoted("a\\b").description == "'a\\x5cb'")
        #expect(Quoted("é").description == "'\\xc3\\xa9'")
        #expect(Quoted(String(repeating: "x", count: 100)).description == "'" + String(repeating: "x", count: 80) + "…'")
    }

    @Test("environment names are lower case", arguments: ["production", "dev-1", "a", "stage_2", String(repeating: "a", count: 64)])
    func acceptsEnvironment(_ text: String) throws {
        #expect(try EnvironmentName(text).rawValue == text)
    }

    @Test("environment names outside the grammar are refused",
          arguments: ["", "Production", "1prod", "-prod", "_prod", "prod/x", "..", "prod uction", "prod.x",
                      "prod\u{0}", "prod\n", String(repeating: "a", count: 65)])
    func refusesEnvironment(_ text: String) {
        let error = #expect(throws: VSecureError.self) { try EnvironmentName(text) }
        #expect(error?.status == .usage)
        #expect(error?.message.contains(text.isEmpty ? "environment name is empty" : "invalid environment name") == true)
    }

    @Test("the default environments are development, staging and production")
    func defaultEnvironments() {
        #expect(EnvironmentName.defaults.map(\.rawValue) == ["development", "staging", "production"])
    }

    @Test("tags", arguments: ["production", "api", "v1.2", "team:payments", "a-b_c", "9lives", "API", String(repeating: "t", count: 64)])
    func acceptsTag(_ text: String) throws {
        #expect(try Tag(text).rawValue == text)
    }

    @Test("tags outside the grammar are refused",
          arguments: ["", "-x", ".x", "_x", "a b", "a/b", "..", "a,b", "x\u{0}", "x\n", "é", "a=b", String(repeating: "t", count: 65)])
    func refusesTag(_ text: String) {
        let error = #expect(throws: VSecureError.self) { try Tag(text) }
        #expect(error?.status == .usage)
        #expect(error?.message.contains(text.isEmpty ? "empty tag" : "invalid tag") == true)
    }

    @Test("tag lists are comma lists, repeatable, deduplicated in order")
    func tagLists() throws {
        #expect(try Tag.parseLists(["production,api", "db", "api"]).map(\.rawValue) == ["production", "api", "db"])
        #expect(try Tag.parseLists([]).isEmpty)
    }

    @Test("tag lists with an empty item are refused", arguments: ["", ",", "a,", ",a", "a,,b"])
    func tagListsRefuseEmptyItems(_ list: String) {
        let error = #expect(throws: VSecureError.self) { try Tag.parseLists([list]) }
        #expect(error?.message == "empty tag in the list \(Quoted(list))")
        #expect(error?.status == .usage)
    }

    @Test("metadata k=v: the value may hold '=' and spaces")
    func metadataParsing() throws {
        let entry = try MetadataEntry(parsing: "url=https://example.com/?a=b&c=d with space")
        #expect(entry.key == "url")
        #expect(entry.value == "https://example.com/?a=b&c=d with space")
        let empty = try MetadataEntry(parsing: "note=")
        #expect(empty.key == "note" && empty.value == "")
        #expect(try MetadataEntry(key: "k", value: String(repeating: "v", count: 1024)).value.utf8.count == 1024)
        #expect(try MetadataEntry(key: String(repeating: "k", count: 64), value: "v").key.count == 64)
        #expect(try MetadataEntry(key: "team.owner-1_x", value: "Zoë").value == "Zoë")
    }

    static let refusedMetadata: [(String, String)] = [
        ("owner", "has no '='"),
        ("", "has no '='"),
        ("=value", "invalid metadata key"),
        ("two words=v", "invalid metadata key"),
        ("a/b=v", "invalid metadata key"),
        ("ké=v", "invalid metadata key"),
        (String(repeating: "k", count: 65) + "=v", "invalid metadata key"),
        ("k=" + String(repeating: "v", count: 1025), "longer than 1024 bytes"),
        ("k=line\nbreak", "contains a control character"),
        ("k=tab\there", "contains a control character"),
        ("k=nul\u{0}", "contains a control character"),
        ("k=del\u{7F}", "contains a control character"),
    ]

    @Test("malformed metadata is refused", arguments: refusedMetadata)
    func refusesMetadata(_ text: String, _ message: String) {
        let error = #expect(throws: VSecureError.self) { try MetadataEntry(parsing: text) }
        #expect(error?.status == .usage)
        #expect(error?.message.contains(message) == true, "\(String(describing: error?.message))")
    }
}
