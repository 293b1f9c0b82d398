import Testing
import VSecureCore

@Suite("containsText (substring search without _StringProcessing)")
struct TextSearchTests {
    @Test("agrees with the standard library's substring search, byte for byte in UTF-8")
    func agreesWithStandardLibrary() {
        let texts = ["", "a", "api_key", "the API key is not a setting", "read by others (0644)", "ééé", "aaab", "ab", "tokentoken"]
        let needles = ["", "a", "key", "token", "read by others", "é", "aab", "abc", "b", "tokentoken!", "en"]
        for text in texts {
            for needle in needles {
                #expect(text.containsText(needle) == text.contains(needle), "\(text) / \(needle)")
                #expect(text[...].containsText(needle[...]) == text.contains(needle), "as substrings: \(text) / \(needle)")
            }
        }
    }
}
