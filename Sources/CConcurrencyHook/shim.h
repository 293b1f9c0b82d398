#ifndef VSECURE_CONCURRENCY_HOOK_H
#define VSECURE_CONCURRENCY_HOOK_H
/* Swift concurrency's global-executor hook (swift/Runtime/Concurrency.h in the Swift runtime):
   when set, every job for the global executor is handed to it instead of the default thread
   pool. Its type there is
     SWIFT_CC(swift) void (*)(Job *job, SWIFT_CC(swift) void (*original)(Job *job));
   declared as a plain pointer here and set from Swift with a @convention(thin) function of that
   shape, as SwiftNIO does. Declared rather than found with dlsym because the static Swift runtime
   (--static-swift-stdlib, which release builds use) does not export it. */
extern void *_Nullable swift_task_enqueueGlobal_hook;

/* Installs `hook` unless one is installed already; 1 if it was installed. */
static inline int vsecure_install_enqueue_global_hook(void *_Nonnull hook) {
    void *expected = 0;
    return __atomic_compare_exchange_n(&swift_task_enqueueGlobal_hook, &expected, hook, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
#endif
