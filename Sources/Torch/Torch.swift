import Foundation
import CTorch

/// Process-wide libtorch settings.
///
/// Threads: libtorch parallelises kernels with OpenMP (Debian's build links libgomp).
/// libgomp reads OMP_WAIT_POLICY once, in its load-time constructor, which runs before any
/// code of ours; an idle OpenMP worker then spins for a while before sleeping. On small
/// shared machines (2 cores, several processes) spinning workers steal the cores other
/// processes need. Because a setenv from Swift comes too late for libgomp, an executable calls
/// `Torch.relaunchWithPassiveOpenMPIfNeeded()` first thing in main (or the environment sets
/// `OMP_WAIT_POLICY=PASSIVE` before start, as Benchmarks/torch/run.sh does).
public enum Torch {
    /// Sets the number of threads libtorch uses for intra-op parallelism (at least 1).
    ///
    /// `at::set_num_threads` rebuilds libtorch's thread pools even when the count stays the
    /// same, and two threads doing so at once deadlocked a test run (one destroying the
    /// pthreadpool joined a worker that never woke, the other waited on its lock). So calls
    /// never overlap, and a call that changes nothing is skipped.
    public static func setThreadCount(_ count: Int) {
        let wanted = Int32(clamping: count)
        threadCountLock.withLock {
            guard ctorch_get_num_threads() != wanted else { return }
            ctorch_set_num_threads(wanted)
        }
    }

    private static let threadCountLock = NSLock()

    /// The number of intra-op threads.
    public static var threadCount: Int { Int(ctorch_get_num_threads()) }

    /// The number of inter-op threads.
    public static var interopThreadCount: Int { Int(ctorch_get_num_interop_threads()) }

    /// Seeds libtorch's default generator (normal/uniform/kaiming initialisation).
    public static func manualSeed(_ seed: UInt64) { ctorch_manual_seed(seed) }

    /// Seeds libtorch's default generator and runs `body` (a network's default
    /// initialisation) while no other thread seeds or draws through `seeded`. The generator is
    /// process-wide: two detectors built at once from the same seed got different weights
    /// when their seeding and drawing interleaved.
    public static func seeded<Result>(_ seed: UInt64, _ body: () throws -> Result) rethrows -> Result {
        try seededLock.withLock {
            manualSeed(seed)
            return try body()
        }
    }

    private static let seededLock = NSLock()

    /// Whether autograd records operations on the current thread.
    public static var isGradEnabled: Bool { ctorch_is_grad_enabled() }

    /// Runs `body` with autograd recording off on this thread (like `with torch.no_grad():`),
    /// restoring the previous setting afterwards, also when `body` throws.
    public static func withNoGrad<Result>(_ body: () throws -> Result) rethrows -> Result {
        let previous = ctorch_set_grad_enabled(false)
        defer { _ = ctorch_set_grad_enabled(previous) }
        return try body()
    }

    /// Re-executes the current program with OMP_WAIT_POLICY=PASSIVE when the variable is unset,
    /// so libgomp (configured at load time) lets idle workers sleep instead of spinning.
    /// Call it at the very start of main, before any work or threads: on success it does not
    /// return (the process image is replaced, same arguments and pid); when /proc/self/exe
    /// cannot be executed it returns and the process continues with libgomp's default policy.
    /// An explicit OMP_WAIT_POLICY in the environment (ACTIVE or PASSIVE) is respected.
    public static func relaunchWithPassiveOpenMPIfNeeded() {
        guard ProcessInfo.processInfo.environment["OMP_WAIT_POLICY"] == nil else { return }
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }

    /// Makes the C library keep the memory freed tensors leave, for the next tensors, for the
    /// rest of the process; true when it took effect (glibc).
    ///
    /// A training step allocates activations and gradients of tens of MiB and frees them before
    /// the next step asks for the same sizes again. glibc maps every block over its mmap
    /// threshold (at most 32 MiB) fresh from the kernel and unmaps it on free, so each step
    /// faulted its activations in page by page again: 17 % of a supernet step's samples were
    /// in the kernel, and keeping the memory halved one demo supernet epoch's system time and
    /// cut its CPU time to 0.91x (docs/benchmarks.md, "Freed memory kept for reuse"). The price is that the
    /// process stays at its peak memory until it exits, which a training or search process
    /// reaches again at every step anyway. An executable calls it first thing in main.
    @discardableResult
    public static func keepFreedMemoryForReuse() -> Bool { ctorch_keep_freed_memory() }

    /// OMP_WAIT_POLICY as this process's environment has it (nil when unset), see above.
    public static var ompWaitPolicy: String? {
        ProcessInfo.processInfo.environment["OMP_WAIT_POLICY"]
    }
}
