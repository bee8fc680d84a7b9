import Foundation

/// The behaviour every `StudyStorage` must show, as an executable check that any storage's
/// tests can call (`try await StorageConformance.run { try await makeEmptyStorage() }`).
/// Each check gets a fresh storage from `makeStorage` and throws a `Failure` naming what
/// differed.
public enum StorageConformance {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let check: String
        public let detail: String
        public var description: String { "storage conformance '\(check)': \(detail)" }
    }

    public static func run(_ makeStorage: () async throws -> any StudyStorage) async throws {
        try await studies(makeStorage())
        try await numberingAndQueue(makeStorage())
        try await finishing(makeStorage())
        try await staleTrials(makeStorage())
        try await concurrentStarts(makeStorage())
    }

    private static func expect(_ condition: Bool, _ check: String, _ detail: @autoclosure () -> String) throws {
        if !condition { throw Failure(check: check, detail: detail()) }
    }

    private static func expectError<T>(_ expected: StudyStorageError, _ check: String, _ body: () async throws -> T) async throws {
        do {
            _ = try await body()
            throw Failure(check: check, detail: "expected error \(expected), got success")
        } catch let error as StudyStorageError {
            try expect(error == expected, check, "expected error \(expected), got \(error)")
        }
    }

    static func studies(_ storage: any StudyStorage) async throws {
        let created = try await storage.createStudy(name: "a", directions: [.minimize, .maximize], attributes: ["k": "v"])
        try expect(created.name == "a" && created.directions == [.minimize, .maximize], "createStudy", "got \(created)")
        try await expectError(.studyAlreadyExists(name: "a"), "duplicate study") {
            try await storage.createStudy(name: "a", directions: [.minimize], attributes: [:])
        }
        try await storage.setStudyAttribute(studyID: created.id, key: "k2", value: "v2")
        let loaded = try await storage.study(named: "a")
        try expect(loaded.id == created.id && loaded.attributes == ["k": "v", "k2": "v2"], "study attributes", "got \(loaded.attributes)")
        _ = try await storage.createStudy(name: "b", directions: [.minimize], attributes: [:])
        let names = try await storage.studies().map(\.name)
        try expect(Set(names) == ["a", "b"], "studies()", "got \(names)")
        try await storage.deleteStudy(named: "a")
        try await expectError(.studyNotFound(name: "a"), "deleted study") { try await storage.study(named: "a") }
    }

    static func numberingAndQueue(_ storage: any StudyStorage) async throws {
        let study = try await storage.createStudy(name: "s", directions: [.minimize], attributes: [:])
        let first = try await storage.startTrial(studyID: study.id)
        try expect(first.number == 0 && first.state == .running && first.heartbeatAt != nil, "startTrial", "got \(first)")
        let queued = try await storage.enqueueTrial(studyID: study.id, parameters: ["x": .int(3)])
        try expect(queued.state == .waiting && queued.number == 1, "enqueueTrial", "got \(queued)")
        let second = try await storage.startTrial(studyID: study.id)
        try expect(second.id == queued.id && second.state == .running && second.parameters == ["x": .int(3)],
                   "waiting trials first", "got \(second)")
        let nothingWaits = try await storage.startWaitingTrial(studyID: study.id)
        try expect(nothingWaits == nil, "startWaitingTrial with no waiting trial", "got \(String(describing: nothingWaits))")
        let third = try await storage.startTrial(studyID: study.id)
        try expect(third.number == 2 && third.parameters.isEmpty, "next number", "got \(third)")
        try await storage.setParameters(trialID: third.id, ["y": .string("conv")])
        try await storage.reportIntermediate(trialID: third.id, step: 4, value: 0.5)
        try await storage.setUserAttribute(trialID: third.id, key: "device", value: "raspi4")
        let stored = try await storage.trials(studyID: study.id, states: nil)
        try expect(stored.map(\.number) == [0, 1, 2], "trials ordered by number", "got \(stored.map(\.number))")
        let t = stored[2]
        try expect(t.parameters == ["y": .string("conv")] && t.intermediateValues == [4: 0.5] && t.userAttributes == ["device": "raspi4"],
                   "trial fields round-trip", "got \(t)")
    }

    static func finishing(_ storage: any StudyStorage) async throws {
        let study = try await storage.createStudy(name: "f", directions: [.minimize, .minimize], attributes: [:])
        let trial = try await storage.startTrial(studyID: study.id)
        try await storage.finishTrial(trialID: trial.id, state: .complete, values: [1.5, -2], constraints: [0.25])
        let done = try await storage.trials(studyID: study.id, states: [.complete])
        try expect(done.count == 1 && done[0].values == [1.5, -2] && done[0].constraints == [0.25] && done[0].completedAt != nil,
                   "finishTrial", "got \(done)")
        try await expectError(.trialAlreadyFinished(id: trial.id, state: .complete), "finished trials are frozen") {
            try await storage.reportIntermediate(trialID: trial.id, step: 1, value: 1)
        }
        try await expectError(.trialNotFound(id: trial.id + 1_000_000), "unknown trial") {
            try await storage.heartbeat(trialID: trial.id + 1_000_000)
        }
        let running = try await storage.trials(studyID: study.id, states: [.running])
        try expect(running.isEmpty, "state filter", "got \(running)")
    }

    static func staleTrials(_ storage: any StudyStorage) async throws {
        let study = try await storage.createStudy(name: "h", directions: [.minimize], attributes: [:])
        let dead = try await storage.startTrial(studyID: study.id)
        try await storage.setParameters(trialID: dead.id, ["x": .double(0.5)])
        try await Task.sleep(for: .milliseconds(1200))
        let alive = try await storage.startTrial(studyID: study.id)
        let failed = try await storage.failStaleTrials(studyID: study.id, timeout: 1, maxRetries: 1)
        try expect(failed == [dead.id], "failStaleTrials fails only stale trials", "got \(failed), alive \(alive.id)")
        let all = try await storage.trials(studyID: study.id, states: nil)
        let requeued = all.filter { $0.state == .waiting }
        try expect(requeued.count == 1 && requeued[0].parameters == ["x": .double(0.5)] && requeued[0].retryCount == 1,
                   "stale trial re-queued", "got \(requeued)")
        // The re-queued copy dies too: past maxRetries it is not queued again.
        let retry = try await storage.startTrial(studyID: study.id)
        try await Task.sleep(for: .milliseconds(1200))
        try await storage.heartbeat(trialID: alive.id)
        let failedAgain = try await storage.failStaleTrials(studyID: study.id, timeout: 1, maxRetries: 1)
        try expect(failedAgain == [retry.id], "retry fails", "got \(failedAgain)")
        let waiting = try await storage.trials(studyID: study.id, states: [.waiting])
        try expect(waiting.isEmpty, "maxRetries respected", "got \(waiting)")
    }

    static func concurrentStarts(_ storage: any StudyStorage) async throws {
        let study = try await storage.createStudy(name: "c", directions: [.minimize], attributes: [:])
        for i in 0..<5 { _ = try await storage.enqueueTrial(studyID: study.id, parameters: ["i": .int(i)]) }
        let started = try await withThrowingTaskGroup(of: FrozenTrial.self) { group in
            for _ in 0..<20 { group.addTask { try await storage.startTrial(studyID: study.id) } }
            return try await group.reduce(into: [FrozenTrial]()) { $0.append($1) }
        }
        let numbers = started.map(\.number).sorted()
        try expect(numbers == Array(0..<20), "atomic numbering", "got \(numbers)")
        let fromQueue = started.filter { !$0.parameters.isEmpty }.compactMap { $0.parameters["i"]?.intValue }.sorted()
        try expect(fromQueue == Array(0..<5), "each waiting trial handed out once", "got \(fromQueue)")

        // A queue of jobs: each waiting trial claimed once, and no trial created.
        let jobs = try await storage.createStudy(name: "jobs", directions: [.minimize], attributes: [:])
        for i in 0..<5 { _ = try await storage.enqueueTrial(studyID: jobs.id, parameters: ["i": .int(i)]) }
        let claimed = try await withThrowingTaskGroup(of: FrozenTrial?.self) { group in
            for _ in 0..<12 { group.addTask { try await storage.startWaitingTrial(studyID: jobs.id) } }
            return try await group.reduce(into: [FrozenTrial]()) { if let trial = $1 { $0.append(trial) } }
        }
        let jobNumbers = claimed.compactMap { $0.parameters["i"]?.intValue }.sorted()
        try expect(jobNumbers == Array(0..<5) && claimed.allSatisfy { $0.state == .running && $0.heartbeatAt != nil },
                   "each waiting job claimed once", "got \(claimed)")
        let jobTrials = try await storage.trials(studyID: jobs.id, states: nil)
        try expect(jobTrials.count == 5, "startWaitingTrial creates no trial", "got \(jobTrials.count) trials")
    }
}
