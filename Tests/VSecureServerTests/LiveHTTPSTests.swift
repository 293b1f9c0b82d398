import Foundation
import Testing
import TestSupport

/// The real `vsecure-server serve` over HTTPS with a CA made by the test, driven by curl: the
/// same routes as the in-process tests, over the wire.
@Suite("Live server over HTTPS", .timeLimit(.minutes(3)))
struct LiveHTTPSTests {
    /// A store, a PKI and a running HTTPS server; `client` trusts the test CA.
    final class Fixture: @unchecked Sendable {
        let store: LiveStore
        let pki: LivePKI
        let server: LiveServer
        let client: LiveClient

        init() throws {
            store = try LiveStore()
            pki = try LivePKI(in: store.directory)
            server = try LiveServer(store: store, pki: pki)
            client = LiveClient(baseURL: server.baseURL, token: store.adminToken, curlOptions: ["--cacert", pki.caCertificate],
                                scratch: store.directory)
        }
    }

    @Test("create, get, update, compare-and-set, versions, diff, rollback, list, batch get, delete")
    func secretLifecycle() throws {
        let fixture = try Fixture()
        let client = fixture.client
        let secrets = "/v1/security/secrets"

        // Create.
        let created = try client.post(secrets, liveJSON(["name": "DATABASE_URL", "value": "postgres://one", "environment": "staging",
                                                         "tags": ["db", "core"], "metadata": ["owner": "platform"]]))
        #expect(created.exitCode == 0)
        #expect(created.status == 201, "\(created)")
        #expect(created.json.string("name") == "DATABASE_URL")
        #expect(created.json.string("environment") == "staging")
        #expect(created.json.int("version") == 1)
        #expect(created.json.string("id")?.hasPrefix("sec_") == true)
        #expect(!created.text.contains("postgres://one"), "a create answer never echoes the value")
        #expect(created.header("content-type")?.hasPrefix("application/json") == true)

        let duplicate = try client.post(secrets, liveJSON(["name": "DATABASE_URL", "value": "x", "environment": "staging"]))
        #expect(duplicate.status == 409, "\(duplicate)")
        #expect(duplicate.errorCode == "CONFLICT")

        // Get.
        let got = try client.get(secrets + "/DATABASE_URL?environment=staging")
        #expect(got.status == 200, "\(got)")
        #expect(got.json.string("value") == "postgres://one")
        #expect(got.json.int("version") == 1)
        #expect(got.json.strings("tags") == ["core", "db"] || got.json.strings("tags") == ["db", "core"])
        #expect(got.json.liveObject("metadata")?["owner"] as? String == "platform")
        #expect(got.header("etag") == "\"1\"")

        // The default environment does not hold it.
        let elsewhere = try client.get(secrets + "/DATABASE_URL")
        #expect(elsewhere.status == 404, "\(elsewhere)")
        #expect(elsewhere.errorCode == "RESOURCE_NOT_FOUND")

        // Update, then compare-and-set both ways.
        let updated = try client.put(secrets + "/DATABASE_URL", liveJSON(["value": "postgres://two", "environment": "staging"]))
        #expect(updated.status == 200, "\(updated)")
        #expect(updated.json.int("version") == 2)
        #expect(updated.json.int("previousVersion") == 1)
        #expect(updated.json.liveBool("valueChanged") == true)

        let stale = try client.put(secrets + "/DATABASE_URL?environment=staging", liveJSON(["value": "postgres://lost"]),
                                   headers: ["If-Match": "\"1\""])
        #expect(stale.status == 409, "\(stale)")
        #expect(stale.errorCode == "CONFLICT")
        let staleBody = try client.put(secrets + "/DATABASE_URL", liveJSON(["value": "postgres://lost", "environment": "staging", "ifVersion": 1]))
        #expect(staleBody.status == 409, "\(staleBody)")

        let casOK = try client.put(secrets + "/DATABASE_URL", liveJSON(["value": "postgres://three", "environment": "staging", "ifVersion": 2]))
        #expect(casOK.status == 200, "\(casOK)")
        #expect(casOK.json.int("version") == 3)

        // Attribute-only update: no new version.
        let retagged = try client.put(secrets + "/DATABASE_URL", liveJSON(["environment": "staging", "addTags": ["primary"]]))
        #expect(retagged.status == 200, "\(retagged)")
        #expect(retagged.json.liveBool("valueChanged") == false)
        #expect(retagged.json.int("version") == 3)

        // Idempotency-Key: the replay returns the first answer and makes no second version.
        let once = try client.put(secrets + "/DATABASE_URL", liveJSON(["value": "postgres://four", "environment": "staging"]),
                                  headers: ["Idempotency-Key": "live-put-1"])
        let again = try client.put(secrets + "/DATABASE_URL", liveJSON(["value": "postgres://four", "environment": "staging"]),
                                   headers: ["Idempotency-Key": "live-put-1"])
        #expect(once.status == 200, "\(once)")
        #expect(again.status == 200, "\(again)")
        #expect(once.json.int("version") == 4)
        #expect(again.text == once.text)
        #expect(again.header("idempotent-replayed") == "true")

        // Versions and diff: metadata only, never values.
        let versions = try client.get(secrets + "/DATABASE_URL/versions?environment=staging")
        #expect(versions.status == 200, "\(versions)")
        #expect(versions.json.int("currentVersion") == 4)
        let entries = versions.json.liveObjects("data")
        #expect(entries.compactMap { $0.int("version") } == [1, 2, 3, 4])
        #expect(entries.allSatisfy { $0["value"] == nil })
        #expect(!versions.text.contains("postgres://"))

        // Version 4 was made after the attribute-only update, so it carries the added tag.
        let diff = try client.get(secrets + "/DATABASE_URL/diff?environment=staging&from=1&to=4")
        #expect(diff.status == 200, "\(diff)")
        #expect(diff.json.int("from") == 1)
        #expect(diff.json.int("to") == 4)
        #expect(diff.json.liveBool("valueChanged") == true)
        #expect(diff.json.strings("tagsAdded") == ["primary"])
        #expect(!diff.text.contains("postgres://"))

        // Rollback to version 1: a new version holding the old value.
        let rolledBack = try client.post(secrets + "/DATABASE_URL/rollback", liveJSON(["version": 1, "environment": "staging"]))
        #expect(rolledBack.status == 200, "\(rolledBack)")
        #expect(rolledBack.json.int("version") == 5)
        #expect(rolledBack.json.int("restoredVersion") == 1)
        #expect(try client.get(secrets + "/DATABASE_URL?environment=staging").json.string("value") == "postgres://one")
        let oldVersion = try client.get(secrets + "/DATABASE_URL?environment=staging&version=3")
        #expect(oldVersion.json.string("value") == "postgres://three")
        #expect(oldVersion.json.int("currentVersion") == 5)

        // Batch get: every value, and the missing name listed.
        for (name, value) in [("API_TOKEN", "tok-123"), ("REDIS_URL", "redis://cache")] {
            let made = try client.post(secrets, liveJSON(["name": name, "value": value, "environment": "staging"]))
            #expect(made.status == 201, "\(made)")
        }
        let batch = try client.post(secrets + "/batch/get", liveJSON(["names": ["DATABASE_URL", "API_TOKEN", "REDIS_URL", "NOT_THERE"],
                                                                      "environment": "staging"]))
        #expect(batch.status == 200, "\(batch)")
        var values: [String: String] = [:]
        for item in batch.json.liveObjects("data") { values[item.string("name") ?? "?"] = item.string("value") }
        #expect(values == ["DATABASE_URL": "postgres://one", "API_TOKEN": "tok-123", "REDIS_URL": "redis://cache"])
        #expect(batch.json.strings("missing") == ["NOT_THERE"])

        // List: names and attributes, no values.
        let list = try client.get(secrets + "?environment=staging&limit=2")
        #expect(list.status == 200, "\(list)")
        #expect(list.json.liveObjects("data").count == 2)
        #expect(list.json.liveObject("pagination")?["totalCount"] as? Int == 3)
        #expect(list.json.liveObject("pagination")?["hasMore"] as? Bool == true)
        #expect(!list.text.contains("postgres://") && !list.text.contains("tok-123"))
        if let cursor = list.json.liveObject("pagination")?["cursor"] as? String {
            let next = try client.get(secrets + "?environment=staging&limit=2&cursor=" + cursor)
            #expect(next.json.liveObjects("data").count == 1)
            #expect(next.json.liveObject("pagination")?["hasMore"] as? Bool == false)
        } else {
            Issue.record("no cursor in \(list)")
        }

        // Delete, then it is gone.
        let deleted = try client.delete(secrets + "/DATABASE_URL?environment=staging")
        #expect(deleted.status == 204, "\(deleted)")
        #expect(deleted.body.isEmpty)
        let gone = try client.get(secrets + "/DATABASE_URL?environment=staging")
        #expect(gone.status == 404, "\(gone)")
        #expect(gone.errorCode == "RESOURCE_NOT_FOUND")

        // Errors keep their shape over the wire.
        let anonymous = try client.get(secrets + "/API_TOKEN?environment=staging", token: .some(nil))
        #expect(anonymous.status == 401, "\(anonymous)")
        #expect(anonymous.errorCode == "AUTHENTICATION_REQUIRED")
        #expect(anonymous.header("www-authenticate")?.hasPrefix("Bearer") == true)
        let bogus = try client.get(secrets + "/API_TOKEN?environment=staging", token: "vsec_key_0000000000000000_" + String(repeating: "A", count: 43))
        #expect(bogus.status == 401)
        #expect(bogus.text == anonymous.text, "an unknown key and no key get the same 401")
        let invalid = try client.post(secrets, liveJSON(["name": "../etc", "value": "x"]))
        #expect(invalid.status == 400, "\(invalid)")
        #expect(invalid.errorCode == "VALIDATION_ERROR")
    }

    @Test("API keys: create (shown once), scopes and environments enforced, rotate, revoke")
    func apiKeys() throws {
        let fixture = try Fixture()
        let client = fixture.client
        let made = try client.post("/v1/security/secrets", liveJSON(["name": "SHARED", "value": "s3cret", "environment": "staging"]))
        #expect(made.status == 201, "\(made)")
        let prod = try client.post("/v1/security/secrets", liveJSON(["name": "SHARED", "value": "prod-s3cret", "environment": "production"]))
        #expect(prod.status == 201, "\(prod)")

        let created = try client.post("/v1/security/api-keys", liveJSON(["name": "ci-runner", "scopes": ["secrets:read"],
                                                                         "environments": ["staging"], "expiresIn": "1h"]))
        #expect(created.status == 201, "\(created)")
        let id = try #require(created.json.string("id"))
        let token = try #require(created.json.string("key"))
        #expect(token.hasPrefix("vsec_"))
        #expect(created.json.strings("scopes") == ["secrets:read"])
        #expect(created.json.strings("environments") == ["staging"])
        #expect(created.json.string("expiresAt") != nil)

        // The new key reads staging, nothing else, and cannot write.
        let read = try client.get("/v1/security/secrets/SHARED?environment=staging", token: token)
        #expect(read.status == 200, "\(read)")
        #expect(read.json.string("value") == "s3cret")
        let otherEnv = try client.get("/v1/security/secrets/SHARED?environment=production", token: token)
        #expect(otherEnv.status == 403, "\(otherEnv)")
        #expect(otherEnv.errorCode == "PERMISSION_DENIED")
        let write = try client.put("/v1/security/secrets/SHARED", liveJSON(["value": "nope", "environment": "staging"]), token: token)
        #expect(write.status == 403, "\(write)")
        let manage = try client.get("/v1/security/api-keys", token: token)
        #expect(manage.status == 403, "\(manage)")

        // Listing shows the key without its token.
        let listed = try client.get("/v1/security/api-keys")
        #expect(listed.status == 200, "\(listed)")
        #expect(listed.json.liveObjects("data").contains { $0.string("id") == id && $0.liveBool("active") == true })
        #expect(!listed.text.contains(token))
        #expect(!listed.text.contains(fixture.store.adminToken))

        // Rotate: a new token; the old one stops working at once.
        let rotated = try client.post("/v1/security/api-keys/\(id)/rotate", "{}")
        #expect(rotated.status == 200, "\(rotated)")
        let newToken = try #require(rotated.json.string("key"))
        #expect(newToken != token)
        #expect(rotated.json.string("id") == id)
        let oldUse = try client.get("/v1/security/secrets/SHARED?environment=staging", token: token)
        #expect(oldUse.status == 401, "\(oldUse)")
        #expect(oldUse.errorCode == "AUTHENTICATION_REQUIRED")
        let newUse = try client.get("/v1/security/secrets/SHARED?environment=staging", token: newToken)
        #expect(newUse.status == 200, "\(newUse)")

        let unknown = try client.post("/v1/security/api-keys/key_0123456789abcdef/rotate", "{}")
        #expect(unknown.status == 404, "\(unknown)")
        #expect(unknown.errorCode == "RESOURCE_NOT_FOUND")

        // Revoke: the rotated token is refused too.
        let revoked = try client.delete("/v1/security/api-keys/\(id)")
        #expect(revoked.status == 204, "\(revoked)")
        let afterRevoke = try client.get("/v1/security/secrets/SHARED?environment=staging", token: newToken)
        #expect(afterRevoke.status == 401, "\(afterRevoke)")

        // A token in the query string is refused even when valid.
        let inQuery = try client.get("/v1/security/secrets/SHARED?environment=staging&token=" + fixture.store.adminToken, token: .some(nil))
        #expect(inQuery.status == 401, "\(inQuery)")
    }

    @Test("TLS: the test CA is needed, plain HTTP to the TLS port fails, /health and /ready answer")
    func tlsAndHealth() throws {
        let fixture = try Fixture()
        let client = fixture.client

        let health = try client.get("/health", token: .some(nil))
        #expect(health.status == 200, "\(health)")
        #expect(health.json.string("status") == "ok")
        let ready = try client.get("/ready", token: .some(nil))
        #expect(ready.status == 200, "\(ready)")
        #expect(ready.json.string("status") == "ready")

        // The certificate names localhost too.
        let byName = try client.request("GET", "/health", token: .some(nil),
                                        url: "https://localhost:\(fixture.server.port)/health")
        #expect(byName.status == 200, "\(byName)")

        // Without the CA, curl refuses the server's certificate (60: peer certificate cannot be
        // authenticated with known CA certificates).
        var untrusting = client
        untrusting.curlOptions = []
        let refused = try untrusting.get("/health", token: .some(nil))
        #expect(refused.exitCode == 60, "\(refused)")
        #expect(refused.status == 0)

        // Plain HTTP to the TLS port gets no HTTP answer.
        let plain = try client.request("GET", "/health", token: .some(nil), url: "http://127.0.0.1:\(fixture.server.port)/health")
        #expect(plain.exitCode != 0, "\(plain)")
        #expect(plain.status == 0 || plain.status >= 400, "\(plain)")

        // TLS 1.2 is the floor; 1.3 works.
        let tls13 = try client.get("/health", token: .some(nil), options: ["--tlsv1.3"])
        #expect(tls13.status == 200, "\(tls13)")

        // And the server still serves after the bad handshakes.
        #expect(try client.get("/health", token: .some(nil)).status == 200)
    }

    @Test("serve refuses unsafe or incomplete transport settings with exit 2")
    func refusedConfigurations() throws {
        let store = try LiveStore()
        let env = minimalEnvironment(home: store.home)
        let port = try liveFreeLoopbackPort()

        let remote = try runProcess(LiveTools.server, ["serve", "--data", store.dataPath, "--listen", "0.0.0.0:\(port)", "--insecure-http"],
                                    environment: env, timeout: 30)
        #expect(remote.status == 2, "\(remote)")
        #expect(remote.stderr.contains("refusing plain HTTP on 0.0.0.0"), "\(remote)")
        #expect(remote.stderr.contains("--allow-insecure-remote"), "\(remote)")

        var viaEnvironment = env
        viaEnvironment["VSECURE_SERVER_INSECURE_HTTP"] = "1"
        viaEnvironment["VSECURE_SERVER_LISTEN"] = "0.0.0.0:\(port)"
        let remoteByEnv = try runProcess(LiveTools.server, ["serve", "--data", store.dataPath], environment: viaEnvironment, timeout: 30)
        #expect(remoteByEnv.status == 2, "\(remoteByEnv)")
        #expect(remoteByEnv.stderr.contains("refusing plain HTTP"), "\(remoteByEnv)")

        let noTLS = try runProcess(LiveTools.server, ["serve", "--data", store.dataPath, "--listen", "127.0.0.1:\(port)"],
                                   environment: env, timeout: 30)
        #expect(noTLS.status == 2, "\(noTLS)")
        #expect(noTLS.stderr.contains("HTTPS needs --tls-cert and --tls-key"), "\(noTLS)")

        let pki = try LivePKI(in: store.directory)
        let halfTLS = try runProcess(LiveTools.server, ["serve", "--data", store.dataPath, "--listen", "127.0.0.1:\(port)",
                                                         "--tls-cert", pki.serverCertificate],
                                     environment: env, timeout: 30)
        #expect(halfTLS.status == 2, "\(halfTLS)")
        #expect(halfTLS.stderr.contains("HTTPS needs --tls-cert and --tls-key"), "\(halfTLS)")

        let swapped = try runProcess(LiveTools.server, ["serve", "--data", store.dataPath, "--listen", "127.0.0.1:\(port)",
                                                         "--tls-cert", pki.serverKey, "--tls-key", pki.serverCertificate],
                                     environment: env, timeout: 30)
        #expect(swapped.status == 2, "\(swapped)")
        #expect(swapped.stderr.contains("cannot load the TLS certificate or key"), "\(swapped)")

        // Forced: it serves (the test talks to it on 127.0.0.1 only).
        let forced = try LiveServer(store: store, listenHost: "0.0.0.0", extraArguments: ["--allow-insecure-remote"])
        let client = LiveClient(baseURL: forced.baseURL, token: store.adminToken, scratch: store.directory)
        let health = try client.get("/health", token: .some(nil))
        #expect(health.status == 200, "\(health)")
        #expect(forced.stop(signal: SIGTERM, timeout: 15) == 0)
    }
}
