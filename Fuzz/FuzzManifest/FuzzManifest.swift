import VSecureCore
import VSecureLauncher

// `vsecure.yml` as the launcher reads it (libyaml events through YAMLDocument, then the strict
// manifest reader): arbitrary bytes in, a Manifest or a positioned error out, never a crash.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let manifest: Manifest
    do { manifest = try ManifestParser.parse(bytes, path: "fuzz.yml") } catch {
        guard error.message.contains("fuzz.yml") else { fatalError("a manifest error that does not name the file: \(error.message)") }
        return 0
    }
    guard manifest.version == Manifest.currentVersion else { fatalError("accepted manifest version \(manifest.version)") }
    for entry in manifest.secrets {
        _ = entry.variableName
        if let environment = manifest.environment { _ = entry.secretName(in: environment) }
    }
    for template in manifest.templates { _ = template.references }
    return 0
}
