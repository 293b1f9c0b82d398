import Foundation
import Testing
import TestSupport

@Suite("secrets:create", .noValuesOnStderr)
struct SecretsCreateTests {
    @Test func valueInArgvIsStoredAndPrintsTheCardAndTheArgvHint() throws {
        let vault = try Vault()
        let result = try vault.run(["secrets:create", "API_KEY", "sk_live_argv_SECRET"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr == argvHint)
        let lines = result.stdoutText.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.count == 7)
        #expect(lines[0] == "Created API_KEY in development")
        #expect(lines[1].range(of: #"^  id:          sec_[0-9a-f]{24}$"#, options: .regularExpression) != nil, "\(lines[1])")
        #expect(Array(lines[2...]) == [
            "  environment: development",
            "  version:     1",
            "  tags:        -",
            "  expires:     never",
            "",
        ])
        #expect(!result.stdoutText.contains("sk_live_argv_SECRET"))
        #expect(try vault.value("API_KEY") == bytes("sk_live_argv_SECRET"))
    }

    @Test func aValueInArgvThatIsNotUTF8IsKeptByteForByte() throws {
        let vault = try Vault()
        // Fixed in Sources/vsecure/Support/SecretOptions.swift: Swift repairs argv to UTF-8, so
        // these used to be stored as EF BF BD (U+FFFD) with exit 0.
        let result = try vault.shell("""
            "$VSECURE" secrets:create SEPARATE "$(printf 'a\\377\\376b')" --quiet &&
            "$VSECURE" secrets:create "$(printf 'JOINED=\\303(')" --quiet &&
            "$VSECURE" secrets:update SEPARATE "$(printf '\\200')" --quiet --tags x
            """)
        #expect(result.status == 0, "\(result)")
        #expect(try vault.value("SEPARATE", ["--version", "1"]) == [0x61, 0xFF, 0xFE, 0x62])
        #expect(try vault.value("JOINED") == [0xC3, 0x28])
        #expect(try vault.value("SEPARATE") == [0x80])
        // Two different invalid arguments that look the same once repaired: refused, not guessed.
        let ambiguous = try vault.shell("""
            "$VSECURE" secrets:create AMBIGUOUS "$(printf '\\303')" --quiet --description "$(printf '\\304')"
            """)
        expectFailure(ambiguous, 2, "cannot tell which bytes of the command line are the value of AMBIGUOUS")
        expectFailure(try vault.run(["secrets:get", "AMBIGUOUS"]), 3, "no secret AMBIGUOUS")
    }

    @Test func quietSilencesTheArgvHint() throws {
        let vault = try Vault()
        let result = try vault.run(["secrets:create", "QUIET", "quiet-SECRET", "--quiet"])
        expectSuccess(result)
        #expect(try vault.value("QUIET") == bytes("quiet-SECRET"))
    }

    @Test func nameEqualsValueSplitsAtTheFirstEquals() throws {
        let vault = try Vault()
        let result = try vault.run(["secrets:create", "DSN=postgres://u:p@h/db?a=b=c"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr == argvHint)
        #expect(result.stdoutText.hasPrefix("Created DSN in development\n"))
        #expect(try vault.value("DSN") == bytes("postgres://u:p@h/db?a=b=c"))
    }

    @Test func dashReadsTheValueFromStdinExactly() throws {
        let vault = try Vault()
        let value = bytes("stdin-SECRET\nwith trailing newline\n")
        let result = try vault.run(["secrets:create", "FROM_STDIN", "-"], stdin: .bytes(value))
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.isEmpty, "reading stdin prints no argv hint: \(result.stderr)")
        #expect(try vault.value("FROM_STDIN") == value)
    }

    @Test func absentValueIsReadFromAPipedStdin() throws {
        let vault = try Vault()
        let result = try vault.run(["secrets:create", "PIPED"], stdin: .text("piped-SECRET"))
        expectSuccess(result)
        #expect(try vault.value("PIPED") == bytes("piped-SECRET"))
        // Through a real shell pipeline too.
        let shell = try vault.shell("printf 'shell-piped-SECRET' | \"$VSECURE\" secrets:create SHELL_PIPED")
        expectSuccess(shell)
        #expect(try vault.value("SHELL_PIPED") == bytes("shell-piped-SECRET"))
    }

    @Test func fromFileReadsTheFileByteForByte() throws {
        let vault = try Vault()
        let value: [UInt8] = bytes("-----BEGIN KEY-----\nabc\n-----END KEY-----\n") + [0x00, 0xFF]
        let file = try vault.directory.write("value.bin", value)
        let result = try vault.run(["secrets:create", "PEM", "--from-file", file])
        expectSuccess(result)
        #expect(try vault.value("PEM") == value)
        expectFailure(try vault.run(["secrets:create", "PEM2", "inline", "--from-file", file]), 2,
                      "give the value either as VALUE or with --from-file, not both")
    }

    @Test func missingFromFileIsBadInputNotAMissingVault() throws {
        let vault = try Vault()
        let path = vault.directory.file("no-such-value-file")
        let result = try vault.run(["secrets:create", "NOFILE", "--from-file", path])
        // Fixed in Sources/vsecure/Support/SecretInput.swift: ENOENT used to exit 6 ("no vault").
        expectFailure(result, 2, "cannot read the value of NOFILE from '\(path)': No such file or directory")
        #expect(try vault.run(["secrets:list", "--output", "json"]).stdoutText == "[]\n")
        let importPath = vault.directory.file("no-such.env")
        expectFailure(try vault.run(["secrets:import", importPath]), 2,
                      "cannot read the import file from '\(importPath)': No such file or directory")
    }

    @Test func tagThatNamesAnEnvironmentChoosesIt() throws {
        let vault = try Vault()
        let result = try vault.run(["secrets:create", "STRIPE", "-", "--tags", "production,api"], stdin: .text("tag-env-SECRET"))
        expectSuccess(result)
        let fields = cardFields(result.stdoutText)
        #expect(result.stdoutText.hasPrefix("Created STRIPE in production\n"))
        #expect(fields["environment"] == "production")
        #expect(fields["tags"] == "api,production")
        #expect(try vault.value("STRIPE", ["--env", "production"]) == bytes("tag-env-SECRET"))
        let elsewhere = try vault.run(["secrets:get", "STRIPE"])
        expectFailure(elsewhere, 3, "no secret STRIPE in development")
        #expect(elsewhere.stderr.contains("vsecure: hint: STRIPE exists in production; pass --env production\n"))
    }

    @Test func explicitEnvWinsAndTwoEnvironmentTagsAreAmbiguous() throws {
        let vault = try Vault()
        expectSuccess(try vault.run(["secrets:create", "EXPLICIT", "-", "--env", "staging", "--tags", "production"],
                                    stdin: .text("explicit-SECRET")))
        #expect(try vault.value("EXPLICIT", ["--env", "staging"]) == bytes("explicit-SECRET"))
        let ambiguous = try vault.run(["secrets:create", "AMBIGUOUS", "-", "--tags", "production,staging"], stdin: .text("ambiguous-SECRET"))
        expectFailure(ambiguous, 2, "tags name more than one environment (staging, production)")
        expectNoLeak("ambiguous-SECRET", ambiguous)
        // VSECURE_ENV is the default environment.
        expectSuccess(try vault.run(["secrets:create", "FROM_ENV_VAR", "-"], stdin: .text("env-var-SECRET"), env: ["VSECURE_ENV": "staging"]))
        #expect(try vault.value("FROM_ENV_VAR", ["--env", "staging"]) == bytes("env-var-SECRET"))
    }

    @Test func tagsAreCommaListsAndRepeatable() throws {
        let vault = try Vault()
        expectSuccess(try vault.run(["secrets:create", "TAGGED", "-", "--tags", "b,a", "--tags", "c", "--tags", "a"], stdin: .text("tagged-SECRET")))
        let secret = try objects(vault.json(["secrets:list"]))[0]
        #expect(secret.strings("tags") == ["a", "b", "c"])
    }

    @Test func metadataValuesMayHoldEqualsAndSpaces() throws {
        let vault = try Vault()
        let result = try vault.run(["secrets:create", "META", "-", "--metadata", "url=https://x.example/?a=b c=d",
                                    "--metadata", "owner=team payments", "--description", "Payments key"], stdin: .text("meta-SECRET"))
        expectSuccess(result)
        #expect(cardFields(result.stdoutText)["metadata"] == "owner=team payments, url=https://x.example/?a=b c=d")
        let secret = try objects(vault.json(["secrets:list"]))[0]
        let metadata = try #require(secret["metadata"] as? [String: String])
        #expect(metadata == ["url": "https://x.example/?a=b c=d", "owner": "team payments"])
        #expect(secret.string("description") == "Payments key")
    }

    @Test func expiresInSetsAnExpiryFromNow() throws {
        let vault = try Vault()
        let start = Date()
        let result = try vault.run(["secrets:create", "EXPIRING", "-", "--expires-in", "1h30m"], stdin: .text("expiring-SECRET"))
        expectSuccess(result)
        #expect(cardFields(result.stdoutText)["expires"]?.hasSuffix("(expires in 1h)") == true, "\(result.stdoutText)")
        let secret = try objects(vault.json(["secrets:list"]))[0]
        let expiresAt = try #require(date(secret.string("expiresAt")))
        #expect(abs(expiresAt.timeIntervalSince(start) - 5400) <= 5)
        #expect(secret["expired"] as? Bool == false)
    }

    @Test func expiresAtTakesAnISO8601TimeWithAZone() throws {
        let vault = try Vault()
        let result = try vault.run(["secrets:create", "DATED", "-", "--expires-at", "2099-01-31T12:00:00+02:00"], stdin: .text("dated-SECRET"))
        expectSuccess(result)
        #expect(cardFields(result.stdoutText)["expires"]?.hasPrefix("2099-01-31T10:00:00Z (expires in ") == true, "\(result.stdoutText)")
        #expect(try objects(vault.json(["secrets:list"]))[0].string("expiresAt") == "2099-01-31T10:00:00Z")
        expectFailure(try vault.run(["secrets:create", "BOTH", "v", "--quiet", "--expires-in", "1d", "--expires-at", "2099-01-01T00:00:00Z"]),
                      2, "give either --expires-in or --expires-at, not both")
    }

    @Test func anExistingSecretIsAConflictWithAHintToUpdate() throws {
        let vault = try Vault()
        try vault.create("DUPLICATE", "first-SECRET-value", ["--env", "staging"])
        let before = try vault.snapshot()
        let result = try vault.run(["secrets:create", "DUPLICATE", "-", "--env", "staging"], stdin: .text("second-SECRET-value"))
        #expect(result.status == 4)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == """
            vsecure: error: secret DUPLICATE already exists in staging (version 1)
            vsecure: hint: use `vsecure secrets:update DUPLICATE --env staging` to add a version

            """)
        expectNoLeak("second-SECRET-value", result)
        expectNoLeak("first-SECRET-value", result)
        #expect(try vault.value("DUPLICATE", ["--env", "staging"]) == bytes("first-SECRET-value"))
        #expect(try vault.snapshot() == before)
        // The same name in another environment is another secret.
        expectSuccess(try vault.run(["secrets:create", "DUPLICATE", "-", "--env", "production"], stdin: .text("prod-SECRET-value")))
    }

    @Test func jsonOutputDescribesTheNewSecret() throws {
        let vault = try Vault()
        let created = try object(vault.json(["secrets:create", "JSON_OUT", "json-out-SECRET", "--quiet", "--tags", "x"]))
        #expect(created.string("name") == "JSON_OUT")
        #expect(created.string("environment") == "development")
        #expect(created.string("path") == "development/JSON_OUT")
        #expect(created.int("version") == 1)
        #expect(created.strings("tags") == ["x"])
        #expect(created["value"] == nil)
    }
}
