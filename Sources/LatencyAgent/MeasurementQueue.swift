import Dispatch
import Foundation
import LatencyBackends

/// The board's one measurement lane: requests run one at a time in arrival order (FIFO), so
/// two workers never time models against each other on the same cores, and each answer says
/// how long it waited.
///
/// The work runs on a serial dispatch queue rather than in the server's tasks: a measurement
/// blocks its thread for seconds, which must not starve the event loops or the cooperative
/// thread pool that keep answering health checks and refusing requests.
final class MeasurementQueue: @unchecked Sendable {
    let maximumLength: Int
    private let lane = DispatchQueue(label: "edgenas.agent.measurements", qos: .userInitiated)
    private let lock = NSLock()
    private var pending = 0

    init(maximumLength: Int) {
        self.maximumLength = maximumLength
    }

    /// Requests waiting or running now.
    var length: Int { lock.withLock { pending } }

    /// Runs `work` after everything submitted before it; throws `QueueFull` at once when
    /// `maximumLength` requests are already pending.
    func submit<Value: Sendable>(_ work: @escaping @Sendable () throws -> Value) async throws -> (Value, QueueReport) {
        let position: Int = try lock.withLock {
            guard pending < maximumLength else { throw QueueFull(length: pending) }
            pending += 1
            return pending - 1
        }
        let arrival = ContinuousClock.now
        return try await withCheckedThrowingContinuation { continuation in
            lane.async { [self] in
                let start = ContinuousClock.now
                let result = Result { try work() }
                let end = ContinuousClock.now
                lock.withLock { pending -= 1 }
                let report = QueueReport(positionOnArrival: position, waitSeconds: Self.seconds(start - arrival),
                                         measureSeconds: Self.seconds(end - start))
                continuation.resume(with: result.map { ($0, report) })
            }
        }
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }
}

/// The queue already holds its maximum number of requests (HTTP 503: try again later).
struct QueueFull: Error {
    var length: Int
}
