import VSecureCore

// Durations, dates and the name grammars: every short text a user or a server hands us. Each
// parse that succeeds must survive its own printed form.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)

    if let duration = try? SecretDuration(parsing: text) {
        guard duration.seconds > 0, duration.seconds <= SecretDuration.maximumSeconds else {
            fatalError("duration out of range: \(duration.seconds)")
        }
        guard let again = try? SecretDuration(parsing: duration.description), again == duration else {
            fatalError("duration \(duration.seconds)s does not read back from \(duration.description)")
        }
        _ = SecretDuration.approximate(seconds: duration.seconds)
    }
    if let time = try? Timestamp(iso8601: text) {
        guard let again = try? Timestamp(iso8601: time.iso8601), again == time else {
            fatalError("time \(time.secondsSinceEpoch) does not read back from \(time.iso8601)")
        }
    }
    if let time = try? Timestamp(testNow: text) { _ = time.iso8601 }
    _ = try? AuditFilter.time(text, now: Timestamp(secondsSinceEpoch: 1_800_000_000))

    if let name = try? SecretName(text) { guard (try? SecretName(name.rawValue)) == name else { fatalError("secret name") } }
    if let name = try? EnvironmentName(text) { guard (try? EnvironmentName(name.rawValue)) == name else { fatalError("environment") } }
    if let name = try? VariableName(text) { guard (try? VariableName(name.rawValue)) == name else { fatalError("variable") } }
    if let tag = try? Tag(text) { guard (try? Tag(tag.rawValue)) == tag else { fatalError("tag") } }
    if let tags = try? Tag.parseLists([text]) {
        for tag in tags { guard (try? Tag(tag.rawValue)) == tag else { fatalError("tag list") } }
    }
    if let entry = try? MetadataEntry(parsing: text) {
        guard (try? MetadataEntry(parsing: "\(entry.key)=\(entry.value)")) == entry else { fatalError("metadata") }
    }
    if let pattern = try? PathPattern(text) {
        guard pattern.text == text, pattern.description == text else { fatalError("pattern text") }
        // A literal pattern names exactly its own text.
        if pattern.isLiteral, !pattern.matches(text) { fatalError("literal pattern \(text) does not match itself") }
        _ = pattern.matches(text)
    }
    _ = Quoted(text).description
    return 0
}
