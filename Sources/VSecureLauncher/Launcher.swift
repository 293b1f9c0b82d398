#if canImport(Glibc)
import Glibc
#endif
import CLinux
import VSecureCore
import VSecureCrypto
import VSecureRemote
import VSecureVault

public enum LauncherVersion {
    public static let current = "0.1.0"
}

/// `vsecure-run`: manifest → resolve → one batch read → locked environment block → execve.
public enum Launcher {
    /// `handsOffRemote`: whether a launch from a server is handed to `vsecure-run-remote` when
    /// this executable is static (`RemoteHandOff`); the twin itself passes false.
    public static func main(_ arguments: [String], handsOffRemote: Bool = true) -> Never {
        // Before anything is read: no core dumps, no same-user ptrace of this process.
        _ = vsecure_set_not_dumpable()
        _ = vsecure_disable_core_dumps()
        // The launcher is one thread (libcurl, in the twin, never touches SQLite).
        SQLiteProcess.useFromOneThreadOnly()
        let scan = MemoryScan.prepareIfRequested()
        do throws(VSecureError) {
            if !handsOffRemote && ProcessImage.isStatic {
                throw VSecureError(.internalError, "\(RemoteHandOff.twinName) is linked statically, so it cannot load libcurl",
                                   hint: "build it as Package.swift does (dynamically), e.g. with ./install.sh")
            }
            try run(Array(arguments.dropFirst()), scan: scan, handOff: handsOffRemote && ProcessImage.isStatic ? arguments : nil)
        } catch {
            // Every secret buffer has been released (and wiped) by the time the error unwinds here.
            Sodium.wipeStack()
            scan?.run(phase: "failure")
            LauncherConsole.error(error)
            exit(error.status.rawValue)
        }
    }

    /// Returns only for `--help`, `--version` and `--dry-run`; otherwise it execs or throws.
    /// `handOff`: the whole argument vector, when a launch from a server must be handed to the
    /// dynamically linked twin.
    static func run(_ argv: [String], scan: MemoryScan?, handOff: [String]? = nil) throws(VSecureError) -> Never {
        let options = try LaunchArguments.parse(argv)
        if options.help {
            LauncherConsole.out(LaunchArguments.helpText)
            exit(0)
        }
        if options.version {
            LauncherConsole.out("vsecure-run \(LauncherVersion.current)")
            exit(0)
        }
        guard !options.command.isEmpty || options.dryRun else {
            throw .usage("no command given", hint: "write the command after the options: vsecure-run --env production -- ./server")
        }
        let settings = try LaunchSettings(options)
        // A launch from a server (only an endpoint the user named makes one: see serverURL) is
        // handed to the dynamically linked twin here, before anything secret is read; the twin
        // reads the manifest itself.
        if let handOff, settings.endpoint != nil { try RemoteHandOff.exec(handOff) }
        let manifest = try settings.loadManifest()
        let commandPath = options.command.isEmpty ? nil
            : try CommandLookup.resolve(options.command[0], searchPath: LauncherConsole.string("PATH"))

        // Joins the program's logs to the audit log: the receipt (local) or the server's entry
        // for the batch names it, and the program gets it as VSECURE_RUN_ID.
        let runID = LaunchReceipt.newRunID()
        let source: any SecretSource
        var remote: RemoteLaunchSource?
        let environment: EnvironmentName
        if let url = try serverURL(settings: settings, manifest: manifest) {
            guard let chosen = settings.explicitEnvironment ?? manifest?.environment else {
                throw .usage("a launch from a server needs an environment", hint: "pass --env, set VSECURE_ENV, or write environment: in the manifest")
            }
            let fallback = settings.fallbackFlag || manifest?.source.fallback == true
            let maxStale = settings.maxStaleFlag ?? manifest?.source.maxStale ?? SecretDuration(seconds: 86_400)
            remote = RemoteLaunchSource(endpoint: try settings.remoteEndpoint(url),
                                        fallback: fallback ? FallbackPolicy(directory: settings.cacheDirectory, maxStaleSeconds: maxStale.seconds) : nil,
                                        runID: runID)
            source = remote!
            environment = chosen
        } else {
            // The source is the only owner of the vault (and so of its data key): closing it wipes the key.
            let local = LocalVaultSource(vault: try LocalVault.open(at: settings.vaultPath, readOnly: true, singleRead: true, keys: KeySource(keyFilePath: settings.keyFilePath) {
                () throws(VSecureError) in try settings.passphrase()
            }))
            environment = settings.explicitEnvironment ?? manifest?.environment ?? local.defaultEnvironment!
            try local.checkEnvironment(environment)
            if let manifest { try checkEntryEnvironments(manifest, local) }
            source = local
        }
        defer { source.close() }

        let plan = LaunchPlan(manifest: manifest, environment: environment, extraTagSelections: settings.tagSelections, only: settings.only)
        if plan.isEmpty, let manifest, !settings.only.isEmpty, !LaunchPlan(manifest: manifest, environment: environment, extraTagSelections: [], only: []).isEmpty {
            throw .usage("--only names \(settings.only.map(\.rawValue).joined(separator: ", ")), which nothing in \(manifest.path) provides",
                         hint: "--only takes the variable names the manifest sets; `vsecure-run --dry-run` lists them")
        }
        guard !plan.isEmpty else {
            throw .usage(manifest == nil ? "nothing to inject: no manifest and no --tags"
                                         : "nothing to inject: \(manifest!.path) lists no secrets, templates or tag selection\(settings.only.isEmpty ? "" : " that --only keeps"), and no --tags",
                         hint: "add a vsecure.yml (see docs/manifest.md), pass --manifest, or select secrets with --tags")
        }
        let fetched = try source.fetch(environment: environment, names: plan.names, tagSelections: plan.tagSelections)
        if let problem = remote?.cacheProblem { LauncherConsole.warning(problem) }
        if let stale = remote?.stale {
            LauncherConsole.warning("\(stale.reason); using the offline cache from \(stale.fetchedAt.iso8601) (\(SecretDuration.approximate(seconds: stale.age)) old); the program gets VSECURE_STALE=1")
        }
        var resolution = try plan.resolve(fetched)
        let inherited = InheritedEnvironment(clean: options.cleanEnv, keep: StringIndex(options.keep))
        var shadowed: [Injection] = []
        if options.noOverride {
            shadowed = resolution.injections.filter { inherited.contains($0.variable.rawValue) }
            resolution.injections.removeAll { inherited.contains($0.variable.rawValue) }
        }
        try checkProtected(resolution.injections, allowed: options.allowOverride)
        let warnings = try checkExpiry(resolution.injections, environment: environment, settings: settings)

        if options.dryRun {
            DryRun.print(resolution: resolution, shadowed: shadowed, warnings: warnings, environment: environment, source: source.label,
                         command: options.command, commandPath: commandPath, json: options.output == .json)
            exit(0)
        }
        for warning in warnings { LauncherConsole.warning(warning) }
        for (variable, secret, origin) in resolution.skipped {
            LauncherConsole.note("optional secret \(secret) not found in \(environment); \(variable) is not set (\(origin))")
        }

        var markers: [(name: String, value: String)] = [("VSECURE_RUN_ID", runID)]
        if remote?.stale != nil { markers.append(("VSECURE_STALE", "1")) }
        let block = try EnvironmentBuilder.build(injections: resolution.injections, inherited: inherited, source: source,
                                                 markers: markers)
        source.close()
        if remote == nil {
            // A local launch records its own receipt. (A server records the batch read itself,
            // under the run id sent with it.)
            try LaunchReceipt.record(runID: runID, settings: settings, environment: environment,
                                     injections: resolution.injections, command: options.command)
        }
        guard let commandPath else { exit(0) }
        let arguments = ArgumentVector(options.command)
        Sodium.wipeStack()
        scan?.run(phase: "exec")
        let code = arguments.withArgv { argv in
            execve(commandPath, argv, block.envp)
            return errno
        }
        // execve returned: the block is released (and wiped) before the error is reported.
        _ = consume block
        if remote == nil {
            LaunchReceipt.recordExecFailure(runID: runID, settings: settings, environment: environment, code: code, command: options.command)
        }
        throw CommandLookup.execFailure(code, command: options.command[0])
    }

    /// A manifest entry's `environments:` keys must be environments of the vault: a typo such as
    /// `prodution:` would otherwise leave the entry reading its default name in production.
    static func checkEntryEnvironments(_ manifest: Manifest, _ local: LocalVaultSource) throws(VSecureError) {
        for entry in manifest.secrets {
            for environment in entry.environmentNames.keys.sorted(by: { $0.rawValue < $1.rawValue }) {
                do {
                    try local.checkEnvironment(environment)
                } catch {
                    throw VSecureError(.manifest, "\(manifest.path):\(entry.location): \(entry.name): environments: \(error.message)",
                                       hints: error.hints)
                }
            }
        }
    }

    /// The server to fetch from, if any. The API key goes only to a server the user named
    /// (`--endpoint` or VSECURE_ENDPOINT): a manifest travels with a repository, so its
    /// `source.endpoint` may select the server mode and pin which server is expected, but it
    /// never decides on its own where the key is sent.
    static func serverURL(settings: LaunchSettings, manifest: Manifest?) throws(VSecureError) -> String? {
        guard let pinned = manifest?.source.endpoint else { return settings.endpoint }
        guard let chosen = settings.endpoint else {
            throw VSecureError(.manifest, "\(manifest?.path ?? "the manifest") names the server \(pinned); vsecure-run sends the API key only to a server you name yourself",
                               hint: "if you trust it: pass --endpoint \(pinned) or export VSECURE_ENDPOINT=\(pinned)")
        }
        guard try ClientConfig.checkEndpoint(chosen) == pinned else {
            throw VSecureError(.manifest, "\(manifest?.path ?? "the manifest") expects the server \(pinned), but --endpoint or VSECURE_ENDPOINT is \(chosen); nothing was sent",
                               hint: "point --endpoint at \(pinned), or change source.endpoint in the manifest")
        }
        return chosen
    }

    static func checkProtected(_ injections: [Injection], allowed: [String]) throws(VSecureError) {
        var refused: [String] = []
        for injection in injections where ProtectedVariables.isProtected(injection.variable.rawValue) {
            if injection.variable.rawValue == ProtectedVariables.runID {
                throw VSecureError(.unsafeEnvironment, "refusing to set \(ProtectedVariables.runID) from a secret: vsecure-run sets it to this launch's run id, the one its audit receipt records",
                                   hint: "export the secret under another variable with 'as:' in the manifest")
            }
            if !allowed.contains(injection.variable.rawValue) { refused.append(injection.variable.rawValue) }
        }
        guard refused.isEmpty else {
            throw VSecureError(.unsafeEnvironment, "refusing to set \(refused.joined(separator: ", ")) from a secret: it changes how programs are loaded or run",
                               hint: "if this is intended, pass --allow-override \(refused.joined(separator: ","))")
        }
    }

    /// The clock, or, in a debug build, VSECURE_TEST_NOW: the test clock of docs/rotation.md
    /// (a release build ignores it, as `vsecure` does).
    static func currentTime() throws(VSecureError) -> Timestamp {
        #if DEBUG
        let testNow = getenv("VSECURE_TEST_NOW").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
        #else
        let testNow: String? = nil
        #endif
        return try testNow.map { (text: String) throws(VSecureError) in try Timestamp(testNow: text) }
            ?? Timestamp(secondsSinceEpoch: Int64(time(nil)))
    }

    /// Expired secrets stop the launch (all named at once); those close to expiry, or inside
    /// their rotation policy's notify-before window, are warnings.
    static func checkExpiry(_ injections: [Injection], environment: EnvironmentName, settings: LaunchSettings) throws(VSecureError) -> [String] {
        let now = try currentTime()
        var expired: [String] = []
        var warnings: [String] = []
        var seen = StringIndex(capacity: injections.count)
        for secret in injections.flatMap(\.secrets) where seen.insert(secret.name.rawValue).inserted {
            // Inside the notify-before window, or past the due time with or without a window.
            if let due = secret.rotationDueAt,
               case let left = due.secondsSinceEpoch - now.secondsSinceEpoch,
               left <= 0 || left <= (secret.rotationNotifyBefore?.seconds ?? 0) {
                warnings.append("\(secret.name) in \(environment) is due for rotation at \(due.iso8601) (\(left > 0 ? "in \(SecretDuration.approximate(seconds: left))" : "overdue"))")
            }
            guard let expiresAt = secret.expiresAt else { continue }
            if expiresAt <= now {
                expired.append("\(secret.name) (expired \(expiresAt.iso8601))")
            } else if expiresAt.secondsSinceEpoch - now.secondsSinceEpoch <= settings.warnWithin.seconds {
                warnings.append("\(secret.name) in \(environment) expires at \(expiresAt.iso8601) (in \(SecretDuration.approximate(seconds: expiresAt.secondsSinceEpoch - now.secondsSinceEpoch)))")
            }
        }
        if !expired.isEmpty && !settings.allowExpired {
            throw VSecureError(.expired, "expired secret\(expired.count == 1 ? "" : "s") in \(environment): \(expired.joined(separator: ", ")); nothing was started",
                               hints: ["set a new expiry with `vsecure secrets:update NAME --env \(environment) --expires-in 90d` (or `--no-expiry`), and a new value on stdin if it needs one",
                                       "--allow-expired starts anyway"])
        }
        if settings.allowExpired { warnings += expired.map { "starting with an expired secret: \($0)" } }
        return warnings
    }
}
