import Foundation

/// A finished answer as it went out: status code and JSON body.
struct StoredAnswer: Sendable {
    var status: Int
    var body: Data
}

/// Answers by request id, so a client that retries (its connection dropped, its wait timed out)
/// gets the answer of the measurement it already asked for instead of a second one: the retry
/// joins a measurement in flight, or gets the finished answer again.
///
/// A measurement in flight keeps its place in the queue while its client reconnects: when its
/// turn comes and no request is waiting for it (the client went away and did not retry), the
/// queue skips it.
actor RequestLedger {
    private struct InFlight {
        var task: Task<StoredAnswer, Never>
        var waiting: Waiting
    }

    private let capacity: Int
    private let keepSeconds: Double
    private var inFlight: [String: InFlight] = [:]
    /// Finished answers in the order they finished (oldest first), at most `capacity`.
    private var finished: [(id: String, answer: StoredAnswer, at: ContinuousClock.Instant)] = []

    init(capacity: Int, keepSeconds: Double) {
        self.capacity = capacity
        self.keepSeconds = keepSeconds
    }

    /// Whether `id` is in flight or answered (and not yet forgotten).
    func knows(_ id: String) -> Bool {
        forgetExpired()
        return inFlight[id] != nil || finished.contains { $0.id == id }
    }

    /// The answer for `id`: the stored one, the one in flight, or a new one from `make` (run in
    /// a task of its own). `joined` says the request did not start a measurement.
    /// `make` gets the count of requests waiting for the answer, which the queue reads at the
    /// measurement's turn.
    func answer(for id: String, make: @escaping @Sendable (Waiting) async -> StoredAnswer) async -> (answer: StoredAnswer, joined: Bool) {
        forgetExpired()
        if let stored = finished.last(where: { $0.id == id }) { return (stored.answer, true) }
        let joined: Bool
        let entry: InFlight
        if let known = inFlight[id] {
            entry = known
            entry.waiting.add(1)
            joined = true
        } else {
            // Counted before the measurement exists: its turn may come at once.
            let waiting = Waiting()
            waiting.add(1)
            entry = InFlight(task: Task { await make(waiting) }, waiting: waiting)
            inFlight[id] = entry
            joined = false
        }
        let answer = await withTaskCancellationHandler {
            await entry.task.value
        } onCancel: {
            entry.waiting.add(-1)
        }
        finish(id, task: entry.task, answer: answer)
        return (answer, joined)
    }

    private func finish(_ id: String, task: Task<StoredAnswer, Never>, answer: StoredAnswer) {
        guard let entry = inFlight[id], entry.task == task else { return }
        inFlight[id] = nil
        // Only answers a retry should see again: a refusal for a full queue or a shutdown is
        // not the measurement's answer, and a retry later may well be measured.
        guard answer.status != 503 else { return }
        finished.append((id, answer, .now))
        if finished.count > capacity { finished.removeFirst(finished.count - capacity) }
    }

    private func forgetExpired() {
        let now = ContinuousClock.now
        finished.removeAll { now - $0.at > .seconds(keepSeconds) }
    }
}

/// How many requests wait for one answer; read by the measurement lane, so it is locked rather
/// than actor state.
final class Waiting: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0

    func add(_ change: Int) { lock.withLock { count += change } }
    var anyone: Bool { lock.withLock { count > 0 } }
}
