import Foundation

/// Study storage held in memory: for tests, single-process searches and as the reference
/// behaviour of the `StudyStorage` protocol. Being an actor, each method is atomic.
public actor InMemoryStorage: StudyStorage {
    private var studiesByName: [String: StudyRecord] = [:]
    /// Trials per study id, in number order.
    private var trialsByStudy: [Int: [FrozenTrial]] = [:]
    /// Where each trial lives: study id and index in `trialsByStudy`.
    private var locationByTrial: [Int: (study: Int, index: Int)] = [:]
    private var nextStudyID = 0
    private var nextTrialID = 0
    /// The clock, injectable so that heartbeat expiry can be tested without sleeping.
    private let now: @Sendable () -> Date

    public init(clock: @escaping @Sendable () -> Date = { Date() }) {
        now = clock
    }

    public func createStudy(name: String, directions: [StudyDirection], attributes: [String: String]) throws -> StudyRecord {
        if studiesByName[name] != nil { throw StudyStorageError.studyAlreadyExists(name: name) }
        let record = StudyRecord(id: nextStudyID, name: name, directions: directions, attributes: attributes, createdAt: now())
        nextStudyID += 1
        studiesByName[name] = record
        trialsByStudy[record.id] = []
        return record
    }

    public func study(named name: String) throws -> StudyRecord {
        guard let record = studiesByName[name] else { throw StudyStorageError.studyNotFound(name: name) }
        return record
    }

    public func studies() -> [StudyRecord] {
        studiesByName.values.sorted { $0.id < $1.id }
    }

    public func deleteStudy(named name: String) throws {
        guard let record = studiesByName.removeValue(forKey: name) else { throw StudyStorageError.studyNotFound(name: name) }
        for trial in trialsByStudy.removeValue(forKey: record.id) ?? [] { locationByTrial[trial.id] = nil }
    }

    public func setStudyAttribute(studyID: Int, key: String, value: String) throws {
        guard let name = studiesByName.first(where: { $0.value.id == studyID })?.key else {
            throw StudyStorageError.studyNotFound(name: "#\(studyID)")
        }
        studiesByName[name]!.attributes[key] = value
    }

    private func requireStudy(_ studyID: Int) throws {
        guard trialsByStudy[studyID] != nil else { throw StudyStorageError.studyNotFound(name: "#\(studyID)") }
    }

    private func appendTrial(studyID: Int, state: TrialState, parameters: [String: ParameterValue], retryCount: Int) -> FrozenTrial {
        let number = trialsByStudy[studyID]!.count
        let date = now()
        let trial = FrozenTrial(
            id: nextTrialID, number: number, state: state, parameters: parameters,
            startedAt: state == .running ? date : nil, heartbeatAt: state == .running ? date : nil, retryCount: retryCount)
        nextTrialID += 1
        locationByTrial[trial.id] = (studyID, number)
        trialsByStudy[studyID]!.append(trial)
        return trial
    }

    public func enqueueTrial(studyID: Int, parameters: [String: ParameterValue]) throws -> FrozenTrial {
        try requireStudy(studyID)
        return appendTrial(studyID: studyID, state: .waiting, parameters: parameters, retryCount: 0)
    }

    public func startTrial(studyID: Int) throws -> FrozenTrial {
        try startWaitingTrial(studyID: studyID) ?? appendTrial(studyID: studyID, state: .running, parameters: [:], retryCount: 0)
    }

    public func startWaitingTrial(studyID: Int) throws -> FrozenTrial? {
        try requireStudy(studyID)
        // An index loop: a `firstIndex(where:)` closure copied every trial record it looked at.
        // (Scoped, so that the array is uniquely referenced again when it is mutated below.)
        let waiting: Int? = {
            let trials = trialsByStudy[studyID]!
            for i in trials.indices where trials[i].state == .waiting { return i }
            return nil
        }()
        guard let index = waiting else { return nil }
        let date = now()
        trialsByStudy[studyID]![index].state = .running
        trialsByStudy[studyID]![index].startedAt = date
        trialsByStudy[studyID]![index].heartbeatAt = date
        return trialsByStudy[studyID]![index]
    }

    /// Applies `change` to a trial that must still be running (or waiting, when allowed).
    private func mutateUnfinished(_ trialID: Int, _ change: (inout FrozenTrial) -> Void) throws {
        guard let (study, index) = locationByTrial[trialID] else { throw StudyStorageError.trialNotFound(id: trialID) }
        let state = trialsByStudy[study]![index].state
        if state.isFinished { throw StudyStorageError.trialAlreadyFinished(id: trialID, state: state) }
        change(&trialsByStudy[study]![index])
    }

    public func setParameters(trialID: Int, _ parameters: [String: ParameterValue]) throws {
        try mutateUnfinished(trialID) { $0.parameters = parameters }
    }

    public func reportIntermediate(trialID: Int, step: Int, value: Double) throws {
        try mutateUnfinished(trialID) { $0.intermediateValues[step] = value }
    }

    public func setUserAttribute(trialID: Int, key: String, value: String) throws {
        try mutateUnfinished(trialID) { $0.userAttributes[key] = value }
    }

    public func finishTrial(trialID: Int, state: TrialState, values: [Double]?, constraints: [Double]?) throws {
        let date = now()
        try mutateUnfinished(trialID) { trial in
            trial.state = state
            trial.values = values
            trial.constraints = constraints
            trial.completedAt = date
        }
    }

    public func heartbeat(trialID: Int) throws {
        let date = now()
        try mutateUnfinished(trialID) { $0.heartbeatAt = date }
    }

    public func failStaleTrials(studyID: Int, timeout: TimeInterval, maxRetries: Int) throws -> [Int] {
        try requireStudy(studyID)
        let date = now()
        var failed: [Int] = []
        for index in trialsByStudy[studyID]!.indices {
            let trial = trialsByStudy[studyID]![index]
            guard trial.state == .running, let beat = trial.heartbeatAt, date.timeIntervalSince(beat) > timeout else { continue }
            trialsByStudy[studyID]![index].state = .failed
            trialsByStudy[studyID]![index].completedAt = date
            failed.append(trial.id)
            if trial.retryCount < maxRetries {
                _ = appendTrial(studyID: studyID, state: .waiting, parameters: trial.parameters, retryCount: trial.retryCount + 1)
            }
        }
        return failed
    }

    public func trials(studyID: Int, states: Set<TrialState>?) throws -> [FrozenTrial] {
        try requireStudy(studyID)
        let all = trialsByStudy[studyID]!
        guard let states else { return all }
        return all.filter { states.contains($0.state) }
    }
}
