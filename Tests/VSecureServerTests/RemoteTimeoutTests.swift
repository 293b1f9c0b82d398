import Foundation
import Testing
import TestSupport

/// `vsecure-run --endpoint` with `VSECURE_TIMEOUT=3s` against servers that fail in every way
/// the network can (a fake written here, `FaultyHTTPServer`): nothing listening, a stall, a drip,
/// garbage, a short body, 500 and 429 storms, and retryable failures that each take 1.2 s. Each
/// ends with exit 13 (docs/launcher.md) within the timeout plus 10% (and a fixed allowance for
/// starting a debug binary on a busy machine), never before the timeout when the server merely
/// stalls, and never with the program started. Retries (connection failures, 18/52/56, 429, 503;
/// at most three attempts) share the one deadline, wait at least as long as a Retry-After asks,
/// and are not made when that is past the deadline.
@Suite("vsecure-run: remote faults end within the timeout", .serialized)
struct RemoteTimeoutTests {
    static let timeout = 3.0
    /// Starting the launcher, loading libcurl and reaping it, measured from the outside: the
    /// bound is `timeout × 1.1 + startAllowance`.
    static let startAllowance = 0.5

    enum Fault: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case refused, stall, silentListener, drip, garbage, truncated, slowTruncated, storm500, storm429, storm429Later, slow503

        var testDescription: String { rawValue }

        var behaviour: FaultyHTTPServer.Behaviour? { FaultyHTTPServer.Behaviour(rawValue: rawValue) }

        /// Fails only when the deadline passes, so it must not end (much) before it.
        var runsIntoTheDeadline: Bool { [.stall, .silentListener, .drip, .slowTruncated, .slow503].contains(self) }

        /// What stderr names.
        var message: String {
            switch self {
            case .refused: return "cannot reach the server at"
            case .stall, .silentListener, .drip, .slowTruncated, .slow503: return "within 3000 ms"
            case .garbage: return "failed"
            case .truncated: return "broke"
            case .storm500: return "answered 500"
            case .storm429, .storm429Later: return "answered 429"
            }
        }

        /// Connections the launcher makes: retried failures three, others one (nil: not counted).
        var attempts: ClosedRange<Int>? {
            switch self {
            case .refused, .silentListener: return nil
            // A Retry-After past the deadline: the answer is final at once, no retry.
            case .stall, .drip, .garbage, .storm500, .storm429Later: return 1...1
            case .truncated, .storm429: return 3...3
            // Each attempt takes 1.2 s: the deadline cuts the third short, or leaves no time for it.
            case .slowTruncated, .slow503: return 2...3
            }
        }
    }

    @Test("exit 13 within VSECURE_TIMEOUT ±10%, and no child", arguments: Fault.allCases)
    func fault(_ fault: Fault) throws {
        let directory = try TemporaryDirectory(prefix: "vsecure-timeout")
        let server = try fault.behaviour.map { try FaultyHTTPServer($0) }
        defer { server?.stop() }
        // Refused: a port that was free a moment ago, with nothing listening.
        let endpoint = try server.map(\.baseURL) ?? "http://127.0.0.1:\(liveFreeLoopbackPort())"
        // Two secrets: a launch must not start with the one a short body happened to carry.
        let manifest = try directory.write("vsecure.yml", "version: 1\nsecrets: [A, B]\n")
        let marker = directory.file("started")
        var env = minimalEnvironment(home: directory.path)
        env["VSECURE_API_KEY"] = "vsec_key_0123456789abcdef_timeout-test-key"
        env["VSECURE_ENV"] = "production"
        env["VSECURE_TIMEOUT"] = "3s"
        let started = DispatchTime.now()
        let result = try runProcess(Binaries.vsecureRun, ["--endpoint", endpoint, "--manifest", manifest, "--", "/usr/bin/touch", marker],
                                    environment: env, workingDirectory: directory.path, timeout: 30)
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        let connections = server?.connections
        print("RemoteTimeoutTests \(fault.rawValue): exit \(result.status) after \(String(format: "%.3f", elapsed)) s, "
              + "\(connections.map { "\($0) connection(s)" } ?? "connections not counted")")

        #expect(result.status == 13, "\(fault.rawValue): \(result)")
        #expect(result.stdout.isEmpty, "\(fault.rawValue): \(result)")
        #expect(result.stderr.hasPrefix("vsecure-run: error: "), "\(fault.rawValue): \(result.stderr)")
        #expect(result.stderr.contains(fault.message), "\(fault.rawValue): expected \(fault.message.debugDescription) in \(result.stderr)")
        #expect(!result.stderr.contains("timeout-test-key"), "the API key never reaches a message")
        #expect(!result.stderr.contains("fault-SECRET"), "a partial value never reaches a message")
        #expect(!FileManager.default.fileExists(atPath: marker), "\(fault.rawValue): the program must not start")
        #expect(elapsed <= Self.timeout * 1.1 + Self.startAllowance,
                "\(fault.rawValue): took \(elapsed) s, more than \(Self.timeout) s + 10% + \(Self.startAllowance) s")
        if fault.runsIntoTheDeadline {
            #expect(elapsed >= Self.timeout * 0.9, "\(fault.rawValue): gave up after \(elapsed) s, before the \(Self.timeout) s timeout")
        }
        if fault == .storm429 {
            // Retry-After: 1 is honoured: two waits of a second before the second and third tries
            // (backoff alone would have waited 0.1–0.5 s in all).
            #expect(elapsed >= 1.9, "storm429: retried after \(elapsed) s in all, sooner than Retry-After allows")
        }
        if let expected = fault.attempts, let connections {
            #expect(expected.contains(connections), "\(fault.rawValue): \(connections) connections, expected \(expected)")
        }
    }
}
