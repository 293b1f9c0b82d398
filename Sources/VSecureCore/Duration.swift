/// A positive span of time written as `30d`, `1h30m`, `90s`: one or more `<integer><unit>`
/// parts with units s, m, h, d, w, each unit at most once and from largest to smallest.
/// Signs, fractions, zero and spans over 100 years are refused.
public struct SecretDuration: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let maximumSeconds: Int64 = 100 * 366 * 86_400
    public let seconds: Int64

    public init(seconds: Int64) { self.seconds = seconds }

    public init(parsing text: String) throws(VSecureError) {
        let hint = "durations look like 90s, 15m, 12h, 30d, 2w or 1h30m"
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw .usage("empty duration", hint: hint) }
        let units: [(UInt8, Int64)] = [(UInt8(ascii: "w"), 604_800), (UInt8(ascii: "d"), 86_400),
                                       (UInt8(ascii: "h"), 3_600), (UInt8(ascii: "m"), 60), (UInt8(ascii: "s"), 1)]
        var total: Int64 = 0
        var index = 0
        var nextUnit = 0
        while index < bytes.count {
            var number: Int64 = 0
            var digits = 0
            while index < bytes.count, bytes[index].isASCIIDigit {
                number = number * 10 + Int64(bytes[index] - 0x30)
                digits += 1
                index += 1
                if number > Self.maximumSeconds { throw .usage("duration \(Quoted(text)) is longer than 100 years", hint: hint) }
            }
            guard digits > 0, index < bytes.count else { throw .usage("invalid duration \(Quoted(text))", hint: hint) }
            guard let unitIndex = units.firstIndex(where: { $0.0 == bytes[index] }), unitIndex >= nextUnit else {
                throw .usage("invalid duration \(Quoted(text))", hint: hint)
            }
            let (partial, overflow) = number.multipliedReportingOverflow(by: units[unitIndex].1)
            guard !overflow, partial <= Self.maximumSeconds else {
                throw .usage("duration \(Quoted(text)) is longer than 100 years", hint: hint)
            }
            total += partial
            nextUnit = unitIndex + 1
            index += 1
        }
        guard total > 0 else { throw .usage("duration \(Quoted(text)) must be longer than zero", hint: hint) }
        guard total <= Self.maximumSeconds else { throw .usage("duration \(Quoted(text)) is longer than 100 years", hint: hint) }
        seconds = total
    }

    /// The shortest spelling, e.g. `1h30m`.
    public var description: String {
        var rest = seconds
        var out = ""
        for (unit, size) in [("w", Int64(604_800)), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] where rest >= size {
            out += "\(rest / size)\(unit)"
            rest %= size
        }
        return out.isEmpty ? "0s" : out
    }

    /// A rough human reading for listings: "3d", "5h", "40m", "12s" (largest unit, rounded down).
    public static func approximate(seconds: Int64) -> String {
        for (unit, size) in [("d", Int64(86_400)), ("h", 3_600), ("m", 60)] where seconds >= size {
            return "\(seconds / size)\(unit)"
        }
        return "\(max(seconds, 0))s"
    }

    public static func < (a: SecretDuration, b: SecretDuration) -> Bool { a.seconds < b.seconds }
}
