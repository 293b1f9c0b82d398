/// Chooses the environment of a new secret: `--env`, else a tag that names a configured
/// environment, else the default. Two environment tags without `--env` are ambiguous.
public func chooseEnvironment(explicit: EnvironmentName?, tags: [Tag], configured: [EnvironmentName],
                              default defaultEnvironment: EnvironmentName) throws(VSecureError) -> EnvironmentName {
    if let explicit {
        guard configured.contains(explicit) else { throw unknownEnvironment(explicit, configured: configured) }
        return explicit
    }
    let named = configured.filter { env in tags.contains { $0.rawValue == env.rawValue } }
    if named.count > 1 {
        throw .usage("tags name more than one environment (\(named.map(\.rawValue).joined(separator: ", ")))",
                     hint: "choose one with --env")
    }
    return named.first ?? defaultEnvironment
}

public func unknownEnvironment(_ env: EnvironmentName, configured: [EnvironmentName]) -> VSecureError {
    .usage("unknown environment \(Quoted(env.rawValue))",
           hint: "this vault's environments are: \(configured.map(\.rawValue).joined(separator: ", "))")
}
