import Testing
import VSecureCore

/// Inputs the fuzz targets under Fuzz/ found, kept as tests (and in Fuzz/corpus/ as seeds).
@Suite("Fuzz regressions: core")
struct CoreFuzzRegressionTests {
    // FuzzNames, Fuzz/corpus/FuzzNames/regression-year-out-of-range: a zone offset moved the
    // time into year -1 (or 10000) in UTC; it parsed, but `iso8601` wrote "00-1-12-31T23:59:00Z",
    // which no reader accepts (an audit entry or a batch answer's expiresAt would not read back).
    @Test("a zone that moves a time out of years 0000 to 9999 in UTC is refused",
          arguments: ["0000-01-01T00:00:00+00:01", "0000-01-01T00:00:00+23:59", "9999-12-31T23:59:59-00:01",
                      "9999-12-31T23:00:00-01:00"])
    func yearOutOfRange(_ text: String) {
        let error = #expect(throws: VSecureError.self) { try Timestamp(iso8601: text) }
        #expect(error?.message.contains("outside the years 0000 to 9999") == true)
    }

    @Test("the first and last representable times parse and read back",
          arguments: ["0000-01-01T00:00:00Z", "0000-01-01T00:00:00-00:01", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59+01:00"])
    func yearBoundaries(_ text: String) throws {
        let time = try Timestamp(iso8601: text)
        #expect(try Timestamp(iso8601: time.iso8601) == time)
    }

    // FuzzAudit, Fuzz/corpus/FuzzAudit/regression-truncated-max.json (seeded from reading the
    // code, then confirmed by the target): a server's verification answer with lastSeq at
    // Int64.max parsed, and writing it back (`audit:verify --output json`) overflowed on lastSeq + 1.
    @Test("a verification answer whose log ends at the largest sequence number is refused, not a crash")
    func truncatedAtMaxSequence() throws {
        let text = #"{"checked":0,"headSeq":0,"headMac":"","problem":{"kind":"truncated","lastSeq":9223372036854775807,"anchoredSeq":0}}"#
        #expect(AuditVerification(json: try JSONParser.parse(Array(text.utf8))) == nil)
        let fine = #"{"checked":0,"headSeq":0,"headMac":"","problem":{"kind":"truncated","lastSeq":9223372036854775806,"anchoredSeq":0}}"#
        let verification = try #require(AuditVerification(json: try JSONParser.parse(Array(fine.utf8))))
        #expect(AuditVerification(json: verification.json) == verification)
    }
}
