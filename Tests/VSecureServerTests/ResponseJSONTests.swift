import Foundation
import NIOCore
import Testing
import VSecureCore
import VSecureCrypto
@testable import VSecureServer

/// Response bodies written straight into a ByteBuffer must be byte for byte what
/// `JSONValue.serialized(indent: nil)` makes, values included.
@Suite("Response JSON")
struct ResponseJSONTests {
    static let awkwardStrings = ["", "plain", "quote \" and backslash \\", "line\nfeed\r\ttab", "\u{0}\u{1}\u{1F}\u{7F}",
                                 "unicode é ✓ 🔑", "</script>", "ends with backslash \\"]

    @Test("any JSONValue serializes to the same bytes as JSONValue.serialized")
    func sameBytesAsSerialized() {
        let values: [JSONValue] = [
            .null, .bool(true), .bool(false), .int(0), .int(-42), .int(Int64.max), .array([]), .object([]),
            .array(Self.awkwardStrings.map(JSONValue.string)),
            .object(Self.awkwardStrings.enumerated().map { ("k\($0.offset) \($0.element)", .string($0.element)) }),
            .object([("a", .array([.object([("b", .null), ("c", .array([.int(1), .array([])]))]), .object([])])), ("d", .bool(false))]),
        ]
        for value in values {
            #expect(String(buffer: ResponseJSON.body(value)) == value.serialized(indent: nil))
        }
    }

    @Test("value members from raw bytes match jsonValueMembers, text and binary, in an object with other members")
    func valueMembers() {
        var samples: [[UInt8]] = Self.awkwardStrings.map { Array($0.utf8) }
        samples += [[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0x00, 0xFE, 0x41],
                    Array(0...255), [0x41, 0x42], [0x41]]
        for _ in 0..<200 { samples.append((0..<Int.random(in: 0...40)).map { _ in UInt8.random(in: 0...255) }) }
        for bytes in samples {
            let expected = JSONValue.object([("name", .string("N"))] + bytes.withUnsafeBytes { jsonValueMembers($0) } + [("after", .int(1))])
            var json = ResponseJSON(capacity: 8)
            json.openObject()
            json.key("name")
            json.value(.string("N"))
            bytes.withUnsafeBytes { json.valueMembers($0) }
            json.key("after")
            json.value(.int(1))
            json.closeObject()
            #expect(String(buffer: json.buffer) == expected.serialized(indent: nil), "\(bytes)")
            #expect(bytes.withUnsafeBytes { ResponseJSON.isValidUTF8($0) } == (bytes.withUnsafeBytes { String(validating: $0, as: UTF8.self) } != nil))
        }
    }

    @Test("the scratch buffer holds nothing after each use, and larger values get their own buffer")
    func scratchIsWiped() throws {
        let scratch = ValueScratch(capacity: 64)
        var seen: UnsafeMutableRawPointer?
        let sum = scratch.withBuffer(count: 16) { (raw: UnsafeMutableRawBufferPointer) -> Int in
            for index in raw.indices { raw[index] = 0xA5 }
            seen = raw.baseAddress
            return raw.count
        }
        #expect(sum == 16)
        let pointer = try #require(seen)
        #expect(UnsafeRawBufferPointer(start: pointer, count: 16).allSatisfy { $0 == 0 })
        // Wiped on the error path too.
        struct Failure: Error {}
        #expect(throws: Failure.self) {
            try scratch.withBuffer(count: 8) { (raw: UnsafeMutableRawBufferPointer) throws(Failure) in
                for index in raw.indices { raw[index] = 0x5A }
                throw Failure()
            }
        }
        #expect(UnsafeRawBufferPointer(start: pointer, count: 8).allSatisfy { $0 == 0 })
        let large = scratch.withBuffer(count: 1000) { (raw: UnsafeMutableRawBufferPointer) in (raw.count, raw.baseAddress == pointer) }
        #expect(large.0 == 1000)
        #expect(large.1 == false)
    }
}
