#if canImport(Glibc)
import Glibc
#endif

/// A test switch: when `VSECURE_TEST_MEMORY_SCAN` names a file of hex-encoded needles (one per
/// line, at least 8 bytes each) and `VSECURE_TEST_MEMORY_REPORT` a report file, the launcher
/// counts every copy of each needle in its own readable memory (`/proc/self/maps` and
/// `/proc/self/mem`) just before `execve`, or after wiping on a failure path.
///
/// Everything the scan needs is allocated up front in one private mapping that the scan skips,
/// so the scan itself neither allocates nor leaves copies of the needles where it looks. The
/// report holds counts only. It tells nothing that the caller did not already know: it needs the
/// values themselves as input.
final class MemoryScan {
    private let arena: UnsafeMutableRawPointer
    private let arenaSize: Int
    private let needleStarts: UnsafeMutablePointer<Int>
    private let needleLengths: UnsafeMutablePointer<Int>
    private let counts: UnsafeMutablePointer<Int>
    private let needleCount: Int
    private let needleBytes: UnsafeMutableRawPointer
    private let mapsBuffer: UnsafeMutableRawPointer
    private let mapsCapacity = 8 << 20
    private let chunk: UnsafeMutableRawPointer
    private let chunkCapacity = 8 << 20
    private let line: UnsafeMutableRawPointer
    private let reportFD: Int32
    private let mapsFD: Int32
    private let memFD: Int32
    private var maxNeedle = 0

    static let maxNeedles = 4096

    static func prepareIfRequested() -> MemoryScan? {
        guard let needlePath = getenv("VSECURE_TEST_MEMORY_SCAN"), let reportPath = getenv("VSECURE_TEST_MEMORY_REPORT") else { return nil }
        return MemoryScan(needlePath: needlePath, reportPath: reportPath)
    }

    private init?(needlePath: UnsafePointer<CChar>, reportPath: UnsafePointer<CChar>) {
        let fileFD = open(needlePath, O_RDONLY | O_CLOEXEC)
        guard fileFD >= 0 else { return nil }
        defer { close(fileFD) }
        var info = stat()
        guard fstat(fileFD, &info) == 0 else { return nil }
        let textSize = Int(info.st_size)
        let tables = 3 * Self.maxNeedles * MemoryLayout<Int>.stride
        arenaSize = tables + textSize + textSize / 2 + 1 + mapsCapacity + chunkCapacity + 4096
        guard let mapped = mmap(nil, arenaSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              mapped != MAP_FAILED else { return nil }
        arena = mapped
        needleStarts = arena.assumingMemoryBound(to: Int.self)
        needleLengths = needleStarts + Self.maxNeedles
        counts = needleLengths + Self.maxNeedles
        let text = arena + tables
        needleBytes = text + textSize
        mapsBuffer = needleBytes + textSize / 2 + 1
        chunk = mapsBuffer + mapsCapacity
        line = chunk + chunkCapacity
        var read = 0
        while read < textSize {
            let n = pread(fileFD, text + read, textSize - read, off_t(read))
            if n <= 0 { break }
            read += n
        }
        // Decode hex lines into needleBytes.
        var count = 0, out = 0, index = 0
        while index < read && count < Self.maxNeedles {
            let start = out
            while index < read, text.load(fromByteOffset: index, as: UInt8.self) != 0x0A {
                if index + 1 < read, let hi = Self.nibble(text.load(fromByteOffset: index, as: UInt8.self)),
                   let lo = Self.nibble(text.load(fromByteOffset: index + 1, as: UInt8.self)) {
                    needleBytes.storeBytes(of: hi << 4 | lo, toByteOffset: out, as: UInt8.self)
                    out += 1
                    index += 2
                } else {
                    index += 1
                }
            }
            index += 1
            if out > start {
                needleStarts[count] = start
                needleLengths[count] = out - start
                counts[count] = 0
                maxNeedle = max(maxNeedle, out - start)
                count += 1
            }
        }
        // The hex text is not a needle, but wipe it anyway.
        memset(text, 0, textSize)
        needleCount = count
        reportFD = open(reportPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        mapsFD = open("/proc/self/maps", O_RDONLY | O_CLOEXEC)
        memFD = open("/proc/self/mem", O_RDONLY | O_CLOEXEC)
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        case 0x41...0x46: return c - 0x41 + 10
        default: return nil
        }
    }

    /// Counts the copies and writes `<phase>` then one `needle <i> <count>` line per needle.
    func run(phase: StaticString) {
        guard reportFD >= 0, mapsFD >= 0, memFD >= 0 else { return }
        var mapsLength = 0
        while mapsLength < mapsCapacity {
            let n = pread(mapsFD, mapsBuffer + mapsLength, mapsCapacity - mapsLength, off_t(mapsLength))
            if n <= 0 { break }
            mapsLength += n
        }
        for i in 0..<needleCount { counts[i] = 0 }
        var regions = 0
        var scanned = 0
        var position = 0
        let arenaStart = UInt(bitPattern: arena), arenaEnd = arenaStart + UInt(arenaSize)
        while position < mapsLength {
            var cursor = position
            let start = parseHex(&cursor, mapsLength)
            cursor += 1
            let end = parseHex(&cursor, mapsLength)
            cursor += 1
            let readable = cursor < mapsLength && mapsBuffer.load(fromByteOffset: cursor, as: UInt8.self) == UInt8(ascii: "r")
            while position < mapsLength, mapsBuffer.load(fromByteOffset: position, as: UInt8.self) != 0x0A { position += 1 }
            position += 1
            guard readable, end > start, end <= arenaStart || start >= arenaEnd else { continue }
            regions += 1
            scanned += scanRegion(start: start, end: end)
        }
        write(phase.utf8Start, phase.utf8CodeUnitCount)
        write(text: " regions ", number: regions)
        write(text: " bytes ", number: scanned)
        write(text: "\n", number: nil)
        for i in 0..<needleCount {
            write(text: "needle ", number: i)
            write(text: " ", number: counts[i])
            write(text: "\n", number: nil)
        }
        fsync(reportFD)
    }

    private func scanRegion(start: UInt, end: UInt) -> Int {
        var windowStart = start
        var scanned = 0
        let overlap = max(maxNeedle - 1, 0)
        while windowStart < end {
            let length = Int(min(UInt(chunkCapacity), end - windowStart))
            let got = pread(memFD, chunk, length, off_t(Int64(bitPattern: UInt64(windowStart))))
            if got <= 0 { break }
            let isLast = windowStart + UInt(got) >= end || got < length
            let countable = isLast ? got : max(got - overlap, 1)
            for i in 0..<needleCount {
                counts[i] += occurrences(needle: i, in: got, startingBefore: countable)
            }
            scanned += countable
            if got < length { break }
            windowStart += UInt(countable)
        }
        return scanned
    }

    private func occurrences(needle index: Int, in length: Int, startingBefore limit: Int) -> Int {
        let needle = needleBytes + needleStarts[index]
        let size = needleLengths[index]
        guard size > 0, length >= size else { return 0 }
        let first = Int32(needle.load(as: UInt8.self))
        var found = 0
        var offset = 0
        while offset < limit && offset + size <= length {
            guard let hit = memchr(chunk + offset, first, min(limit, length - size + 1) - offset) else { break }
            let at = hit - chunk
            if memcmp(hit, needle, size) == 0 { found += 1 }
            offset = at + 1
        }
        return found
    }

    private func parseHex(_ cursor: inout Int, _ length: Int) -> UInt {
        var value: UInt = 0
        while cursor < length, let digit = Self.nibble(mapsBuffer.load(fromByteOffset: cursor, as: UInt8.self)) {
            value = value << 4 | UInt(digit)
            cursor += 1
        }
        return value
    }

    private func write(_ pointer: UnsafePointer<UInt8>, _ count: Int) {
        _ = Glibc.write(reportFD, pointer, count)
    }

    private func write(text: StaticString, number: Int?) {
        write(text.utf8Start, text.utf8CodeUnitCount)
        guard var value = number else { return }
        var digits = 0
        repeat {
            line.storeBytes(of: UInt8(0x30 + value % 10), toByteOffset: 31 - digits, as: UInt8.self)
            value /= 10
            digits += 1
        } while value > 0
        _ = Glibc.write(reportFD, line + 32 - digits, digits)
    }
}
