import NIOPosix

/// The store actor's executor: one thread of its own. Its work syncs SQLite to disk (a write's
/// commit, an API key's creation), and since Swift concurrency's jobs run on the event loops
/// (`runConcurrencyOnEventLoops`), an actor on the default executor would stall every
/// connection of the loop it happened to run on for the length of an fsync. Reads do not enter
/// the actor; they stay on the loops.
final class StoreExecutor: SerialExecutor, @unchecked Sendable {
    private let thread = NIOThreadPool(numberOfThreads: 1)

    init() {
        thread.start()
    }

    deinit {
        // Jobs hold the actor, and the actor holds this: no job is left when this runs.
        thread.shutdownGracefully { _ in }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        // One thread, first in first out: jobs run one at a time, in order, as a serial executor must.
        thread.submit { _ in job.runSynchronously(on: executor) }
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }
}
