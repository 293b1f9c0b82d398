import Foundation
import Testing
import TestSupport
import VSecureClient

/// `VSecureClient()` reads the process environment and the config directory the way the CLI
/// does. Changing this process's environment would race with other tests (libcurl reads proxy
/// variables on every request), so each case runs this test binary again as a child with its
/// own environment, running only `SDKConfigurationProbe`, which prints what it got.
@Suite("VSecureClient(): endpoint, key and settings as the CLI finds them")
struct ConfigurationTests {
    static let probeVariable = "VSECURE_SDK_PROBE"

    final class Setup: @unchecked Sendable {
        let fixture: ClientFixture
        let home: TemporaryDirectory

        init() async throws {
            fixture = try ClientFixture()
            home = try TemporaryDirectory(prefix: "vsecure-sdk-config")
            try await fixture.client.secrets.create("FROM_ENV", value: "twelve bytes", environment: "production")
        }

        var url: String { fixture.server.baseURL }
        var token: String { fixture.store.adminToken }

        /// Writes `config.json` and (when `credentials` is given) the credentials file, the
        /// way `vsecure login` does, into `directory` under the temporary home.
        func writeConfig(_ directory: String, config: [String: String], credentials: (endpoint: String, key: String)?,
                         credentialsMode: Int = 0o600) throws {
            let json = try JSONSerialization.data(withJSONObject: config)
            try home.write(directory + "/config.json", Array(json))
            if let credentials {
                try home.write(directory + "/credentials", "\(credentials.endpoint)\n\(credentials.key)\n", mode: credentialsMode)
            }
        }

        /// Runs the probe with exactly `variables` (plus HOME and PATH); returns its report.
        func probe(_ variables: [String: String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            var environment = minimalEnvironment(home: home.path)
            environment[ConfigurationTests.probeVariable] = "1"
            environment.merge(variables) { $1 }
            let runner = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
            let result = try runProcess(runner, ["--testing-library", "swift-testing", "--filter", "SDKConfigurationProbe"],
                                        environment: environment, timeout: 60)
            let reports = result.stdoutText.components(separatedBy: "\n").filter { $0.hasPrefix("sdk-probe: ") }
            #expect(reports.count == 1, "probe output: \(result)", sourceLocation: sourceLocation)
            #expect(!result.stdoutText.contains(token) && !result.stderr.contains(token), sourceLocation: sourceLocation)
            return reports.first.map { String($0.dropFirst("sdk-probe: ".count)) } ?? ""
        }
    }

    @Test("from the config directory, from the variables, and refusals")
    func configuredLikeTheCLI() async throws {
        let setup = try await Setup()
        let wrongKey = "vsec_key_0123456789abcdef_" + String(repeating: "B", count: 43)

        // Nothing configured.
        #expect(try setup.probe([:]) == "error configuration")
        // VSECURE_ENDPOINT and VSECURE_API_KEY alone.
        #expect(try setup.probe(["VSECURE_ENDPOINT": setup.url, "VSECURE_API_KEY": setup.token]) == "length 12")

        // ~/.vsecure as `vsecure login` leaves it.
        try setup.writeConfig(".vsecure", config: ["endpoint": setup.url, "timeout": "5s"], credentials: (setup.url, setup.token))
        #expect(try setup.probe([:]) == "length 12")
        // VSECURE_API_KEY wins over the stored key.
        #expect(try setup.probe(["VSECURE_API_KEY": wrongKey]) == "error accessDenied")
        // The stored key is never sent to another endpoint.
        #expect(try setup.probe(["VSECURE_ENDPOINT": "http://127.0.0.1:9"]) == "error configuration")
        // A malformed timeout or a missing CA file is refused, as the CLI refuses them.
        #expect(try setup.probe(["VSECURE_TIMEOUT": "soon"]) == "error configuration")
        #expect(try setup.probe(["VSECURE_CA_CERT": setup.home.file("no-such-ca.pem")]) == "error configuration")

        // VSECURE_CONFIG_DIR replaces ~/.vsecure.
        try setup.writeConfig("elsewhere", config: ["endpoint": setup.url], credentials: (setup.url, setup.token))
        #expect(try setup.probe(["VSECURE_CONFIG_DIR": setup.home.file("elsewhere")]) == "length 12")
        try setup.writeConfig("readable", config: ["endpoint": setup.url], credentials: (setup.url, setup.token), credentialsMode: 0o644)
        #expect(try setup.probe(["VSECURE_CONFIG_DIR": setup.home.file("readable")]) == "error configuration")
        try setup.writeConfig("empty", config: [:], credentials: nil)
        #expect(try setup.probe(["VSECURE_CONFIG_DIR": setup.home.file("empty")]) == "error configuration")
    }
}

/// Runs only as the child of `ConfigurationTests` (skipped otherwise): builds a client from the
/// environment, reads one secret, and prints its length or the error's kind, never the value.
@Suite struct SDKConfigurationProbe {
    @Test(.enabled(if: ProcessInfo.processInfo.environment[ConfigurationTests.probeVariable] != nil))
    func probe() async {
        do {
            let value = try await VSecureClient().secrets.get("FROM_ENV", environment: "production")
            print("sdk-probe: length \(value.count)")
        } catch {
            print("sdk-probe: error \(error.kind)")
        }
    }
}
