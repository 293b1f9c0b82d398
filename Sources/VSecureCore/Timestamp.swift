/// Seconds since the Unix epoch, UTC. Formatting and parsing are done here in pure arithmetic so
/// that the launcher does not need Foundation's calendar.
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let secondsSinceEpoch: Int64
    public init(secondsSinceEpoch: Int64) { self.secondsSinceEpoch = secondsSinceEpoch }

    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.secondsSinceEpoch < b.secondsSinceEpoch }

    public func adding(_ duration: SecretDuration) -> Timestamp {
        Timestamp(secondsSinceEpoch: secondsSinceEpoch + duration.seconds)
    }

    /// `2026-11-29T04:23:57Z`
    public var iso8601: String {
        let days = floorDiv(secondsSinceEpoch, 86_400)
        let secondOfDay = secondsSinceEpoch - days * 86_400
        let (y, m, d) = civilFromDays(days)
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2))Z"
    }

    public var description: String { iso8601 }

    /// Parses ISO 8601 / RFC 3339 date-times that carry a zone: `2027-01-31T12:00:00Z`,
    /// `2027-01-31T12:00:00+02:00`, `2027-01-31T12:00Z`, optional fractional seconds (dropped).
    /// A date-time without a zone is refused: its meaning depends on the machine.
    public init(iso8601 text: String) throws(VSecureError) {
        let hint = "write an ISO 8601 time with a zone, e.g. 2027-01-31T12:00:00Z or 2027-01-31T12:00:00+02:00"
        let c = Array(text.utf8)
        var i = 0
        func number(_ width: Int) -> Int64? {
            guard i + width <= c.count else { return nil }
            var value: Int64 = 0
            for k in i..<(i + width) {
                guard c[k].isASCIIDigit else { return nil }
                value = value * 10 + Int64(c[k] - 0x30)
            }
            i += width
            return value
        }
        func expect(_ ch: Character) -> Bool {
            guard i < c.count, c[i] == ch.asciiValue! else { return false }
            i += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
              i < c.count, c[i] == UInt8(ascii: "T") || c[i] == UInt8(ascii: "t") || c[i] == UInt8(ascii: " ")
        else { throw .usage("invalid date \(Quoted(text))", hint: hint) }
        i += 1
        guard let hour = number(2), expect(":"), let minute = number(2) else {
            throw .usage("invalid date \(Quoted(text))", hint: hint)
        }
        var second: Int64 = 0
        if expect(":") {
            guard let s = number(2) else { throw .usage("invalid date \(Quoted(text))", hint: hint) }
            second = s
            if expect(".") {
                let start = i
                while i < c.count, c[i].isASCIIDigit { i += 1 }
                guard i > start else { throw .usage("invalid date \(Quoted(text))", hint: hint) }
            }
        }
        var offset: Int64 = 0
        if expect("Z") || expect("z") {
        } else if i < c.count, c[i] == UInt8(ascii: "+") || c[i] == UInt8(ascii: "-") {
            let sign: Int64 = c[i] == UInt8(ascii: "+") ? 1 : -1
            i += 1
            guard let oh = number(2), expect(":"), let om = number(2), oh <= 23, om <= 59 else {
                throw .usage("invalid zone in date \(Quoted(text))", hint: hint)
            }
            offset = sign * (oh * 3600 + om * 60)
        } else if i == c.count {
            throw .usage("date \(Quoted(text)) has no time zone", hint: hint)
        } else {
            throw .usage("invalid date \(Quoted(text))", hint: hint)
        }
        guard i == c.count else { throw .usage("invalid date \(Quoted(text))", hint: hint) }
        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year, month), hour <= 23, minute <= 59, second <= 60 else {
            throw .usage("date \(Quoted(text)) is not a valid calendar time", hint: hint)
        }
        let days = daysFromCivil(year, month, day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + min(second, 59) - offset
        // A zone can push a time out of years 0000–9999 in UTC, which `iso8601` cannot write back.
        guard (-62_167_219_200...253_402_300_799).contains(seconds) else {
            throw .usage("date \(Quoted(text)) is outside the years 0000 to 9999 in UTC", hint: hint)
        }
        secondsSinceEpoch = seconds
    }
}

private func pad(_ value: Int64, _ width: Int) -> String {
    let text = String(value)
    return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
}

private func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    a >= 0 ? a / b : -((-a + b - 1) / b)
}

private func isLeap(_ y: Int64) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

private func daysInMonth(_ y: Int64, _ m: Int64) -> Int64 {
    switch m {
    case 2: return isLeap(y) ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
}

// Howard Hinnant's days_from_civil / civil_from_days (public-domain algorithms), proleptic Gregorian.
private func daysFromCivil(_ year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
    let y = month <= 2 ? year - 1 : year
    let era = floorDiv(y, 400)
    let yoe = y - era * 400
    let mp = (month + 9) % 12
    let doy = (153 * mp + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
}

private func civilFromDays(_ days: Int64) -> (Int64, Int64, Int64) {
    let z = days + 719_468
    let era = floorDiv(z, 146_097)
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let d = doy - (153 * mp + 2) / 5 + 1
    let m = mp < 10 ? mp + 3 : mp - 9
    return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
}
