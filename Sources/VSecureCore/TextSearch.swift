extension StringProtocol {
    /// True when `needle`'s UTF-8 bytes occur in this text's. An empty needle is found, as with
    /// the standard library's `contains(_: some StringProtocol)`. Unlike that search, which
    /// compares characters, this one compares bytes: `"e\u{301}"` (é as e and a combining
    /// accent) contains `"e"` here. Its callers look for ASCII words in messages, where the two
    /// agree. The standard library's search lives in the _StringProcessing module, which the
    /// launcher's modules do not import (see Package.swift).
    public func containsText(_ needle: some StringProtocol) -> Bool {
        let haystack = Array(utf8), pattern = Array(needle.utf8)
        guard !pattern.isEmpty else { return true }
        guard pattern.count <= haystack.count else { return false }
        for start in 0...(haystack.count - pattern.count) where haystack[start] == pattern[0] {
            var matched = true
            for offset in 1..<pattern.count where haystack[start + offset] != pattern[offset] {
                matched = false
                break
            }
            if matched { return true }
        }
        return false
    }
}
