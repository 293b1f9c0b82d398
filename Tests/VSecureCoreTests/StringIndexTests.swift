import Testing
import VSecureCore

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

    @Test("membership is String equality (canonical equivalence), as in a Set")
    func canonicalEquivalence() {
        let index = StringIndex(["caf\u{E9}"])
        #expect(index.contains("cafe\u{301}") == Set(["caf\u{E9}"]).contains("cafe\u{301}"))
    }
}
