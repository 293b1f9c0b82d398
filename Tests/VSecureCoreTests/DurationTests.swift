import Testing
import VSecureCore

@Suite("Durations (--expires-in)")
struct DurationTests {
    static let accepted: [(String, Int64)] = [
        ("30d", 30 * 86_400),
        ("1h30m", 5_400),
        ("2w", 2 * 604_800),
        ("90s", 90),
        ("15m", 900),
        ("12h", 43_200),
        ("1w2d3h4m5s", 604_800 + 2 * 86_400 + 3 * 3_600 + 4 * 60 + 5),
        ("007s", 7),
        ("36600d", SecretDuration.maximumSeconds),
    ]

    @Test("accepted spellings", arguments: accepted)
    func accepts(_ text: String, _ seconds: Int64) throws {
        #expect(try SecretDuration(parsing: text).seconds == seconds)
    }

    static let refused: [(String, String)] = [
        ("-5m", "invalid duration '-5m'"),
        ("+5m", "invalid duration"),
        ("1.5h", "invalid duration '1.5h'"),
        ("0d", "must be longer than zero"),
        ("0s", "must be longer than zero"),
        ("9999999999999d", "longer than 100 years"),
        ("99999999999999999999999999s", "longer than 100 years"),
        ("36601d", "longer than 100 years"),
        ("5300w", "longer than 100 years"),
        ("1x", "invalid duration '1x'"),
        ("", "empty duration"),
        ("m5", "invalid duration"),
        ("5", "invalid duration"),
        ("h", "invalid duration"),
        ("5m1h", "invalid duration '5m1h'"),
        ("1h1h", "invalid duration"),
        ("30s30s", "invalid duration"),
        ("1h 30m", "invalid duration"),
        (" 5m", "invalid duration"),
        ("5m ", "invalid duration"),
        ("5M", "invalid duration"),
        ("5d\n", "invalid duration"),
    ]

    @Test("refused spellings, each with a usage error and the accepted forms as hint", arguments: refused)
    func refuses(_ text: String, _ message: String) {
        let error = #expect(throws: VSecureError.self) { try SecretDuration(parsing: text) }
        #expect(error?.status == .usage)
        #expect(error?.message.contains(message) == true, "\(String(describing: error?.message))")
        #expect(error?.hints.first?.contains("1h30m") == true)
    }

    @Test("the description is the shortest spelling and parses back", arguments: [1, 59, 60, 5_400, 86_399, 90_061, 1_209_600, 1_213_201] as [Int64])
    func descriptionRoundTrip(_ seconds: Int64) throws {
        let duration = SecretDuration(seconds: seconds)
        #expect(try SecretDuration(parsing: duration.description) == duration)
    }

    @Test("descriptions")
    func descriptions() {
        #expect(SecretDuration(seconds: 5_400).description == "1h30m")
        #expect(SecretDuration(seconds: 1_213_201).description == "2w1h1s")
        #expect(SecretDuration(seconds: 0).description == "0s")
    }

    @Test("approximate readings for listings")
    func approximate() {
        #expect(SecretDuration.approximate(seconds: 3 * 86_400 + 5) == "3d")
        #expect(SecretDuration.approximate(seconds: 5 * 3_600 + 59 * 60) == "5h")
        #expect(SecretDuration.approximate(seconds: 40 * 60 + 1) == "40m")
        #expect(SecretDuration.approximate(seconds: 12) == "12s")
        #expect(SecretDuration.approximate(seconds: -5) == "0s")
    }

    @Test("ordering and adding to a timestamp")
    func arithmetic() throws {
        #expect(try SecretDuration(parsing: "1h") < SecretDuration(parsing: "61m"))
        #expect(Timestamp(secondsSinceEpoch: 100).adding(try SecretDuration(parsing: "1m")) == Timestamp(secondsSinceEpoch: 160))
    }
}
