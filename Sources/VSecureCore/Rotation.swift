/// The characters a generated value is drawn from (docs/rotation.md).
public enum RotationCharset: String, Sendable, CaseIterable {
    /// `A-Z a-z 0-9` (62 characters).
    case alnum
    /// `0-9 a-f` (16).
    case hex
    /// `A-Z a-z 0-9 - _` (64), the URL-safe base64 alphabet without padding.
    case base64url
    /// The 94 printable ASCII characters `!` to `~`; no space, so nothing can be trimmed away.
    case asciiPrintable = "ascii-printable"

    /// Also accepts `asciiPrintable` and `ascii_printable`.
    public init(parsing text: String) throws(VSecureError) {
        switch text {
        case "asciiPrintable", "ascii_printable": self = .asciiPrintable
        default:
            guard let charset = RotationCharset(rawValue: text) else {
                throw .usage("unknown charset \(Quoted(text))", hint: "charsets: alnum, hex, base64url, ascii-printable")
            }
            self = charset
        }
    }

    public var alphabet: [UInt8] {
        let upper = Array(UInt8(ascii: "A")...UInt8(ascii: "Z")), lower = Array(UInt8(ascii: "a")...UInt8(ascii: "z"))
        let digits = Array(UInt8(ascii: "0")...UInt8(ascii: "9"))
        switch self {
        case .alnum: return upper + lower + digits
        case .hex: return digits + Array(UInt8(ascii: "a")...UInt8(ascii: "f"))
        case .base64url: return upper + lower + digits + [UInt8(ascii: "-"), UInt8(ascii: "_")]
        case .asciiPrintable: return Array(UInt8(0x21)...UInt8(0x7E))
        }
    }
}

/// How the next value of a secret is made.
public enum RotationSource: Equatable, Sendable {
    /// Random characters from libsodium's random source.
    case generate(length: Int, charset: RotationCharset)
    /// A program run without a shell: the current value on stdin, the new value on stdout.
    /// `argv[0]` is an absolute path.
    case command(argv: [String])
    /// Nobody rotates it automatically: the policy only produces notices.
    case manual

    public static let lengthRange = 8...4096

    /// `length=32,charset=alnum`; both keys are optional (defaults 32 and alnum).
    public static func generate(parsing text: String) throws(VSecureError) -> RotationSource {
        let hint = "write --rotation-generate 'length=32,charset=alnum' (charsets: alnum, hex, base64url, ascii-printable)"
        var length = 32
        var charset = RotationCharset.alnum
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pieces.count == 2 else { throw .usage("invalid --rotation-generate \(Quoted(text))", hint: hint) }
            let key = pieces[0].trimmingSpaces, value = pieces[1].trimmingSpaces
            switch key {
            case "length":
                guard let number = Int(value), lengthRange.contains(number) else {
                    throw .usage("--rotation-generate length must be a whole number from \(lengthRange.lowerBound) to \(lengthRange.upperBound)", hint: hint)
                }
                length = number
            case "charset":
                do { charset = try RotationCharset(parsing: value) } catch { throw error.withHint(hint) }
            default:
                throw .usage("unknown key \(Quoted(key)) in --rotation-generate", hint: hint)
            }
        }
        return .generate(length: length, charset: charset)
    }

    /// `PATH ARG…` split on spaces (no quoting, no shell), plus `extra` arguments as they are.
    public static func command(parsing text: String, extra: [String]) throws(VSecureError) -> RotationSource {
        let argv = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init) + extra
        let hint = "give an absolute path, e.g. --rotation-command '/usr/local/bin/rotate-db-password --user app'; arguments with spaces go in --rotation-arg"
        guard let program = argv.first else { throw .usage("--rotation-command is empty", hint: hint) }
        guard program.hasPrefix("/") else { throw .usage("the rotation command \(Quoted(program)) is not an absolute path", hint: hint) }
        guard argv.count <= 64, argv.allSatisfy({ !$0.utf8.contains(0) && $0.utf8.count <= 4096 }) else {
            throw .usage("the rotation command is too long (at most 64 arguments of 4096 bytes)")
        }
        return .command(argv: argv)
    }

    public var kind: String {
        switch self {
        case .generate: return "generate"
        case .command: return "command"
        case .manual: return "manual"
        }
    }

    /// `generate length=32,charset=alnum`, `command /path arg`, `manual`.
    public var description: String {
        switch self {
        case .generate(let length, let charset): return "generate length=\(length),charset=\(charset.rawValue)"
        case .command(let argv): return "command " + argv.joined(separator: " ")
        case .manual: return "manual"
        }
    }
}

/// A secret's rotation policy: rotate every `period`; announce it `notifyBefore` ahead.
public struct RotationPolicy: Equatable, Sendable {
    public var period: SecretDuration
    public var notifyBefore: SecretDuration?
    public var source: RotationSource

    public init(period: SecretDuration, notifyBefore: SecretDuration? = nil, source: RotationSource) throws(VSecureError) {
        if let notifyBefore, notifyBefore > period {
            throw .usage("--rotation-notify-before (\(notifyBefore)) is longer than --rotation-period (\(period))",
                         hint: "the notice window must fit inside one period")
        }
        self.period = period
        self.notifyBefore = notifyBefore
        self.source = source
    }
}

/// What the vault records about a secret's rotations.
public struct RotationRecord: Equatable, Sendable {
    /// The last new value (any new version counts), or when the policy was set on a value that
    /// was already there: that value's time.
    public var lastRotatedAt: Timestamp
    /// `lastRotatedAt + period`.
    public var nextDueAt: Timestamp
    /// The first of the failed attempts since the last success; nil when the last attempt worked.
    public var failingSince: Timestamp?
    public var lastFailureAt: Timestamp?
    /// Never a value: "the rotation command exited with status 1".
    public var lastFailure: String?
    public var failureCount: Int

    public init(lastRotatedAt: Timestamp, nextDueAt: Timestamp, failingSince: Timestamp? = nil, lastFailureAt: Timestamp? = nil,
                lastFailure: String? = nil, failureCount: Int = 0) {
        self.lastRotatedAt = lastRotatedAt
        self.nextDueAt = nextDueAt
        self.failingSince = failingSince
        self.lastFailureAt = lastFailureAt
        self.lastFailure = lastFailure
        self.failureCount = failureCount
    }
}

/// Where a secret stands at a given time. The rules, first match wins (docs/rotation.md):
///
/// 1. `expired`: it has an expiry and `expiresAt <= now`.
/// 2. `failing`: its last rotation attempt failed (nothing has succeeded since).
/// 3. `overdue`: `now >= nextDue + min(period, 1 day)`: a scheduler running `rotation:run`
///    would have rotated it long ago.
/// 4. `due`: `now >= nextDue`.
/// 5. `notify`: `now >= nextDue - notifyBefore`, or it expires within `expiryNotice`
///    (`notifyBefore` when it has a policy that sets one, else the caller's window).
/// 6. `ok`.
public enum RotationState: String, Sendable, CaseIterable {
    case ok, notify, due, overdue, expired, failing

    public static let overdueGraceLimit = SecretDuration(seconds: 86_400)

    public static func at(_ now: Timestamp, policy: RotationPolicy?, record: RotationRecord?, expiresAt: Timestamp?,
                          expiryNotice: SecretDuration) -> RotationState {
        if let expiresAt, expiresAt <= now { return .expired }
        if let policy, let record {
            if record.failingSince != nil { return .failing }
            let grace = min(policy.period, overdueGraceLimit)
            if now >= record.nextDueAt.adding(grace) { return .overdue }
            if now >= record.nextDueAt { return .due }
            if let notifyBefore = policy.notifyBefore, now.secondsSinceEpoch >= record.nextDueAt.secondsSinceEpoch - notifyBefore.seconds {
                return .notify
            }
        }
        if let expiresAt, expiresAt.secondsSinceEpoch - now.secondsSinceEpoch <= (policy?.notifyBefore ?? expiryNotice).seconds {
            return .notify
        }
        return .ok
    }

    /// True when `rotation:run` should try it: due, overdue, or failing (still due).
    public static func isDue(_ now: Timestamp, record: RotationRecord) -> Bool { now >= record.nextDueAt }
}

extension Timestamp {
    /// The test hook `VSECURE_TEST_NOW`: ISO 8601 with a zone, or whole seconds since the epoch.
    public init(testNow text: String) throws(VSecureError) {
        if !text.isEmpty, text.utf8.allSatisfy(\.isASCIIDigit), let seconds = Int64(text) {
            self.init(secondsSinceEpoch: seconds)
            return
        }
        do { try self.init(iso8601: text) } catch {
            throw .usage("VSECURE_TEST_NOW \(Quoted(text)) is not a time", hint: "give ISO 8601 with a zone or seconds since the epoch, or unset it")
        }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}

extension RotationPolicy {
    /// The policy as the v1 API writes it in requests and answers (docs/api.md, `rotationPolicy`):
    /// `enabled`, `period`, `notifyBefore` (null when none), then `generate` or `command`, or
    /// neither for a manual policy. Durations in their shortest spelling.
    public var apiJSON: JSONValue {
        var members: [(String, JSONValue)] = [("enabled", .bool(true)), ("period", .string(period.description)),
                                              ("notifyBefore", .optional(notifyBefore?.description))]
        switch source {
        case .generate(let length, let charset):
            members.append(("generate", .object([("length", .int(length)), ("charset", .string(charset.rawValue))])))
        case .command(let argv):
            members.append(("command", .array(argv.map(JSONValue.string))))
        case .manual:
            break
        }
        return .object(members)
    }
}
