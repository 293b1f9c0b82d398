import Testing
import VSecureCore

@Suite("ISO 8601 timestamps (--expires-at)")
struct TimestampTests {
    static let parsed: [(String, Int64)] = [
        ("1970-01-01T00:00:00Z", 0),
        ("2026-11-29T04:23:57Z", 1_795_926_237),
        ("2026-11-29t04:23:57z", 1_795_926_237),
        ("2026-11-29 04:23:57Z", 1_795_926_237),
        ("2026-11-29T04:23:57.999Z", 1_795_926_237),
        ("2026-11-29T04:23Z", 1_795_926_180),
        ("2027-01-31T12:00:00+02:00", 1_801_389_600),
        ("2027-01-31T10:00:00+00:00", 1_801_389_600),
        ("2027-01-31T04:30:00-05:30", 1_801_389_600),
        ("2000-02-29T12:34:56Z", 951_827_696),
        ("2000-02-29T14:34:56+02:00", 951_827_696),
        ("2000-03-01T00:34:56+12:00", 951_827_696),
        ("1969-12-31T23:59:59Z", -1),
        ("0001-01-01T00:00:00Z", -62_135_596_800),
        ("9999-12-31T23:59:59Z", 253_402_300_799),
        ("2016-12-31T23:59:60Z", 1_483_228_799),
    ]

    @Test("parses date-times that carry a zone", arguments: parsed)
    func parses(_ text: String, _ seconds: Int64) throws {
        #expect(try Timestamp(iso8601: text).secondsSinceEpoch == seconds)
    }

    @Test("formats as UTC with Z")
    func formats() {
        #expect(Timestamp(secondsSinceEpoch: 0).iso8601 == "1970-01-01T00:00:00Z")
        #expect(Timestamp(secondsSinceEpoch: 1_795_926_237).iso8601 == "2026-11-29T04:23:57Z")
        #expect(Timestamp(secondsSinceEpoch: 951_827_696).description == "2000-02-29T12:34:56Z")
        #expect(Timestamp(secondsSinceEpoch: -1).iso8601 == "1969-12-31T23:59:59Z")
        #expect(Timestamp(secondsSinceEpoch: 253_402_300_799).iso8601 == "9999-12-31T23:59:59Z")
    }

    @Test("offsets move the instant across days and years")
    func offsetsCrossDays() throws {
        #expect(try Timestamp(iso8601: "2027-01-01T01:00:00+02:00").iso8601 == "2026-12-31T23:00:00Z")
        #expect(try Timestamp(iso8601: "2024-02-28T23:30:00-01:00").iso8601 == "2024-02-29T00:30:00Z")
        #expect(try Timestamp(iso8601: "2023-02-28T23:30:00-01:00").iso8601 == "2023-03-01T00:30:00Z")
    }

    @Test("format then parse is the identity",
          arguments: [0, 1, -1, 59, 86_399, 86_400, 951_782_399, 951_782_400, 951_868_800, 1_709_164_800,
                      4_107_542_400, 253_402_300_799, -62_135_596_800, -2_208_988_800] as [Int64])
    func roundTrip(_ seconds: Int64) throws {
        let time = Timestamp(secondsSinceEpoch: seconds)
        #expect(try Timestamp(iso8601: time.iso8601) == time)
    }

    @Test("leap days exist only in leap years",
          arguments: [("2024-02-29T00:00:00Z", true), ("2000-02-29T00:00:00Z", true), ("2023-02-29T00:00:00Z", false),
                      ("1900-02-29T00:00:00Z", false), ("2100-02-29T00:00:00Z", false), ("2400-02-29T00:00:00Z", true)])
    func leapDays(_ text: String, _ valid: Bool) {
        if valid {
            #expect((try? Timestamp(iso8601: text))?.iso8601 == text)
        } else {
            let error = #expect(throws: VSecureError.self) { try Timestamp(iso8601: text) }
            #expect(error?.message.contains("is not a valid calendar time") == true)
        }
    }

    static let refused: [(String, String)] = [
        ("2027-01-31T12:00:00", "has no time zone"),
        ("2027-01-31T12:00", "has no time zone"),
        ("2027-02-30T00:00:00Z", "is not a valid calendar time"),
        ("2027-04-31T00:00:00Z", "is not a valid calendar time"),
        ("2027-13-01T00:00:00Z", "is not a valid calendar time"),
        ("2027-00-10T00:00:00Z", "is not a valid calendar time"),
        ("2027-01-00T00:00:00Z", "is not a valid calendar time"),
        ("2027-01-01T24:00:00Z", "is not a valid calendar time"),
        ("2027-01-01T23:60:00Z", "is not a valid calendar time"),
        ("2027-01-01T23:59:61Z", "is not a valid calendar time"),
        ("2027-01-31", "invalid date"),
        ("", "invalid date"),
        ("tomorrow", "invalid date"),
        ("27-01-31T12:00:00Z", "invalid date"),
        ("2027-1-31T12:00:00Z", "invalid date"),
        ("2027-01-31T12:00:00.Z", "invalid date"),
        ("2027-01-31T12:00:00ZZ", "invalid date"),
        ("2027-01-31T12:00:00 UTC", "invalid date"),
        ("2027-01-31T12:00:00+2:00", "invalid zone"),
        ("2027-01-31T12:00:00+0200", "invalid zone"),
        ("2027-01-31T12:00:00+24:00", "invalid zone"),
        ("2027-01-31T12:00:00+02:60", "invalid zone"),
    ]

    @Test("refused texts", arguments: refused)
    func refuses(_ text: String, _ message: String) {
        let error = #expect(throws: VSecureError.self) { try Timestamp(iso8601: text) }
        #expect(error?.status == .usage)
        #expect(error?.message.contains(message) == true, "\(String(describing: error?.message))")
        #expect(error?.hints.first?.contains("2027-01-31T12:00:00Z") == true)
    }
}
