#if canImport(Glibc)
import Glibc
#endif

/// glibc malloc settings for the broker process, applied once at start-up before any thread runs.
///
/// Each produce request's frame (up to ~1.3 MB with librdkafka's 10,000-message batches) is a
/// fresh allocation. With glibc's defaults such a block was mmapped, or taken from heap memory
/// trimmed back to the kernel after the previous frame was freed, so every byte of every request
/// page-faulted in again: 77,000 faults (zeroed pages) per 3 M produced 100-byte messages, 10 % of
/// the broker's perf samples. Keeping up to 256 MB of freed memory per heap and serving blocks up
/// to 32 MB from the heap brought that to 1,000-5,000 faults; RSS under load was 70-75 MB instead
/// of 44-55 MB (BENCHMARKS.md, issue 9). `MALLOC_MMAP_THRESHOLD_` / `MALLOC_TRIM_THRESHOLD_` in
/// the environment still win.
enum AllocatorTuning {
    static let mmapThresholdBytes: Int32 = 32 << 20
    static let trimThresholdBytes: Int32 = 256 << 20
    // <malloc.h>'s parameter numbers (not in Swift's Glibc module).
    private static let M_TRIM_THRESHOLD: Int32 = -1
    private static let M_MMAP_THRESHOLD: Int32 = -3

    static func apply() {
        #if canImport(Glibc)
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        let mallopt = unsafeBitCast(sym, to: Mallopt.self)
        if getenv("MALLOC_MMAP_THRESHOLD_") == nil { _ = mallopt(M_MMAP_THRESHOLD, mmapThresholdBytes) }
        if getenv("MALLOC_TRIM_THRESHOLD_") == nil { _ = mallopt(M_TRIM_THRESHOLD, trimThresholdBytes) }
        #endif
    }
}
