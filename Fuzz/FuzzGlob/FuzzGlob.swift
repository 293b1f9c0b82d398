import VSecureCore

// Glob matching, differentially: `PathPattern.matches` (a single-backtrack walk over bytes)
// against the small reference below (dynamic programming over segments, then over bytes, written
// from the rules in PathPattern's documentation, like the oracle in AccessMatrixTests). The
// input is `pattern \n path`; invalid patterns are skipped; any disagreement is a crash.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    let split = input.firstIndex(of: 0x0A) ?? size / 2
    let patternText = String(decoding: input[..<split], as: UTF8.self)
    let path = String(decoding: input[min(split + 1, size)...], as: UTF8.self)
    guard let pattern = try? PathPattern(patternText) else { return 0 }
    let engine = pattern.matches(path)
    let reference = ReferenceGlob.matches(pattern: Array(patternText.utf8), path: Array(path.utf8))
    if engine != reference {
        fatalError("PathPattern(\(patternText)).matches(\(path)) is \(engine), the reference says \(reference)")
    }
    return 0
}

enum ReferenceGlob {
    static let slash = UInt8(ascii: "/"), star = UInt8(ascii: "*")

    static func matches(pattern: [UInt8], path: [UInt8]) -> Bool {
        let segments = path.split(separator: slash, omittingEmptySubsequences: false)
        if path.isEmpty || segments.contains(where: \.isEmpty) { return false }
        let globs = pattern.split(separator: slash, omittingEmptySubsequences: false)
        // done[i][j]: pattern segments i... match path segments j...
        var done = Array(repeating: Array(repeating: false, count: segments.count + 1), count: globs.count + 1)
        done[globs.count][segments.count] = true
        for i in stride(from: globs.count - 1, through: 0, by: -1) {
            for j in stride(from: segments.count, through: 0, by: -1) {
                if globs[i].elementsEqual([star, star]) {
                    // `**`: zero segments, or swallow one and stay on `**`.
                    done[i][j] = done[i + 1][j] || (j < segments.count && done[i][j + 1])
                } else {
                    done[i][j] = j < segments.count && done[i + 1][j + 1] && segmentMatches(Array(globs[i]), Array(segments[j]))
                }
            }
        }
        return done[0][0]
    }

    /// `*` is any run of bytes inside the segment; everything else matches itself.
    static func segmentMatches(_ glob: [UInt8], _ text: [UInt8]) -> Bool {
        var done = Array(repeating: Array(repeating: false, count: text.count + 1), count: glob.count + 1)
        done[glob.count][text.count] = true
        for g in stride(from: glob.count - 1, through: 0, by: -1) {
            for t in stride(from: text.count, through: 0, by: -1) {
                if glob[g] == star {
                    done[g][t] = done[g + 1][t] || (t < text.count && done[g][t + 1])
                } else {
                    done[g][t] = t < text.count && glob[g] == text[t] && done[g + 1][t + 1]
                }
            }
        }
        return done[0][0]
    }
}
