import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import VSecureCore
@testable import VSecureServer
import VSecureVault

/// The time a refused token costs must not tell which part was wrong. Three kinds of wrong
/// token are timed, interleaved round by round so that drift and noise from other processes
/// fall on all three alike, and their medians compared:
/// - near miss: a real key id and its real secret with the last character changed;
/// - random: a real key id with a random secret;
/// - unknown: a well-formed token whose key id does not exist (the table compares against a decoy).
///
/// Measured on the 2-core CI machine kind (debug build, other builds running): a call of
/// `APIKeyTable.authenticate` takes about 18 µs with the three medians within 0.5% of each
/// other; a whole 401 through the router in-process about 930 µs, within 0.4%. The bound, 5% of
/// the smallest median (as issue 8 asks), is ten times that noise floor. A result over it is
/// measured once more before it fails. The rounds per kind are 20,000 in-process and, as the
/// issue asks, 10,000 through the router (about 30 s); `VSECURE_TIMING_ROUNDS=N` changes the
/// latter.
@Suite("Constant-time API key comparison", .serialized)
struct KeyComparisonTimingTests {
    enum Kind: String, CaseIterable { case nearMiss = "near miss", random = "random secret", unknown = "unknown key id" }

    struct Medians: CustomStringConvertible {
        var nanoseconds: [Kind: Double]
        var spread: Double {
            let values = nanoseconds.values
            return (values.max()! - values.min()!) / values.min()!
        }
        var description: String {
            Kind.allCases.map { "\($0.rawValue) \(String(format: "%.2f", (nanoseconds[$0] ?? 0) / 1000)) µs" }.joined(separator: ", ")
                + String(format: " (spread %.1f%%)", spread * 100)
        }
    }

    /// Wrong tokens of each kind for `token` (vsec_key_<16 hex>_<43 base64url>): a few of each,
    /// used in turn, so no single string's hash or cache position decides.
    static func wrongTokens(for token: String) -> [Kind: [String]] {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let prefix = String(token.prefix(26))               // vsec_key_<16 hex>_
        let secret = Array(token.dropFirst(26))
        func randomSecret() -> String { String((0..<secret.count).map { _ in alphabet.randomElement()! }) }
        func randomID() -> String { "vsec_key_" + (0..<16).map { _ in String(format: "%x", Int.random(in: 0..<16)) }.joined() + "_" }
        var result: [Kind: [String]] = [:]
        result[.nearMiss] = (0..<8).map { i in
            let last = secret.last!
            let replacement = alphabet.filter { $0 != last }[i]
            return prefix + String(secret.dropLast()) + String(replacement)
        }
        result[.random] = (0..<8).map { _ in prefix + randomSecret() }
        result[.unknown] = (0..<8).map { _ in randomID() + randomSecret() }
        return result
    }

    static let routerRounds = ProcessInfo.processInfo.environment["VSECURE_TIMING_ROUNDS"].flatMap { Int($0) } ?? 10_000

    static func median(_ values: [UInt64]) -> Double {
        let sorted = values.sorted()
        return Double(sorted[sorted.count / 2])
    }

    static func nanosecondsNow() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// Measures `rounds` interleaved rounds (each kind once per round, in a shuffled order)
    /// after a warm-up, and returns the medians.
    static func measure(rounds: Int, warmUp: Int, tokens: [Kind: [String]], _ attempt: (String) async throws -> Bool) async throws -> Medians {
        var samples: [Kind: [UInt64]] = [:]
        for round in 0..<(warmUp + rounds) {
            for kind in Kind.allCases.shuffled() {
                let token = tokens[kind]![round % tokens[kind]!.count]
                let start = nanosecondsNow()
                let accepted = try await attempt(token)
                let elapsed = nanosecondsNow() - start
                #expect(!accepted, "a wrong token (\(kind.rawValue)) was accepted")
                if round >= warmUp { samples[kind, default: []].append(elapsed) }
            }
        }
        return Medians(nanoseconds: samples.mapValues(median))
    }

    /// Runs `measurement`; over `bound`, once more. Returns every result taken.
    static func withRetry(bound: Double, _ measurement: () async throws -> Medians) async throws -> [Medians] {
        let first = try await measurement()
        if first.spread < bound { return [first] }
        return [first, try await measurement()]
    }

    @Test("APIKeyTable.authenticate: near-miss, random and unknown-id tokens cost the same (medians within 5%)")
    func tableTiming() async throws {
        let server = try ServerFixture.make()
        let table = try await server.service.withRegistry { registry, _ throws(VSecureError) in registry.keys }
        let now = server.clock.now
        let tokens = Self.wrongTokens(for: server.admin.token)
        // The right token is accepted: the table under test is the live one.
        let right = try server.admin.token.withUTF8Bytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in
            try table.authenticate(raw, now: now)
        }
        #expect(right?.id == server.admin.id)

        let results = try await Self.withRetry(bound: 0.05) {
            try await Self.measure(rounds: 20_000, warmUp: 2_000, tokens: tokens) { token in
                try token.withUTF8Bytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in try table.authenticate(raw, now: now) } != nil
            }
        }
        print("key comparison timing, APIKeyTable.authenticate: \(results.map(\.description).joined(separator: "; retry: "))")
        #expect(results.last!.spread < 0.05, "medians differ by more than 5%: \(results)")
    }

    @Test("a whole request through the router: near-miss, random and unknown-id tokens get their 401 in the same time (medians within 5%)")
    func routerTiming() async throws {
        let server = try ServerFixture.make()
        let tokens = Self.wrongTokens(for: server.admin.token)
        let admin = server.admin
        let results = try await server.test { client in
            try await client.createSecret("TIMED", value: "timing-value", key: admin)
            return try await Self.withRetry(bound: 0.05) {
                try await Self.measure(rounds: Self.routerRounds, warmUp: 300, tokens: tokens) { token in
                    let reply = try await client.send(.get, "/v1/security/secrets/TIMED", key: TestKey(id: "", token: token))
                    #expect(reply.status == .unauthorized)
                    return reply.status != .unauthorized
                }
            }
        }
        print("key comparison timing, router: \(results.map(\.description).joined(separator: "; retry: "))")
        #expect(results.last!.spread < 0.05, "medians differ by more than 5%: \(results)")
    }
}
