import Foundation
import Logging
import Testing
@testable import VSecureServer

@Suite("Server log lines")
struct ServerLogHandlerTests {
    @Test("one line per event: UTC time, level, label, sorted metadata, source, message")
    func lineLayout() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        var handler = ServerLogHandler(label: "vsecure-server", descriptor: fds[1])
        handler.metadata["z"] = "last"
        var logger = Logger(label: "vsecure-server") { _ in handler }
        logger.logLevel = .info
        logger.info("GET /health 200", metadata: ["a": "first"])
        logger.debug("not written")
        logger.warning("second")
        close(fds[1])
        let text = String(decoding: FileHandle(fileDescriptor: fds[0]).readDataToEndOfFile(), as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3, "\(text)")
        #expect(lines.last == "")
        let first = try #require(lines.first)
        #expect(first.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ info vsecure-server: a=first z=last \[[^\]]+\] GET \/health 200/) != nil, "\(first)")
        #expect(lines[1].hasSuffix("] second"), "\(lines[1])")
        #expect(lines[1].contains(" warning vsecure-server: z=last ["), "\(lines[1])")
    }
}
