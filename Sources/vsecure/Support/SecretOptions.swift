import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import VSecureCore
import VSecureCrypto

/// `--tags`, `--metadata`, `--expires-in`/`--expires-at` and `--description` as create takes them.
struct AttributeOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Tags, comma-separated; repeatable. A tag naming an environment also chooses it.", valueName: "a,b"))
    var tags: [String] = []

    @Option(name: .long, help: ArgumentHelp("Metadata key=value (the value may hold = and spaces); repeatable.", valueName: "key=value"))
    var metadata: [String] = []

    @Option(name: .customLong("expires-in"), help: ArgumentHelp("Expire after this long: 90s, 15m, 12h, 30d, 2w, 1h30m.", valueName: "duration"))
    var expiresIn: String?

    @Option(name: .customLong("expires-at"), help: ArgumentHelp("Expire at this ISO 8601 time with a zone, e.g. 2027-01-31T12:00:00Z.", valueName: "time"))
    var expiresAt: String?

    @Option(name: .long, help: ArgumentHelp("A description (public, listed).", valueName: "text"))
    var description: String?

    func parsedTags() throws(VSecureError) -> [Tag] { try Tag.parseLists(tags) }

    func parsedMetadata() throws(VSecureError) -> [MetadataEntry] {
        var entries: [MetadataEntry] = []
        for text in metadata {
            let entry = try MetadataEntry(parsing: text)
            entries.removeAll { $0.key == entry.key }
            entries.append(entry)
        }
        return entries
    }

    func parsedExpiry(now: Timestamp) throws(VSecureError) -> Timestamp? {
        try parseExpiry(expiresIn: expiresIn, expiresAt: expiresAt, now: now)
    }

    func parsedDescription() throws(VSecureError) -> String? {
        try description.map { (text: String) throws(VSecureError) in try checkDescription(text) }
    }
}

func checkDescription(_ description: String) throws(VSecureError) -> String {
    guard !description.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }), description.utf8.count <= 1024 else {
        throw VSecureError.usage("the description must be at most 1024 bytes without control characters")
    }
    return description
}

func parseExpiry(expiresIn: String?, expiresAt: String?, now: Timestamp) throws(VSecureError) -> Timestamp? {
    if expiresIn != nil && expiresAt != nil { throw VSecureError.usage("give either --expires-in or --expires-at, not both") }
    if let expiresIn { return now.adding(try SecretDuration(parsing: expiresIn)) }
    if let expiresAt {
        let time = try Timestamp(iso8601: expiresAt)
        guard time > now else {
            throw VSecureError.usage("--expires-at \(expiresAt) is in the past", hint: "give a future time, or a duration with --expires-in")
        }
        return time
    }
    return nil
}

/// Where a new value comes from: VALUE in argv, `-` for stdin, `--from-file`, stdin when it is
/// not a terminal, or a prompt without echo.
struct ValueSourceOptions: ParsableArguments {
    @Option(name: .customLong("from-file"), help: ArgumentHelp("Read the value from this file, byte for byte.", valueName: "path"))
    var fromFile: String?

    @Flag(name: .long, help: "Do not print hints (such as the warning about values in argv).")
    var quiet = false

    /// Reads the value into locked memory. `positional` is VALUE from argv.
    func read(positional: String?, name: SecretName) throws(VSecureError) -> SecureBytes {
        let limit = SecretValueRule.maximumBytes
        if let fromFile {
            guard positional == nil else { throw VSecureError.usage("give the value either as VALUE or with --from-file, not both") }
            return try checked(SecretInput.readFile(fromFile, limit: limit, what: "the value of \(name)"), name)
        }
        if positional == "-" {
            return try checked(SecretInput.readStdin(limit: limit, what: "the value of \(name)"), name)
        }
        if let positional {
            if !quiet {
                Console.hint("a value given on the command line is visible to other processes and may stay in shell history; prefer stdin or --from-file (--quiet hides this)")
            }
            if positional.unicodeScalars.contains("\u{FFFD}") {
                return try checked(try RawArgument.value(positional, name: name), name)
            }
            var copy = positional
            return try checked(copy.withUTF8 { SecureBytes(copying: UnsafeRawBufferPointer($0)) }, name)
        }
        if !Console.stdinIsTerminal {
            return try checked(SecretInput.readStdin(limit: limit, what: "the value of \(name)"), name)
        }
        let noTerminal = VSecureError.usage("no value given for \(name)", hint: "pass it on stdin, with --from-file, or as VALUE")
        return try SecretInput.prompt("Value for \(name): ", limit: limit, noTerminal: noTerminal)
    }

    private func checked(_ value: SecureBytes, _ name: SecretName) throws(VSecureError) -> SecureBytes {
        try SecretValueRule.check(length: value.count, name: name)
        return value
    }
}

/// The exact bytes of VALUE in argv. Swift decodes argv with repair, so a value that is not
/// UTF-8 reaches the parser with U+FFFD in place of its bytes; storing that would silently
/// change the value. The raw argument that decodes to VALUE (or to `NAME=VALUE`) holds them.
enum RawArgument {
    static func value(_ positional: String, name: SecretName) throws(VSecureError) -> SecureBytes {
        let prefix = Array("\(name.rawValue)=".utf8)
        var found: [[UInt8]] = []
        for index in 1..<Int(CommandLine.argc) {
            guard let pointer = CommandLine.unsafeArgv[index] else { continue }
            let raw = Array(UnsafeBufferPointer(start: pointer, count: strlen(pointer))).map { UInt8(bitPattern: $0) }
            var candidate: [UInt8]?
            if String(decoding: raw, as: UTF8.self) == positional {
                candidate = raw
            } else if raw.starts(with: prefix), String(decoding: raw.dropFirst(prefix.count), as: UTF8.self) == positional {
                candidate = Array(raw.dropFirst(prefix.count))
            }
            if let candidate, !found.contains(candidate) { found.append(candidate) }
        }
        guard found.count == 1, let bytes = found.first else {
            throw VSecureError.usage("cannot tell which bytes of the command line are the value of \(name)",
                                     hint: "pass the value on stdin or with --from-file")
        }
        return bytes.withUnsafeBytes { SecureBytes(copying: $0) }
    }
}

/// Splits `NAME=VALUE` when VALUE is not given separately.
func splitNameAndValue(_ first: String, _ value: String?) throws(VSecureError) -> (SecretName, String?) {
    if value == nil, let eq = first.firstIndex(of: "=") {
        return (try SecretName(String(first[..<eq])), String(first[first.index(after: eq)...]))
    }
    return (try SecretName(first), value)
}
