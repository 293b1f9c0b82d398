#if canImport(Glibc)
import Glibc
#endif

/// Who acts on a local vault, for version records and audit entries: `VSECURE_ACTOR`, else
/// `user@host`, the user being `USER` when set, else the effective user's name from the password
/// database (in the static `vsecure-run`, `/etc/passwd` only), else `uid<N>`. (`USER` first: the
/// name is a record, not a credential, and `VSECURE_ACTOR` can say anything.)
public enum LocalIdentity {
    public static func actor(override: String?) -> String {
        if let override, !override.isEmpty { return override }
        let uid = geteuid()
        var user = "uid\(uid)"
        if let fromEnvironment = getenv("USER").map({ String(cString: $0) }), !fromEnvironment.isEmpty {
            user = fromEnvironment
        } else if let name = passwdFileName(uid: uid) ?? databaseName(uid: uid) {
            user = name
        }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        return "\(user)@\(String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))"
    }

    /// The name of `uid` in `/etc/passwd`, read directly, or nil (no such line, no such file).
    /// Containers and CI jobs often run without `USER`, and the C library's `getpwuid` goes
    /// through NSS first (nsswitch.conf, an attempt on nscd's socket): about 0.13 ms that every
    /// launch there would pay. Users only a directory service knows fall through to
    /// `databaseName`.
    static func passwdFileName(uid: uid_t, path: String = "/etc/passwd") -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_size <= 4 << 20 else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        let count = bytes.withUnsafeMutableBytes { PrivateFiles.readFully(fd, into: $0) }
        guard count > 0 else { return nil }
        return passwdName(uid: uid, in: bytes[..<count])
    }

    /// `name:password:uid:…` lines: the first name whose uid field is exactly `uid`.
    static func passwdName(uid: uid_t, in text: ArraySlice<UInt8>) -> String? {
        let wanted = Array(String(uid).utf8)
        for line in text.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: UInt8(ascii: ":"), maxSplits: 3, omittingEmptySubsequences: false)
            guard fields.count == 4, !fields[0].isEmpty, fields[0].first != UInt8(ascii: "+"),
                  fields[0].first != UInt8(ascii: "-"), fields[2].elementsEqual(wanted) else { continue }
            return String(decoding: fields[0], as: UTF8.self)
        }
        return nil
    }

    /// Not in a static executable (`vsecure-run`): glibc's NSS would load its modules with
    /// `dlopen`, which a static program survives only with the very glibc it was linked
    /// against, and an image may have another. Such a launch records `uid<N>`.
    private static func databaseName(uid: uid_t) -> String? {
        guard !ProcessImage.isStatic else { return nil }
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return nil }
        return String(cString: name)
    }
}
