import Testing
import TestSupport
import VSecureCore

@Suite("JSON output, attribute changes, environment choice, small codecs")
struct OutputModelTests {
    @Test("JSON strings escape quotes, backslashes and control characters")
    func jsonEscapes() {
        let value = JSONValue.string("q\" b\\ n\n r\r t\t nul\u{0} esc\u{1B} del\u{7F} é 😀 </script>")
        #expect(value.serialized(indent: nil)
                == "\"q\\\" b\\\\ n\\n r\\r t\\t nul\\u0000 esc\\u001b del\\u007f é 😀 </script>\"")
    }

    @Test("objects keep their key order; compact and pretty forms")
    func jsonLayout() {
        let document = JSONValue.object([
            ("name", .string("API_KEY")), ("version", .int(3)), ("tags", .array([.string("a"), .string("b")])),
            ("expiresAt", .optional(nil)), ("deleted", .bool(false)), ("empty", .array([])), ("meta", .object([])),
            ("big", .int(Int64.min)),
        ])
        #expect(document.serialized(indent: nil)
                == #"{"name":"API_KEY","version":3,"tags":["a","b"],"expiresAt":null,"deleted":false,"empty":[],"meta":{},"big":-9223372036854775808}"#)
        #expect(JSONValue.object([("a", .array([.int(1)])), ("b", .object([("c", .null)]))]).serialized()
                == "{\n  \"a\": [\n    1\n  ],\n  \"b\": {\n    \"c\": null\n  }\n}")
        #expect(JSONValue.object([("k", .string("\u{0}"))]).serialized(indent: nil) == #"{"k":"\u0000"}"#)
    }

    @Test("JSON equality compares objects in order")
    func jsonEquality() {
        #expect(JSONValue.object([("a", .int(1)), ("b", .int(2))]) == .object([("a", .int(1)), ("b", .int(2))]))
        #expect(JSONValue.object([("a", .int(1)), ("b", .int(2))]) != .object([("b", .int(2)), ("a", .int(1))]))
        #expect(JSONValue.int(1) != .string("1"))
    }

    static func tags(_ names: String...) -> [Tag] { names.map { literal($0, Tag.init) } }
    static func meta(_ key: String, _ value: String) -> MetadataEntry { literal(key) { try MetadataEntry(key: $0, value: value) } }

    @Test("AttributeChange.applied: replace, add, remove tags; set and remove metadata; expiry and description")
    func attributeChanges() {
        let original = SecretAttributes(tags: Self.tags("production", "api"), metadata: [Self.meta("owner", "a"), Self.meta("env", "x")],
                                        expiresAt: Timestamp(secondsSinceEpoch: 100), description: "old")
        #expect(original.tags == Self.tags("api", "production"))
        #expect(original.metadata.map(\.key) == ["env", "owner"])

        #expect(AttributeChange().isEmpty)
        #expect(AttributeChange().applied(to: original) == original)

        var change = AttributeChange()
        change.addTags = Self.tags("db", "api")
        change.removeTags = Self.tags("production")
        change.setMetadata = [Self.meta("owner", "b"), Self.meta("ticket", "SEC-1=x y")]
        change.removeMetadata = ["env"]
        #expect(!change.isEmpty)
        let changed = change.applied(to: original)
        #expect(changed.tags == Self.tags("api", "db"))
        #expect(changed.metadata == [Self.meta("owner", "b"), Self.meta("ticket", "SEC-1=x y")])
        #expect(changed.metadataValue("owner") == "b")
        #expect(changed.expiresAt == Timestamp(secondsSinceEpoch: 100))
        #expect(changed.description == "old")

        var replace = AttributeChange()
        replace.replaceTags = Self.tags("z", "b")
        replace.addTags = Self.tags("c")
        replace.removeTags = Self.tags("z")
        #expect(replace.applied(to: original).tags == Self.tags("b", "c"))

        var expiry = AttributeChange()
        expiry.expiresAt = .some(nil)
        expiry.description = .some(nil)
        #expect(!expiry.isEmpty)
        #expect(expiry.applied(to: original).expiresAt == nil)
        #expect(expiry.applied(to: original).description == nil)

        var newExpiry = AttributeChange()
        newExpiry.expiresAt = .some(Timestamp(secondsSinceEpoch: 500))
        #expect(newExpiry.applied(to: original).expiresAt == Timestamp(secondsSinceEpoch: 500))
        #expect(newExpiry.applied(to: original).tags == original.tags)
    }

    static let configured = EnvironmentName.defaults
    static func env(_ name: String) -> EnvironmentName { literal(name, EnvironmentName.init) }

    @Test("chooseEnvironment: --env, else an environment tag, else the default")
    func environmentChoice() throws {
        let development = Self.env("development")
        #expect(try chooseEnvironment(explicit: Self.env("staging"), tags: Self.tags("production"), configured: Self.configured,
                                      default: development) == Self.env("staging"))
        #expect(try chooseEnvironment(explicit: nil, tags: Self.tags("api", "production"), configured: Self.configured,
                                      default: development) == Self.env("production"))
        #expect(try chooseEnvironment(explicit: nil, tags: Self.tags("api"), configured: Self.configured,
                                      default: development) == development)
        #expect(try chooseEnvironment(explicit: nil, tags: [], configured: Self.configured, default: Self.env("staging")) == Self.env("staging"))
        // A tag that looks like an environment but is not configured is just a tag.
        #expect(try chooseEnvironment(explicit: nil, tags: Self.tags("qa"), configured: Self.configured, default: development) == development)
        // Tags are case-sensitive: "Production" does not name the environment.
        #expect(try chooseEnvironment(explicit: nil, tags: Self.tags("Production"), configured: Self.configured, default: development) == development)
    }

    @Test("chooseEnvironment refuses an unknown --env and two environment tags")
    func environmentChoiceRefusals() {
        let unknown = #expect(throws: VSecureError.self) {
            try chooseEnvironment(explicit: Self.env("qa"), tags: [], configured: Self.configured, default: Self.env("development"))
        }
        #expect(unknown?.status == .usage)
        #expect(unknown?.message == "unknown environment 'qa'")
        #expect(unknown?.hints == ["this vault's environments are: development, staging, production"])

        let ambiguous = #expect(throws: VSecureError.self) {
            try chooseEnvironment(explicit: nil, tags: Self.tags("staging", "production"), configured: Self.configured,
                                  default: Self.env("development"))
        }
        #expect(ambiguous?.status == .usage)
        #expect(ambiguous?.message.contains("more than one environment") == true)
        #expect(ambiguous?.hints == ["choose one with --env"])
    }

    @Test("Redacted never shows its contents")
    func redacted() {
        let secret = Redacted("sk_live_123")
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "<redacted>")
        var dumped = ""
        dump(secret, to: &dumped)
        #expect(!dumped.contains("sk_live"))
        #expect(secret.wrapped == "sk_live_123")
    }

    @Test("base64 (RFC 4648 test vectors) and hex")
    func codecs() {
        let cases = [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")]
        for (plain, encoded) in cases {
            #expect(Array(plain.utf8).withUnsafeBytes { Base64.encode($0) } == encoded)
        }
        #expect(([0xFF, 0xFE, 0x00] as [UInt8]).withUnsafeBytes { Base64.encode($0) } == "//4A")
        #expect(hexString([0x00, 0xAB, 0xFF]) == "00abff")
        #expect(bytesFromHex("00abFF") == [0x00, 0xAB, 0xFF])
        #expect(bytesFromHex("") == [])
        #expect(bytesFromHex("abc") == nil)
        #expect(bytesFromHex("zz") == nil)
    }

    @Test("secret values are capped at 120 KiB")
    func valueCap() throws {
        let name = try SecretName("BIG")
        try SecretValueRule.check(length: SecretValueRule.maximumBytes, name: name)
        let error = #expect(throws: VSecureError.self) { try SecretValueRule.check(length: SecretValueRule.maximumBytes + 1, name: name) }
        #expect(error?.status == .usage)
        #expect(error?.message.contains("the value of BIG is 122881 bytes") == true)
        // NAME=value with the longest name must still fit Linux's 128 KiB MAX_ARG_STRLEN.
        #expect(SecretName.maxLength + 1 + SecretValueRule.maximumBytes + 1 <= 128 * 1024)
    }
}
