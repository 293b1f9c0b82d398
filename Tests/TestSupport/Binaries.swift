import Foundation

/// Where the built executables are: next to the running test bundle, which lives in the
/// build's debug (or release) bin directory together with `vsecure` and `vsecure-run`.
public enum Binaries {
    /// The directory of `/proc/self/exe`, or `$VSECURE_TEST_BIN_DIR` when set (for running the
    /// tests against binaries built elsewhere).
    public static let directory: String = {
        if let override = ProcessInfo.processInfo.environment["VSECURE_TEST_BIN_DIR"], !override.isEmpty {
            return override
        }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        return (executable as NSString).deletingLastPathComponent
    }()

    public static var vsecure: String { directory + "/vsecure" }
    public static var vsecureRun: String { directory + "/vsecure-run" }
}
