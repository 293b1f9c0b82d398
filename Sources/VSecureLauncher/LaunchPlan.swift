import VSecureCore

/// One variable the child will receive.
public struct Injection: Sendable {
    public enum Delivery: String, Sendable { case environment, file }
    public enum Content: Sendable {
        case secret(FetchedSecret)
        case template([ResolvedPart])
    }
    public enum ResolvedPart: Sendable {
        case literal([UInt8])
        case secret(FetchedSecret)
    }

    public var variable: VariableName
    public var content: Content
    public var delivery: Delivery
    /// Where the request came from, for messages: `vsecure.yml:12:5`, `--tags api`.
    public var origin: String

    /// The secrets whose values go into this variable.
    public var secrets: [FetchedSecret] {
        switch content {
        case .secret(let secret): return [secret]
        case .template(let parts): return parts.compactMap { if case .secret(let s) = $0 { return s } else { return nil } }
        }
    }

    public var valueLength: Int {
        switch content {
        case .secret(let secret): return secret.valueLength
        case .template(let parts):
            return parts.reduce(0) { total, part in
                switch part {
                case .literal(let bytes): return total + bytes.count
                case .secret(let secret): return total + secret.valueLength
                }
            }
        }
    }
}

/// Turns a manifest and the command-line selection into one read request, then the fetched
/// records into the final list of injections. Every problem of one kind is reported at once,
/// and nothing starts unless the whole set is right.
public struct LaunchPlan {
    struct Request {
        var variable: VariableName
        var secret: SecretName
        var optional: Bool
        var delivery: Injection.Delivery
        var origin: String
    }

    struct Selection {
        var tags: [Tag]
        var origin: String
    }

    let environment: EnvironmentName
    let requests: [Request]
    let templates: [ManifestTemplate]
    let selections: [Selection]
    let only: [VariableName]
    let manifestPath: String?
    /// Every secret the manifest lists, `--only` or not: a tag selection never exports one of
    /// them under its own name.
    let listedSecrets: [String]

    public init(manifest: Manifest?, environment: EnvironmentName, extraTagSelections: [[Tag]], only: [VariableName]) {
        self.environment = environment
        self.only = only
        manifestPath = manifest?.path
        var requests: [Request] = []
        var selections: [Selection] = []
        var templates: [ManifestTemplate] = []
        listedSecrets = manifest?.secrets.map { $0.secretName(in: environment).rawValue } ?? []
        if let manifest {
            for entry in manifest.secrets where only.isEmpty || only.contains(entry.variableName) {
                requests.append(Request(variable: entry.variableName, secret: entry.secretName(in: environment), optional: entry.optional,
                                        delivery: entry.file ? .file : .environment, origin: "\(manifest.path):\(entry.location)"))
            }
            templates = manifest.templates.filter { only.isEmpty || only.contains($0.variable) }
            if !manifest.selectTags.isEmpty {
                selections.append(Selection(tags: manifest.selectTags,
                                            origin: "select.tags [\(manifest.selectTags.map(\.rawValue).joined(separator: ","))] at \(manifest.path)"
                                                + (manifest.selectLocation.map { ":\($0)" } ?? "")))
            }
        }
        for tags in extraTagSelections where !tags.isEmpty {
            selections.append(Selection(tags: tags, origin: "--tags \(tags.map(\.rawValue).joined(separator: ","))"))
        }
        self.requests = requests
        self.templates = templates
        self.selections = selections
    }

    /// Every name to fetch by name: requested secrets and template references.
    public var names: [SecretName] {
        var seen = StringIndex(capacity: requests.count)
        return (requests.map(\.secret) + templates.flatMap(\.references)).filter { seen.insert($0.rawValue).inserted }
    }

    public var tagSelections: [[Tag]] { selections.map(\.tags) }

    public var isEmpty: Bool { requests.isEmpty && templates.isEmpty && selections.isEmpty }

    public struct Resolution: Sendable {
        public var injections: [Injection]
        /// Optional secrets that do not exist: (variable, secret, origin).
        public var skipped: [(VariableName, SecretName, String)]
    }

    /// Matches the fetched records against the requests.
    public func resolve(_ fetched: [FetchedSecret]) throws(VSecureError) -> Resolution {
        // StringIndex rather than Dictionary and Set: see StringIndex for what those cost a launch.
        var fetchedNames = StringIndex(capacity: fetched.count)
        var fetchedPositions: [Int] = []
        fetchedPositions.reserveCapacity(fetched.count)
        for (position, secret) in fetched.enumerated() {
            let entry = fetchedNames.insert(secret.name.rawValue)
            if entry.inserted { fetchedPositions.append(position) } else { fetchedPositions[entry.index] = position }
        }
        func byName(_ name: SecretName) -> FetchedSecret? { fetchedNames.index(of: name.rawValue).map { fetched[fetchedPositions[$0]] } }
        var injections: [Injection] = []
        // Claimed variables: their names, and for each what claimed it (for messages).
        var claimedNames = StringIndex(capacity: requests.count)
        var claims: [(secret: String, origin: String)] = []
        func claimed(_ variable: VariableName) -> (secret: String, origin: String)? {
            claimedNames.index(of: variable.rawValue).map { claims[$0] }
        }
        func claim(_ variable: VariableName, _ claim: (secret: String, origin: String)) {
            let entry = claimedNames.insert(variable.rawValue)
            if entry.inserted { claims.append(claim) } else { claims[entry.index] = claim }
        }
        var missing: [String] = []
        var skipped: [(VariableName, SecretName, String)] = []
        var conflicts: [String] = []

        for request in requests {
            guard let secret = byName(request.secret) else {
                if request.optional { skipped.append((request.variable, request.secret, request.origin)) }
                else { missing.append("\(request.secret) (for \(request.variable), \(request.origin))") }
                continue
            }
            claim(request.variable, ("secret \(request.secret)", request.origin))
            injections.append(Injection(variable: request.variable, content: .secret(secret), delivery: request.delivery, origin: request.origin))
        }
        for template in templates {
            let origin = "\(manifestPath ?? "manifest"):\(template.location)"
            var parts: [Injection.ResolvedPart] = []
            var complete = true
            for part in template.parts {
                switch part {
                case .literal(let bytes): parts.append(.literal(bytes))
                case .secret(let name):
                    if let secret = byName(name) { parts.append(.secret(secret)) } else {
                        complete = false
                        missing.append("\(name) (in template \(template.variable), \(origin))")
                    }
                }
            }
            if let previous = claimed(template.variable) {
                conflicts.append("\(template.variable) from template (\(origin)) and from \(previous.secret) (\(previous.origin))")
                continue
            }
            claim(template.variable, ("template", origin))
            if complete { injections.append(Injection(variable: template.variable, content: .template(parts), delivery: .environment, origin: origin)) }
        }
        // Tag selections: every matched secret becomes the variable of its own name, unless the
        // manifest lists that secret (then it is exported only as listed, even when --only left
        // its entry out).
        let listed = StringIndex(listedSecrets)
        // Joined by hand: `joined(separator:)` is generic library code that costs its first
        // caller a conformance lookup at run time (see StringIndex).
        var origin = ""
        for (index, selection) in selections.enumerated() { origin += (index == 0 ? "" : "; ") + selection.origin }
        for secret in fetched where secret.selectedByTags && !listed.contains(secret.name.rawValue) {
            let variable = VariableName(secret.name)
            if !only.isEmpty && !only.contains(variable) { continue }
            if let previous = claimed(variable) {
                conflicts.append("\(variable) from \(previous.secret) (\(previous.origin)) and from secret \(secret.name) (\(origin))")
                continue
            }
            claim(variable, ("secret \(secret.name)", origin))
            injections.append(Injection(variable: variable, content: .secret(secret), delivery: .environment, origin: origin))
        }

        if !conflicts.isEmpty {
            throw VSecureError(.unsafeEnvironment, "two sources for one variable: " + conflicts.joined(separator: "; "),
                               hint: "rename one with `as:` in the manifest, or narrow the tag selection")
        }
        if !missing.isEmpty {
            throw VSecureError(.notFound, "missing secret\(missing.count == 1 ? "" : "s") in \(environment): " + missing.joined(separator: ", ") + "; nothing was started",
                               hints: ["create \(missing.count == 1 ? "it" : "them") with `vsecure secrets:create NAME --env \(environment)`",
                                       "or mark an entry `optional: true` in the manifest"])
        }
        let skippedVariables = StringIndex(skipped.map { entry in entry.0.rawValue })
        let unmatched = only.filter { variable in claimed(variable) == nil && !skippedVariables.contains(variable.rawValue) }
        if !unmatched.isEmpty {
            throw VSecureError.usage("--only names \(unmatched.map(\.rawValue).joined(separator: ", ")), which nothing in the selection provides")
        }
        return Resolution(injections: injections, skipped: skipped)
    }
}
