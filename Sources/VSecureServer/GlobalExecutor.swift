import CConcurrencyHook
import NIOCore
import NIOPosix

/// Makes the server's event loops (NIO's singleton group, which the application serves on) run
/// Swift concurrency's jobs too, instead of a separate pool of threads.
///
/// Without it every request crosses threads twice: the event loop that read it hands it to a
/// pool thread for the handler, and the answer goes back to the event loop to be written, each
/// crossing a wake-up and a context switch. With it the handler runs on the loop that read the
/// request. Blocking work stays off the loops as before: the audit log's fsync has a thread of
/// its own, and SQLite reads are short.
///
/// This is what `NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()`
/// does, except that NIO finds the hook with `dlsym`, which fails in a binary linked with the
/// static Swift runtime (the hook is not exported): here it is declared in `CConcurrencyHook`
/// and linked directly.
///
/// Call once, at the start of `main`, before the application starts. Returns false (and changes
/// nothing) if a hook is already installed.
public func runConcurrencyOnEventLoops() -> Bool {
    let hook: EnqueueGlobalHook = { job, _ in
        // `any()` is the current loop when called on one of the group's loops, so a task that
        // continues where it is running does not change threads. (Running the job as on the
        // generic executor, with `execute` and a closure, measured slower than this.)
        MultiThreadedEventLoopGroup.singleton.any().enqueue(ExecutorJob(job))
    }
    let pointer = withUnsafePointer(to: hook) { UnsafeRawPointer($0).load(as: UnsafeMutableRawPointer.self) }
    return vsecure_install_enqueue_global_hook(pointer) == 1
}

/// The hook's type in the Swift runtime: the job, and the default enqueue (unused: every job goes
/// to a loop).
private typealias EnqueueGlobalHook = @convention(thin) (UnownedJob, @convention(thin) (UnownedJob) -> Void) -> Void
