import Dispatch

/// The store actor's executor: a serial dispatch queue. The actor's work syncs SQLite to disk (a
/// write's commit, an API key's creation), and since Swift concurrency's jobs run on the event
/// loops (`runConcurrencyOnEventLoops`), an actor on the default executor would stall every
/// connection of the loop it happened to run on for the length of an fsync. Dispatch's worker
/// threads may block; an idle queue holds no thread, so a store that is never closed (tests
/// make hundreds) leaves none behind. Reads do not enter the actor; they stay on the loops.
final class StoreExecutor: SerialExecutor, @unchecked Sendable {
    private let queue = DispatchQueue(label: "vsecure.store")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        // A serial queue: jobs run one at a time, in order, as a serial executor must.
        queue.async { job.runSynchronously(on: executor) }
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }
}
