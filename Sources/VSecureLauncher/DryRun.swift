import VSecureCore

/// `--dry-run`: what would be injected, from where, at which version; never a value.
enum DryRun {
    static func print(resolution: LaunchPlan.Resolution, shadowed: [Injection], warnings: [String], environment: EnvironmentName,
                      source: String, command: [String], commandPath: String?, json: Bool) {
        if json {
            let variables: [JSONValue] = resolution.injections.map { injection in
                let secrets = injection.secrets
                var members: [(String, JSONValue)] = [("variable", .string(injection.variable.rawValue))]
                switch injection.content {
                case .secret(let secret):
                    members += [("secret", .string(secret.name.rawValue)), ("version", .int(secret.version)),
                                ("expiresAt", .optional(secret.expiresAt?.iso8601))]
                case .template:
                    members += [("template", .array(secrets.map { secret in
                        .object([("secret", .string(secret.name.rawValue)), ("version", .int(secret.version)),
                                 ("expiresAt", .optional(secret.expiresAt?.iso8601))])
                    }))]
                }
                members += [("environment", .string(environment.rawValue)), ("delivery", .string(injection.delivery.rawValue)),
                            ("origin", .string(injection.origin))]
                return .object(members)
            }
            LauncherConsole.out(JSONValue.object([
                ("environment", .string(environment.rawValue)),
                ("source", .string(source)),
                ("command", .array(command.map(JSONValue.string))),
                ("resolvedCommand", .optional(commandPath)),
                ("variables", .array(variables)),
                ("skipped", .array(resolution.skipped.map { variable, secret, origin in
                    .object([("variable", .string(variable.rawValue)), ("secret", .string(secret.rawValue)), ("reason", .string("optional and missing")), ("origin", .string(origin))])
                } + shadowed.map { injection in
                    .object([("variable", .string(injection.variable.rawValue)), ("reason", .string("inherited variable kept (--no-override)")), ("origin", .string(injection.origin))])
                })),
                ("warnings", .array(warnings.map(JSONValue.string))),
            ]).serialized())
            return
        }
        var lines = ["environment: \(environment) (\(source))"]
        if let commandPath { lines.append("command: \(commandPath) \(command.dropFirst().joined(separator: " "))") }
        var rows: [[String]] = [["VARIABLE", "SECRET", "VERSION", "EXPIRES", "DELIVERY", "FROM"]]
        for injection in resolution.injections {
            let secrets = injection.secrets
            let secretText: String
            let versionText: String
            if case .template = injection.content {
                secretText = "template(" + secrets.map(\.name.rawValue).joined(separator: ",") + ")"
                versionText = secrets.map { String($0.version) }.joined(separator: ",")
            } else {
                secretText = secrets.first?.name.rawValue ?? "-"
                versionText = secrets.first.map { String($0.version) } ?? "-"
            }
            let expiry = secrets.compactMap(\.expiresAt).min()?.iso8601 ?? "never"
            rows.append([injection.variable.rawValue, secretText, versionText, expiry, injection.delivery.rawValue, injection.origin])
        }
        var widths = [Int](repeating: 0, count: rows[0].count)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        for row in rows {
            var line = ""
            for (index, cell) in row.enumerated() {
                line += index == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count + 2)
            }
            lines.append(line)
        }
        for (variable, secret, origin) in resolution.skipped { lines.append("skipped: \(variable) (optional secret \(secret) does not exist; \(origin))") }
        for injection in shadowed { lines.append("skipped: \(injection.variable) (inherited variable kept: --no-override)") }
        for warning in warnings { lines.append("warning: \(warning)") }
        LauncherConsole.out(lines.joined(separator: "\n"))
    }
}
