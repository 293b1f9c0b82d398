#if canImport(Glibc)
import Glibc
#endif

/// Who acts on a local vault, for version records and audit entries: `VSECURE_ACTOR`, else
/// `user@host`, the user being `USER` when set, else the effective user's name from the password
/// database, else `uid<N>`. (`USER` first: a password-database lookup costs a launch about
/// 0.4 ms, and the name is a record, not a credential: `VSECURE_ACTOR` can say anything.)
public enum LocalIdentity {
    public static func actor(override: String?) -> String {
        if let override, !override.isEmpty { return override }
        var user = "uid\(geteuid())"
        if let fromEnvironment = getenv("USER").map({ String(cString: $0) }), !fromEnvironment.isEmpty {
            user = fromEnvironment
        } else if let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name {
            user = String(cString: name)
        }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        return "\(user)@\(String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))"
    }
}
