#if canImport(Glibc)
import Glibc
#endif
import VSecureCore
import VSecureCrypto
import VSecureStore

extension LocalSecretStore: RotatingSecretStore {
    public func create(_ secret: NewSecret, rotation: RotationPolicy) throws(VSecureError) -> SecretSummary {
        try vault.atomically { () throws(VSecureError) -> SecretSummary in
            let created = try create(secret)
            try vault.setRotationPolicy(environment: created.environment, name: created.name, policy: rotation, now: now())
            return created
        }
    }

    public func update(environment: EnvironmentName?, name: SecretName, value: SecureBytes?, change: AttributeChange,
                       ifVersion: Int?, rotation: RotationPolicy??) throws(VSecureError) -> SecretUpdate {
        try vault.atomically { () throws(VSecureError) -> SecretUpdate in
            let updated = try update(environment: environment, name: name, value: value, change: change, ifVersion: ifVersion)
            if let rotation {
                try vault.setRotationPolicy(environment: updated.secret.environment, name: name, policy: rotation, now: now())
            }
            return updated
        }
    }

    public func rotationEntries(environment: EnvironmentName?) throws(VSecureError) -> [RotationEntry] {
        try vault.rotationEntries(environment: environment)
    }

    public func rotate(environment: EnvironmentName?, name: SecretName, onlyIfDue: Bool,
                       settings: RotationSettings) throws(VSecureError) -> RotationResult {
        let environment = environment ?? vault.defaultEnvironment
        try vault.checkEnvironment(environment)
        // A Ctrl-C or SIGTERM during a rotation command went to the command too; it takes effect
        // here once the outcome is stored and recorded (or the rotation rolled back).
        defer { RotationCommand.deliverPendingSignal() }
        // The claim outlives the command's timeout, so a slow command is never rotated twice.
        let claimFor = SecretDuration(seconds: settings.commandTimeout.seconds + 60)
        let result = try vault.rotate(environment: environment, name: name, onlyIfDue: onlyIfDue, actor: actor, now: now(),
                                      claimFor: claimFor) { (input: LocalVault.RotationInput) throws(RotationFailure) -> SecureBytes in
            switch input.source {
            case .generate(let length, let charset):
                return SecureBytes.randomCharacters(count: length, alphabet: charset.alphabet)
            case .command(let argv):
                return try RotationCommand.run(argv: argv, environment: Self.commandEnvironment(input), input: input.currentValue,
                                               timeout: settings.commandTimeout, forwardSignals: true)
            case .manual:
                throw RotationFailure("\(name) has a manual policy")
            }
        }
        switch result.outcome {
        case .rotated(let from, let to):
            try write([event(.rotated, environment, name, version: to, details: [("previousVersion", String(from))])])
        case .failed(let reason):
            try write([event(.rotated, environment, name, version: nil, outcome: .failure, details: [("reason", reason)])])
        case .skipped:
            break
        }
        return result
    }

    /// The rotation command's whole environment: what it rotates, plus PATH and HOME. Never the
    /// vault's credentials (VSECURE_KEY_FILE, VSECURE_PASSPHRASE, VSECURE_API_KEY).
    static func commandEnvironment(_ input: LocalVault.RotationInput) -> [String] {
        var result = ["VSECURE_SECRET_NAME=\(input.name.rawValue)", "VSECURE_SECRET_ENVIRONMENT=\(input.environment.rawValue)",
                      "VSECURE_SECRET_VERSION=\(input.currentVersion)"]
        let path = getenv("PATH").map { String(cString: $0) } ?? ""
        result.append("PATH=" + (path.isEmpty ? "/usr/local/bin:/usr/bin:/bin" : path))
        if let home = getenv("HOME") { result.append("HOME=" + String(cString: home)) }
        return result
    }
}
