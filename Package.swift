// swift-tools-version:6.0
import PackageDescription

// The launcher (`vsecure-run`) depends only on targets that import neither Foundation nor
// libcurl, so its static binary starts close to the cost of `/usr/bin/env`. Keep it that way:
// VSecureCore, VSecureCrypto, VSecureVault and VSecureLauncher must not import Foundation.
//
// Nor _StringProcessing (Regex, and `contains`/`firstRange` of a substring): Swift imports it
// into every module unless told not to, and one importer links it and _RegexParser into the
// binary (1 MB of code, 3,000 relocations the loader applies at every start, 14 page faults
// per launch). The launcher's modules are told not to; they search text with `containsText`.
// (An unsafe flag: SwiftPM accepts it in a package used by path or branch, as docs/sdk.md says.)
let launcherPath: [SwiftSetting] = [.unsafeFlags(["-Xfrontend", "-disable-implicit-string-processing-module-import"])]

// `vsecure-run` is a static PIE: no dynamic loader, no libc.so or libm.so to map and relocate,
// and still loaded at a random address. That takes 13–17 % off a local launch
// (docs/benchmarks.md). It needs the static archives of libsodium, SQLite, libyaml and libstdc++
// (the -dev packages install.sh installs) and lld (in the Swift toolchain; gold cannot link a
// static PIE). A static glibc program cannot load libcurl, so launches from a server are handed
// to `vsecure-run-remote`, the same launcher linked dynamically (RemoteHandOff.swift).
// (A debug build is linked static without PIE: glibc's start-up relocation of a static PIE
// asserts on the debug objects.)
let staticLauncher: [LinkerSetting] = [
    .unsafeFlags(["-static-executable", "-use-ld=lld", "-Xclang-linker", "-static-pie", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"], .when(configuration: .release)),
    .unsafeFlags(["-static-executable"], .when(configuration: .debug)),
]

let package = Package(
    name: "vsecure",
    products: [
        .executable(name: "vsecure", targets: ["vsecure"]),
        .executable(name: "vsecure-run", targets: ["vsecure-run"]),
        .executable(name: "vsecure-run-remote", targets: ["vsecure-run-remote"]),
        .executable(name: "vsecure-server", targets: ["vsecure-server"]),
        .library(name: "VSecureCore", targets: ["VSecureCore"]),
        .library(name: "VSecureVault", targets: ["VSecureVault"]),
        .library(name: "VSecureClient", targets: ["VSecureClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.34.1"),
    ],
    targets: [
        .systemLibrary(name: "CSodium", providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CYAML", providers: [.apt(["libyaml-dev"])]),
        // For the remote client (not built yet); vsecure-run will load libcurl with dlopen only
        // when a remote source is used, so this module must never be linked into it.
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CLinux"),
        // Swift concurrency's global-executor hook, for the server (see GlobalExecutor.swift).
        .systemLibrary(name: "CConcurrencyHook"),

        .target(name: "VSecureCore", swiftSettings: launcherPath),
        .target(name: "VSecureCrypto", dependencies: ["CSodium", "CLinux", "VSecureCore"], swiftSettings: launcherPath),
        // The SecretStore seam: the protocol the local vault and the remote client both conform to.
        .target(name: "VSecureStore", dependencies: ["VSecureCrypto", "VSecureCore"], swiftSettings: launcherPath),
        .target(name: "VSecureVault", dependencies: ["CSQLite", "VSecureStore", "VSecureCrypto", "VSecureCore", "CLinux"], swiftSettings: launcherPath),
        // libcurl is loaded with dlopen by CCurlLoader, so linking it costs the launcher's local
        // path nothing; it needs only curl's headers to build.
        .target(name: "CCurlLoader"),
        .target(name: "VSecureRemote", dependencies: ["CCurlLoader", "VSecureStore", "VSecureCrypto", "VSecureCore"], swiftSettings: launcherPath),
        // The Swift SDK: an async facade over RemoteStore, and a TTL cache. Not linked into the
        // launcher, so it may use Dispatch.
        .target(name: "VSecureClient", dependencies: ["VSecureRemote", "VSecureStore", "VSecureCrypto", "VSecureCore"]),
        .target(name: "VSecureLauncher", dependencies: ["CYAML", "CLinux", "VSecureVault", "VSecureRemote", "VSecureCrypto", "VSecureCore"], swiftSettings: launcherPath),

        .executableTarget(
            name: "vsecure",
            dependencies: [
                "VSecureVault", "VSecureRemote", "VSecureStore", "VSecureCrypto", "VSecureCore", "CLinux",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(
            name: "VSecureServer",
            dependencies: [
                "VSecureVault", "VSecureStore", "VSecureCrypto", "VSecureCore", "CConcurrencyHook",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                // The fast read path sets up Hummingbird's HTTP/1.1 pipeline itself.
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
            ]
        ),

        .executableTarget(name: "vsecure-run", dependencies: ["VSecureLauncher"], swiftSettings: launcherPath, linkerSettings: staticLauncher),
        .executableTarget(name: "vsecure-run-remote", dependencies: ["VSecureLauncher"], swiftSettings: launcherPath),
        .executableTarget(
            name: "vsecure-server",
            dependencies: [
                "VSecureServer", "VSecureVault", "VSecureCrypto", "VSecureCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .target(name: "TestSupport", dependencies: ["VSecureCore"], path: "Tests/TestSupport"),
        .testTarget(name: "VSecureCoreTests", dependencies: ["VSecureCore", "TestSupport"]),
        .testTarget(name: "VSecureCryptoTests", dependencies: ["VSecureCrypto", "TestSupport"]),
        .testTarget(name: "VSecureVaultTests", dependencies: ["VSecureVault", "VSecureStore", "VSecureCrypto", "TestSupport"],
                    resources: [.copy("Vectors")]),
        .testTarget(name: "VSecureLauncherTests", dependencies: ["VSecureLauncher", "VSecureCore", "TestSupport"]),
        .testTarget(name: "LauncherEndToEndTests", dependencies: ["TestSupport"]),
        .testTarget(
            name: "VSecureServerTests",
            dependencies: [
                "VSecureServer", "VSecureVault", "VSecureCore", "TestSupport",
                "VSecureStore", "VSecureRemote", "VSecureCrypto",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(name: "EndToEndTests", dependencies: ["TestSupport"]),
        .testTarget(name: "VSecureClientTests", dependencies: ["VSecureClient", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)

// libFuzzer targets (Fuzz/, docs/testing.md "Fuzzing"). They export LLVMFuzzerTestOneInput and
// have no main, so they exist only when Fuzz/run.sh asks for them: the normal build never sees them.
if Context.environment["VSECURE_FUZZ"] == "1" {
    let fuzzTargets: [(String, [Target.Dependency])] = [
        ("FuzzManifest", ["VSecureLauncher", "VSecureCore"]),
        ("FuzzNames", ["VSecureCore"]),
        ("FuzzPolicy", ["VSecureCore"]),
        ("FuzzGlob", ["VSecureCore"]),
        ("FuzzBatchResponse", ["VSecureRemote", "VSecureCore"]),
        ("FuzzJSONBody", ["VSecureCore"]),
        ("FuzzDotenv", ["VSecureCore"]),
        ("FuzzVaultRow", ["VSecureVault", "VSecureCrypto", "VSecureCore", "CSQLite"]),
        ("FuzzAudit", ["VSecureCore"]),
        ("FuzzReceipts", ["VSecureVault", "VSecureCrypto", "VSecureCore"]),
    ]
    for (name, dependencies) in fuzzTargets {
        package.targets.append(.executableTarget(name: name, dependencies: dependencies, path: "Fuzz/\(name)"))
        package.products.append(.executable(name: name, targets: [name]))
    }
}
