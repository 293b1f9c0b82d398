import ArgumentParser
import VSecureCore
import VSecureStore

/// The rotation policy flags of `secrets:create` and `secrets:update` (docs/rotation.md).
struct RotationOptions: ParsableArguments {
    @Option(name: .customLong("rotation-period"), help: ArgumentHelp("Rotate every this long, e.g. 30d. Required with the other rotation options.", valueName: "duration"))
    var period: String?

    @Option(name: .customLong("rotation-notify-before"), help: ArgumentHelp("Announce a rotation this long before it is due (vsecure-run warns, rotation:status says notify).", valueName: "duration"))
    var notifyBefore: String?

    @Option(name: .customLong("rotation-generate"), help: ArgumentHelp("Make the next value from libsodium's random source: length 8-4096, charset alnum, hex, base64url or ascii-printable.", valueName: "length=32,charset=alnum"))
    var generate: String?

    @Option(name: .customLong("rotation-command"), help: ArgumentHelp("Make the next value with this program (absolute path; split on spaces, no shell): current value on stdin, new value on stdout.", valueName: "'PATH ARG…'"))
    var command: String?

    @Option(name: .customLong("rotation-arg"), help: ArgumentHelp("One more argument for --rotation-command, as it is (may hold spaces); repeatable.", valueName: "arg"))
    var commandArguments: [String] = []

    @Flag(name: .customLong("no-rotation"), help: "Remove the rotation policy (secrets:update).")
    var noRotation = false

    var isEmpty: Bool { period == nil && notifyBefore == nil && generate == nil && command == nil && commandArguments.isEmpty && !noRotation }

    /// nil: leave the policy alone; `.some(nil)`: remove it; `.some(policy)`: set it. Without
    /// --rotation-generate or --rotation-command the policy is manual: notices only.
    func change() throws(VSecureError) -> RotationPolicy?? {
        if isEmpty { return nil }
        if noRotation {
            guard period == nil && notifyBefore == nil && generate == nil && command == nil && commandArguments.isEmpty else {
                throw VSecureError.usage("--no-rotation cannot be combined with other rotation options")
            }
            return .some(nil)
        }
        guard let period else {
            throw VSecureError.usage("a rotation policy needs --rotation-period", hint: "e.g. --rotation-period 30d --rotation-notify-before 7d --rotation-generate 'length=32,charset=alnum'")
        }
        if generate != nil && command != nil {
            throw VSecureError.usage("give either --rotation-generate or --rotation-command, not both")
        }
        if !commandArguments.isEmpty && command == nil { throw VSecureError.usage("--rotation-arg needs --rotation-command") }
        let source: RotationSource
        if let generate {
            source = try RotationSource.generate(parsing: generate)
        } else if let command {
            source = try RotationSource.command(parsing: command, extra: commandArguments)
        } else {
            source = .manual
        }
        return .some(try RotationPolicy(period: try SecretDuration(parsing: period),
                                        notifyBefore: try notifyBefore.map { (text: String) throws(VSecureError) in try SecretDuration(parsing: text) },
                                        source: source))
    }
}

/// The store as one that rotates. Both stores do (the local vault, and a server through its
/// rotation API); a store that does not is refused with exit 16.
func rotatingStore(_ store: any SecretStore) throws(VSecureError) -> any RotatingSecretStore {
    guard let rotating = store as? any RotatingSecretStore else {
        throw VSecureError(.unsupported, "the \(store.label) does not support rotation",
                           hint: "rotation policies and rotation work on a local vault (--vault PATH) and on a vsecure server (--endpoint URL)")
    }
    return rotating
}
