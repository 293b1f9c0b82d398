import VSecureCore

// The audit chain's readers: a stored row (`AuditEvent(json:)`, what the verifier re-reads), an
// entry as the API shows it (`AuditEntry(json:)`) and a verification answer
// (`AuditVerification(json:)`). Whatever parses must be written back and read to the same value,
// since the chain's MAC is computed over the written form.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let json = try? JSONParser.parse(bytes) else { return 0 }
    let seq: Int64
    if case .object(let members) = json, case .int(let n)? = members.first(where: { $0.0 == "seq" })?.1 { seq = n } else { seq = 1 }

    if let event = AuditEvent(json: json) {
        let written = event.json(seq: seq)
        guard let again = AuditEvent(json: written), again == event else {
            fatalError("AuditEvent does not read back from its JSON:\n\(written.serialized())")
        }
        // The stored form goes through text: serialize and parse as the audit log does.
        guard let reparsed = try? JSONParser.parse(Array(written.serialized(indent: nil).utf8)), reparsed == written else {
            fatalError("an audit event's JSON does not survive serialization")
        }
        var filter = AuditFilter(limit: 10)
        _ = filter.matches(event, seq: seq)
        filter.newestFirst = true
        for field in AuditFilter.fields { try? filter.set(field, event.name ?? "", now: event.time) }
        _ = filter.matches(event, seq: seq)
    }
    if let entry = AuditEntry(json: json) {
        guard let again = AuditEntry(json: entry.json), again == entry else {
            fatalError("AuditEntry does not read back from its JSON:\n\(entry.json.serialized())")
        }
    }
    if let verification = AuditVerification(json: json) {
        let written = verification.json
        guard let again = AuditVerification(json: written), again == verification else {
            fatalError("AuditVerification does not read back from its JSON:\n\(written.serialized())")
        }
        _ = verification.problemDescription
    }
    return 0
}
