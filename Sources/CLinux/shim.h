#ifndef VSECURE_CLINUX_SHIM_H
#define VSECURE_CLINUX_SHIM_H
/* Typed wrappers for the variadic or _GNU_SOURCE-only calls the launcher and the vault need. */
/* No _GNU_SOURCE here: it would make these headers disagree with Swift's Glibc module.
   The Linux-only constants are spelled out instead (values from the kernel's uapi headers). */
#include <errno.h>
#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <stdint.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS (1024 + 9)
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#define F_SEAL_WRITE 0x0008
#endif

static inline int vsecure_set_not_dumpable(void) {
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}
static inline int vsecure_disable_core_dumps(void) {
    struct rlimit none = {0, 0};
    return setrlimit(RLIMIT_CORE, &none);
}
static inline int vsecure_memfd_create(const char *name) {
    return (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
}
static inline int vsecure_seal_all(int fd) {
    return fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
}
static inline int vsecure_clear_cloexec(int fd) {
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0) return -1;
    return fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
}
static inline int vsecure_open_create_exclusive(const char *path, mode_t mode) {
    return open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
}
static inline int vsecure_open_read_nofollow(const char *path) {
    return open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}
/* The launch receipts file: appended to, created 0600, never through a symlink. */
static inline int vsecure_open_append_nofollow(const char *path) {
    return open(path, O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
}
static inline int vsecure_open_readwrite_nofollow(const char *path) {
    return open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
}
static inline int vsecure_errno(void) { return errno; }

/* Zeroes up to `bytes` of the stack below the caller, in the pages that were ever touched: a
   page that mincore does not report resident never held anything, and writing it (as
   sodium_stackzero does) would only fault in a fresh page to zero it. Those were 11 of the 18
   stack page faults of a launch. The region is a variable-length array, so it lies in this
   frame and the calls that check and zero it run below it. Stops at the first page below the
   stack's mapping (mincore: ENOMEM), where nothing was ever touched either: on the main
   thread's stack, which the kernel keeps a guard gap below, that is all there is. A thread's
   stack may end in a guard page with another mapping right below it, which this walk would
   reach; on any thread but the main one the whole region is zeroed instead, as
   sodium_stackzero does (a stack too small for it then faults in the guard page). */
__attribute__((noinline)) static void vsecure_wipe_touched_stack(size_t bytes) {
    if (bytes == 0) return;
    unsigned char region[bytes];
    if (syscall(SYS_gettid) != getpid()) {
        explicit_bzero(region, bytes);
        return;
    }
    long size = sysconf(_SC_PAGESIZE);
    uintptr_t page = size > 0 ? (uintptr_t)size : 4096;
    uintptr_t low = (uintptr_t)region, high = low + bytes;
    uintptr_t start = (high - 1) & ~(page - 1);
    for (;;) {
        unsigned char resident = 0;
        if (mincore((void *)start, page, &resident) != 0) {
            if (errno == ENOMEM) break;
            resident = 1; /* unknown: wipe it */
        }
        uintptr_t from = start > low ? start : low, to = start + page < high ? start + page : high;
        if (resident & 1) explicit_bzero((void *)from, to - from);
        if (start <= low) break;
        start -= page;
    }
}
static inline void vsecure_set_errno(int e) { errno = e; }

/* While a rotation command runs in its own process group, SIGINT, SIGTERM and SIGHUP sent to
   vsecure (Ctrl-C in a terminal reaches only the terminal's foreground group; a service manager
   signals vsecure) are passed on to the command's group and remembered, so vsecure can record
   how the rotation ended before it acts on the signal. Signals the process ignores stay
   ignored. One command at a time per process; only RotationCommand uses these. */
#include <signal.h>
static volatile sig_atomic_t vsecure_forward_group = 0;
static volatile sig_atomic_t vsecure_forward_caught = 0;
static const int vsecure_forward_signals[3] = {SIGINT, SIGTERM, SIGHUP};
static inline void vsecure_forward_handler(int sig) {
    int saved = errno;
    vsecure_forward_caught = sig;
    if (vsecure_forward_group > 0) kill(-(pid_t)vsecure_forward_group, sig);
    errno = saved;
}
/* Installs the handler where a signal is not ignored; `saved` receives the three previous
   actions. Call before spawning (a signal in between is remembered and passed on by
   vsecure_forward_start). */
static inline void vsecure_forward_begin(struct sigaction *saved) {
    vsecure_forward_group = 0;
    vsecure_forward_caught = 0;
    for (int i = 0; i < 3; i++) {
        sigaction(vsecure_forward_signals[i], NULL, &saved[i]);
        if (saved[i].sa_handler == SIG_IGN) continue;
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = vsecure_forward_handler;
        sigfillset(&action.sa_mask);
        sigaction(vsecure_forward_signals[i], &action, NULL);
    }
}
/* The command's process group, once spawned. */
static inline void vsecure_forward_start(pid_t group) {
    vsecure_forward_group = (sig_atomic_t)group;
    int caught = vsecure_forward_caught;
    if (caught != 0) kill(-group, caught);
}
/* Restores the previous actions; returns the signal caught meanwhile (0 if none). */
static inline int vsecure_forward_end(const struct sigaction *saved) {
    for (int i = 0; i < 3; i++) {
        if (saved[i].sa_handler == SIG_IGN) continue;
        sigaction(vsecure_forward_signals[i], &saved[i], NULL);
    }
    vsecure_forward_group = 0;
    int caught = vsecure_forward_caught;
    vsecure_forward_caught = 0;
    return caught;
}
/* Whether the process started without a dynamic loader (a static executable): the kernel
   passes AT_BASE, the interpreter's load address, only when there is one. */
static inline int vsecure_is_static_executable(void) { return getauxval(AT_BASE) == 0; }

#endif
