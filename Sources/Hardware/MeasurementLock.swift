import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Keeps latency measurements apart from each other and from training on one machine.
///
/// A measurement holds an exclusive `flock` on one lock file per machine; training holds a
/// shared one. So two measurements never overlap (in one process or in several), a
/// measurement waits until no training runs, and training waits while a measurement runs
/// (several trainings may run together). Locks are released when the holder is dropped or the
/// process dies (the kernel drops flocks with the file descriptor).
public final class MeasurementLock {
    public enum Mode: String, Sendable {
        /// A latency measurement: alone on the machine.
        case measurement
        /// Training or another heavy job that must not run beside a measurement.
        case training
    }

    /// `EDGENAS_LOCK_FILE` when set, else `edgenas-machine.lock` in the system temporary
    /// directory (shared by all users' EdgeNAS processes on the machine).
    public static var defaultPath: String {
        if let path = ProcessInfo.processInfo.environment["EDGENAS_LOCK_FILE"], !path.isEmpty { return path }
        return (NSTemporaryDirectory() as NSString).appendingPathComponent("edgenas-machine.lock")
    }

    public let path: String
    public let mode: Mode
    private var descriptor: Int32

    /// Waits up to `timeout` seconds for the lock (polling every 20 ms) and holds it until
    /// `release()` or deinit.
    public init(_ mode: Mode, path: String = MeasurementLock.defaultPath, timeout: Double = 600) throws(HardwareError) {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else { throw .lockUnavailable(path: path, reason: String(cString: strerror(errno))) }
        let operation = (mode == .measurement ? LOCK_EX : LOCK_SH) | LOCK_NB
        let deadline = Date().addingTimeInterval(timeout)
        while flock(descriptor, operation) != 0 {
            let failure = errno
            guard failure == EWOULDBLOCK || failure == EINTR else {
                close(descriptor)
                throw .lockUnavailable(path: path, reason: String(cString: strerror(failure)))
            }
            guard Date() < deadline else {
                close(descriptor)
                throw .lockUnavailable(path: path, reason: mode == .measurement
                    ? "another measurement or a training run held it for more than \(timeout) s"
                    : "a latency measurement held it for more than \(timeout) s")
            }
            usleep(20_000)
        }
        self.path = path
        self.mode = mode
        self.descriptor = descriptor
    }

    public func release() {
        guard descriptor >= 0 else { return }
        flock(descriptor, LOCK_UN)
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }

    /// Runs `body` holding the measurement lock.
    public static func measuring<Result>(timeout: Double = 600, _ body: () throws -> Result) throws -> Result {
        let lock = try MeasurementLock(.measurement, timeout: timeout)
        defer { lock.release() }
        return try body()
    }
}
