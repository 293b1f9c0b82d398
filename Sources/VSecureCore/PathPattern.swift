/// A glob over access paths `ENVIRONMENT/NAME` (`production/API_KEY`), as written in an access
/// policy or an access grant.
///
/// - `*` matches any run of characters, the empty run included, inside one segment; it never
///   crosses `/`. `production/*` matches `production/API_KEY`, not `production/a/b`, not
///   `productionX/API_KEY` and not `production` itself.
/// - `**` must be a whole segment. It matches any number of whole segments, zero included, so
///   `production/**` matches `production`, `production/A` and `production/a/b`, and `**/KEY`
///   matches `KEY` and `staging/KEY`.
/// - Every other character matches itself, case-sensitively.
///
/// A pattern is 1 to 256 bytes of the characters of environment and secret names
/// (`A-Z a-z 0-9 _ -`) plus `*`, split by single `/` into non-empty segments. A path with an empty
/// segment (`production//A`, `/A`, `A/`, or the empty path) matches no pattern.
public struct PathPattern: Hashable, Sendable, CustomStringConvertible {
    public static let maxLength = 256
    static let hint = "patterns look like production/API_KEY, production/*, */API_KEY or production/**: "
        + "letters, digits, _ and -, with * inside one segment and ** as a whole segment"

    public let text: String
    private let segments: [Segment]
    let specificity: Specificity

    enum Segment: Sendable {
        case globstar
        case literal([UInt8])
        case glob([UInt8])
    }

    public init(_ text: String) throws(VSecureError) {
        let bytes = Array(text.utf8)
        func refuse(_ problem: String) -> VSecureError {
            .usage("invalid path pattern \(Quoted(text)): \(problem)", hint: Self.hint)
        }
        guard !bytes.isEmpty else { throw .usage("path pattern is empty", hint: Self.hint) }
        guard bytes.count <= Self.maxLength else {
            throw refuse("it is \(bytes.count) bytes long; the limit is \(Self.maxLength)")
        }
        if let bad = bytes.first(where: { !Self.isPatternByte($0) }) {
            let shown = (0x20...0x7E).contains(bad) ? "'\(Character(Unicode.Scalar(bad)))'" : "byte 0x\(hexByte(bad))"
            throw refuse("\(shown) is not allowed; use letters, digits, _, -, * and /")
        }
        guard bytes.first != UInt8(ascii: "/") else { throw refuse("it starts with '/'") }
        guard bytes.last != UInt8(ascii: "/") else { throw refuse("it ends with '/'") }

        var segments: [Segment] = []
        var literalSegments = 0, literalBytes = 0, globstars = 0, stars = 0
        for part in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            let segment = Array(part)
            guard !segment.isEmpty else { throw refuse("it has an empty segment ('//')") }
            let starCount = segment.count { $0 == UInt8(ascii: "*") }
            if segment == [UInt8(ascii: "*"), UInt8(ascii: "*")] {
                segments.append(.globstar)
                globstars += 1
                continue
            }
            guard !segment.indices.dropLast().contains(where: { segment[$0] == UInt8(ascii: "*") && segment[$0 + 1] == UInt8(ascii: "*") }) else {
                throw refuse("'**' must be a whole segment, as in production/**")
            }
            literalBytes += segment.count - starCount
            stars += starCount
            if starCount == 0 {
                literalSegments += 1
                segments.append(.literal(segment))
            } else {
                segments.append(.glob(segment))
            }
        }
        self.text = text
        self.segments = segments
        self.specificity = Specificity(isLiteral: globstars == 0 && stars == 0, literalSegments: literalSegments,
                                       literalCharacters: literalBytes, globstars: globstars, stars: stars)
    }

    /// True when the pattern has no wildcard and so names exactly one path.
    public var isLiteral: Bool { specificity.isLiteral }

    public var description: String { text }

    public static func == (a: PathPattern, b: PathPattern) -> Bool { a.text == b.text }
    public func hash(into hasher: inout Hasher) { hasher.combine(text) }

    public func matches(_ path: String) -> Bool {
        if isLiteral { return path.utf8.elementsEqual(text.utf8) }
        let bytes = Array(path.utf8)
        var ranges: [Range<Int>] = []
        var start = 0
        for index in 0...bytes.count where index == bytes.count || bytes[index] == UInt8(ascii: "/") {
            guard index > start else { return false }
            ranges.append(start..<index)
            start = index + 1
        }
        // The classic single-backtrack wildcard walk, one level up: `**` plays the part of `*`
        // and each other pattern segment is a one-segment predicate.
        var p = 0, s = 0
        var resumeP = -1, resumeS = 0
        while s < ranges.count {
            if p < segments.count, case .globstar = segments[p] {
                resumeP = p
                resumeS = s
                p += 1
            } else if p < segments.count, Self.segment(segments[p], matches: bytes[ranges[s]]) {
                p += 1
                s += 1
            } else if resumeP >= 0 {
                resumeS += 1
                p = resumeP + 1
                s = resumeS
            } else {
                return false
            }
        }
        while p < segments.count, case .globstar = segments[p] { p += 1 }
        return p == segments.count
    }

    private static func segment(_ segment: Segment, matches part: ArraySlice<UInt8>) -> Bool {
        switch segment {
        case .globstar: return true
        case .literal(let literal): return part.elementsEqual(literal)
        case .glob(let glob):
            let star = UInt8(ascii: "*")
            var g = 0, t = part.startIndex
            var resumeG = -1, resumeT = part.startIndex
            while t < part.endIndex {
                if g < glob.count, glob[g] == star {
                    resumeG = g
                    resumeT = t
                    g += 1
                } else if g < glob.count, glob[g] == part[t] {
                    g += 1
                    t += 1
                } else if resumeG >= 0 {
                    resumeT += 1
                    g = resumeG + 1
                    t = resumeT
                } else {
                    return false
                }
            }
            while g < glob.count, glob[g] == star { g += 1 }
            return g == glob.count
        }
    }

    private static func isPatternByte(_ byte: UInt8) -> Bool {
        byte.isASCIILetter || byte.isASCIIDigit || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            || byte == UInt8(ascii: "*") || byte == UInt8(ascii: "/")
    }

    /// How specific a pattern is; of the rules that match a path, the greatest decides. Compared
    /// field by field, the first difference deciding:
    /// 1. a literal pattern (no wildcard) beats any glob;
    /// 2. more segments without a wildcard beats fewer;
    /// 3. more literal characters (every byte but `*` and `/`) beats fewer;
    /// 4. fewer `**` segments beats more;
    /// 5. fewer `*` (outside `**`) beats more.
    /// Different patterns can still be equal (`staging/*_KEY` and `staging/API_*`); see
    /// `AccessPolicy.decide` for how ties are settled.
    struct Specificity: Comparable, Sendable {
        let isLiteral: Bool
        let literalSegments: Int
        let literalCharacters: Int
        let globstars: Int
        let stars: Int

        static func < (a: Specificity, b: Specificity) -> Bool {
            if a.isLiteral != b.isLiteral { return b.isLiteral }
            if a.literalSegments != b.literalSegments { return a.literalSegments < b.literalSegments }
            if a.literalCharacters != b.literalCharacters { return a.literalCharacters < b.literalCharacters }
            if a.globstars != b.globstars { return a.globstars > b.globstars }
            return a.stars > b.stars
        }
    }
}
