/// A secret's name. The grammar is that of a portable environment variable,
/// `[A-Za-z_][A-Za-z0-9_]*`, at most 128 characters, so every secret can be exported as-is.
public struct SecretName: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let maxLength = 128
    public let rawValue: String

    public init(_ text: String) throws(VSecureError) {
        let bytes = text.utf8
        guard !bytes.isEmpty else {
            throw .usage("secret name is empty", hint: "names look like API_KEY: letters, digits and _, not starting with a digit")
        }
        guard bytes.count <= Self.maxLength, Self.isValid(bytes) else {
            // NAME=VALUE given where a name was expected: neither the value nor its length is shown.
            if bytes.contains(UInt8(ascii: "=")) {
                throw .usage("invalid secret name \(Quoted(Self.shown(text)))", hint: "a name cannot contain '='")
            }
            if bytes.count > Self.maxLength {
                throw .usage("secret name \(Quoted(text)) is \(bytes.count) characters long; the limit is \(Self.maxLength)")
            }
            throw .usage("invalid secret name \(Quoted(text))",
                         hint: "names look like API_KEY: letters, digits and _, not starting with a digit")
        }
        rawValue = text
    }

    /// What an error may quote of a name with `=`: up to the `=` only, since `NAME=VALUE` given
    /// where a name was expected carries a value.
    static func shown(_ text: String) -> String {
        guard let equals = text.firstIndex(of: "=") else { return text }
        return text[..<equals] + "=..."
    }

    static func isValid(_ bytes: some Collection<UInt8>) -> Bool {
        guard let first = bytes.first, first.isASCIILetter || first == UInt8(ascii: "_") else { return false }
        return bytes.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == UInt8(ascii: "_") }
    }

    public var description: String { rawValue }
    public static func < (a: SecretName, b: SecretName) -> Bool { a.rawValue < b.rawValue }
}

/// An environment such as `production`: `[a-z][a-z0-9_-]*`, at most 64 characters. The set of
/// environments a vault accepts is configured in the vault.
public struct EnvironmentName: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let maxLength = 64
    public static let defaults: [EnvironmentName] = ["development", "staging", "production"].map { EnvironmentName(unchecked: $0) }
    public let rawValue: String

    public init(_ text: String) throws(VSecureError) {
        let bytes = text.utf8
        guard !bytes.isEmpty else { throw .usage("environment name is empty") }
        guard bytes.count <= Self.maxLength,
              let first = bytes.first, first.isASCIILowercase,
              bytes.allSatisfy({ $0.isASCIILowercase || $0.isASCIIDigit || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") })
        else {
            throw .usage("invalid environment name \(Quoted(text))",
                         hint: "environment names are lower case letters, digits, - and _, starting with a letter (at most 64)")
        }
        rawValue = text
    }

    init(unchecked text: String) { rawValue = text }

    public var description: String { rawValue }
    public static func < (a: EnvironmentName, b: EnvironmentName) -> Bool { a.rawValue < b.rawValue }
}

/// A tag: `[A-Za-z0-9][A-Za-z0-9_.:-]*`, at most 64 characters.
public struct Tag: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let maxLength = 64
    public let rawValue: String

    public init(_ text: String) throws(VSecureError) {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw .usage("empty tag", hint: "tags are a comma-separated list such as --tags production,api") }
        guard bytes.count <= Self.maxLength,
              let first = bytes.first, first.isASCIILetter || first.isASCIIDigit,
              bytes.allSatisfy({ $0.isASCIILetter || $0.isASCIIDigit || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".")
                                 || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "-") })
        else {
            throw .usage("invalid tag \(Quoted(text))",
                         hint: "tags are letters, digits, _ . : and -, starting with a letter or digit (at most 64)")
        }
        rawValue = text
    }

    /// Parses repeatable comma lists (`--tags a,b --tags c`), rejecting empty items.
    public static func parseLists(_ lists: [String]) throws(VSecureError) -> [Tag] {
        var result: [Tag] = []
        for list in lists {
            for item in list.split(separator: ",", omittingEmptySubsequences: false) {
                guard !item.isEmpty else {
                    throw .usage("empty tag in the list \(Quoted(list))", hint: "tags are a comma-separated list such as --tags production,api")
                }
                let tag = try Tag(String(item))
                if !result.contains(tag) { result.append(tag) }
            }
        }
        return result
    }

    public var description: String { rawValue }
    public static func < (a: Tag, b: Tag) -> Bool { a.rawValue < b.rawValue }
}

/// A metadata entry `key=value`. Keys are `[A-Za-z0-9_.-]+` (at most 64); values are any text
/// without control characters, at most 1024 bytes. Metadata is not secret: it is listed.
public struct MetadataEntry: Hashable, Sendable {
    public static let maxKeyLength = 64
    public static let maxValueLength = 1024
    public let key: String
    public let value: String

    public init(key: String, value: String) throws(VSecureError) {
        let keyBytes = Array(key.utf8)
        guard !keyBytes.isEmpty, keyBytes.count <= Self.maxKeyLength,
              keyBytes.allSatisfy({ $0.isASCIILetter || $0.isASCIIDigit || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") })
        else {
            throw .usage("invalid metadata key \(Quoted(key))", hint: "metadata keys are letters, digits, _ . and - (at most 64)")
        }
        let valueBytes = Array(value.utf8)
        guard valueBytes.count <= Self.maxValueLength else {
            throw .usage("metadata \(Quoted(key)) is longer than \(Self.maxValueLength) bytes")
        }
        guard !valueBytes.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw .usage("metadata \(Quoted(key)) contains a control character")
        }
        self.key = key
        self.value = value
    }

    /// Parses `k=v`; the value may contain `=` and spaces.
    public init(parsing text: String) throws(VSecureError) {
        guard let eq = text.firstIndex(of: "=") else {
            throw .usage("metadata \(Quoted(text)) has no '='", hint: "write metadata as --metadata key=value")
        }
        try self.init(key: String(text[..<eq]), value: String(text[text.index(after: eq)...]))
    }
}

/// Public text quoted for a message, with control and non-ASCII bytes escaped so that a name
/// with a newline or escape sequence cannot forge terminal output. Never wrap a secret value.
public struct Quoted: CustomStringConvertible, Sendable {
    let text: String
    public init(_ text: String) { self.text = text }
    public var description: String {
        var out = "'"
        var count = 0
        for byte in text.utf8 {
            count += 1
            if count > 80 { out += "…"; break }
            switch byte {
            case 0x20...0x7E where byte != UInt8(ascii: "'") && byte != UInt8(ascii: "\\"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "\\x" + hexByte(byte)
            }
        }
        return out + "'"
    }
}

extension UInt8 {
    var isASCIILetter: Bool { (0x41...0x5A).contains(self) || (0x61...0x7A).contains(self) }
    var isASCIILowercase: Bool { (0x61...0x7A).contains(self) }
    var isASCIIDigit: Bool { (0x30...0x39).contains(self) }
}

/// Text that names someone or something to a person (an email, an API key's label): whether it
/// holds a character a reader cannot see or tell apart from a space. Control characters,
/// format characters (zero-width spaces, direction overrides, byte-order marks), separators
/// other than the plain space, private-use and unassigned code points all count. So a user
/// `ana@example.com` followed by a zero-width space cannot pass for `ana@example.com` in a
/// listing or the audit log.
public func containsHiddenCharacters(_ text: String, allowingSpace: Bool) -> Bool {
    text.unicodeScalars.contains { scalar in
        if scalar == " " { return !allowingSpace }
        switch scalar.properties.generalCategory {
        case .control, .format, .spaceSeparator, .lineSeparator, .paragraphSeparator, .privateUse, .surrogate, .unassigned:
            return true
        default:
            return false
        }
    }
}
