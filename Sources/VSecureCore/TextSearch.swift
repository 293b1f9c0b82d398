extension StringProtocol {
    /// True when `needle` occurs in this text, compared byte for byte in UTF-8; an empty needle
    /// is never found, as with the standard library's `contains(_: some StringProtocol)`. That
    /// one lives in the _StringProcessing module, which the launcher's modules do not import
    /// (see Package.swift), so these modules search with this instead.
    public func containsText(_ needle: some StringProtocol) -> Bool {
        let haystack = Array(utf8), pattern = Array(needle.utf8)
        guard !pattern.isEmpty else { return false }
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
