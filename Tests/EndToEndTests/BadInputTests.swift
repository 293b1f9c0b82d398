import Foundation
import Testing
import TestSupport

/// A command the CLI must refuse: its exit code, a part of its error message, and no change.
struct BadInput: Sendable, CustomTestStringConvertible {
    var arguments: [String]
    var stdin: String?
    var status: Int32
    var message: String

    init(_ arguments: [String], stdin: String? = nil, _ message: String, status: Int32 = 2) {
        self.arguments = arguments
        self.stdin = stdin
        self.status = status
        self.message = message
    }

    var testDescription: String { arguments.map { $0.debugDescription }.joined(separator: " ") }
}

/// The value every bad-input command offers; it must never reach stderr.
let offeredValue = "bad-input-OFFERED-SECRET-value"
let longName = String(repeating: "N", count: 129)

let badNames: [BadInput] = [
    BadInput(["secrets:create", "", offeredValue], "secret name is empty"),
    BadInput(["secrets:create", "a/b", offeredValue], "invalid secret name 'a/b'"),
    BadInput(["secrets:create", "..", offeredValue], "invalid secret name '..'"),
    BadInput(["secrets:create", "../etc/passwd", offeredValue], "invalid secret name '../etc/passwd'"),
    BadInput(["secrets:create", "API KEY", offeredValue], "invalid secret name 'API KEY'"),
    BadInput(["secrets:create", "A\u{01}B", offeredValue], "invalid secret name 'A\\x01B'"),
    BadInput(["secrets:create", "A\nB", offeredValue], "invalid secret name 'A\\x0aB'"),
    BadInput(["secrets:create", "A\u{1B}[31mB", offeredValue], "invalid secret name 'A\\x1b[31mB'"),
    BadInput(["secrets:create", "1ABC", offeredValue], "invalid secret name '1ABC'"),
    BadInput(["secrets:create", "CAFÉ", offeredValue], "invalid secret name 'CAF\\xc3\\x89'"),
    BadInput(["secrets:create", longName, offeredValue], "is 129 characters long; the limit is 128"),
    BadInput(["secrets:create", "=\(offeredValue)"], "secret name is empty"),
    // NAME=VALUE where only a name is taken: the error shows the name, never what follows '='.
    BadInput(["secrets:create", "DB_PASS=\(offeredValue)", "extra"], "invalid secret name 'DB_PASS=...'"),
    BadInput(["secrets:update", "DB_PASS=\(offeredValue)", "x"], "invalid secret name 'DB_PASS=...'"),
    BadInput(["secrets:get", "DB_PASS=\(offeredValue)"], "invalid secret name 'DB_PASS=...'"),
    BadInput(["secrets:get", longName + "=\(offeredValue)"], "invalid secret name 'NNNN"),
    BadInput(["secrets:update", "a/b", offeredValue], "invalid secret name 'a/b'"),
    BadInput(["secrets:get", ".."], "invalid secret name '..'"),
    BadInput(["secrets:get", longName], "the limit is 128"),
    BadInput(["secrets:versions", "a b"], "invalid secret name 'a b'"),
    BadInput(["secrets:diff", ""], "secret name is empty"),
    BadInput(["secrets:rollback", "x/y"], "invalid secret name 'x/y'"),
    BadInput(["secrets:delete", "..", "--yes"], "invalid secret name '..'"),
]

let badDurations: [BadInput] = ["-5m", "1.5h", "0d", "0s", "9999999999999d", "1x", "30m1h", "1h1h", "5", "m"].flatMap { duration in
    let message = switch duration {
    case "0d", "0s": "duration '\(duration)' must be longer than zero"
    case "9999999999999d": "duration '9999999999999d' is longer than 100 years"
    default: "invalid duration '\(duration)'"
    }
    return [
        BadInput(["secrets:create", "NEW_NAME", "-", "--expires-in=\(duration)"], stdin: offeredValue, message),
        BadInput(["secrets:update", "EXISTING", "--expires-in=\(duration)"], message),
    ]
} + [
    BadInput(["secrets:create", "NEW_NAME", "-", "--expires-in="], stdin: offeredValue, "Missing value for '--expires-in <duration>'"),
    BadInput(["secrets:update", "EXISTING", "--expires-in="], "Missing value for '--expires-in <duration>'"),
]

let badDates: [BadInput] = [
    ("2031-01-01T00:00:00", "date '2031-01-01T00:00:00' has no time zone"),
    ("2031-01-01", "invalid date '2031-01-01'"),
    ("2020-01-01T00:00:00Z", "--expires-at 2020-01-01T00:00:00Z is in the past"),
    ("2031-02-30T00:00:00Z", "date '2031-02-30T00:00:00Z' is not a valid calendar time"),
    ("2031-01-01T00:00:00+25:00", "invalid zone in date '2031-01-01T00:00:00+25:00'"),
    ("tomorrow", "invalid date 'tomorrow'"),
    ("", "Missing value for '--expires-at <time>'"),
].flatMap { date, message in [
    BadInput(["secrets:create", "NEW_NAME", "-", "--expires-at=\(date)"], stdin: offeredValue, message),
    BadInput(["secrets:update", "EXISTING", "--expires-at=\(date)"], message),
] }

let badAttributes: [BadInput] = [
    BadInput(["secrets:create", "NEW_NAME", "-", "--metadata", "novalue"], stdin: offeredValue, "metadata 'novalue' has no '='"),
    BadInput(["secrets:update", "EXISTING", "--metadata", "novalue"], "metadata 'novalue' has no '='"),
    BadInput(["secrets:create", "NEW_NAME", "-", "--metadata", "=v"], stdin: offeredValue, "invalid metadata key ''"),
    BadInput(["secrets:create", "NEW_NAME", "-", "--metadata", "k=a\u{01}b"], stdin: offeredValue, "metadata 'k' contains a control character"),
    BadInput(["secrets:update", "EXISTING", "--remove-metadata", "bad key"], "invalid metadata key 'bad key'"),
    BadInput(["secrets:create", "NEW_NAME", "-", "--tags", "a,,b"], stdin: offeredValue, "empty tag"),
    BadInput(["secrets:create", "NEW_NAME", "-", "--tags", ""], stdin: offeredValue, "empty tag"),
    BadInput(["secrets:create", "NEW_NAME", "-", "--tags", "a,"], stdin: offeredValue, "empty tag"),
    BadInput(["secrets:create", "NEW_NAME", "-", "--tags", "bad tag"], stdin: offeredValue, "invalid tag 'bad tag'"),
    BadInput(["secrets:update", "EXISTING", "--tags", "a,,b"], "empty tag"),
    BadInput(["secrets:update", "EXISTING", "--add-tag", ""], "empty tag"),
    BadInput(["secrets:update", "EXISTING", "--remove-tag", ",x"], "empty tag"),
    BadInput(["secrets:list", "--tags", "a,,b"], "empty tag"),
    BadInput(["secrets:export", "--tags", ""], "empty tag"),
    BadInput(["secrets:create", "NEW_NAME", "-", "--env", "Production"], stdin: offeredValue, "invalid environment name 'Production'"),
    BadInput(["secrets:create", "NEW_NAME", "-", "--env", "qa"], stdin: offeredValue, "unknown environment 'qa'"),
    BadInput(["secrets:create", "NEW_NAME", "-", "--description", "two\nlines"], stdin: offeredValue,
             "the description must be at most 1024 bytes without control characters"),
    BadInput(["secrets:update", "EXISTING", "-", "--if-version", "0"], stdin: offeredValue, "--if-version must be 1 or more"),
    BadInput(["secrets:update", "EXISTING", "-", "--if-version", "2"], stdin: offeredValue, "EXISTING in development is at version 1, not 2", status: 4),
    BadInput(["secrets:create", "EXISTING", "-"], stdin: offeredValue, "secret EXISTING already exists in development", status: 4),
    BadInput(["secrets:update", "MISSING", "-"], stdin: offeredValue, "no secret MISSING in development", status: 3),
    BadInput(["secrets:rollback", "EXISTING", "--version", "0"], "--version must be 1 or more"),
]

@Suite("Bad input: a clear error, a documented exit code, no change", .noValuesOnStderr)
struct BadInputTests {
    func expectRefused(_ input: BadInput, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let vault = try Vault()
        try vault.create("EXISTING", "existing-SECRET-value", ["--tags", "keep", "--metadata", "k=v"])
        let before = try vault.snapshot()
        let result = try vault.run(input.arguments, stdin: input.stdin.map { .text($0) } ?? .null)
        expectFailure(result, input.status, input.message, sourceLocation: sourceLocation)
        expectNoLeak(offeredValue, result, sourceLocation: sourceLocation)
        expectNoLeak("existing-SECRET-value", result, sourceLocation: sourceLocation)
        #expect(try vault.snapshot() == before, "the vault changed", sourceLocation: sourceLocation)
        #expect(try vault.value("EXISTING") == bytes("existing-SECRET-value"), sourceLocation: sourceLocation)
        #expect(try versions(vault, "EXISTING").count == 1, sourceLocation: sourceLocation)
    }

    @Test(arguments: badNames) func badNamesAreRefused(input: BadInput) throws { try expectRefused(input) }
    @Test(arguments: badDurations) func badDurationsAreRefused(input: BadInput) throws { try expectRefused(input) }
    @Test(arguments: badDates) func badDatesAreRefused(input: BadInput) throws { try expectRefused(input) }
    @Test(arguments: badAttributes) func badAttributesAreRefused(input: BadInput) throws { try expectRefused(input) }

    @Test func theLongestNameIsAccepted() throws {
        let vault = try Vault()
        let name = String(repeating: "N", count: 128)
        expectSuccess(try vault.run(["secrets:create", name, "-"], stdin: .text("long-name-SECRET")))
        #expect(try vault.value(name) == bytes("long-name-SECRET"))
    }

    @Test func theValueCapIs122880Bytes() throws {
        let vault = try Vault()
        let atCap = [UInt8](repeating: 0x61, count: 122_880)
        let overCap = [UInt8](repeating: 0x62, count: 122_881)
        let atCapFile = try vault.directory.write("at-cap", atCap)
        let overCapFile = try vault.directory.write("over-cap", overCap)

        expectSuccess(try vault.run(["secrets:create", "AT_CAP_FILE", "--from-file", atCapFile]))
        expectSuccess(try vault.run(["secrets:create", "AT_CAP_STDIN", "-"], stdin: .bytes(atCap)))
        expectSuccess(try vault.run(["secrets:create", "AT_CAP_ARGV", String(decoding: atCap, as: UTF8.self), "--quiet"]))
        for name in ["AT_CAP_FILE", "AT_CAP_STDIN", "AT_CAP_ARGV"] {
            #expect(try vault.value(name) == atCap, "\(name)")
            #expect(try versions(vault, name)[0].int("valueLength") == 122_880)
        }

        let before = try vault.snapshot()
        let refusals: [(ProcessResult, String)] = [
            (try vault.run(["secrets:create", "OVER_FILE", "--from-file", overCapFile]), "the value of OVER_FILE is larger than the limit of 122880 bytes"),
            (try vault.run(["secrets:create", "OVER_STDIN", "-"], stdin: .bytes(overCap)), "the value of OVER_STDIN is larger than the limit of 122880 bytes"),
            (try vault.run(["secrets:create", "OVER_PIPE"], stdin: .bytes(overCap)), "the value of OVER_PIPE is larger than the limit of 122880 bytes"),
            (try vault.run(["secrets:create", "OVER_ARGV", String(decoding: overCap, as: UTF8.self), "--quiet"]),
             "the value of OVER_ARGV is 122881 bytes; the limit is 122880 bytes (120 KiB)"),
            (try vault.run(["secrets:update", "AT_CAP_FILE", "--from-file", overCapFile]), "the value of AT_CAP_FILE is larger than the limit"),
            (try vault.run(["secrets:update", "AT_CAP_FILE", "-"], stdin: .bytes(overCap)), "the value of AT_CAP_FILE is larger than the limit"),
        ]
        for (result, message) in refusals {
            expectFailure(result, 2, message)
            #expect(!result.stderr.contains("bbbbbbbb"))
        }
        // A directory opens but cannot be read: exit 9, naming the path.
        expectFailure(try vault.run(["secrets:create", "FROM_DIR", "--from-file", vault.directory.path]), 9,
                      "cannot read the value of FROM_DIR from '\(vault.directory.path)': Is a directory")
        #expect(try vault.snapshot() == before)
    }

    // MARK: - Keys

    /// Runs reads and writes with `keyFile` and expects each to fail with exit 7 and `message`,
    /// leaving the vault file untouched.
    func expectKeyRefused(_ vault: Vault, keyFile: String, _ message: String, hint: String? = nil,
                          sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = try vault.snapshot()
        let fileBefore = try vault.directory.read("vault.db")
        for (arguments, stdin) in [(["secrets:get", "EXISTING"], nil), (["secrets:list"], nil), (["vault:status"], nil),
                                   (["secrets:create", "NEW_NAME", "-"], offeredValue), (["secrets:update", "EXISTING", "-"], offeredValue)] as [([String], String?)] {
            let result = try vault.run(arguments, stdin: stdin.map { .text($0) } ?? .null, env: ["VSECURE_KEY_FILE": keyFile])
            expectFailure(result, 7, message, sourceLocation: sourceLocation)
            if let hint { #expect(result.stderr.contains("vsecure: hint: \(hint)"), "\(result)", sourceLocation: sourceLocation) }
            expectNoLeak(offeredValue, result, sourceLocation: sourceLocation)
            expectNoLeak("existing-SECRET-value", result, sourceLocation: sourceLocation)
        }
        #expect(try vault.directory.read("vault.db") == fileBefore, sourceLocation: sourceLocation)
        #expect(try vault.snapshot() == before, sourceLocation: sourceLocation)
    }

    func vaultWithASecret() throws -> Vault {
        let vault = try Vault()
        try vault.create("EXISTING", "existing-SECRET-value")
        return vault
    }

    @Test func aWrongKeyFileIsRefused() throws {
        let vault = try vaultWithASecret()
        let wrong = try vault.directory.write("wrong.key", (0..<32).map { UInt8($0) })
        try expectKeyRefused(vault, keyFile: wrong, "the key file '\(wrong)' does not unlock the vault '\(vault.vaultPath)'",
                             hint: "pass this vault's key with --key-file or VSECURE_KEY_FILE")
    }

    @Test func aGroupOrWorldReadableKeyFileIsRefused() throws {
        let vault = try vaultWithASecret()
        let key = try vault.directory.read("vault.key")
        for mode in [0o644, 0o640, 0o604, 0o660] {
            let path = try vault.directory.write("open-\(String(mode, radix: 8)).key", key, mode: mode)
            try expectKeyRefused(vault, keyFile: path,
                                 "key file '\(path)' is accessible by group or others (mode 0\(String(mode, radix: 8)))",
                                 hint: "run: chmod 600 \(path)")
        }
    }

    @Test func aSymlinkedKeyFileIsRefused() throws {
        let vault = try vaultWithASecret()
        let link = vault.directory.file("link.key")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: vault.keyPath)
        try expectKeyRefused(vault, keyFile: link, "key file '\(link)' is a symlink; refusing to follow it")
    }

    @Test func aKeyFileOfTheWrongLengthIsRefused() throws {
        let vault = try vaultWithASecret()
        let key = try vault.directory.read("vault.key")
        let short = try vault.directory.write("short.key", Array(key.prefix(31)))
        try expectKeyRefused(vault, keyFile: short, "key file '\(short)' has 31 bytes; a vsecure key file has exactly 32")
        let long = try vault.directory.write("long.key", key + [0x0A])
        try expectKeyRefused(vault, keyFile: long, "key file '\(long)' has 33 bytes; a vsecure key file has exactly 32")
        let empty = try vault.directory.write("empty.key", [])
        try expectKeyRefused(vault, keyFile: empty, "has 0 bytes")
    }

    @Test func aMissingOrNonRegularKeyFileIsRefused() throws {
        let vault = try vaultWithASecret()
        let missing = vault.directory.file("missing.key")
        try expectKeyRefused(vault, keyFile: missing, "key file '\(missing)' does not exist")
        let directory = vault.directory.file("keydir")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        try expectKeyRefused(vault, keyFile: directory, "key file '\(directory)' is not a regular file")
    }

    // MARK: - Vault files

    @Test func aCorruptedVaultIsAnIntegrityError() throws {
        let vault = try vaultWithASecret()
        for index in 0..<20 { try vault.create("FILLER_\(index)", "filler-SECRET-\(index)", ["--metadata", "pad=" + String(repeating: "p", count: 500)]) }
        var file = try vault.directory.read("vault.db")
        let walIsEmpty = try !FileManager.default.fileExists(atPath: vault.vaultPath + "-wal") || vault.directory.read("vault.db-wal").isEmpty
        #expect(walIsEmpty, "everything is in vault.db, so damaging it damages the data")
        let start = file.count / 4, end = file.count * 3 / 4
        for index in start..<end { file[index] = UInt8(truncatingIfNeeded: index &* 31 &+ 0xA5) }
        try vault.directory.write("vault.db", file)
        for (arguments, stdin) in [(["secrets:get", "EXISTING"], nil), (["secrets:get", "FILLER_7"], nil), (["secrets:list"], nil),
                                   (["vault:status", "--check"], nil), (["secrets:versions", "FILLER_3"], nil),
                                   (["secrets:export"], nil), (["secrets:update", "FILLER_5", "-"], offeredValue)] as [([String], String?)] {
            let result = try vault.run(arguments, stdin: stdin.map { .text($0) } ?? .null)
            expectFailure(result, 8, "")
            #expect(result.stderr.contains("damaged") || result.stderr.contains("failed"), "\(arguments): \(result)")
            expectNoLeak(offeredValue, result)
        }
        #expect(try vault.directory.read("vault.db") == file, "a failed open must not write to a damaged vault")
    }

    @Test func aVaultOfANewerFormatIsRefused() throws {
        let vault = try vaultWithASecret()
        let message = "vault '\(vault.vaultPath)' has format version 3, newer than this vsecure reads (2)"
        if Vault.hasSQLite3 {
            try vault.sqlite("PRAGMA user_version=3")
        } else {
            var file = try vault.directory.read("vault.db")
            file.replaceSubrange(60..<64, with: [0, 0, 0, 3])
            try vault.directory.write("vault.db", file)
        }
        for arguments in [["secrets:get", "EXISTING"], ["secrets:list"], ["vault:status"]] {
            let result = try vault.run(arguments)
            expectFailure(result, 8, message)
            #expect(result.stderr.contains("vsecure: hint: upgrade vsecure to open it\n"))
        }
    }

    @Test func aNewerFormatWrittenIntoTheHeaderBytesIsRefused() throws {
        let vault = try vaultWithASecret()
        var file = try vault.directory.read("vault.db")
        #expect(Array(file[0..<16]) == bytes("SQLite format 3") + [0])
        file.replaceSubrange(60..<64, with: [0, 0, 0, 3])
        try vault.directory.write("vault.db", file)
        expectFailure(try vault.run(["secrets:get", "EXISTING"]), 8, "has format version 3, newer than this vsecure reads (2)")
    }

    @Test func aFileThatIsNotAVaultIsRefused() throws {
        let dir = try TemporaryDirectory()
        let text = try dir.write("notes.txt", String(repeating: "not a database\n", count: 400))
        let env = minimalEnvironment(home: dir.path)
        expectFailure(try runProcess(Binaries.vsecure, ["secrets:list", "--vault", text], environment: env), 8, "is not a vsecure vault")
        // A valid SQLite database that vsecure did not make.
        if Vault.hasSQLite3 {
            let other = dir.file("other.db")
            _ = try runProcess(Vault.sqlite3, [other, "CREATE TABLE t(x)"], environment: env)
            expectFailure(try runProcess(Binaries.vsecure, ["secrets:list", "--vault", other], environment: env), 8,
                          "'\(other)' is not a vsecure vault")
        }
    }

    @Test func aVaultPathThatIsADirectoryIsRefused() throws {
        let vault = try vaultWithASecret()
        let directory = vault.directory.file("a-directory")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        let result = try vault.run(["secrets:get", "EXISTING"], env: ["VSECURE_VAULT": directory])
        #expect(result.status == 6)
        #expect(result.stderr == """
            vsecure: error: '\(directory)' is a directory, not a vault file
            vsecure: hint: point --vault at the vault file, e.g. \(directory)/vault.db

            """)
        let flag = try vault.run(["secrets:list", "--vault", directory])
        expectFailure(flag, 6, "is a directory, not a vault file")
    }

    @Test func noVaultSuggestsVaultInit() throws {
        let dir = try TemporaryDirectory()
        let env = minimalEnvironment(home: dir.path)
        let result = try runProcess(Binaries.vsecure, ["secrets:get", "ANY"], environment: env)
        #expect(result.status == 6)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == """
            vsecure: error: no vault at '\(dir.path)/.vsecure/vault.db'
            vsecure: hint: create one with `vsecure vault:init`, or point --vault or VSECURE_VAULT at an existing vault

            """)
        let create = try runProcess(Binaries.vsecure, ["secrets:create", "ANY", "-"], environment: env, stdin: .text(offeredValue))
        expectFailure(create, 6, "no vault at")
        expectNoLeak(offeredValue, create)
        #expect(!FileManager.default.fileExists(atPath: dir.file(".vsecure")), "a failed command creates nothing")
    }
}
