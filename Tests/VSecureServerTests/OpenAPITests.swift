import Foundation
import Testing
import VSecureCore
@testable import VSecureServer

/// Holds docs/openapi.yaml against the server: the same routes, path parameters declared, and
/// every error answer documented with the Error schema.
@Suite("OpenAPI document")
struct OpenAPITests {
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let methods = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]

    /// The YAML document as JSON objects (PyYAML does the YAML).
    static func loadDocument() throws -> [String: Any] {
        let path = repositoryRoot.appendingPathComponent("docs/openapi.yaml").path
        #expect(FileManager.default.fileExists(atPath: path), "missing \(path)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import yaml,json,sys; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))", path]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let problem = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw OpenAPIFailure("python3/PyYAML could not read \(path): \(String(decoding: problem, as: UTF8.self))")
        }
        guard let document = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw OpenAPIFailure("\(path) is not a mapping")
        }
        return document
    }

    struct OpenAPIFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    struct Operation {
        var method: String
        var path: String
        var object: [String: Any]
        var pathParameters: [Any]
    }

    static func operations(_ document: [String: Any]) -> [Operation] {
        let paths = document["paths"] as? [String: Any] ?? [:]
        var result: [Operation] = []
        for (path, item) in paths {
            guard let item = item as? [String: Any] else { continue }
            for method in methods {
                if let operation = item[method] as? [String: Any] {
                    result.append(Operation(method: method, path: path, object: operation,
                                            pathParameters: item["parameters"] as? [Any] ?? []))
                }
            }
        }
        return result.sorted { ($0.path, $0.method) < ($1.path, $1.method) }
    }

    /// Follows a local `$ref` ("#/components/…") to its target.
    static func resolve(_ value: Any?, in document: [String: Any]) -> [String: Any]? {
        guard var object = value as? [String: Any] else { return nil }
        var hops = 0
        while let reference = object["$ref"] as? String, hops < 10 {
            guard reference.hasPrefix("#/") else { return nil }
            var target: Any? = document
            for part in reference.dropFirst(2).split(separator: "/") {
                target = (target as? [String: Any])?[String(part)]
            }
            guard let next = target as? [String: Any] else { return nil }
            object = next
            hops += 1
        }
        return object
    }

    @Test("the document's operations under /v1/security are exactly the server's routes")
    func routesMatch() async throws {
        let document = try Self.loadDocument()
        #expect((document["openapi"] as? String)?.hasPrefix("3.0") == true)
        let documented = Self.operations(document)
            .filter { $0.path.hasPrefix("/v1/security") }
            .map { "\($0.method.uppercased()) \($0.path)" }
        let server = try ServerFixture.make()
        let registered = server.registeredRoutes().map { "\($0.method) \($0.path)" }
        #expect(Set(registered).count == registered.count, "the route table repeats a route")
        #expect(Set(documented) == Set(registered))
        let undocumented = Set(registered).subtracting(documented).sorted()
        let extra = Set(documented).subtracting(registered).sorted()
        #expect(undocumented.isEmpty, "routes missing from docs/openapi.yaml: \(undocumented)")
        #expect(extra.isEmpty, "documented routes the server does not have: \(extra)")
        #expect(registered.count == 36)

        // Health checks are documented, without authentication.
        let paths = document["paths"] as? [String: Any] ?? [:]
        for path in ["/health", "/ready"] {
            let get = (paths[path] as? [String: Any])?["get"] as? [String: Any]
            #expect(get != nil, "\(path) is not documented")
            #expect((get?["security"] as? [Any])?.isEmpty == true, "\(path) must document that it needs no key")
        }
        #expect(Set(paths.keys).subtracting(["/health", "/ready"]).allSatisfy { $0.hasPrefix("/v1/security/") || $0 == "/v1/security" })
    }

    @Test("every error response uses the Error schema, under the status its code has")
    func errorResponses() throws {
        let document = try Self.loadDocument()
        let operations = Self.operations(document)
        #expect(!operations.isEmpty)
        for operation in operations {
            let label = "\(operation.method.uppercased()) \(operation.path)"
            let responses = operation.object["responses"] as? [String: Any] ?? [:]
            let statuses = Set(responses.keys)
            #expect(statuses.contains { $0.hasPrefix("2") }, "\(label) documents no success")
            let errors = statuses.filter { Int($0).map { $0 >= 400 } ?? false }
            #expect(!errors.isEmpty, "\(label) documents no errors")
            for status in errors {
                guard let response = Self.resolve(responses[status], in: document) else {
                    Issue.record("\(label) \(status): unresolvable response")
                    continue
                }
                let content = response["content"] as? [String: Any]
                let schema = (content?["application/json"] as? [String: Any])?["schema"] as? [String: Any]
                #expect(schema?["$ref"] as? String == "#/components/schemas/Error", "\(label) \(status) does not use the Error schema")
                // The description starts with the code; the code's status is this one.
                let description = response["description"] as? String ?? ""
                let code = String(description.prefix { $0.isUppercase || $0 == "_" })
                if let known = APIError.Code(rawValue: code) {
                    #expect(String(known.status.code) == status, "\(label): \(code) is \(known.status.code), documented as \(status)")
                } else {
                    Issue.record("\(label) \(status): the description does not start with an error code: \(description)")
                }
            }
            guard operation.path.hasPrefix("/v1/security") else { continue }
            // Every API route can answer these (503: a refusal of the key is audited too, and the
            // log may not take it).
            for status in ["401", "403", "429", "500", "503"] {
                #expect(statuses.contains(status), "\(label) does not document \(status)")
            }
            if operation.object["requestBody"] != nil {
                #expect(statuses.isSuperset(of: ["408", "413", "415"]), "\(label) takes a body but does not document 408, 413 and 415")
            }
            if operation.path.contains("{") {
                #expect(statuses.contains("404"), "\(label) names a resource but does not document 404")
            }
            #expect(operation.object["security"] == nil, "\(label) must not override the bearer requirement")
        }
        let security = document["security"] as? [[String: Any]]
        #expect(security?.first?["bearerAuth"] != nil, "the document must require bearerAuth by default")
        let scheme = ((document["components"] as? [String: Any])?["securitySchemes"] as? [String: Any])?["bearerAuth"] as? [String: Any]
        #expect(scheme?["type"] as? String == "http")
        #expect(scheme?["scheme"] as? String == "bearer")
    }

    @Test("path parameters are declared; operation ids are unique; idempotent writes document Idempotency-Key")
    func parameters() throws {
        let document = try Self.loadDocument()
        var operationIDs: [String] = []
        for operation in Self.operations(document) {
            let label = "\(operation.method.uppercased()) \(operation.path)"
            if let id = operation.object["operationId"] as? String { operationIDs.append(id) } else { Issue.record("\(label) has no operationId") }
            let declared = (operation.pathParameters + (operation.object["parameters"] as? [Any] ?? []))
                .compactMap { Self.resolve($0, in: document) }
            let templated = operation.path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) }
            for name in templated {
                let parameter = declared.first { $0["in"] as? String == "path" && $0["name"] as? String == name }
                #expect(parameter != nil, "\(label) does not declare the path parameter \(name)")
                #expect(parameter?["required"] as? Bool == true, "\(label): path parameter \(name) must be required")
            }
            for parameter in declared where parameter["in"] as? String == "path" {
                #expect(templated.contains(parameter["name"] as? String ?? ""), "\(label) declares an unused path parameter")
            }
            let headers = Set(declared.filter { $0["in"] as? String == "header" }.compactMap { $0["name"] as? String })
            let honoursIdempotency = ["POST /v1/security/secrets", "PUT /v1/security/secrets/{name}",
                                      "POST /v1/security/secrets/{name}/rollback", "POST /v1/security/secrets/{name}/rotate",
                                      "POST /v1/security/secrets/batch/upsert",
                                      "POST /v1/security/users", "PUT /v1/security/users/{id}", "POST /v1/security/users/{id}/disable",
                                      "POST /v1/security/grants", "PUT /v1/security/policy", "POST /v1/security/webhooks/{id}/test"]
            #expect(headers.contains("Idempotency-Key") == honoursIdempotency.contains(label),
                    "\(label): Idempotency-Key documented \(headers.contains("Idempotency-Key")), honoured \(honoursIdempotency.contains(label))")
            for name in ["Authorization", "Content-Type", "Accept"] {
                #expect(!headers.contains(name), "\(label) must not document \(name) as a parameter (OpenAPI ignores it)")
            }
        }
        #expect(Set(operationIDs).count == operationIDs.count, "operation ids repeat: \(operationIDs.sorted())")
    }

    @Test("the Error schema and the scope list match the server")
    func schemasMatch() throws {
        let document = try Self.loadDocument()
        let schemas = (document["components"] as? [String: Any])?["schemas"] as? [String: Any] ?? [:]
        let error = schemas["Error"] as? [String: Any]
        #expect(Set(error?["required"] as? [String] ?? []) == ["error"])
        let inner = (error?["properties"] as? [String: Any])?["error"] as? [String: Any]
        #expect(Set(inner?["required"] as? [String] ?? []) == ["code", "message", "details"])
        let codes = (((inner?["properties"] as? [String: Any])?["code"] as? [String: Any])?["enum"] as? [String]) ?? []
        let serverCodes: Set<String> = ["AUTHENTICATION_REQUIRED", "PERMISSION_DENIED", "RESOURCE_NOT_FOUND", "VALIDATION_ERROR",
                                         "CONFLICT", "SECRET_EXPIRED", "ROTATION_FAILED", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE",
                                         "RATE_LIMIT_EXCEEDED", "REQUEST_TIMEOUT", "SERVICE_UNAVAILABLE", "INTERNAL_ERROR"]
        #expect(Set(codes) == serverCodes)
        #expect(codes.allSatisfy { APIError.Code(rawValue: $0) != nil })

        let create = schemas["CreateAPIKeyRequest"] as? [String: Any]
        let scopes = ((create?["properties"] as? [String: Any])?["scopes"] as? [String: Any])?["items"] as? [String: Any]
        #expect(Set(scopes?["enum"] as? [String] ?? []) == Set(Scope.allCases.map(\.rawValue)))

        // Request schemas refuse unknown fields, as the server does.
        for name in ["CreateSecretRequest", "UpdateSecretRequest", "RollbackRequest", "BatchGetRequest", "BatchUpsertRequest",
                     "BatchUpsertItem", "CreateAPIKeyRequest"] {
            #expect((schemas[name] as? [String: Any])?["additionalProperties"] as? Bool == false, "\(name) should set additionalProperties: false")
        }
        // Fields the server accepts are the fields documented.
        let createFields = Set(((schemas["CreateSecretRequest"] as? [String: Any])?["properties"] as? [String: Any] ?? [:]).keys)
        #expect(createFields == SecretRoutes.createFields)
        let updateFields = Set(((schemas["UpdateSecretRequest"] as? [String: Any])?["properties"] as? [String: Any] ?? [:]).keys)
        #expect(updateFields == SecretRoutes.updateFields)
    }
}
