import VSecureCore

// Access policy documents (`vsecure access:policy:set`, PUT /policy): parse arbitrary bytes;
// what parses must serialize, parse again to the same rules, and answer `decide` for a few paths.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let policy: AccessPolicy
    do { policy = try AccessPolicy(parsing: bytes) } catch {
        // Errors are positioned: "line L, column C: ...".
        guard error.message.hasPrefix("line ") else { fatalError("unpositioned policy error: \(error.message)") }
        return 0
    }
    let written = Array(policy.json().serialized().utf8)
    guard let again = try? AccessPolicy(parsing: written) else {
        fatalError("a parsed policy does not read back from its JSON:\n\(policy.json().serialized())")
    }
    guard again.json() == policy.json() else { fatalError("policy changed on a round trip") }
    let roles: Set<String> = Set(policy.rules.prefix(2).flatMap { rule in rule.roles.values.flatMap { $0 } })
    for path in ["production/API_KEY", "staging/a/b", "development", "x//y"] {
        for action in AccessAction.allCases {
            _ = policy.decide(roles: roles, action: action, path: path)
        }
    }
    return 0
}
