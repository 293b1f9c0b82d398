import Dispatch
import NIOCore
import NIOPosix
import Synchronization
import VSecureCore
import VSecureVault

/// The server's audit log. `record` returns once the entry is durable, or throws; a route that
/// needs an entry answers only after `record` returned, so no secret leaves without its entry.
///
/// Group commit: requests queue their entries and wait; one writer thread commits everything
/// queued in one transaction (one fsync), resumes those requests, and takes the next group,
/// which gathered while it was syncing. Under load a commit carries many entries, so auditing
/// every read costs a fraction of an fsync per read; when idle, a lone entry commits at once.
/// The writer runs on a thread of its own, so a slow disk never holds a cooperative thread.
public final class AuditTrail: Sendable {
    private struct Waiting {
        enum Resumption {
            case task(CheckedContinuation<Void, any Error>)
            /// Called on `loop` (the fast read path, which runs on no task).
            case callback(@Sendable (Result<Void, VSecureError>) -> Void)
        }
        var events: [AuditEvent]
        var resumption: Resumption
        /// The event loop the request waits on, when it runs on one (see
        /// `runConcurrencyOnEventLoops`): it is resumed there, so its answer is written without
        /// another change of thread.
        var loop: (any EventLoop)?
    }

    private struct Queue {
        var waiting: [Waiting] = []
        var writing = false
    }

    private let queue = Mutex(Queue())
    private let writer: Mutex<AuditLog>
    /// A second connection for queries and verification, so a long `verify` never stalls the
    /// writer (WAL lets it read while the writer commits).
    private let reader: Mutex<AuditLog>
    private let thread: NIOThreadPool
    public let path: String
    public let logID: [UInt8]
    /// Transactions committed so far (benchmarks and tests compare it with the entries).
    private let commits = Atomic<Int>(0)
    public var commitCount: Int { commits.load(ordering: .relaxed) }

    /// Opens (or creates) the log at `path` with the key at `keyPath`, and refuses a log whose
    /// anchor is missing or edited: such a log can be verified, not extended.
    public init(path: String, keyPath: String) throws(VSecureError) {
        let log = try AuditLog.open(path: path, keyPath: keyPath, create: true, durability: .full)
        try log.checkAnchor()
        logID = log.logID
        writer = Mutex(log)
        reader = Mutex(try AuditLog.open(path: path, keyPath: keyPath, create: false, durability: .full))
        self.path = path
        thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
    }

    deinit {
        thread.shutdownGracefully { _ in }
    }

    /// Appends `event` and waits until it is on disk. Throws `.io` when it cannot be written;
    /// the route then answers 503.
    public func record(_ event: AuditEvent) async throws(VSecureError) {
        try await record([event])
    }

    public func record(_ events: [AuditEvent]) async throws(VSecureError) {
        guard !events.isEmpty else { return }
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enqueue(Waiting(events: events, resumption: .task(continuation), loop: MultiThreadedEventLoopGroup.currentEventLoop))
            }
        } catch let error as VSecureError {
            throw error
        } catch {
            throw VSecureError(.io, "the audit log could not be written")
        }
    }

    /// Appends `events` and blocks the calling thread until they are durable, joining the group
    /// commit like any other request. For the store actor, which runs on a serial dispatch queue
    /// of its own, to record a change inside the change's own transaction
    /// (`SecretService.change(in:)`); never call it on an event loop or a cooperative thread.
    /// Throws as `record` does, and when the log has not answered within `timeoutSeconds` (a
    /// stalled disk must not hold the store's write lock for ever; the entries may still be
    /// written later).
    public func recordNow(_ events: [AuditEvent], timeoutSeconds: Int = 30) throws(VSecureError) {
        guard !events.isEmpty else { return }
        precondition(MultiThreadedEventLoopGroup.currentEventLoop == nil, "recordNow blocks; it must not run on an event loop")
        let handoff = Handoff()
        enqueue(Waiting(events: events, resumption: .callback({ result in
            handoff.outcome.withLock { $0 = result }
            handoff.done.signal()
        }), loop: nil))
        guard handoff.done.wait(timeout: .now() + .seconds(timeoutSeconds)) == .success else {
            throw VSecureError(.io, "the audit log did not answer within \(timeoutSeconds) seconds")
        }
        try handoff.outcome.withLock { $0 }!.get()
    }

    private final class Handoff: Sendable {
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<Result<Void, VSecureError>?>(nil)
    }

    /// Appends `events` and calls `completion` on `loop` once they are durable, or with the
    /// error when they cannot be written; for code that runs on an event loop and no task.
    public func record(_ events: [AuditEvent], on loop: any EventLoop,
                       completion: @escaping @Sendable (Result<Void, VSecureError>) -> Void) {
        enqueue(Waiting(events: events, resumption: .callback(completion), loop: loop))
    }

    private func enqueue(_ waiting: Waiting) {
        let start = queue.withLock { queue -> Bool in
            queue.waiting.append(waiting)
            guard !queue.writing else { return false }
            queue.writing = true
            return true
        }
        if start { thread.submit { [self] _ in writeGroups() } }
    }

    /// Commits queued groups until the queue is empty.
    private func writeGroups() {
        while true {
            let group = queue.withLock { queue -> [Waiting]? in
                guard !queue.waiting.isEmpty else {
                    queue.writing = false
                    return nil
                }
                defer { queue.waiting = [] }
                return queue.waiting
            }
            guard let group else { return }
            let outcome = writer.withLock { (log: inout AuditLog) -> Result<Void, VSecureError> in
                Result { () throws(VSecureError) in _ = try log.append(group.flatMap(\.events)) }
            }
            if case .success = outcome { commits.add(1, ordering: .relaxed) }
            // One hand-over per event loop rather than one wake-up per request.
            var byLoop: [ObjectIdentifier: (loop: any EventLoop, waiting: [Waiting])] = [:]
            for waiting in group {
                if let loop = waiting.loop {
                    byLoop[ObjectIdentifier(loop), default: (loop, [])].waiting.append(waiting)
                } else {
                    Self.resume(waiting, outcome)
                }
            }
            for (loop, waiting) in byLoop.values {
                loop.execute { for one in waiting { Self.resume(one, outcome) } }
            }
        }
    }

    private static func resume(_ waiting: Waiting, _ outcome: Result<Void, VSecureError>) {
        let result = outcome.mapError { error in VSecureError(.io, "the audit log could not be written: \(error.message)") }
        switch waiting.resumption {
        case .task(let continuation): continuation.resume(with: result)
        case .callback(let completion): completion(result)
        }
    }

    /// Runs `body` with the query connection.
    public func withLog<T: Sendable>(_ body: (AuditLog) throws(VSecureError) -> T) throws(VSecureError) -> T {
        try reader.withLock { (log: inout AuditLog) throws(VSecureError) -> T in try body(log) }
    }
}
