import Testing
import VSecureCore

@Suite("JSONParser")
struct JSONParserTests {
    @Test("parses objects, arrays, strings with escapes, integers, booleans and null")
    func accepts() throws {
        let text = #"{"a": "x\ny\"z\\\/", "b": [1, -2, 0], "c": true, "d": false, "e": null, "f": {}, "g": [], "h": "\u00e9\ud83d\ude00"}"#
        let value = try JSONParser.parse(Array(text.utf8))
        #expect(value == .object([
            ("a", .string("x\ny\"z\\/")), ("b", .array([.int(1), .int(-2), .int(0)])), ("c", .bool(true)),
            ("d", .bool(false)), ("e", .null), ("f", .object([])), ("g", .array([])), ("h", .string("é😀")),
        ]))
    }

    @Test("output of JSONValue parses back to the same value")
    func roundTrip() throws {
        let value = JSONValue.object([("k", .string("tab\tnul\u{0}quote\"ctrl\u{1}")), ("n", .int(Int64.min)), ("list", .array([.null, .bool(true)]))])
        #expect(try JSONParser.parse(Array(value.serialized().utf8)) == value)
        #expect(try JSONParser.parse(Array(value.serialized(indent: nil).utf8)) == value)
    }

    @Test("refuses malformed input with a position, never echoing string contents", arguments: [
        ("", "unexpected end of input"),
        ("{", "expected a quoted key"),
        (#"{"a" 1}"#, "expected ':'"),
        (#"{"a": 1,}"#, "expected a quoted key"),
        (#"{"a": 1, "a": 2}"#, "appears twice"),
        ("[1 2]", "expected ',' or ']'"),
        ("1.5", "only whole numbers"),
        ("01", "malformed number"),
        ("99999999999999999999", "out of range"),
        (#""abc"#, "unterminated string"),
        ("\"a\u{1}\"", "control character"),
        (#""\x""#, "unknown escape"),
        (#""\ud800""#, "lone surrogate"),
        (#""\udc00x""#, "lone surrogate"),
        ("tru", "unexpected word"),
        ("{} {}", "unexpected text after"),
        (String(repeating: "[", count: 100), "nested deeper"),
    ])
    func refuses(text: String, problem: String) {
        #expect {
            _ = try JSONParser.parse(Array(text.utf8))
        } throws: { error in
            guard let error = error as? VSecureError else { return false }
            return error.status == .usage && error.message.contains(problem) && error.message.contains("line")
        }
    }

    @Test("invalid UTF-8 inside a string is refused")
    func invalidUTF8() {
        #expect(throws: VSecureError.self) { _ = try JSONParser.parse([0x22, 0xFF, 0x22]) }
    }

    @Test("a secret-looking string in a bad document is not echoed")
    func noEcho() {
        do {
            _ = try JSONParser.parse(Array(#"{"API_KEY": "sk_live_canary", "API_KEY": "x"}"#.utf8))
            Issue.record("expected a failure")
        } catch {
            #expect(!error.message.contains("sk_live_canary"))
        }
    }
}
