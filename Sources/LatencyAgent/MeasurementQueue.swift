import Dispatch
import Foundation
import LatencyBackends

/// The board's one measurement lane: requests run one at a time in arrival order (FIFO), so
/// two workers never time models against each other on the same cores, and each answer says
/// how long it waited.
///
/// A request takes its place (`admit`) before its upload is read, so a full queue refuses at
/// once instead of buffering bodies it cannot serve. A request whose client went away before
/// its turn (its task is cancelled) is skipped; one already measuring runs on, so a retry with
/// the same request id gets its result. Every wait ends at the wall-clock cap, and `close()`
/// (the agent stopping) answers every waiting and running request at once.
///
/// The work runs on a serial dispatch queue rather than in the server's tasks: a measurement
/// blocks its thread for seconds, which must not starve the event loops or the cooperative
/// thread pool that keep answering health checks and refusing requests.
final class MeasurementQueue: @unchecked Sendable {
    let maximumLength: Int
    private let lane = DispatchQueue(label: "edgenas.agent.measurements", qos: .userInitiated)
    /// The wall-clock caps fire here rather than on `DispatchQueue.global()`, whose few threads
    /// may all be blocked on a busy machine: the cap must answer on time whatever else runs.
    private let caps = DispatchQueue(label: "edgenas.agent.measurement-caps", qos: .userInitiated)
    private let lock = NSLock()
    private var pending = 0
    private var skipped = 0
    private var closed = false
    /// Requests handed to `run` and not answered yet, for `close()`.
    private var waiting: [ObjectIdentifier: any Finishable] = [:]

    init(maximumLength: Int) {
        self.maximumLength = maximumLength
    }

    /// Requests admitted and not yet finished (waiting, reading their upload, or running).
    var length: Int { lock.withLock { pending } }

    /// Admitted requests that were dropped before their turn because their client went away.
    var skippedCount: Int { lock.withLock { skipped } }

    /// Takes a place in the queue, or throws `QueueFull` at once when `maximumLength` requests
    /// hold one (or the agent is stopping). The place must be given to `run` or handed back
    /// with `withdraw`.
    func admit() throws -> Admission {
        try lock.withLock {
            guard !closed, pending < maximumLength else { throw QueueFull(length: pending, stopping: closed) }
            pending += 1
            return Admission(position: pending - 1, arrival: .now)
        }
    }

    /// Gives back a place whose request ended before it was run (a bad upload, a duplicate).
    func withdraw(_ admission: Admission) {
        lock.withLock { pending -= 1 }
    }

    /// Answers every request waiting or running with `AgentStopping` and admits no more.
    func close() {
        let open: [any Finishable] = lock.withLock {
            closed = true
            defer { waiting = [:] }
            return Array(waiting.values)
        }
        for ticket in open { ticket.stop() }
    }

    /// Runs `work` after everything submitted before it. Throws `CancellationError` when the
    /// caller's task is cancelled before the work started (the work is then skipped),
    /// `MeasurementTimedOut` when `timeoutSeconds` pass from its start, and `AgentStopping` on
    /// `close()`. A measurement that already started runs on to its end, holding the lane.
    /// `isWanted` is asked at the request's turn: false skips it like a cancellation (a request
    /// id whose clients all went away).
    func run<Value: Sendable>(
        _ admission: Admission, timeoutSeconds: Double, isWanted: @escaping @Sendable () -> Bool = { true },
        _ work: @escaping @Sendable () throws -> Value
    ) async throws -> (Value, QueueReport) {
        let ticket = Ticket<(Value, QueueReport)>()
        let key = ObjectIdentifier(ticket)
        let alreadyClosed = lock.withLock {
            if !closed { waiting[key] = ticket }
            return closed
        }
        if alreadyClosed { ticket.stop() }
        defer { lock.withLock { _ = waiting.removeValue(forKey: key) } }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                ticket.attach(continuation)
                lane.async { [self] in
                    guard isWanted() || ticket.isAnswered else {
                        ticket.finish(.failure(CancellationError()))
                        lock.withLock { pending -= 1; skipped += 1 }
                        return
                    }
                    guard ticket.start() else {
                        // Answered before its turn: its client went away, or the agent is stopping.
                        lock.withLock { pending -= 1; if !closed { skipped += 1 } }
                        return
                    }
                    let start = ContinuousClock.now
                    caps.asyncAfter(deadline: .now() + timeoutSeconds) {
                        ticket.finish(.failure(MeasurementTimedOut(seconds: timeoutSeconds)))
                    }
                    let result = Result { try work() }
                    let end = ContinuousClock.now
                    lock.withLock { pending -= 1 }
                    let report = QueueReport(positionOnArrival: admission.position, waitSeconds: Self.seconds(start - admission.arrival),
                                             measureSeconds: Self.seconds(end - start))
                    ticket.finish(result.map { ($0, report) })
                }
            }
        } onCancel: {
            ticket.cancelIfWaiting()
        }
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }
}

/// A request's place in the queue.
struct Admission: Sendable {
    /// Requests ahead of it when it was admitted.
    var position: Int
    var arrival: ContinuousClock.Instant
}

private protocol Finishable: AnyObject, Sendable {
    func stop()
}

/// One request in the lane. Its continuation is resumed once, by whichever comes first: the
/// work's result, the timeout, the agent stopping, or the caller's cancellation before the
/// work started (any of which can come before the continuation is attached).
private final class Ticket<Value: Sendable>: Finishable, @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Value, any Error>?
    private var early: Result<Value, any Error>?
    private var answered = false
    private var started = false

    func attach(_ continuation: CheckedContinuation<Value, any Error>) {
        let resumeNow: Result<Value, any Error>? = lock.withLock {
            if let early { return early }
            self.continuation = continuation
            return nil
        }
        if let resumeNow { continuation.resume(with: resumeNow) }
    }

    var isAnswered: Bool { lock.withLock { answered } }

    /// Marks the work as started; false when the request was already answered (skip it).
    func start() -> Bool {
        lock.withLock {
            guard !answered else { return false }
            started = true
            return true
        }
    }

    /// The client went away: answered (and later skipped) only if the work has not started.
    func cancelIfWaiting() {
        guard lock.withLock({ !started }) else { return }
        finish(.failure(CancellationError()))
    }

    func stop() { finish(.failure(AgentStopping())) }

    func finish(_ result: Result<Value, any Error>) {
        let resume: CheckedContinuation<Value, any Error>? = lock.withLock {
            guard !answered else { return nil }
            answered = true
            guard let continuation else {
                early = result
                return nil
            }
            self.continuation = nil
            return continuation
        }
        resume?.resume(with: result)
    }
}

/// The queue already holds its maximum number of requests, or the agent is stopping (HTTP 503:
/// try again later).
struct QueueFull: Error {
    var length: Int
    var stopping: Bool
}

/// The agent is stopping (SIGTERM or SIGINT): open requests are answered with HTTP 503.
struct AgentStopping: Error {}

/// A measurement ran past the agent's wall-clock cap (HTTP 422: the model is too slow for it).
struct MeasurementTimedOut: Error, CustomStringConvertible {
    var seconds: Double
    var description: String {
        "the measurement ran past this agent's cap of \(seconds) s per request (--measure-timeout); measure fewer runs or a faster model"
    }
}
