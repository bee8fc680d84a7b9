import Foundation
import CTorch

/// Process-wide libtorch settings.
///
/// Threads: libtorch parallelises kernels with OpenMP (Debian's build links libgomp).
/// libgomp reads OMP_WAIT_POLICY once, in its load-time constructor, which runs before any
/// code of ours; an idle OpenMP worker then spins for a while before sleeping. On small
/// shared machines (2 cores, several processes) spinning workers steal the cores other
/// processes need, so start EdgeNAS with `OMP_WAIT_POLICY=PASSIVE` in the environment
/// (the `edgenas` launcher and the benchmark scripts do). `Torch.ompWaitPolicy` reports it.
public enum Torch {
    /// Sets the number of threads libtorch uses for intra-op parallelism (at least 1).
    public static func setThreadCount(_ count: Int) {
        ctorch_set_num_threads(Int32(clamping: count))
    }

    /// The number of intra-op threads.
    public static var threadCount: Int { Int(ctorch_get_num_threads()) }

    /// The number of inter-op threads.
    public static var interopThreadCount: Int { Int(ctorch_get_num_interop_threads()) }

    /// Seeds libtorch's default generator (normal/uniform/kaiming initialisation).
    public static func manualSeed(_ seed: UInt64) { ctorch_manual_seed(seed) }

    /// Whether autograd records operations on the current thread.
    public static var isGradEnabled: Bool { ctorch_is_grad_enabled() }

    /// Runs `body` with autograd recording off on this thread (like `with torch.no_grad():`),
    /// restoring the previous setting afterwards, also when `body` throws.
    public static func withNoGrad<Result>(_ body: () throws -> Result) rethrows -> Result {
        let previous = ctorch_set_grad_enabled(false)
        defer { _ = ctorch_set_grad_enabled(previous) }
        return try body()
    }

    /// OMP_WAIT_POLICY as this process's environment has it (nil when unset), see above.
    public static var ompWaitPolicy: String? {
        ProcessInfo.processInfo.environment["OMP_WAIT_POLICY"]
    }
}
