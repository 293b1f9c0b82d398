import Hummingbird
import VSecureCore

/// `GET /v1/security/environments`: the store's environments and which one a request without
/// `environment` uses. Any valid key may ask (no scope: names of environments are not secrets);
/// a key limited to some environments sees only those in `data`, while `defaultEnvironment` is
/// always named, so that a client knows what leaving the environment out means. Not audited: it
/// reads nothing from the store.
struct EnvironmentRoutes {
    let service: SecretService

    func register(_ group: RouterGroup<ServerContext>, table: RouteTable) {
        table.add(group, .get, "environments", list)
    }

    @Sendable func list(_ request: Request, context: ServerContext) async throws -> Response {
        let allowed = context.apiKey?.environments
        let visible = service.environments.filter { allowed?.contains($0) ?? true }
        return JSONResponse.make(.object([
            ("data", .array(visible.map { environment in
                .object([("name", .string(environment.rawValue)), ("default", .bool(environment == service.defaultEnvironment))])
            })),
            ("defaultEnvironment", .string(service.defaultEnvironment.rawValue)),
        ]))
    }
}
