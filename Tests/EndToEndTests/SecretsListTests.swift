import Foundation
import Testing
import TestSupport

@Suite("secrets:list", .noValuesOnStderr)
struct SecretsListTests {
    /// Four secrets across environments, tags, descriptions and expiry.
    func populated(oldTokenExpiresIn: String = "1s") throws -> Vault {
        let vault = try Vault()
        try vault.create("API_KEY", "list-SECRET-api", ["--tags", "production,api", "--expires-in", "30d5m"])
        try vault.create("DB_URL", "list-SECRET-db", ["--env", "production", "--tags", "db", "--description", "Primary Postgres"])
        try vault.create("LOCAL_TOKEN", "list-SECRET-local", ["--tags", "api"])
        try vault.create("OLD_TOKEN", "list-SECRET-old", ["--env", "staging", "--tags", "api", "--expires-in", oldTokenExpiresIn])
        return vault
    }

    func names(_ vault: Vault, _ options: [String]) throws -> [String] {
        try objects(vault.json(["secrets:list"] + options)).compactMap { $0.string("name") }
    }

    @Test func textListingShowsNameEnvironmentVersionTagsAndExpiryButNoValues() throws {
        let vault = try populated()
        try vault.update("LOCAL_TOKEN", "list-SECRET-local-2")
        Thread.sleep(forTimeInterval: 1.5)
        let result = try vault.run(["secrets:list", "--include-expired"])
        expectSuccess(result)
        #expect(result.stdoutText == """
            NAME         ENVIRONMENT  VERSION  TAGS            EXPIRES
            LOCAL_TOKEN  development  2        api             never
            API_KEY      production   1        api,production  expires in 30d
            DB_URL       production   1        db              never
            OLD_TOKEN    staging      1        api             expired

            """)
        #expect(!result.stdoutText.contains("list-SECRET"))
        let json = try vault.run(["secrets:list", "--include-expired", "--output", "json"])
        #expect(!json.stdoutText.contains("list-SECRET"))
    }

    @Test func expiredSecretsAreHiddenUnlessIncluded() throws {
        let vault = try populated()
        Thread.sleep(forTimeInterval: 1.5)
        #expect(try names(vault, []) == ["LOCAL_TOKEN", "API_KEY", "DB_URL"])
        #expect(try names(vault, ["--include-expired"]) == ["LOCAL_TOKEN", "API_KEY", "DB_URL", "OLD_TOKEN"])
        let expired = try objects(vault.json(["secrets:list", "--include-expired", "--env", "staging"]))
        #expect(expired.first?["expired"] as? Bool == true)
    }

    @Test func filtersByEnvironmentTagsAndSearch() throws {
        let vault = try populated(oldTokenExpiresIn: "1d")
        #expect(try names(vault, ["--env", "production"]) == ["API_KEY", "DB_URL"])
        #expect(try names(vault, ["--tags", "api"]) == ["LOCAL_TOKEN", "API_KEY", "OLD_TOKEN"])
        #expect(try names(vault, ["--tags", "api,production"]) == ["API_KEY"])
        #expect(try names(vault, ["--tags", "api", "--tags", "production"]) == ["API_KEY"])
        #expect(try names(vault, ["--tags", "api", "--env", "development"]) == ["LOCAL_TOKEN"])
        #expect(try names(vault, ["--search", "token"]) == ["LOCAL_TOKEN", "OLD_TOKEN"])
        #expect(try names(vault, ["--search", "postgres"]) == ["DB_URL"])
        #expect(try names(vault, ["--tags", "nothing-has-this"]) == [])
    }

    @Test func anEmptyResultSaysSoOnStderr() throws {
        let vault = try Vault()
        let result = try vault.run(["secrets:list"])
        #expect(result.status == 0)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == "vsecure: no secrets match\n")
        #expect(try vault.run(["secrets:list", "--output", "json"]).stdoutText == "[]\n")
    }
}
