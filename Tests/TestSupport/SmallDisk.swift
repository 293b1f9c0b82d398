import Foundation

/// A small tmpfs mounted for one test, so that "the disk is full" is the kernel's real ENOSPC
/// and not a simulation. Needs root (CAP_SYS_ADMIN): `SmallDisk.canMount` says whether mounting
/// works here, and `whyNot` records the reason a suite is skipped. Unmounted by `unmount()`
/// (call it in a `defer`) or, at the latest, when the object goes away.
public final class SmallDisk: @unchecked Sendable {
    public let path: String
    private let lock = NSLock()
    private var mounted = true

    /// Mounts a `megabytes` MiB tmpfs (mode 0700) on `path`, which is created if missing.
    public init(at path: String, megabytes: Int) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let result = try runProcess(SmallDisk.mountTool, ["-t", "tmpfs", "-o", "size=\(megabytes)m,mode=0700", "tmpfs", path],
                                    environment: minimalEnvironment(home: "/"), timeout: 30)
        guard result.status == 0 else {
            mounted = false
            throw TestFailure("mount -t tmpfs on \(path) failed: \(result)")
        }
    }

    public var fillerPath: String { path + "/filler" }

    /// Appends to the filler file until the kernel answers ENOSPC: afterwards not one more
    /// block can be allocated. Call again after something was deleted on the disk.
    public func fill() throws {
        let fd = open(fillerPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw TestFailure("cannot open \(fillerPath): errno \(errno)") }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0x5A, count: 64 * 1024)
        for size in [chunk.count, 4096, 1] {
            while true {
                let written = chunk.withUnsafeBytes { write(fd, $0.baseAddress, size) }
                if written > 0 { continue }
                if written < 0 && errno == EINTR { continue }
                guard written < 0 && errno == ENOSPC else { throw TestFailure("filling \(path): errno \(errno)") }
                break
            }
        }
    }

    /// Free blocks left (0 after `fill`).
    public var availableBytes: Int {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return -1 }
        return Int(info.f_bavail) * Int(info.f_frsize)
    }

    /// Removes the filler: the disk has room again.
    public func free() {
        _ = unlink(fillerPath)
    }

    /// Unmounts (lazily if something still holds a file open there); idempotent.
    public func unmount() {
        lock.lock()
        defer { lock.unlock() }
        guard mounted else { return }
        mounted = false
        let env = minimalEnvironment(home: "/")
        if (try? runProcess(SmallDisk.umountTool, [path], environment: env, timeout: 30))?.status != 0 {
            _ = try? runProcess(SmallDisk.umountTool, ["-l", path], environment: env, timeout: 30)
        }
    }

    deinit { unmount() }

    static let mountTool = ["/usr/bin/mount", "/bin/mount"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/bin/mount"
    static let umountTool = ["/usr/bin/umount", "/bin/umount"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/bin/umount"

    /// nil when a tmpfs can be mounted here (tried once, with a 1 MiB one); else why not.
    public static let whyNot: String? = {
        do {
            let scratch = try TemporaryDirectory(prefix: "vsecure-mount-probe")
            let disk = try SmallDisk(at: scratch.file("probe"), megabytes: 1)
            disk.unmount()
            return nil
        } catch {
            return "a tmpfs cannot be mounted here (mounting needs root with CAP_SYS_ADMIN): \(error)"
        }
    }()

    public static var canMount: Bool { whyNot == nil }
}
