import VSecureCore
import VSecureCrypto

/// The launcher's encrypted copy of its last successful batch response, for `--fallback`.
///
/// - Key: BLAKE2b of the API key (`KeyDerivation.key(from:purpose:)`), so only a holder of the
///   key that fetched the secrets can open the copy, and a rotated key leaves it unreadable.
/// - Binding: the endpoint and the exact request body (environment, names and tag selections,
///   i.e. the resolved manifest) are associated data, and a keyed hash of them names the file,
///   so a cache is only ever used for the same server, environment and manifest.
/// - File: `VSFC`, format byte 1, the fetch time (8 bytes, little-endian seconds), then
///   XChaCha20-Poly1305 (nonce ‖ ciphertext ‖ tag) of the response body; the header is
///   authenticated too. Mode 0600 in a 0700 directory, replaced by rename.
/// - The plaintext only ever exists in locked memory: sealed from the response buffer and opened
///   into a new locked buffer.
struct OfflineCache {
    static let header: [UInt8] = Array("VSFC".utf8) + [1]
    static let headerBytes = header.count + 8

    let directory: String
    let path: String
    private let key: SecureBytes
    private let binding: [UInt8]

    init(directory: String, endpoint: RemoteEndpoint, request: [UInt8]) {
        var directory = directory
        while directory.count > 1 && directory.hasSuffix("/") { directory.removeLast() }
        self.directory = directory
        let key = KeyDerivation.key(from: endpoint.apiKey, purpose: "vsecure offline cache v1")
        let binding = Array(endpoint.baseURL.utf8) + [0] + request
        self.key = key
        self.binding = binding
        let id = binding.withUnsafeBytes { KeyDerivation.keyedHash($0, key: key, length: 16) }
        path = directory + "/" + hexString(id) + ".cache"
    }

    private func associatedData(fetchedAt: Int64) -> [UInt8] {
        Self.header + Self.littleEndian(fetchedAt) + binding
    }

    /// Seals `body` with its fetch time and replaces the cache file.
    func store(_ body: LockedBuffer, fetchedAt: Int64) throws(VSecureError) {
        try PrivateFiles.ensureDirectory(directory, tighten: true)
        if let problem = PrivateFiles.privateDirectoryProblem(directory) {
            throw VSecureError(.io, "the cache directory \(Quoted(directory)) is not private: \(problem)")
        }
        let box = body.withBytes { AEAD.seal($0, associatedData: associatedData(fetchedAt: fetchedAt), key: key) }
        let file = Self.header + Self.littleEndian(fetchedAt) + box
        try file.withRawBytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in try PrivateFiles.replaceFile(path, contents: raw) }
    }

    enum LoadFailure: Error {
        case missing
        case unreadable(String)
        case wrongKeyOrDamaged
    }

    /// Opens the cache into locked memory; returns the body and when it was fetched.
    func load(limit: Int, now: Int64) throws(LoadFailure) -> (body: LockedBuffer, fetchedAt: Int64) {
        if let problem = PrivateFiles.privateDirectoryProblem(directory) {
            throw PrivateFiles.kind(of: directory) == .missing ? .missing : .unreadable("its directory is not private: \(problem)")
        }
        let file: [UInt8]
        do {
            file = try PrivateFiles.readPrivateFile(path, maxBytes: Self.headerBytes + AEAD.overhead + limit)
        } catch {
            switch error {
            case .missing: throw .missing
            case .refused(let reason): throw .unreadable(reason)
            }
        }
        guard file.count >= Self.headerBytes + AEAD.overhead, Array(file[0..<Self.header.count]) == Self.header,
              let length = AEAD.plaintextLength(ofBoxLength: file.count - Self.headerBytes)
        else { throw .wrongKeyOrDamaged }
        var fetchedAt: Int64 = 0
        for (shift, byte) in file[Self.header.count..<Self.headerBytes].enumerated() { fetchedAt |= Int64(byte) << (8 * Int64(shift)) }
        // A copy from the future cannot have its age checked (the clock was wrong when it was
        // written, or it was planted); five minutes of skew are tolerated.
        guard fetchedAt <= now + 300 else { throw .unreadable("it is dated in the future") }
        let body = LockedBuffer(initialCapacity: max(length, 1), limit: max(length, 1))
        let ad = associatedData(fetchedAt: fetchedAt)
        let opened = file.withUnsafeBytes { raw -> Bool in
            let box = UnsafeRawBufferPointer(rebasing: raw[Self.headerBytes...])
            return body.fill(length) { destination in
                do { try AEAD.open(box, associatedData: ad, key: key, into: destination) } catch { return false }
                return true
            }
        }
        guard opened else { throw .wrongKeyOrDamaged }
        return (body, fetchedAt)
    }

    private static func littleEndian(_ value: Int64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * Int64($0))) }
    }
}
