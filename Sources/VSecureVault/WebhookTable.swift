import VSecureCore
import VSecureCrypto

/// Webhooks in `server.db`: the subscriptions, the deliveries still owed (so retries survive a
/// restart) and which expiry notices were already announced (so each is sent once).
///
/// The signing secret has to be usable to sign, so it cannot be kept as a hash like an API
/// token. It is stored sealed (XChaCha20-Poly1305) under a key derived from the vault's data
/// key, with the webhook id as associated data: a copy of `server.db` alone does not give
/// anyone the means to forge deliveries. Deleting a webhook erases its sealed secret.
///
/// Times in `webhook_deliveries` are Unix milliseconds (retries may be a few milliseconds apart
/// in tests); every other time is in seconds, as in the rest of `server.db`.
extension ServerRegistry {
    static let webhookSchema = """
        CREATE TABLE IF NOT EXISTS webhooks(
            id TEXT PRIMARY KEY NOT NULL,
            url TEXT NOT NULL,
            events TEXT NOT NULL,
            secret_filter TEXT,
            signing_secret BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE IF NOT EXISTS webhook_deliveries(
            id TEXT PRIMARY KEY NOT NULL,
            webhook_id TEXT NOT NULL,
            event TEXT NOT NULL,
            body BLOB NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER,
            last_status INTEGER,
            last_error TEXT,
            created_at INTEGER NOT NULL,
            delivered_at INTEGER
        );
        CREATE INDEX IF NOT EXISTS webhook_deliveries_pending ON webhook_deliveries(next_attempt_at)
            WHERE next_attempt_at IS NOT NULL;
        CREATE TABLE IF NOT EXISTS webhook_announcements(
            environment TEXT NOT NULL,
            name TEXT NOT NULL,
            event TEXT NOT NULL,
            reference_at INTEGER NOT NULL,
            announced_at INTEGER NOT NULL,
            PRIMARY KEY(environment, name, event, reference_at)
        ) WITHOUT ROWID;
        """

    public struct Webhook: Sendable, Equatable {
        public var id: String
        public var url: String
        public var events: [String]
        /// A path pattern (`production/*`, `staging/DB_URL`); nil: every secret.
        public var secretFilter: String?
        public var createdAt: Timestamp
        public var disabled: Bool
    }

    /// A delivery that is due, with what it takes to send it.
    public struct PendingWebhookDelivery: Sendable {
        public var id: String
        public var webhookID: String
        public var url: String
        public var event: String
        public var body: [UInt8]
        /// Attempts made before this one.
        public var attempts: Int
        /// The `whsec_…` text in locked memory: the HMAC key.
        public var signingSecret: SecureBytes
    }

    /// Where a delivery stands, for tests and operators; never its body.
    public struct WebhookDeliveryState: Sendable, Equatable {
        public var id: String
        public var webhookID: String
        public var event: String
        public var attempts: Int
        public var nextAttemptAt: Int64?
        public var lastStatus: Int?
        public var lastError: String?
        public var deliveredAt: Int64?
    }

    public static let webhookSecretPrefix = "whsec_"

    private static func sealingData(_ id: String) -> [UInt8] { Array("vsecure-webhook:\(id)".utf8) }

    /// A new webhook and its signing secret (`whsec_` + 43 base64url characters), which is
    /// returned here once and afterwards only used to sign.
    public func createWebhook(url: String, events: [String], secretFilter: String?, sealingKey: SecureBytes,
                              now: Timestamp) throws(VSecureError) -> (Webhook, String) {
        let id = "wh_" + hexString(Sodium.randomBytes(8))
        let secret = Self.webhookSecretPrefix + Self.base64URL(Sodium.randomBytes(32))
        let sealed = Array(secret.utf8).withUnsafeBytes { AEAD.seal($0, associatedData: Self.sealingData(id), key: sealingKey) }
        let statement = try db.prepare("""
            INSERT INTO webhooks(id, url, events, secret_filter, signing_secret, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            """)
        try statement.bind(1, id).bind(2, url).bind(3, events.joined(separator: ",")).bind(4, secretFilter)
            .bind(5, blob: sealed).bind(6, now.secondsSinceEpoch).run()
        return (Webhook(id: id, url: url, events: events, secretFilter: secretFilter, createdAt: now, disabled: false), secret)
    }

    private static let webhookColumns = "id, url, events, secret_filter, created_at, disabled"

    private static func webhook(_ statement: SQLiteStatement) -> Webhook {
        Webhook(id: statement.text(0), url: statement.text(1), events: statement.text(2).split(separator: ",").map(String.init),
                secretFilter: statement.optionalText(3), createdAt: Timestamp(secondsSinceEpoch: statement.int64(4)),
                disabled: statement.int(5) != 0)
    }

    /// Active webhooks, oldest first.
    public func listWebhooks() throws(VSecureError) -> [Webhook] {
        let statement = try db.prepare("SELECT \(Self.webhookColumns) FROM webhooks WHERE disabled = 0 ORDER BY created_at, id")
        var hooks: [Webhook] = []
        while try statement.step() { hooks.append(Self.webhook(statement)) }
        return hooks
    }

    /// An active webhook.
    public func webhook(id: String) throws(VSecureError) -> Webhook? {
        let statement = try db.prepare("SELECT \(Self.webhookColumns) FROM webhooks WHERE id = ?1 AND disabled = 0")
        statement.bind(1, id)
        guard try statement.step() else { return nil }
        return Self.webhook(statement)
    }

    /// Stops a webhook: its sealed secret is erased and what it was still owed is dropped. The
    /// row stays (disabled) so that its id is never handed out again. False when there was no
    /// active webhook `id`.
    public func deleteWebhook(id: String, now: Timestamp) throws(VSecureError) -> Bool {
        try db.transaction(immediate: true) { () throws(VSecureError) -> Bool in
            let statement = try db.prepare("UPDATE webhooks SET disabled = 1, signing_secret = x'' WHERE id = ?1 AND disabled = 0")
            try statement.bind(1, id).run()
            guard try db.scalarInt("SELECT changes()") > 0 else { return false }
            let cancel = try db.prepare("""
                UPDATE webhook_deliveries SET next_attempt_at = NULL, last_error = 'the webhook was deleted'
                WHERE webhook_id = ?1 AND next_attempt_at IS NOT NULL
                """)
            try cancel.bind(1, id).run()
            return true
        }
    }

    /// Queues `body` for every active webhook that subscribes to `event` and whose filter
    /// matches `path` (`ENVIRONMENT/NAME`), due at once. Returns the new delivery ids.
    @discardableResult
    public func enqueueWebhookEvent(_ event: String, path: String, body: [UInt8], nowMilliseconds: Int64) throws(VSecureError) -> [String] {
        let subscribers = try listWebhooks().filter { hook in
            hook.events.contains(event) && (hook.secretFilter.map { Self.filter($0, matches: path) } ?? true)
        }
        guard !subscribers.isEmpty else { return [] }
        return try db.transaction(immediate: true) { () throws(VSecureError) -> [String] in
            var ids: [String] = []
            for hook in subscribers {
                ids.append(try insertDelivery(webhookID: hook.id, event: event, body: body, nowMilliseconds: nowMilliseconds))
            }
            return ids
        }
    }

    /// Queues one delivery to one webhook (the `ping` of `POST /webhooks/{id}/test`).
    public func enqueueWebhookDelivery(webhookID: String, event: String, body: [UInt8],
                                       nowMilliseconds: Int64) throws(VSecureError) -> String {
        try insertDelivery(webhookID: webhookID, event: event, body: body, nowMilliseconds: nowMilliseconds)
    }

    private func insertDelivery(webhookID: String, event: String, body: [UInt8], nowMilliseconds: Int64) throws(VSecureError) -> String {
        let id = "dlv_" + hexString(Sodium.randomBytes(8))
        let statement = try db.prepare("""
            INSERT INTO webhook_deliveries(id, webhook_id, event, body, next_attempt_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)
            """)
        try statement.bind(1, id).bind(2, webhookID).bind(3, event).bind(4, blob: body).bind(5, nowMilliseconds).run()
        return id
    }

    static func filter(_ text: String, matches path: String) -> Bool {
        (try? PathPattern(text))?.matches(path) ?? false
    }

    /// Deliveries due at `nowMilliseconds` to active webhooks, oldest due first, at most `limit`.
    public func dueWebhookDeliveries(nowMilliseconds: Int64, limit: Int,
                                     sealingKey: SecureBytes) throws(VSecureError) -> [PendingWebhookDelivery] {
        let statement = try db.prepare("""
            SELECT d.id, d.webhook_id, w.url, d.event, d.body, d.attempts, w.signing_secret
            FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
            WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= ?1 AND w.disabled = 0
            ORDER BY d.next_attempt_at, d.created_at LIMIT ?2
            """)
        statement.bind(1, nowMilliseconds).bind(2, limit)
        var due: [PendingWebhookDelivery] = []
        while try statement.step() {
            let webhookID = statement.text(1)
            let secret: SecureBytes
            do { secret = try AEAD.open(statement.blob(6), associatedData: Self.sealingData(webhookID), key: sealingKey) } catch {
                throw VSecureError(.integrity, "the signing secret of webhook \(webhookID) does not open with this vault's key")
            }
            due.append(PendingWebhookDelivery(id: statement.text(0), webhookID: webhookID, url: statement.text(2), event: statement.text(3),
                                              body: statement.blob(4), attempts: statement.int(5), signingSecret: secret))
        }
        return due
    }

    /// The earliest attempt still owed to an active webhook, in Unix milliseconds.
    public func nextWebhookAttempt() throws(VSecureError) -> Int64? {
        let statement = try db.prepare("""
            SELECT MIN(d.next_attempt_at) FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
            WHERE d.next_attempt_at IS NOT NULL AND w.disabled = 0
            """)
        guard try statement.step() else { return nil }
        return statement.optionalInt64(0)
    }

    /// Records an attempt. `deliveredAt` set: done. Else `nextAttemptAt` nil: given up.
    public func recordWebhookAttempt(id: String, status: Int?, error: String?, deliveredAt: Int64?,
                                     nextAttemptAt: Int64?) throws(VSecureError) {
        let statement = try db.prepare("""
            UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = ?2, last_error = ?3, delivered_at = ?4,
                next_attempt_at = ?5
            WHERE id = ?1
            """)
        try statement.bind(1, id).bind(2, status.map(Int64.init)).bind(3, error).bind(4, deliveredAt).bind(5, nextAttemptAt).run()
    }

    /// Deliveries of one webhook, newest first.
    public func webhookDeliveries(webhookID: String, limit: Int = 100) throws(VSecureError) -> [WebhookDeliveryState] {
        let statement = try db.prepare("""
            SELECT id, webhook_id, event, attempts, next_attempt_at, last_status, last_error, delivered_at
            FROM webhook_deliveries WHERE webhook_id = ?1 ORDER BY created_at DESC, rowid DESC LIMIT ?2
            """)
        statement.bind(1, webhookID).bind(2, limit)
        var states: [WebhookDeliveryState] = []
        while try statement.step() {
            states.append(WebhookDeliveryState(id: statement.text(0), webhookID: statement.text(1), event: statement.text(2),
                                               attempts: statement.int(3), nextAttemptAt: statement.optionalInt64(4),
                                               lastStatus: statement.optionalInt64(5).map(Int.init), lastError: statement.optionalText(6),
                                               deliveredAt: statement.optionalInt64(7)))
        }
        return states
    }

    /// The body of one delivery (tests check that no value is ever in one).
    public func webhookDeliveryBody(id: String) throws(VSecureError) -> [UInt8]? {
        let statement = try db.prepare("SELECT body FROM webhook_deliveries WHERE id = ?1")
        statement.bind(1, id)
        guard try statement.step() else { return nil }
        return statement.blob(0)
    }

    /// Finished deliveries (delivered or given up) created before `cutoff` are forgotten.
    public func pruneWebhookDeliveries(createdBefore cutoffMilliseconds: Int64) throws(VSecureError) {
        let statement = try db.prepare("DELETE FROM webhook_deliveries WHERE next_attempt_at IS NULL AND created_at < ?1")
        try statement.bind(1, cutoffMilliseconds).run()
    }

    /// True the first time `event` is announced for this secret and `referenceAt` (the expiry or
    /// due time it is about); false ever after, so each notice goes out once.
    public func claimAnnouncement(environment: EnvironmentName, name: SecretName, event: String, referenceAt: Timestamp,
                                  now: Timestamp) throws(VSecureError) -> Bool {
        let statement = try db.prepare("""
            INSERT OR IGNORE INTO webhook_announcements(environment, name, event, reference_at, announced_at) VALUES (?1, ?2, ?3, ?4, ?5)
            """)
        try statement.bind(1, environment.rawValue).bind(2, name.rawValue).bind(3, event).bind(4, referenceAt.secondsSinceEpoch)
            .bind(5, now.secondsSinceEpoch).run()
        return try db.scalarInt("SELECT changes()") > 0
    }

    /// Gives back a claim whose notice reached no webhook, so a webhook created later still hears it.
    public func releaseAnnouncement(environment: EnvironmentName, name: SecretName, event: String,
                                    referenceAt: Timestamp) throws(VSecureError) {
        let statement = try db.prepare("""
            DELETE FROM webhook_announcements WHERE environment = ?1 AND name = ?2 AND event = ?3 AND reference_at = ?4
            """)
        try statement.bind(1, environment.rawValue).bind(2, name.rawValue).bind(3, event).bind(4, referenceAt.secondsSinceEpoch).run()
    }
}

extension LocalVault {
    /// The key that seals webhook signing secrets in `server.db`.
    public var webhookSealingKey: SecureBytes {
        KeyDerivation.subkey(of: dataKey, id: 4, context: "vswebhok")
    }
}
