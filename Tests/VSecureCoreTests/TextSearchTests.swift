import Testing
import VSecureCore

@Suite("containsText (substring search without _StringProcessing)")
struct TextSearchTests {
    @Test("finds a needle anywhere, byte for byte; an empty needle is found", arguments: [
        ("the API key is not a setting", "key", true),
        ("api_key", "api", true),
        ("api_key", "_key", true),
        ("tokentoken", "tokentoken", true),
        ("tokentoken", "tokentoken!", false),
        ("read by others (0644)", "read by others", true),
        ("read by other", "read by others", false),
        ("aaab", "aab", true),
        ("ab", "abc", false),
        ("ab", "", true),
        ("", "", true),
        ("", "a", false),
        ("ééé", "é", true),
        ("e\u{301}", "e", true),
        ("KEY", "key", false),
    ])
    func search(text: String, needle: String, found: Bool) {
        #expect(text.containsText(needle) == found)
        #expect(text.dropFirst(0).containsText(needle.dropFirst(0)) == found, "as substrings")
    }
}
