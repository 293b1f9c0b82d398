import Testing
import VSecureCore

/// The audit event's stored form and its JSON round trip.
@Suite("Audit events")
struct AuditEventTests {
    static let events: [AuditEvent] = [
        AuditEvent(time: Timestamp(secondsSinceEpoch: 0), actor: AuditEvent.Actor(user: nil), resource: .auth, action: .login, outcome: .failure),
        AuditEvent(time: Timestamp(secondsSinceEpoch: 1_800_000_000), actor: AuditEvent.Actor(user: "ana@example.com", keyID: "key_0123456789abcdef", keyName: "ci \"main\""),
                   resource: .secrets, action: .accessed, environment: "production", name: "API_KEY", version: 12,
                   items: [AuditEvent.Item(name: "A", version: 1), AuditEvent.Item(name: "B", version: nil)],
                   request: AuditEvent.Request(address: "::1", userAgent: "curl/8.0 \u{1}\u{7F}\\ tab\there\nnew é ✓ 😀", requestID: nil),
                   details: [("runId", "run_0011"), ("reason", "line1\r\nline2"), ("path", "production/*")]),
        AuditEvent(time: Timestamp(secondsSinceEpoch: -86_400), actor: AuditEvent.Actor(user: "svc"), resource: .webhooks, action: .deleted,
                   name: "wh_00", version: nil, request: AuditEvent.Request(address: nil, userAgent: nil, requestID: "r")),
    ]

    @Test("the stored bytes are exactly the compact serialization of the JSON form, escapes included")
    func storedFormMatches() {
        for (index, event) in Self.events.enumerated() {
            let seq = Int64(index * 1_000_003 + 1)
            #expect(event.storedJSON(seq: seq) == Array(event.json(seq: seq).serialized(indent: nil).utf8))
        }
    }

    @Test("an event reads back from its stored form unchanged")
    func roundTrip() throws {
        for event in Self.events {
            let parsed = try JSONParser.parse(event.storedJSON(seq: 7))
            #expect(AuditEvent(json: parsed) == event)
            let entry = AuditEntry(seq: 7, event: event, mac: Array(repeating: 0xAB, count: 32))
            #expect(AuditEntry(json: entry.json) == entry)
        }
    }

    @Test("filters: times relative or absolute; unknown values name the field and the choices")
    func filterParsing() throws {
        let now = Timestamp(secondsSinceEpoch: 1_800_000_000)
        var filter = AuditFilter()
        try filter.set("since", "24h", now: now)
        #expect(filter.since == Timestamp(secondsSinceEpoch: 1_800_000_000 - 86_400))
        try filter.set("until", "2027-01-01T00:00:00Z", now: now)
        #expect(filter.until == (try Timestamp(iso8601: "2027-01-01T00:00:00Z")))
        try filter.set("resource", "api-keys", now: now)
        #expect(filter.resource == .apiKeys)
        let error = #expect(throws: VSecureError.self) { try filter.set("action", "stolen", now: now) }
        #expect(error?.message == "unknown action 'stolen'")
        #expect(error?.hints.first?.hasPrefix("one of: created, accessed") == true)
        #expect(throws: VSecureError.self) { try filter.set("since", "yesterday", now: now) }
        #expect(throws: VSecureError.self) { try filter.set("name", "not a name", now: now) }
    }
}
