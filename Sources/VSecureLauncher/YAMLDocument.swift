import CYAML
import VSecureCore

/// A problem at a place in a file. The path is added only at the parser boundary, so the YAML
/// layer and the manifest walker can report locations without carrying it around.
struct SourceProblem: Error, Equatable {
    /// nil for problems with the file as a whole (empty, too large).
    var location: SourceLocation?
    var message: String
    var hints: [String]

    init(_ location: SourceLocation?, _ message: String, hint: String? = nil) {
        self.location = location
        self.message = message
        self.hints = hint.map { [$0] } ?? []
    }

    /// Places a name-validation error from VSecureCore at the node that held the name.
    init(_ location: SourceLocation, wrapping error: VSecureError) {
        self.location = location
        self.message = error.message
        self.hints = error.hints
    }

    func error(path: String) -> VSecureError {
        let place = location.map { "\(path):\($0)" } ?? path
        return VSecureError(.manifest, "\(place): \(message)", hints: hints)
    }
}

/// A scalar as written: plain or quoted (block scalars are refused while reading).
struct YAMLScalar: Equatable {
    var bytes: [UInt8]
    /// Plain scalars are the only ones that can be booleans, numbers or null.
    var isPlain: Bool
    var location: SourceLocation

    var text: String { String(decoding: bytes, as: UTF8.self) }

    /// YAML reads these plain scalars as null; in a manifest they mean a value was left out.
    var isNull: Bool {
        isPlain && (bytes.isEmpty || ["~", "null", "Null", "NULL"].contains(text))
    }
}

struct YAMLPair: Equatable {
    var key: YAMLNode
    var value: YAMLNode
}

/// The subset of YAML a manifest is made of: no anchors, aliases, tags or block scalars.
enum YAMLNode: Equatable {
    case scalar(YAMLScalar)
    case sequence([YAMLNode], at: SourceLocation)
    case mapping([YAMLPair], at: SourceLocation)

    var location: SourceLocation {
        switch self {
        case .scalar(let scalar): scalar.location
        case .sequence(_, let location), .mapping(_, let location): location
        }
    }

    var isNull: Bool {
        if case .scalar(let scalar) = self { scalar.isNull } else { false }
    }

    /// What the node is, for "expected X, found Y" messages. Never the value itself: a user may
    /// have pasted a secret where a name belongs.
    var kindDescription: String {
        switch self {
        case .scalar(let scalar) where scalar.isNull: "an empty value"
        case .scalar(let scalar) where !scalar.isPlain: "a quoted string"
        case .scalar: "a single value"
        case .sequence: "a list"
        case .mapping: "a mapping"
        }
    }
}

enum YAMLDocument {
    struct Limits {
        /// Lists and mappings nested inside each other, counting the root.
        var maxDepth: Int
        /// Scalars, lists and mappings in the whole document.
        var maxNodes: Int
    }

    /// Reads the single document of `bytes` into a tree; nil when the stream has no document
    /// (an empty file or one with only comments).
    static func parse(_ bytes: [UInt8], limits: Limits) throws(SourceProblem) -> YAMLNode? {
        guard let events = YAMLEventReader(bytes) else {
            throw SourceProblem(nil, "cannot start the YAML parser (out of memory)")
        }
        var builder = TreeBuilder(events: events, limits: limits)
        return try builder.document()
    }
}

/// One libyaml event, copied out of C memory so that the C event can be freed at once.
enum YAMLEvent {
    enum ScalarStyle { case plain, quoted, block }

    /// An anchor or tag: refused on every node, but reported by name so the user can find it.
    struct Properties {
        var anchor: String?
        var tag: String?
    }

    case streamStart
    case streamEnd
    case documentStart(SourceLocation)
    case documentEnd
    case alias(name: String, SourceLocation)
    case scalar([UInt8], ScalarStyle, Properties, SourceLocation)
    case sequenceStart(Properties, SourceLocation)
    case sequenceEnd
    case mappingStart(Properties, SourceLocation)
    case mappingEnd
}

/// Owns a libyaml parser and the input it reads (libyaml keeps a pointer to the input, so the
/// buffer must live exactly as long as the parser).
final class YAMLEventReader {
    private let parser: UnsafeMutablePointer<yaml_parser_t>
    private let input: UnsafeMutableBufferPointer<UInt8>
    private let bytes: [UInt8]

    init?(_ bytes: [UInt8]) {
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        guard yaml_parser_initialize(parser) == 1 else {
            parser.deallocate()
            return nil
        }
        // One byte at least, so that an empty file still has a valid base address.
        let input = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(bytes.count, 1))
        _ = input.initialize(from: bytes)
        yaml_parser_set_input_string(parser, input.baseAddress, bytes.count)
        self.parser = parser
        self.input = input
        self.bytes = bytes
    }

    deinit {
        yaml_parser_delete(parser)
        parser.deallocate()
        input.deallocate()
    }

    func next() throws(SourceProblem) -> YAMLEvent {
        var event = yaml_event_t()
        // Safe even when parsing fails: libyaml zeroes the event first, and deleting a zeroed
        // event frees nothing.
        defer { yaml_event_delete(&event) }
        guard yaml_parser_parse(parser, &event) == 1 else { throw failure() }
        let location = SourceLocation(event.start_mark)
        switch event.type {
        case YAML_STREAM_START_EVENT:
            return .streamStart
        case YAML_STREAM_END_EVENT:
            return .streamEnd
        case YAML_DOCUMENT_START_EVENT:
            return .documentStart(location)
        case YAML_DOCUMENT_END_EVENT:
            return .documentEnd
        case YAML_ALIAS_EVENT:
            return .alias(name: Self.string(event.data.alias.anchor) ?? "", location)
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let value = scalar.value.map { Array(UnsafeBufferPointer(start: $0, count: scalar.length)) } ?? []
            let style: YAMLEvent.ScalarStyle = switch scalar.style {
            case YAML_PLAIN_SCALAR_STYLE: .plain
            case YAML_LITERAL_SCALAR_STYLE, YAML_FOLDED_SCALAR_STYLE: .block
            default: .quoted
            }
            let properties = YAMLEvent.Properties(anchor: Self.string(scalar.anchor), tag: Self.string(scalar.tag))
            return .scalar(value, style, properties, location)
        case YAML_SEQUENCE_START_EVENT:
            let start = event.data.sequence_start
            return .sequenceStart(YAMLEvent.Properties(anchor: Self.string(start.anchor), tag: Self.string(start.tag)), location)
        case YAML_SEQUENCE_END_EVENT:
            return .sequenceEnd
        case YAML_MAPPING_START_EVENT:
            let start = event.data.mapping_start
            return .mappingStart(YAMLEvent.Properties(anchor: Self.string(start.anchor), tag: Self.string(start.tag)), location)
        case YAML_MAPPING_END_EVENT:
            return .mappingEnd
        default:
            throw SourceProblem(location, "unexpected YAML event \(event.type.rawValue)")
        }
    }

    /// Turns libyaml's error state into a located problem, with libyaml's own wording.
    private func failure() -> SourceProblem {
        let state = parser.pointee
        let problem = Self.string(state.problem) ?? "the YAML parser failed"
        let location: SourceLocation
        if state.error == YAML_READER_ERROR {
            // Reader errors (bad UTF-8, control characters) carry a byte offset, not a mark.
            location = Self.location(ofByte: state.problem_offset, in: bytes)
        } else {
            location = SourceLocation(state.problem_mark)
        }
        var message = "invalid YAML: \(problem)"
        if let context = Self.string(state.context) {
            message += " (\(context) at \(SourceLocation(state.context_mark)))"
        }
        let hint = state.error == YAML_SCANNER_ERROR && bytes.contains(0x09)
            ? "YAML indents with spaces; this file contains a tab" : nil
        return SourceProblem(location, message, hint: hint)
    }

    private static func string(_ pointer: UnsafePointer<CChar>?) -> String? {
        pointer.map { String(cString: $0) }
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: UnsafePointer($0)) }
    }

    /// Line and column (in characters, like libyaml's marks) of a byte offset.
    static func location(ofByte offset: Int, in bytes: [UInt8]) -> SourceLocation {
        var line = 1
        var column = 1
        for (index, byte) in bytes.prefix(offset).enumerated() {
            let crlf = byte == UInt8(ascii: "\r") && index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "\n")
            if byte == UInt8(ascii: "\n") || (byte == UInt8(ascii: "\r") && !crlf) {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 && !crlf {
                column += 1
            }
        }
        return SourceLocation(line: line, column: column)
    }
}

extension SourceLocation {
    /// libyaml marks are 0-based; messages are 1-based like editors.
    init(_ mark: yaml_mark_t) {
        self.init(line: Int(mark.line) + 1, column: Int(mark.column) + 1)
    }
}

/// Builds the node tree from the event stream, refusing what the manifest format leaves out.
private struct TreeBuilder {
    let events: YAMLEventReader
    let limits: YAMLDocument.Limits
    private var nodeCount = 0

    init(events: YAMLEventReader, limits: YAMLDocument.Limits) {
        self.events = events
        self.limits = limits
    }

    mutating func document() throws(SourceProblem) -> YAMLNode? {
        guard case .streamStart = try events.next() else { throw unexpected() }
        switch try events.next() {
        case .streamEnd:
            return nil
        case .documentStart:
            break
        default:
            throw unexpected()
        }
        let root = try node(from: events.next(), depth: 1)
        guard case .documentEnd = try events.next() else { throw unexpected() }
        switch try events.next() {
        case .streamEnd:
            return root
        case .documentStart(let location):
            throw SourceProblem(location, "a manifest is a single YAML document; a second one starts here",
                                hint: "remove the '---' line and merge the documents into one")
        default:
            throw unexpected()
        }
    }

    private mutating func node(from event: YAMLEvent, depth: Int) throws(SourceProblem) -> YAMLNode {
        switch event {
        case .scalar(let bytes, let style, let properties, let location):
            try count(at: location)
            try refuse(properties, at: location)
            guard style != .block else {
                throw SourceProblem(location, "block scalars ('|' and '>') are not supported in a manifest",
                                    hint: "write the value on one line, in quotes if needed")
            }
            return .scalar(YAMLScalar(bytes: bytes, isPlain: style == .plain, location: location))
        case .alias(let name, let location):
            // libyaml limits anchor names to letters, digits, '-' and '_', so they print safely.
            throw SourceProblem(location, "aliases (*\(name)) are not supported in a manifest",
                                hint: "write the value out in full")
        case .sequenceStart(let properties, let location):
            try count(at: location)
            try refuse(properties, at: location)
            try nest(depth, at: location)
            var items: [YAMLNode] = []
            while true {
                let next = try events.next()
                if case .sequenceEnd = next { return .sequence(items, at: location) }
                items.append(try node(from: next, depth: depth + 1))
            }
        case .mappingStart(let properties, let location):
            try count(at: location)
            try refuse(properties, at: location)
            try nest(depth, at: location)
            var pairs: [YAMLPair] = []
            while true {
                let next = try events.next()
                if case .mappingEnd = next { return .mapping(pairs, at: location) }
                let key = try node(from: next, depth: depth + 1)
                let value = try node(from: events.next(), depth: depth + 1)
                pairs.append(YAMLPair(key: key, value: value))
            }
        default:
            throw unexpected()
        }
    }

    private mutating func count(at location: SourceLocation) throws(SourceProblem) {
        nodeCount += 1
        guard nodeCount <= limits.maxNodes else {
            throw SourceProblem(location, "the manifest has more than \(limits.maxNodes) values; this is far more than it needs")
        }
    }

    private func nest(_ depth: Int, at location: SourceLocation) throws(SourceProblem) {
        guard depth <= limits.maxDepth else {
            throw SourceProblem(location, "lists and mappings are nested deeper than a manifest needs (at most \(limits.maxDepth) levels)")
        }
    }

    /// Anchors and aliases would let a small file expand into a huge one, and tags would let a
    /// node change type; the manifest needs neither.
    private func refuse(_ properties: YAMLEvent.Properties, at location: SourceLocation) throws(SourceProblem) {
        if let anchor = properties.anchor {
            throw SourceProblem(location, "anchors (&\(anchor)) are not supported in a manifest",
                                hint: "write each value out in full")
        }
        if let tag = properties.tag {
            throw SourceProblem(location, "YAML tags (\(Quoted(tag))) are not supported in a manifest",
                                hint: "remove the tag; quote the value if it must be read as text")
        }
    }

    private func unexpected() -> SourceProblem {
        SourceProblem(nil, "the YAML parser produced events in an unexpected order")
    }
}
