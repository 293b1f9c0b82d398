import VSecureCore

// `vsecure secrets:import --format dotenv`: parse arbitrary bytes. Every entry parsed must be
// re-encodable with `Dotenv.encode`, and the encoded file must parse back to the same entries.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let entries = try? Dotenv.parse(bytes, path: "fuzz.env") else { return 0 }
    var file: [UInt8] = []
    for entry in entries {
        guard let line = entry.value.withUnsafeBytes({ value in try? Dotenv.encode(name: entry.name, value: value) }) else {
            continue  // a value the dotenv form cannot carry (encode refuses it, as documented)
        }
        file += line
        _ = entry.value.withUnsafeBytes { value in try? Dotenv.encodeShell(name: entry.name, value: value) }
    }
    guard let again = try? Dotenv.parse(file, path: "fuzz-again.env") else {
        fatalError("Dotenv.encode wrote a file Dotenv.parse refuses:\n\(String(decoding: file, as: UTF8.self))")
    }
    let encodable = entries.filter { entry in
        entry.value.withUnsafeBytes { value in (try? Dotenv.encode(name: entry.name, value: value)) != nil }
    }
    guard again.map(\.name) == encodable.map(\.name), again.map(\.value) == encodable.map(\.value) else {
        fatalError("dotenv entries changed on a round trip")
    }
    return 0
}
