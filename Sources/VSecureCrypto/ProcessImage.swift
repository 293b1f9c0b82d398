import CLinux

/// What kind of executable this process runs.
public enum ProcessImage {
    /// True when the process started without a dynamic loader: the static `vsecure-run`. Such a
    /// process must not reach code that makes glibc `dlopen` (NSS look-ups such as `getpwuid`,
    /// libcurl): that works only with the very glibc it was linked against.
    public static var isStatic: Bool { vsecure_is_static_executable() != 0 }
}
