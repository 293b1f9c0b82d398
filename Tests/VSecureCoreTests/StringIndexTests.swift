import Foundation
import Testing
@testable import VSecureCore

@Suite("StringIndex (the launcher's set of names)")
struct StringIndexTests {
    @Test("numbers members by first insertion and agrees with Set<String>")
    func agreesWithSet() {
        var index = StringIndex()
        var reference = Set<String>()
        var order: [String] = []
        // Enough members to grow the table several times, with repeats.
        for round in 0..<3 {
            for n in stride(from: 0, to: 2_000, by: round + 1) {
                let key = "S\(n % 1_500)"
                let inserted = index.insert(key)
                #expect(inserted.inserted == reference.insert(key).inserted)
                if inserted.inserted { order.append(key) }
                #expect(index.keys[inserted.index] == key)
            }
        }
        #expect(index.count == reference.count)
        #expect(index.keys == order)
        for (number, key) in order.enumerated() { #expect(index.index(of: key) == number) }
        #expect(!index.contains("S1500"))
        #expect(index.index(of: "") == nil)
    }

    @Test("an array's members once, first occurrence first")
    func fromArray() {
        let index = StringIndex(["b", "a", "b", "c", "a"])
        #expect(index.keys == ["b", "a", "c"])
        #expect(index.index(of: "c") == 2)
        #expect(StringIndex([]).isEmpty)
    }

    @Test("membership is byte equality: canonically equivalent spellings are different members, as they are different variable names")
    func bytesNotCanonicalEquivalence() {
        var index = StringIndex(["caf\u{E9}", "K"])
        #expect(!index.contains("cafe\u{301}"))
        #expect(!index.contains("\u{212A}"), "the Kelvin sign is not K to the kernel")
        #expect(index.insert("\u{212A}") == (inserted: true, index: 2))
        #expect(index.index(of: "K") == 1)
        #expect(index.contains("caf\u{E9}"))
    }

    @Test("keys of every length up to 40 bytes, and ones differing only in their last byte or their length, stay apart")
    func lengthsAndTails() {
        var keys: [String] = []
        for length in 0...40 { keys.append(String(repeating: "a", count: length)) }
        for length in [7, 8, 9, 15, 16, 17] {
            for last in ["b", "c", "\u{0}", "é"] { keys.append(String(repeating: "x", count: length) + last) }
        }
        let index = StringIndex(keys)
        #expect(index.count == keys.count)
        for (number, key) in keys.enumerated() { #expect(index.index(of: key) == number) }
        #expect(!index.contains(String(repeating: "a", count: 41)))
    }

    @Test("names that differ only in their last characters spread over the low bits the table masks")
    func hashSpread() {
        // 1,000 names into 1,024 buckets: a uniform hash fills about 632; a hash whose low
        // bits ignore the last bytes (the first version's) fills a handful.
        for format in ["S%06d", "API_KEY_%d", "production/DATABASE_URL_%d"] {
            var buckets = Set<Int>()
            for n in 0..<1_000 { buckets.insert(StringIndex.hash(String(format: format, n)) & 1_023) }
            #expect(buckets.count > 560, "\(format): \(buckets.count) buckets")
        }
    }
}
