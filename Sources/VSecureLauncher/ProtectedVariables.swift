import VSecureCore

/// Variables that change how programs are loaded or run. A secret never sets one of these
/// unless `--allow-override NAME` names it: a value that can rewrite PATH or preload a library
/// turns a leaked or mistyped secret into code execution. Listed in docs/launcher.md.
///
/// The lists are looked up through `StringIndex`, not a `Set`, which would cost a launch more
/// in generic metadata built at run time than its hundred look-ups do; names and prefixes
/// compare as bytes, as the kernel and the program compare variable names.
public enum ProtectedVariables {
    static let nameList: [String] = [
        // the shell and the dynamic loader
        "PATH", "IFS", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND", "CDPATH",
        "GCONV_PATH", "HOSTALIASES", "LOCALDOMAIN", "RES_OPTIONS", "NLSPATH", "MALLOC_CONF",
        // language runtimes that load code or options from the environment
        "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONINSPECT", "PYTHONUSERBASE",
        "NODE_OPTIONS", "NODE_PATH", "PERL5LIB", "PERL5OPT", "PERLLIB", "RUBYOPT", "RUBYLIB",
        "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH",
        "GIT_EXEC_PATH", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM",
        // set by vsecure-run itself: the run id that joins the program's logs to the audit log
        runID,
    ]
    public static var names: Set<String> { Set(nameList) }
    public static let prefixes = ["LD_", "DYLD_", "GLIBC_TUNABLES"]

    static let nameIndex = StringIndex(nameList)

    /// Protected, and not even `--allow-override` lets a secret set it: the launcher exports the
    /// run id that its audit receipt records, and a program given another one could not be
    /// joined to the log.
    public static let runID = "VSECURE_RUN_ID"

    public static func isProtected(_ name: String) -> Bool {
        nameIndex.contains(name) || prefixes.contains { hasBytePrefix(name, $0) }
    }

    /// The launcher's own credentials and test switches: never passed on to the child.
    /// VSECURE_STALE is here too: only the launch that used the offline cache sets it, so a
    /// program never inherits a stale marker from its parent.
    static let launcherOnlyList: [String] = [
        "VSECURE_KEY_FILE", "VSECURE_PASSPHRASE", "VSECURE_PASSPHRASE_FILE", "VSECURE_API_KEY",
        "VSECURE_TEST_MEMORY_SCAN", "VSECURE_TEST_MEMORY_REPORT", "VSECURE_TEST_NOW", "VSECURE_STALE",
    ]
    public static var launcherOnly: Set<String> { Set(launcherOnlyList) }

    private static func hasBytePrefix(_ name: String, _ prefix: String) -> Bool {
        var name = name.utf8.makeIterator()
        for byte in prefix.utf8 where name.next() != byte { return false }
        return true
    }

    static let launcherOnlyIndex = StringIndex(launcherOnlyList)

    public static func isLauncherOnly(_ name: String) -> Bool { launcherOnlyIndex.contains(name) }
}
