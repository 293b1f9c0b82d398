#if canImport(Glibc)
import Glibc
#endif
import VSecureClient

// secret-length NAME [ENVIRONMENT]
//
// Reads one secret from the server that `vsecure login` (or VSECURE_ENDPOINT and
// VSECURE_API_KEY) configured, and prints its length: never the value.

func fail(_ message: String, status: Int32) -> Never {
    let line = Array("secret-length: error: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    exit(status)
}

let arguments = CommandLine.arguments.dropFirst()
guard let name = arguments.first, arguments.count <= 2 else { fail("usage: secret-length NAME [ENVIRONMENT]", status: 2) }
let environment = arguments.dropFirst().first

do {
    let client = try VSecureClient()
    let value = try await client.secrets.get(name, environment: environment)
    print("\(name): \(value.count) bytes")
} catch {
    switch error.kind {
    case .notFound: fail("\(name) does not exist", status: 3)
    case .accessDenied: fail("the server refused the API key: \(error.message)", status: 12)
    case .unreachable: fail("the server cannot be reached: \(error.message)", status: 13)
    default: fail(error.description, status: 1)
    }
}
