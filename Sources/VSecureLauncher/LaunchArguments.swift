import VSecureCore

/// `vsecure-run [options] [--] command [args…]`, parsed by hand: swift-argument-parser would
/// bring Foundation onto the launcher's start-up path.
public struct LaunchArguments: Equatable, Sendable {
    public enum Output: String, Sendable { case text, json }

    public var environment: String?
    public var tagSelections: [[String]] = []
    public var only: [String] = []
    public var manifest: String?
    public var vault: String?
    public var keyFile: String?
    public var passphraseFile: String?
    public var endpoint: String?
    public var caCert: String?
    public var timeout: String?
    public var fallback = false
    public var maxStale: String?
    public var allowExpired = false
    public var warnWithin: String?
    public var noOverride = false
    public var cleanEnv = false
    public var keep: [String] = []
    public var allowOverride: [String] = []
    public var dryRun = false
    public var output: Output = .text
    public var help = false
    public var version = false
    public var command: [String] = []

    public init() {}

    /// Options that take a value. A switch rather than a `Set`: a global set costs the launcher
    /// its hashing and generic set-up on every start, for a dozen string comparisons.
    static func takesValue(_ name: String) -> Bool {
        switch name {
        case "--env", "--tags", "--only", "--manifest", "--vault", "--key-file", "--passphrase-file",
             "--warn-within", "--keep", "--allow-override", "--output", "--endpoint", "--cacert", "--timeout", "--max-stale":
            return true
        default:
            return false
        }
    }

    static func isFlag(_ name: String) -> Bool {
        switch name {
        case "--allow-expired", "--no-override", "--clean-env", "--dry-run", "--help", "-h", "--version", "--fallback":
            return true
        default:
            return false
        }
    }

    /// Options come first; the command starts at `--` or at the first argument that is not an
    /// option, and everything after it is passed to the command untouched.
    public static func parse(_ arguments: [String]) throws(VSecureError) -> LaunchArguments {
        var result = LaunchArguments()
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" {
                result.command = Array(arguments[(index + 1)...])
                break
            }
            guard argument.hasPrefix("-"), argument != "-" else {
                result.command = Array(arguments[index...])
                break
            }
            var name = argument
            var inlineValue: String?
            if let eq = argument.firstIndex(of: "="), argument.hasPrefix("--") {
                name = String(argument[..<eq])
                inlineValue = String(argument[argument.index(after: eq)...])
            }
            if isFlag(name) {
                guard inlineValue == nil else { throw .usage("option \(name) takes no value", hint: usageHint) }
                switch name {
                case "--allow-expired": result.allowExpired = true
                case "--no-override": result.noOverride = true
                case "--clean-env": result.cleanEnv = true
                case "--dry-run": result.dryRun = true
                case "--fallback": result.fallback = true
                case "--version": result.version = true
                default: result.help = true
                }
                index += 1
                continue
            }
            guard takesValue(name) else {
                throw .usage("unknown option \(Quoted(name))", hint: usageHint)
            }
            let value: String
            if let inlineValue {
                value = inlineValue
                index += 1
            } else {
                guard index + 1 < arguments.count else { throw .usage("option \(name) needs a value", hint: usageHint) }
                value = arguments[index + 1]
                index += 2
            }
            switch name {
            case "--env": result.environment = value
            case "--tags": result.tagSelections.append(splitList(value))
            case "--only": result.only += splitList(value)
            case "--manifest": result.manifest = value
            case "--vault": result.vault = value
            case "--key-file": result.keyFile = value
            case "--passphrase-file": result.passphraseFile = value
            case "--endpoint": result.endpoint = value
            case "--cacert": result.caCert = value
            case "--timeout": result.timeout = value
            case "--max-stale": result.maxStale = value
            case "--warn-within": result.warnWithin = value
            case "--keep": result.keep += splitList(value)
            case "--allow-override": result.allowOverride += splitList(value)
            case "--output":
                guard let output = Output(rawValue: value) else {
                    throw .usage("--output takes text or json, not \(Quoted(value))")
                }
                result.output = output
            default: break
            }
        }
        return result
    }

    static func splitList(_ text: String) -> [String] {
        text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    }

    static let usageHint = "`vsecure-run --help` lists the options"

    public static let helpText = """
        Usage: vsecure-run [options] [--] command [args...]

        Resolves the secrets a program needs (vsecure.yml), fetches them from the vault in one read,
        puts them into the program's environment and replaces itself with the program (execve): the
        program keeps the PID, receives signals directly and returns its own exit code.

        Selection:
          --env NAME               environment (default: $VSECURE_ENV, else the manifest's, else the vault's default)
          --tags a,b               also every secret carrying all these tags (repeatable; each adds a selection)
          --only NAME,...          inject only these variables
          --manifest PATH          manifest file (default: $VSECURE_MANIFEST, else ./vsecure.yml if present)
        Vault:
          --vault PATH             vault file (default: $VSECURE_VAULT, else ~/.vsecure/vault.db)
          --key-file PATH          key file (default: $VSECURE_KEY_FILE, else ~/.vsecure/vault.key)
          --passphrase-file PATH   passphrase for a passphrase vault (else $VSECURE_PASSPHRASE_FILE, $VSECURE_PASSPHRASE)
        Server (instead of the local vault; run by vsecure-run-remote, from ../libexec/vsecure or beside vsecure-run):
          --endpoint URL           a vsecure server (default: $VSECURE_ENDPOINT); the API key is $VSECURE_API_KEY.
                                   A manifest's source.endpoint must name the same server
          --cacert FILE            trust this CA for the server (default: $VSECURE_CA_CERT)
          --timeout DURATION       give up on the server after this long, retries included (default: 10s)
          --fallback               if the server cannot be reached, use the encrypted offline cache of the
                                   last successful fetch (warns, and sets VSECURE_STALE=1 for the program)
          --max-stale DURATION     how old that cache may be (default: 24h)
        Expiry:
          --allow-expired          start even if a secret has expired
          --warn-within DURATION   warn about secrets expiring within this (default: 7d)
        Environment:
          --no-override            an inherited variable wins over a secret of the same name
          --clean-env              start the program with only the secrets, --keep variables and VSECURE_RUN_ID
          --keep VAR,...           variables to keep with --clean-env
          --allow-override VAR,... let secrets set these protected variables (PATH, LD_PRELOAD, ...)
        Other:
          --dry-run                print what would be injected (never values) and exit
          --output text|json       format of --dry-run
          -h, --help               show this help
          --version                show the version

        Exit codes: the program's own once it starts; before that 2 usage, 3 missing secret,
        5 expired, 6 no vault, 7 key, 8 vault damaged, 10 manifest, 11 unsafe environment,
        12 access denied by the server, 13 server unreachable,
        126 command not executable, 127 command not found. See the README.
        """
}
