import Foundation
import Testing
import TestSupport

@Suite("vsecure-run resolution and environment rules")
struct LaunchBehaviourTests {
    @Test("missing required secrets are listed together and nothing starts")
    func missingAllListed() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("PRESENT", "x")
        try fixture.manifest("version: 1\nsecrets: [PRESENT, MISSING_A, MISSING_B]\n")
        let marker = fixture.directory.file("started")
        let result = try fixture.launch(["--env", "production", "--", "/usr/bin/touch", marker])
        #expect(result.status == 3, "\(result)")
        #expect(result.stderr.contains("MISSING_A") && result.stderr.contains("MISSING_B"))
        #expect(result.stderr.contains("vsecure.yml:2:"))
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test("an optional missing secret is skipped with a note")
    func optionalSkipped() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("A", "1")
        try fixture.manifest("version: 1\nsecrets:\n  - A\n  - name: B\n    optional: true\n")
        let (result, env, _) = try fixture.childEnvironment(["--env", "production"])
        #expect(result.status == 0, "\(result)")
        #expect(env["A"] == Array("1".utf8))
        #expect(env["B"] == nil)
        #expect(result.stderr.contains("optional secret B not found in production"))
    }

    @Test("as: renames the variable; environments: picks another secret in one environment")
    func renameAndPerEnvironment() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("STRIPE_KEY", "stripe")
        try fixture.secret("REDIS_URL", "redis-dev", env: "development")
        try fixture.secret("REDIS_PRIMARY_URL", "redis-prod")
        try fixture.manifest("""
            version: 1
            secrets:
              - name: STRIPE_KEY
                as: PAYMENT_STRIPE_KEY
                optional: true
              - name: REDIS_URL
                environments:
                  production: REDIS_PRIMARY_URL
            """)
        let (prod, prodEnv, _) = try fixture.childEnvironment(["--env", "production"])
        #expect(prod.status == 0, "\(prod)")
        #expect(prodEnv["PAYMENT_STRIPE_KEY"] == Array("stripe".utf8))
        #expect(prodEnv["STRIPE_KEY"] == nil)
        #expect(prodEnv["REDIS_URL"] == Array("redis-prod".utf8))
        let (dev, devEnv, _) = try fixture.childEnvironment([], env: ["VSECURE_ENV": "development"])
        #expect(dev.status == 0, "\(dev)")
        #expect(devEnv["REDIS_URL"] == Array("redis-dev".utf8))

        // A misspelt environment under environments: is a manifest error, not a silent default.
        let misspelt = try fixture.manifest("version: 1\nsecrets:\n  - name: REDIS_URL\n    environments: {prodution: REDIS_PRIMARY_URL}\n",
                                            name: "misspelt.yml")
        let refused = try fixture.launch(["--manifest", misspelt, "--env", "production", "--", "/bin/true"])
        #expect(refused.status == 10 && refused.stderr.contains("misspelt.yml:3:5: REDIS_URL: environments: unknown environment 'prodution'"),
                "\(refused)")
        #expect(refused.stderr.contains("hint: this vault's environments are:"), "\(refused)")
    }

    @Test("tag selections from the manifest and --tags are unioned; --only narrows")
    func tagSelections() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("API_ONE", "1", ["--tags", "api"])
        try fixture.secret("API_TWO", "2", ["--tags", "api,internal"])
        try fixture.secret("WORKER", "3", ["--tags", "worker"])
        try fixture.secret("OTHER", "4")
        try fixture.manifest("version: 1\nselect:\n  tags: [api, internal]\n")
        let (result, env, _) = try fixture.childEnvironment(["--env", "production", "--tags", "worker"])
        #expect(result.status == 0, "\(result)")
        #expect(env["API_TWO"] == Array("2".utf8))
        #expect(env["WORKER"] == Array("3".utf8))
        #expect(env["API_ONE"] == nil, "select.tags needs every tag")
        #expect(env["OTHER"] == nil)
        let (narrow, narrowEnv, _) = try fixture.childEnvironment(["--env", "production", "--tags", "worker", "--only", "WORKER"])
        #expect(narrow.status == 0, "\(narrow)")
        #expect(narrowEnv["WORKER"] != nil && narrowEnv["API_TWO"] == nil)
    }

    @Test("a variable name given as NAME=VALUE is refused without showing the value")
    func variableNameWithValue() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("ONLY", "1")
        let canary = LaunchFixture.canary()
        for option in ["--keep", "--only", "--allow-override"] {
            let result = try fixture.launch(["--env", "production", "--tags", "x", option, "DB_PASS=\(canary)", "--", "/bin/true"])
            #expect(result.status == 2, "\(option): \(result)")
            #expect(result.stderr.contains("invalid variable name 'DB_PASS=...'"), "\(option): \(result.stderr)")
            #expect(!result.stderr.contains(canary) && !result.stdoutText.contains(canary))
        }
    }

    @Test("--only never exports a listed secret under its own name through a tag selection")
    func onlyKeepsRenames() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("DB_USER", "user", ["--tags", "api"])
        try fixture.secret("DB_PASS", "pass", ["--tags", "api"])
        try fixture.manifest("version: 1\nsecrets:\n  - {name: DB_USER, as: U}\nselect:\n  tags: [api]\n")
        let (all, allEnv, _) = try fixture.childEnvironment(["--env", "production"])
        #expect(all.status == 0, "\(all)")
        #expect(allEnv["U"] == Array("user".utf8) && allEnv["DB_PASS"] != nil && allEnv["DB_USER"] == nil)
        let renamed = try fixture.launch(["--env", "production", "--only", "DB_USER", "--", "/bin/true"])
        #expect(renamed.status == 2, "\(renamed)")
        #expect(renamed.stderr.contains("--only names DB_USER, which nothing in the selection provides"), "\(renamed.stderr)")
        // Naming nothing the manifest sets says so, rather than suggesting a manifest.
        let listed = try fixture.manifest("version: 1\nsecrets: [DB_USER]\n", name: "listed.yml")
        let nothing = try fixture.launch(["--manifest", listed, "--env", "production", "--only", "NOPE", "--", "/bin/true"])
        #expect(nothing.status == 2 && nothing.stderr.contains("--only names NOPE, which nothing in \(listed) provides")
                && !nothing.stderr.contains("add a vsecure.yml"), "\(nothing)")
        let (narrow, narrowEnv, _) = try fixture.childEnvironment(["--env", "production", "--only", "U"])
        #expect(narrow.status == 0, "\(narrow)")
        #expect(narrowEnv["U"] == Array("user".utf8) && narrowEnv["DB_PASS"] == nil && narrowEnv["DB_USER"] == nil)
    }

    @Test("two sources for one variable is an error naming both")
    func conflictingSources() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("TOKEN", "from-tags", ["--tags", "api"])
        try fixture.secret("OTHER_TOKEN", "from-manifest")
        try fixture.manifest("version: 1\nsecrets:\n  - name: OTHER_TOKEN\n    as: TOKEN\nselect:\n  tags: [api]\n")
        let result = try fixture.launch(["--env", "production", "--", "/bin/true"])
        #expect(result.status == 11, "\(result)")
        #expect(result.stderr.contains("OTHER_TOKEN") && result.stderr.contains("secret TOKEN"))
        #expect(result.stderr.contains("vsecure.yml:3:") && result.stderr.contains("select.tags [api] at vsecure.yml:6:"),
                "both sources with their positions: \(result.stderr)")
        #expect(!result.stderr.contains("from-tags") && !result.stderr.contains("from-manifest"))
    }

    @Test("without a manifest or tags there is nothing to do: a usage error")
    func nothingSelected() throws {
        let fixture = try LaunchFixture()
        let result = try fixture.launch(["--env", "production", "--", "/bin/true"])
        #expect(result.status == 2, "\(result)")
        #expect(result.stderr.contains("nothing to inject"))
    }

    @Test("an expired secret stops the launch unless --allow-expired; soon-to-expire warns")
    func expiry() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("SHORT", "s", ["--expires-in", "1s"])
        try fixture.secret("SOON", "t", ["--expires-in", "2d"])
        try fixture.manifest("version: 1\nsecrets: [SHORT, SOON]\n")
        Thread.sleep(forTimeInterval: 1.6)
        let refused = try fixture.launch(["--env", "production", "--", "/bin/true"])
        #expect(refused.status == 5, "\(refused)")
        #expect(refused.stderr.contains("SHORT") && refused.stderr.contains("expired"))
        let allowed = try fixture.launch(["--env", "production", "--allow-expired", "--", "/bin/true"])
        #expect(allowed.status == 0, "\(allowed)")
        #expect(allowed.stderr.contains("warning: SOON in production expires at"))
        #expect(allowed.stderr.contains("expired secret: SHORT"))
        let narrow = try fixture.launch(["--env", "production", "--allow-expired", "--warn-within", "1d", "--", "/bin/true"])
        #expect(!narrow.stderr.contains("SOON in production expires"), "\(narrow)")
    }

    @Test("secrets override inherited variables unless --no-override; each name appears once")
    func overrideRules() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("SHARED", "from-vault")
        try fixture.manifest("version: 1\nsecrets: [SHARED]\n")
        let (result, env, names) = try fixture.childEnvironment(["--env", "production"], env: ["SHARED": "inherited", "KEEP_ME": "yes"])
        #expect(result.status == 0, "\(result)")
        #expect(env["SHARED"] == Array("from-vault".utf8))
        #expect(env["KEEP_ME"] == Array("yes".utf8))
        #expect(names.filter { $0 == "SHARED" }.count == 1)
        #expect(Set(names).count == names.count, "no name twice in envp")
        let (kept, keptEnv, _) = try fixture.childEnvironment(["--env", "production", "--no-override"], env: ["SHARED": "inherited"])
        #expect(kept.status == 0, "\(kept)")
        #expect(keptEnv["SHARED"] == Array("inherited".utf8))
    }

    @Test("inherited names compare as bytes: names that are not UTF-8 stay apart, and the first of a name wins")
    func inheritedNamesAreBytes() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("SHARED", "from-vault")
        try fixture.manifest("version: 1\nsecrets: [SHARED]\n")
        let badFirst = Array("X".utf8) + [0xFF] + Array("=first".utf8)
        let badOther = Array("X".utf8) + [0xFE] + Array("=other".utf8)
        let badAgain = Array("X".utf8) + [0xFF] + Array("=again".utf8)
        let replacement = Array("X\u{FFFD}=valid".utf8) // what both bad names would decode to
        let entries = [badFirst, badOther, badAgain, replacement, Array("TWICE=first".utf8), Array("TWICE=second".utf8),
                       Array("SHARED=inherited".utf8)]
        func childEntries(_ options: [String]) throws -> [[UInt8]] {
            let result = try runProcess(Binaries.vsecureRun, ["--env", "production"] + options + ["--", "/usr/bin/env", "-0"],
                                        environment: fixture.vault.environment(.environment), rawEntries: entries,
                                        workingDirectory: fixture.directory.path, timeout: 60)
            #expect(result.status == 0, "\(result)")
            return result.stdout.split(separator: 0).map(Array.init)
        }
        func named(_ prefix: String, in child: [[UInt8]]) -> [[UInt8]] { child.filter { $0.starts(with: Array(prefix.utf8)) } }

        let child = try childEntries([])
        #expect(named("X", in: child) == [badFirst, badOther, replacement], "each distinct name once, the first occurrence")
        #expect(named("TWICE=", in: child) == [Array("TWICE=first".utf8)])
        #expect(named("SHARED=", in: child) == [Array("SHARED=from-vault".utf8)])
        // --keep takes variable names only, so no name that is not UTF-8 is ever kept.
        let clean = try childEntries(["--clean-env", "--keep", "TWICE"])
        #expect(named("X", in: clean) == [])
        #expect(named("TWICE=", in: clean) == [Array("TWICE=first".utf8)])
    }

    @Test("--clean-env keeps only secrets, --keep variables and the run id")
    func cleanEnvironment() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("ONLY", "1")
        try fixture.manifest("version: 1\nsecrets: [ONLY]\n")
        let (result, env, _) = try fixture.childEnvironment(["--env", "production", "--clean-env", "--keep", "KEEP_ME"],
                                                           env: ["KEEP_ME": "k", "DROP_ME": "d"])
        #expect(result.status == 0, "\(result)")
        #expect(Set(env.keys) == ["ONLY", "KEEP_ME", "VSECURE_RUN_ID"], "\(env.keys.sorted())")
    }

    @Test("protected variables are refused unless --allow-override names them")
    func protectedVariables() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("LD_PRELOAD", "/tmp/evil.so")
        try fixture.secret("PATH", "/tmp/evil")
        try fixture.manifest("version: 1\nsecrets: [LD_PRELOAD, PATH]\n")
        let refused = try fixture.launch(["--env", "production", "--", "/bin/true"])
        #expect(refused.status == 11, "\(refused)")
        #expect(refused.stderr.contains("LD_PRELOAD") && refused.stderr.contains("PATH"))
        let allowed = try fixture.launch(["--env", "production", "--allow-override", "PATH,LD_PRELOAD", "--dry-run"])
        #expect(allowed.status == 0, "\(allowed)")
    }

    @Test("the launcher's own credentials never reach the child")
    func credentialsRemoved() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("A", "1")
        try fixture.manifest("version: 1\nsecrets: [A]\n")
        let (result, env, _) = try fixture.childEnvironment(["--env", "production"],
                                                           env: ["VSECURE_PASSPHRASE": "pw", "VSECURE_API_KEY": "vsec_x"])
        #expect(result.status == 0, "\(result)")
        for name in ["VSECURE_KEY_FILE", "VSECURE_PASSPHRASE", "VSECURE_API_KEY"] { #expect(env[name] == nil, "\(name)") }
        #expect(env["VSECURE_VAULT"] != nil, "non-secret settings are kept")
    }

    @Test("execve: same PID, argv passed exactly, exit code and PATH lookup")
    func execSemantics() throws {
        let fixture = try LaunchFixture()
        try fixture.secret("A", "1")
        try fixture.manifest("version: 1\nsecrets: [A]\n")
        let args = ["two words", "$HOME", "*", "", "a\nb"]
        let printed = try fixture.launch(["--env", "production", "--", "printf", "[%s]"] + args)
        #expect(printed.status == 0, "\(printed)")
        #expect(printed.stdoutText == args.map { "[\($0)]" }.joined())
        let exitCode = try fixture.launch(["--env", "production", "--", "/bin/sh", "-c", "exit 42"])
        #expect(exitCode.status == 42)
        // The shell reports its PID and its parent's: if vsecure-run had forked, the parent of the
        // shell would be vsecure-run and not the test runner.
        let pid = try fixture.launch(["--env", "production", "--", "/bin/sh", "-c", "echo $PPID"])
        #expect(pid.status == 0)
        #expect(Int32(pid.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) == getpid(), "\(pid)")
    }

    @Test("command not found exits 127, not executable 126, naming the command; no vault read")
    func commandErrors() throws {
        let fixture = try LaunchFixture()
        try fixture.manifest("version: 1\nsecrets: [A]\n")
        let missing = try fixture.launch(["--env", "production", "--", "no-such-command-xyz"])
        #expect(missing.status == 127, "\(missing)")
        #expect(missing.stderr.contains("no-such-command-xyz"))
        let script = try fixture.directory.write("not-exec.sh", "#!/bin/sh\n", mode: 0o644)
        let notExec = try fixture.launch(["--env", "production", "--", script])
        #expect(notExec.status == 126, "\(notExec)")
        #expect(notExec.stderr.contains("not-exec.sh"))
    }

    @Test("--dry-run lists variables, versions and sources without values; json for CI gates")
    func dryRun() throws {
        let fixture = try LaunchFixture()
        let canary = LaunchFixture.canary()
        try fixture.secret("API_KEY", canary)
        try fixture.vault.update("API_KEY", canary + "2", ["--env", "production"])
        try fixture.manifest("version: 1\nsecrets:\n  - API_KEY\n  - name: GONE\n    optional: true\n")
        let text = try fixture.launch(["--env", "production", "--dry-run"])
        #expect(text.status == 0, "\(text)")
        #expect(text.stdoutText.contains("API_KEY") && text.stdoutText.contains("vsecure.yml:3:5"))
        #expect(!text.stdoutText.contains(canary) && !text.stderr.contains(canary))
        let json = try fixture.launch(["--env", "production", "--dry-run", "--output", "json", "--", "/bin/true"])
        #expect(json.status == 0, "\(json)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout)) as? [String: Any])
        let variables = try #require(object["variables"] as? [[String: Any]])
        #expect(variables.count == 1)
        #expect(variables.first?["secret"] as? String == "API_KEY")
        #expect(variables.first?["version"] as? Int == 2)
        #expect(object["resolvedCommand"] as? String == "/bin/true")
        #expect((object["skipped"] as? [[String: Any]])?.first?["secret"] as? String == "GONE")
        #expect(!json.stdoutText.contains(canary))
        try fixture.manifest("version: 1\nsecrets: [API_KEY, NOT_THERE]\n")
        let failing = try fixture.launch(["--env", "production", "--dry-run"])
        #expect(failing.status == 3, "a dry run fails when a real run would not start")
    }

    @Test("usage, manifest, vault and key errors have their own exit codes", arguments: [
        (["--bogus", "--", "/bin/true"], "", Int32(2), "unknown option"),
        (["--env", "production"], "", Int32(2), "no command given"),
        (["--env", "Prod!", "--", "/bin/true"], "", Int32(2), "invalid environment name"),
        (["--env", "qa", "--", "/bin/true"], "version: 1\nsecrets: [A]\n", Int32(2), "unknown environment"),
        (["--env", "production", "--", "/bin/true"], "version: 1\nsecrets: [A]\nbogus: 1\n", Int32(10), "vsecure.yml:3:1"),
        (["--env", "production", "--manifest", "nope.yml", "--", "/bin/true"], "", Int32(10), "nope.yml"),
        (["--env", "production", "--warn-within", "1x", "--", "/bin/true"], "version: 1\nsecrets: [A]\n", Int32(2), "invalid duration"),
    ])
    func errors(arguments: [String], manifest: String, status: Int32, message: String) throws {
        let fixture = try LaunchFixture()
        try fixture.secret("A", "1")
        if !manifest.isEmpty { try fixture.manifest(manifest) }
        let result = try fixture.launch(arguments)
        #expect(result.status == status, "\(arguments): \(result)")
        #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        #expect(result.stderr.hasPrefix("vsecure-run: error: "))
    }

    @Test("a missing vault is exit 6, a wrong key exit 7")
    func vaultErrors() throws {
        let fixture = try LaunchFixture()
        try fixture.manifest("version: 1\nsecrets: [A]\n")
        let missing = try fixture.launch(["--vault", fixture.directory.file("none.db"), "--", "/bin/true"])
        #expect(missing.status == 6, "\(missing)")
        var key = [UInt8](repeating: 7, count: 32)
        key[0] = 1
        let wrongKey = try fixture.directory.write("wrong.key", key, mode: 0o600)
        let wrong = try fixture.launch(["--key-file", wrongKey, "--", "/bin/true"])
        #expect(wrong.status == 7, "\(wrong)")
    }
}
