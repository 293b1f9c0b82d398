import Foundation
import TestSupport

/// A TCP listener on 127.0.0.1 that answers every request in one bad way, written with plain
/// POSIX sockets so that each byte and each close is under the test's control (a library HTTP
/// server would not send a short body or stall on purpose). It counts the connections it
/// accepted, so a test can see the client's retries. Threads end within ~100 ms of `stop()`.
final class FaultyHTTPServer: @unchecked Sendable {
    enum Behaviour: String, Sendable {
        /// Reads the request and never answers.
        case stall
        /// Listens but never accepts: the kernel completes the handshake, nothing else happens.
        case silentListener
        /// Sends a 200 head promising 100 000 bytes, then one byte every 200 ms.
        case drip
        /// Sends 1 KiB of binary noise and closes.
        case garbage
        /// A 200 head with Content-Length 4096, a partial JSON body, then close.
        case truncated
        /// The same short body, but closing only after 1.2 s: every retry costs time.
        case slowTruncated
        /// Every request: 500 with a JSON error body.
        case storm500
        /// Every request: 429 with `Retry-After: 1`.
        case storm429
        /// Every request: 429 with `Retry-After: 3600`, far past any launch's timeout.
        case storm429Later
        /// Every request: 503 (retryable), each after 1.2 s.
        case slow503
        /// Reads the request and closes without a word: the request may have run, and the
        /// client sees an empty reply, which it retries.
        case hangUp
        /// The first two requests: 409 `inProgress` without `skipped`, as the server answers a
        /// request whose `Idempotency-Key` an unfinished request holds; then a rotate's 200.
        case rotationStillRunning
        /// A server from before `GET /environments` (staging, production and qa, staging the
        /// default): 404 for that route, a batch read that matches nothing, and the 400 for an
        /// unknown environment with its hint listing them.
        case beforeEnvironmentsRoute
    }

    let port: Int
    let behaviour: Behaviour
    private let listener: Int32
    private let lock = NSLock()
    private var stopped = false
    private var accepted = 0
    private var heads: [String] = []

    init(_ behaviour: Behaviour) throws {
        self.behaviour = behaviour
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed: errno \(errno)") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard bound == 0, named == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw TestFailure("cannot listen on 127.0.0.1: errno \(errno)")
        }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        if behaviour != .silentListener {
            Thread.detachNewThread { [self] in acceptLoop() }
        }
    }

    deinit { stop() }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Connections accepted so far (each is one request: every answer closes the connection).
    var connections: Int { lock.withLock { accepted } }

    var isStopped: Bool { lock.withLock { stopped } }

    /// The head (request line and headers) of every request read so far, in arrival order.
    var requestHeads: [String] { lock.withLock { heads } }

    func stop() {
        let closeHere = lock.withLock { () -> Bool in
            defer { stopped = true }
            return !stopped && behaviour == .silentListener
        }
        // The accept loop closes the listener itself when it sees the flag.
        if closeHere { close(listener) }
    }

    private func acceptLoop() {
        defer { close(listener) }
        while !isStopped {
            var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            lock.withLock { accepted += 1 }
            Thread.detachNewThread { [self] in
                serve(client)
                close(client)
            }
        }
    }

    /// Sleeps `seconds` in small steps; false if the server was stopped meanwhile.
    private func pause(_ seconds: Double) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if isStopped { return false }
            usleep(20_000)
        }
        return !isStopped
    }

    private func send(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            offset += n
        }
        return true
    }

    private func send(_ fd: Int32, _ text: String) -> Bool { send(fd, Array(text.utf8)) }

    /// Reads one request (head and Content-Length body), so that closing afterwards does not
    /// reset the connection under the answer. False on end of file, an error or stop.
    private func readRequest(_ fd: Int32) -> Bool {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        var needed: Int?
        while !isStopped {
            if let needed, received.count >= needed { return true }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            received += buffer[0..<n]
            if needed == nil, let end = received.firstRange(of: Array("\r\n\r\n".utf8)) {
                let head = String(decoding: received[..<end.lowerBound], as: UTF8.self).lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                needed = end.upperBound + length
                lock.withLock { heads.append(head) }
            }
        }
        return false
    }

    private static func answer(_ status: String, _ extraHeaders: String = "", body: String) -> String {
        "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
            + extraHeaders + "Connection: close\r\n\r\n" + body
    }

    /// What `POST /secrets/TOKEN/rotate` answers after a rotation from version 1 to 2.
    static let rotatedAnswer = #"{"id":"sec_01a228ab1a892396c9dec09e","name":"TOKEN","environment":"production","path":"production/TOKEN","version":2,"tags":[],"metadata":{},"description":null,"expiresAt":null,"expired":false,"createdAt":"2027-01-15T08:00:00Z","updatedAt":"2027-01-16T08:01:00Z","rotationPolicy":{"enabled":true,"period":"1d","notifyBefore":null,"generate":{"length":32,"charset":"hex"}},"rotation":{"state":"ok","lastRotatedAt":"2027-01-16T08:01:00Z","nextDueAt":"2027-01-17T08:01:00Z","failingSince":null,"lastFailureAt":null,"lastFailure":null,"failureCount":0},"previousVersion":1,"rotated":true}"#

    static let partialBody = #"{"environment":"production","data":[{"name":"A","version":1,"value":"fault-SECRET-part"#

    private func serve(_ fd: Int32) {
        guard readRequest(fd) else { return }
        switch behaviour {
        case .stall, .silentListener:
            while pause(0.1) {}
        case .drip:
            guard send(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n") else { return }
            for byte in Array(Self.partialBody.utf8) {
                guard pause(0.2), send(fd, [byte]) else { return }
            }
            while pause(0.1) {}
        case .garbage:
            _ = send(fd, (0..<1024).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) })
        case .truncated:
            _ = send(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n" + Self.partialBody)
        case .slowTruncated:
            guard send(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n" + Self.partialBody) else { return }
            _ = pause(1.2)
        case .storm500:
            _ = send(fd, Self.answer("500 Internal Server Error", body: #"{"error":{"code":"INTERNAL_ERROR","message":"storm","details":{}}}"#))
        case .storm429:
            _ = send(fd, Self.answer("429 Too Many Requests", "Retry-After: 1\r\n",
                                     body: #"{"error":{"code":"RATE_LIMIT_EXCEEDED","message":"slow down","details":{"retryAfterSeconds":"1"}}}"#))
        case .storm429Later:
            _ = send(fd, Self.answer("429 Too Many Requests", "Retry-After: 3600\r\n",
                                     body: #"{"error":{"code":"RATE_LIMIT_EXCEEDED","message":"come back in an hour","details":{"retryAfterSeconds":"3600"}}}"#))
        case .hangUp:
            return
        case .rotationStillRunning:
            if lock.withLock({ heads.count }) <= 2 {
                _ = send(fd, Self.answer("409 Conflict", body: #"{"error":{"code":"CONFLICT","message":"a request with this Idempotency-Key is still running","details":{"reason":"inProgress"}}}"#))
            } else {
                _ = send(fd, Self.answer("200 OK", body: Self.rotatedAnswer))
            }
        case .beforeEnvironmentsRoute:
            let line = lock.withLock { heads.last ?? "" }.prefix { $0 != "\r" }
            if line.hasPrefix("get /v1/security/environments ") {
                _ = send(fd, Self.answer("404 Not Found", body: #"{"error":{"code":"RESOURCE_NOT_FOUND","message":"no such route","details":{}}}"#))
            } else if line.hasPrefix("post /v1/security/secrets/batch/get ") {
                _ = send(fd, Self.answer("200 OK", body: #"{"environment":"staging","data":[],"missing":[]}"#))
            } else {
                _ = send(fd, Self.answer("400 Bad Request", body: #"{"error":{"code":"VALIDATION_ERROR","message":"unknown environment \"zz\"","details":{"hint":"this vault's environments are: staging, production, qa"}}}"#))
            }
        case .slow503:
            guard pause(1.2) else { return }
            _ = send(fd, Self.answer("503 Service Unavailable", "Retry-After: 0\r\n",
                                     body: #"{"error":{"code":"SERVICE_UNAVAILABLE","message":"busy","details":{}}}"#))
        }
    }
}
