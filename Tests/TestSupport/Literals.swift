import Foundation
import Testing

/// A value made from a test literal (a name, a tag, a JSON body). A literal that does not
/// validate records a failed expectation naming it, instead of trapping the whole test runner,
/// and the test goes on with `placeholder` so it fails where it stands.
public func literal<T>(_ text: String, placeholder: String = "placeholder", _ make: (String) throws -> T,
                       sourceLocation: Testing.SourceLocation = #_sourceLocation) -> T {
    do { return try make(text) } catch {
        Issue.record("test literal \(text.debugDescription) is invalid: \(error)", sourceLocation: sourceLocation)
        // The placeholder is valid for every name grammar (secret, variable, environment, tag).
        guard let fallback = try? make(placeholder) else {
            preconditionFailure("the placeholder \(placeholder.debugDescription) is not valid for this literal either")
        }
        return fallback
    }
}

/// JSON text from a literal built of dictionaries, arrays, strings, numbers, booleans and NSNull.
public func jsonLiteral(_ value: Any, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]) else {
        Issue.record("test literal is not JSON-serializable: \(value)", sourceLocation: sourceLocation)
        return "{}"
    }
    return String(decoding: data, as: UTF8.self)
}
