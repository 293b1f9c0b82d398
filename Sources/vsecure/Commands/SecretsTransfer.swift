import ArgumentParser
import VSecureCore
import VSecureCrypto
import VSecureStore
import VSecureVault

struct SecretsImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets:import",
        abstract: "Create or update secrets from a .env file or a JSON object of strings, all or nothing.",
        discussion: """
        Every name and value is checked before anything is written, and the whole import is one \
        transaction. A secret whose value is unchanged gets no new version. FILE may be - for stdin.
        """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable { case auto, dotenv, json }

    @Argument(help: ArgumentHelp("A .env file or a JSON object {\"NAME\": \"value\"}; - reads stdin.", valueName: "file"))
    var file: String

    @Option(name: .long, help: "The file's format (auto: JSON when it starts with '{').")
    var format: Format = .auto

    @OptionGroup var location: StoreOptions
    @OptionGroup var environment: EnvironmentOption

    @Option(name: .long, help: ArgumentHelp("Tags for every imported secret (comma list; repeatable).", valueName: "a,b"))
    var tags: [String] = []

    @OptionGroup var output: OutputOption

    func run() throws {
        let tagList = try Tag.parseLists(tags)
        let limit = 64 * 1024 * 1024
        let raw = file == "-" ? try SecretInput.readStdin(limit: limit, what: "the import")
                              : try SecretInput.readFile(file, limit: limit, what: "the import file")
        var bytes = raw.withUnsafeBytes { Array($0) }
        defer { Sodium.wipe(&bytes) }
        let isJSON = format == .json || (format == .auto && bytes.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) == UInt8(ascii: "{"))
        var entries = isJSON ? try parseJSON(bytes) : try Dotenv.parse(bytes, path: file == "-" ? "<stdin>" : file)
        defer { for index in entries.indices { Sodium.wipe(&entries[index].value) } }
        for entry in entries { try SecretValueRule.check(length: entry.value.count, name: entry.name) }

        let store = try location.open()
        // One locked buffer for every value: a locked allocation per value would hit the
        // kernel's cap on mappings for a large import.
        let storage = SecureBytes(count: max(1, entries.reduce(0) { $0 + $1.value.count }))
        var upserts: [UpsertEntry] = []
        upserts.reserveCapacity(entries.count)
        var offset = 0
        storage.withUnsafeMutableBytes { buffer in
            for entry in entries {
                entry.value.withUnsafeBytes { value in
                    if value.count > 0 { (buffer.baseAddress! + offset).copyMemory(from: value.baseAddress!, byteCount: value.count) }
                }
                upserts.append(UpsertEntry(name: entry.name, in: storage, range: offset..<(offset + entry.value.count)))
                offset += entry.value.count
            }
        }
        let result = try store.upsert(environment: try environment.explicit(), entries: upserts, addTags: tagList)
        let env = result.environment
        let created = result.created.map(\.rawValue), updated = result.updated.map(\.rawValue), unchanged = result.unchanged.map(\.rawValue)
        if output.json {
            Console.out(JSONValue.object([
                ("environment", .string(env.rawValue)),
                ("created", .array(created.map(JSONValue.string))),
                ("updated", .array(updated.map(JSONValue.string))),
                ("unchanged", .array(unchanged.map(JSONValue.string))),
            ]).serialized())
        } else {
            Console.out("Imported \(entries.count) secrets into \(env): \(created.count) created, \(updated.count) updated, \(unchanged.count) unchanged")
        }
    }

    private func parseJSON(_ bytes: [UInt8]) throws(VSecureError) -> [Dotenv.Entry] {
        let document: JSONValue
        do { document = try JSONParser.parse(bytes) } catch {
            throw VSecureError.usage("\(file): \(error.message)", hint: "import expects a JSON object {\"NAME\": \"value\", …} or a .env file")
        }
        guard case .object(let members) = document else {
            throw VSecureError.usage("\(file) is JSON but not an object", hint: "import expects {\"NAME\": \"value\", …}")
        }
        var entries: [Dotenv.Entry] = []
        for (key, value) in members {
            let name = try SecretName(key)
            guard case .string(let text) = value else {
                throw VSecureError.usage("the value of \(name) in \(file) is not a string")
            }
            entries.append(Dotenv.Entry(name: name, value: Array(text.utf8), line: 0))
        }
        return entries
    }
}

struct SecretsExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets:export",
        abstract: "Print an environment's secrets as dotenv, JSON or shell, quoted to read back exactly.",
        discussion: """
        dotenv and shell cannot carry a NUL byte, and JSON cannot carry bytes that are not UTF-8: such a \
        secret stops the export (nothing is printed) with an error naming it. Expired secrets are left out \
        unless --include-expired.
        """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable { case dotenv, json, shell }

    @OptionGroup var location: StoreOptions
    @OptionGroup var environment: EnvironmentOption

    @Option(name: .long, help: ArgumentHelp("Only secrets carrying all these tags (comma list; repeatable).", valueName: "a,b"))
    var tags: [String] = []

    @Option(name: .long, help: "dotenv, json or shell.")
    var format: Format = .dotenv

    @Flag(name: .customLong("include-expired"), help: "Also export expired secrets.")
    var includeExpired = false

    func run() throws {
        let now = ProcessEnvironment.now
        let tagList = try Tag.parseLists(tags)
        let store = try location.open()
        let env = try environment.explicit() ?? store.defaultEnvironment()
        let all = try store.list(SecretQuery(environment: env, tags: tagList, includeExpired: true))
        let chosen = includeExpired ? all : all.filter { !$0.isExpired(at: now) }
        let values: [(SecretName, SecureBytes)] = chosen.isEmpty ? []
            : try store.batchGet(environment: env, names: chosen.map(\.name), allowExpired: true).items.map { ($0.name, $0.value) }
        // Everything is encoded before anything is printed, so a refused value leaves no partial output.
        let encoded = SecureBytes(count: values.reduce(0) { $0 + $1.1.count * 6 + $1.0.rawValue.utf8.count * 2 + 32 } + 4)
        var length = 0
        func append(_ bytes: [UInt8]) {
            var copy = bytes
            encoded.withUnsafeMutableBytes { out in
                copy.withUnsafeBytes { out.baseAddress!.advanced(by: length).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            }
            length += copy.count
            Sodium.wipe(&copy)
        }
        switch format {
        case .dotenv, .shell:
            for (name, value) in values {
                try value.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
                    append(format == .dotenv ? try Dotenv.encode(name: name, value: raw) : try Dotenv.encodeShell(name: name, value: raw))
                }
            }
        case .json:
            append(Array("{".utf8))
            for (index, (name, value)) in values.enumerated() {
                var member = ""
                try value.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
                    guard let text = String(validating: raw, as: UTF8.self) else {
                        throw VSecureError.usage("\(name) is not UTF-8 text, which JSON cannot carry", hint: "export it with --format dotenv")
                    }
                    member = JSONValue.object([(name.rawValue, .string(text))]).serialized(indent: nil)
                }
                var bytes = Array(member.utf8.dropFirst().dropLast())
                append(Array((index == 0 ? "\n  " : ",\n  ").utf8) + bytes)
                Sodium.wipe(&bytes)
            }
            append(Array((values.isEmpty ? "}\n" : "\n}\n").utf8))
        }
        encoded.withUnsafeBytes { Console.outRaw(UnsafeRawBufferPointer(rebasing: $0[0..<length])) }
        let skipped = all.count - chosen.count
        if skipped > 0 { Console.note("left out \(skipped) expired secret(s); --include-expired exports them") }
    }
}
