import Foundation
import Search
import Testing
@testable import Storage

/// The documented `StudyStorage` semantics, checked the same way on every engine (the
/// SQLite and PostgreSQL suites call these).
enum StorageSemantics {
    static func numbering(_ storage: any StudyStorage) async throws {
        let study = try await storage.createStudy(name: TestEngines.uniqueStudyName("numbering"), directions: [.minimize], attributes: [:])
        var numbers: [Int] = []
        var ids: Set<Int> = []
        for _ in 0..<3 {
            let trial = try await storage.startTrial(studyID: study.id)
            #expect(trial.state == .running)
            #expect(trial.heartbeatAt != nil && trial.startedAt != nil)
            numbers.append(trial.number)
            ids.insert(trial.id)
        }
        #expect(numbers == [0, 1, 2])
        #expect(ids.count == 3)
        // A second study numbers from 0 again.
        let other = try await storage.createStudy(name: TestEngines.uniqueStudyName("numbering"), directions: [.minimize], attributes: [:])
        #expect(try await storage.startTrial(studyID: other.id).number == 0)
        let stored = try await storage.trials(studyID: study.id, states: nil)
        #expect(stored.map(\.number) == [0, 1, 2])
        #expect(stored.allSatisfy { $0.state == .running })
    }

    static func waitingTrialsFirst(_ storage: any StudyStorage) async throws {
        let study = try await storage.createStudy(name: TestEngines.uniqueStudyName("waiting"), directions: [.minimize], attributes: [:])
        let first = try await storage.startTrial(studyID: study.id)
        let baseline = try await storage.enqueueTrial(studyID: study.id, parameters: ["x": .double(1.5), "op": .string("conv3")])
        let guess = try await storage.enqueueTrial(studyID: study.id, parameters: ["x": .int(4)])
        #expect(baseline.state == .waiting && baseline.number == 1)
        #expect(guess.number == 2)

        let takenFirst = try await storage.startTrial(studyID: study.id)
        #expect(takenFirst.id == baseline.id)
        #expect(takenFirst.number == 1)
        #expect(takenFirst.state == .running)
        #expect(takenFirst.parameters == ["x": .double(1.5), "op": .string("conv3")])
        let takenSecond = try await storage.startTrial(studyID: study.id)
        #expect(takenSecond.id == guess.id)
        let fresh = try await storage.startTrial(studyID: study.id)
        #expect(fresh.number == 3)
        #expect(fresh.parameters.isEmpty)

        // setParameters merges into what the enqueued trial brought.
        try await storage.setParameters(trialID: takenFirst.id, ["width": .int(32), "x": .double(2.5)])
        let merged = try await storage.trials(studyID: study.id, states: [.running]).first { $0.id == takenFirst.id }
        #expect(merged?.parameters == ["x": .double(2.5), "op": .string("conv3"), "width": .int(32)])
        #expect(try await storage.trials(studyID: study.id, states: [.waiting]).isEmpty)
        #expect(first.number == 0)
    }

    static func finishOnce(_ storage: any StudyStorage) async throws {
        let study = try await storage.createStudy(
            name: TestEngines.uniqueStudyName("finish"), directions: [.minimize, .maximize], attributes: [:])
        let trial = try await storage.startTrial(studyID: study.id)
        try await storage.setParameters(trialID: trial.id, ["x": .double(0.25)])
        try await storage.finishTrial(trialID: trial.id, state: .complete, values: [1.5, -.infinity], constraints: [-1, 0])

        let stored = try #require(try await storage.trials(studyID: study.id, states: [.complete]).first)
        #expect(stored.id == trial.id)
        #expect(stored.values == [1.5, -.infinity])
        #expect(stored.constraints == [-1, 0])
        #expect(stored.isFeasible)
        #expect(stored.completedAt != nil)

        await #expect(throws: StudyStorageError.trialAlreadyFinished(id: trial.id, state: .complete)) {
            try await storage.finishTrial(trialID: trial.id, state: .failed, values: nil, constraints: nil)
        }
        await #expect(throws: StudyStorageError.trialAlreadyFinished(id: trial.id, state: .complete)) {
            try await storage.setParameters(trialID: trial.id, ["x": .double(9)])
        }
        await #expect(throws: StudyStorageError.trialAlreadyFinished(id: trial.id, state: .complete)) {
            try await storage.reportIntermediate(trialID: trial.id, step: 3, value: 1)
        }
        // The refused calls changed nothing.
        let after = try #require(try await storage.trials(studyID: study.id, states: nil).first)
        #expect(after == stored)

        let pruned = try await storage.startTrial(studyID: study.id)
        try await storage.finishTrial(trialID: pruned.id, state: .pruned, values: nil, constraints: nil)
        #expect(try await storage.trials(studyID: study.id, states: [.pruned]).map(\.id) == [pruned.id])

        let running = try await storage.startTrial(studyID: study.id)
        await #expect(throws: StorageError.notAFinalState(trialID: running.id, state: .running)) {
            try await storage.finishTrial(trialID: running.id, state: .running, values: nil, constraints: nil)
        }
        await #expect(throws: StudyStorageError.trialNotFound(id: 987_654_321)) {
            try await storage.finishTrial(trialID: 987_654_321, state: .complete, values: [0], constraints: nil)
        }
    }

    static func heartbeats(_ storage: any StudyStorage) async throws {
        let study = try await storage.createStudy(name: TestEngines.uniqueStudyName("heartbeat"), directions: [.minimize], attributes: [:])
        let trial = try await storage.startTrial(studyID: study.id)
        let started = try #require(trial.heartbeatAt)
        try await Task.sleep(for: .milliseconds(300))
        try await storage.heartbeat(trialID: trial.id)
        let beaten = try #require(try await storage.trials(studyID: study.id, states: nil).first?.heartbeatAt)
        #expect(beaten.timeIntervalSince(started) >= 0.25)
        // A trial with a fresh heartbeat is not stale.
        #expect(try await storage.failStaleTrials(studyID: study.id, timeout: 60, maxRetries: 3).isEmpty)

        try await storage.finishTrial(trialID: trial.id, state: .complete, values: [0], constraints: nil)
        await #expect(throws: StudyStorageError.trialAlreadyFinished(id: trial.id, state: .complete)) {
            try await storage.heartbeat(trialID: trial.id)
        }
        await #expect(throws: StudyStorageError.trialNotFound(id: 987_654_321)) {
            try await storage.heartbeat(trialID: 987_654_321)
        }
    }

    static func staleTrialsFailedAndRequeued(_ storage: any StudyStorage) async throws {
        // The alive trial beats 3.5 s after the dead one started, and the check counts 2.5 s
        // of silence as death. A machine so busy that the beat and the check land 2.5 s apart
        // proves nothing either way, so that round is run again on a new study.
        for _ in 0..<5 {
            if try await staleTrialsRound(storage) { return }
        }
        Issue.record("five rounds in a row had 2.5 s between a heartbeat and the check after it")
    }

    /// One round of `staleTrialsFailedAndRequeued`; false when the machine was too busy for it to tell.
    private static func staleTrialsRound(_ storage: any StudyStorage) async throws -> Bool {
        let study = try await storage.createStudy(name: TestEngines.uniqueStudyName("stale"), directions: [.minimize], attributes: [:])
        let dead = try await storage.startTrial(studyID: study.id)
        try await storage.setParameters(trialID: dead.id, ["x": .double(-3.25), "op": .string("mbconv")])
        let alive = try await storage.startTrial(studyID: study.id)
        let done = try await storage.startTrial(studyID: study.id)
        try await storage.finishTrial(trialID: done.id, state: .complete, values: [7], constraints: nil)
        try await Task.sleep(for: .milliseconds(3500))
        let beat = ContinuousClock.now
        try await storage.heartbeat(trialID: alive.id)

        let failed = try await storage.failStaleTrials(studyID: study.id, timeout: 2.5, maxRetries: 2)
        if ContinuousClock.now - beat >= .seconds(2.5) { return false }
        #expect(failed == [dead.id])
        let trials = try await storage.trials(studyID: study.id, states: nil)
        let byID = Dictionary(uniqueKeysWithValues: trials.map { ($0.id, $0) })
        #expect(byID[dead.id]?.state == .failed)
        #expect(byID[dead.id]?.completedAt != nil)
        #expect(byID[alive.id]?.state == .running)
        #expect(byID[done.id]?.state == .complete)
        #expect(byID[done.id]?.values == [7])
        let requeued = try #require(trials.first { $0.state == .waiting })
        #expect(requeued.parameters == ["x": .double(-3.25), "op": .string("mbconv")])
        #expect(requeued.retryCount == 1)
        #expect(requeued.number == 3)

        // The re-queued parameters go to the next worker before anything new.
        let next = try await storage.startTrial(studyID: study.id)
        #expect(next.id == requeued.id)
        #expect(next.retryCount == 1)
        return true
    }

    static func retryLimit(_ storage: any StudyStorage) async throws {
        let study = try await storage.createStudy(name: TestEngines.uniqueStudyName("retries"), directions: [.minimize], attributes: [:])
        var trial = try await storage.startTrial(studyID: study.id)
        try await storage.setParameters(trialID: trial.id, ["x": .int(3)])
        // maxRetries 2: the parameters run three times in all, then stay failed.
        for expectedRetry in 1...2 {
            try await Task.sleep(for: .milliseconds(400))
            #expect(try await storage.failStaleTrials(studyID: study.id, timeout: 0.3, maxRetries: 2) == [trial.id])
            trial = try await storage.startTrial(studyID: study.id)
            #expect(trial.retryCount == expectedRetry)
            #expect(trial.parameters == ["x": .int(3)])
        }
        try await Task.sleep(for: .milliseconds(400))
        #expect(try await storage.failStaleTrials(studyID: study.id, timeout: 0.3, maxRetries: 2) == [trial.id])
        let trials = try await storage.trials(studyID: study.id, states: nil)
        #expect(trials.count == 3)
        #expect(trials.allSatisfy { $0.state == .failed })
        #expect(trials.map(\.retryCount) == [0, 1, 2])
        #expect(try await storage.trials(studyID: study.id, states: [.waiting]).isEmpty)
    }

    static func deletingStudies(_ storage: any StudyStorage) async throws {
        let name = TestEngines.uniqueStudyName("delete")
        let study = try await storage.createStudy(name: name, directions: [.minimize], attributes: ["budget": "10"])
        let trial = try await storage.startTrial(studyID: study.id)
        try await storage.reportIntermediate(trialID: trial.id, step: 1, value: 0.5)
        try await storage.setUserAttribute(trialID: trial.id, key: "latency_ms", value: "12.5")
        _ = try await storage.enqueueTrial(studyID: study.id, parameters: ["x": .int(1)])
        let keep = try await storage.createStudy(name: TestEngines.uniqueStudyName("keep"), directions: [.maximize], attributes: [:])
        _ = try await storage.startTrial(studyID: keep.id)

        try await storage.deleteStudy(named: name)
        await #expect(throws: StudyStorageError.studyNotFound(name: name)) { try await storage.study(named: name) }
        await #expect(throws: StudyStorageError.studyNotFound(name: name)) { try await storage.deleteStudy(named: name) }
        #expect(try await !storage.studies().map(\.name).contains(name))
        await #expect(throws: StudyStorageError.self) { try await storage.startTrial(studyID: study.id) }
        await #expect(throws: StudyStorageError.trialNotFound(id: trial.id)) {
            try await storage.heartbeat(trialID: trial.id)
        }
        // The other study is untouched, and the name is free again (numbering from 0).
        #expect(try await storage.trials(studyID: keep.id, states: nil).count == 1)
        let again = try await storage.createStudy(name: name, directions: [.minimize], attributes: [:])
        #expect(again.attributes.isEmpty)
        #expect(try await storage.startTrial(studyID: again.id).number == 0)
    }

    static func attributes(_ storage: any StudyStorage) async throws {
        let name = TestEngines.uniqueStudyName("attributes")
        let created = try await storage.createStudy(
            name: name, directions: [.minimize, .maximize], attributes: ["space": "{\"depth\":[1,2]}", "budget": "40"])
        #expect(created.name == name)
        await #expect(throws: StudyStorageError.studyAlreadyExists(name: name)) {
            _ = try await storage.createStudy(name: name, directions: [.minimize], attributes: [:])
        }
        try await storage.setStudyAttribute(studyID: created.id, key: "budget", value: "80")
        try await storage.setStudyAttribute(studyID: created.id, key: "sampler", value: "tpe")
        let study = try await storage.study(named: name)
        #expect(study.id == created.id)
        #expect(study.directions == [.minimize, .maximize])
        #expect(study.attributes == ["space": "{\"depth\":[1,2]}", "budget": "80", "sampler": "tpe"])
        #expect(abs(study.createdAt.timeIntervalSince(created.createdAt)) < 1)
        #expect(try await storage.studies().contains { $0.name == name && $0.attributes["sampler"] == "tpe" })
        await #expect(throws: StudyStorageError.self) {
            try await storage.setStudyAttribute(studyID: 987_654_321, key: "k", value: "v")
        }

        let trial = try await storage.startTrial(studyID: study.id)
        try await storage.setUserAttribute(trialID: trial.id, key: "error", value: "none")
        try await storage.setUserAttribute(trialID: trial.id, key: "error", value: "out of memory")
        try await storage.setUserAttribute(trialID: trial.id, key: "board", value: "rk3588")
        try await storage.reportIntermediate(trialID: trial.id, step: 0, value: 0.9)
        try await storage.reportIntermediate(trialID: trial.id, step: 1, value: 0.7)
        try await storage.reportIntermediate(trialID: trial.id, step: 1, value: 0.6)
        let stored = try #require(try await storage.trials(studyID: study.id, states: nil).first)
        #expect(stored.userAttributes == ["error": "out of memory", "board": "rk3588"])
        #expect(stored.intermediateValues == [0: 0.9, 1: 0.6])
        await #expect(throws: StudyStorageError.studyNotFound(name: "no-such-study")) {
            try await storage.study(named: "no-such-study")
        }
    }
}
