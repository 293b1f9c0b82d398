// swift-tools-version:6.0
import PackageDescription

// An application that reads one secret through the VSecureClient SDK. It depends on this
// repository by path; in your own package write instead
//     .package(url: "https://github.com/<you>/vsecure", branch: "main")
// and `.product(name: "VSecureClient", package: "vsecure")`.
//
// A path dependency is named after its directory, whatever the clone is called, so the name is
// read from the path here.
let repository = Context.packageDirectory.split(separator: "/").dropLast(2).last.map { String($0).lowercased() } ?? "vsecure"

let package = Package(
    name: "vsecure-sdk-example",
    dependencies: [
        .package(path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "secret-length",
            dependencies: [.product(name: "VSecureClient", package: repository)]
        ),
    ],
    swiftLanguageModes: [.v6]
)
