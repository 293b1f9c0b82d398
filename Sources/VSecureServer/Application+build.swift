#if canImport(Glibc)
import Glibc
#endif
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import VSecureCore
import VSecureCrypto
import VSecureVault

/// Every route the server registers, for the OpenAPI test and `--help`.
public final class RouteTable: @unchecked Sendable {
    public private(set) var routes: [(method: String, path: String)] = []

    public init() {}

    func add<Output: ResponseGenerator>(_ group: RouterGroup<ServerContext>, _ method: HTTPRequest.Method, _ path: String,
                                        _ handler: @escaping @Sendable (Request, ServerContext) async throws -> Output) {
        group.on(RouterPath(path), method: method, use: handler)
        routes.append((method.rawValue, "/v1/security/" + path.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")))
    }
}

/// The router over a service: health checks outside authentication, the API under
/// `/v1/security` behind it. Tests build this directly and run it in-process.
public func buildRouter(service: SecretService, limits: ServerLimits, table: RouteTable = RouteTable(),
                        limiters: RequestLimiters? = nil) -> Router<ServerContext> {
    let limiters = limiters ?? RequestLimiters(limits)
    let router = Router(context: ServerContext.self)
    router.add(middleware: RequestIDMiddleware())
    // Outside the error middleware, so that refusals and errors are logged too, with their status.
    router.add(middleware: RequestLogMiddleware())
    router.add(middleware: ErrorMiddleware())
    router.add(middleware: BodyLimitMiddleware(limit: limits.maxBodyBytes))
    router.get("health") { _, _ in JSONResponse.make(.object([("status", .string("ok"))])) }
    router.get("ready") { _, _ in
        await service.isReady() ? JSONResponse.make(.object([("status", .string("ready"))]))
            : APIError(.serviceUnavailable, "the store is not available").response()
    }
    let api = router.group("v1/security").add(middleware: AuthenticationMiddleware(
        service: service, limiter: limiters.perKey, failures: limiters.failures))
    EnvironmentRoutes(service: service).register(api, table: table)
    SecretRoutes(service: service, limits: limits).register(api, table: table)
    BatchRoutes(service: service, limits: limits).register(api, table: table)
    APIKeyRoutes(service: service, limits: limits).register(api, table: table)
    UserRoutes(service: service, limits: limits).register(api, table: table)
    PolicyRoutes(service: service, limits: limits).register(api, table: table)
    GrantRoutes(service: service, limits: limits).register(api, table: table)
    WebhookRoutes(service: service, limits: limits).register(api, table: table)
    AuditRoutes(service: service).register(api, table: table)
    return router
}

/// Opens the store in `configuration.dataDirectory` and builds the application (HTTPS, or plain
/// HTTP on loopback when asked). `clock` is injectable for tests.
public func buildApplication(_ configuration: ServerConfiguration,
                             clock: @escaping @Sendable () -> Timestamp = { Timestamp(secondsSinceEpoch: Int64(time(nil))) },
                             logger: Logger = Logger(label: "vsecure-server"),
                             onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) async throws -> some ApplicationProtocol {
    try configuration.validate()
    let service = try openService(configuration, clock: clock)
    let limiters = RequestLimiters(configuration.limits)
    let router = buildRouter(service: service, limits: configuration.limits, limiters: limiters)
    let serverName = "vsecure-server"
    let http1 = HTTPServerBuilder.vsecureHTTP1(.init(
        idleTimeout: .seconds(configuration.limits.idleTimeoutSeconds),
        httpDecoderConfiguration: .init(maxHeaderFieldSize: configuration.limits.maxHeaderBytes,
                                        maxHeaderListSize: configuration.limits.maxHeaderBytes,
                                        maxHeaderFieldCount: 100)),
        fastReads: configuration.fastReads ? FastReads(service: service, limiters: limiters, serverName: serverName) : nil)
    let server: HTTPServerBuilder
    if configuration.insecureHTTP {
        server = http1
    } else {
        server = try .tls(http1, tlsConfiguration: try tlsConfiguration(configuration))
    }
    var services: [any Service] = []
    if configuration.rotation.intervalSeconds > 0, let rotator = service.rotator {
        services.append(RotationSchedule(rotator: rotator, intervalSeconds: configuration.rotation.intervalSeconds, logger: logger))
    }
    var webhooks = WebhookSettings()
    if let path = configuration.webhookCACertificates { webhooks.trust = try WebhookTrust(addingCertificatesFrom: path) }
    services.append(WebhookDispatcher(service: service, settings: webhooks, logger: logger))
    return Application(router: router, server: server,
                       configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: serverName),
                       services: services, onServerRunning: onServerRunning, logger: logger)
}

/// The service over the data directory's vault and registry.
public func openService(_ configuration: ServerConfiguration, clock: @escaping @Sendable () -> Timestamp) throws(VSecureError) -> SecretService {
    let keys = KeySource(keyFilePath: configuration.keyFilePath) { () throws(VSecureError) in
        throw VSecureError(.key, "vsecure-server serves key-file vaults only")
    }
    let vault = try LocalVault.open(at: configuration.vaultPath, keys: keys)
    // One read connection per core serves reads in parallel; more would only wait for a core.
    let readers = try VaultReaders(count: max(1, System.coreCount)) { () throws(VSecureError) in
        try LocalVault.open(at: configuration.vaultPath, readOnly: true, keys: keys)
    }
    let registry = try ServerRegistry(path: configuration.registryPath, vault: vault)
    let audit = try AuditTrail(path: configuration.auditLogPath, keyPath: configuration.auditKeyPath)
    try registry.bindAuditLog(id: audit.logID, path: configuration.auditLogPath, now: clock())
    let rotator = try SecretRotator(settings: configuration.rotation, clock: clock, audit: audit) { () throws(VSecureError) in
        try LocalVault.open(at: configuration.vaultPath, keys: keys)
    }
    return SecretService(vault: vault, readers: readers, registry: registry, clock: clock, rotationSettings: configuration.rotation,
                         rotator: rotator, audit: audit)
}

func tlsConfiguration(_ configuration: ServerConfiguration) throws -> TLSConfiguration {
    guard let certificate = configuration.tlsCertificate, let key = configuration.tlsPrivateKey else {
        throw VSecureError.usage("HTTPS needs --tls-cert and --tls-key")
    }
    do {
        let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
        let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey))
        tls.minimumTLSVersion = .tlsv12
        return tls
    } catch {
        throw VSecureError(.usage, "cannot load the TLS certificate or key (\(certificate), \(key))", hint: "both must be PEM files")
    }
}

/// One line per request: method, path (no query), status, duration and key id. Never bodies,
/// headers or query strings, which can hold secrets or tokens.
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        if context.logger.logLevel <= .info {
            let elapsed = start.duration(to: .now)
            context.logger.info("\(request.method) \(request.uri.path) \(response.status.code) \(elapsed)")
        }
        return response
    }
}
