// The search's stages that are lists of independent jobs (the selection's reference trainings,
// the retraining of the front's candidates) as queues in the study storage, so that any
// process that sees the storage runs them, with the crash safety of search trials.
import Foundation
import Search

public enum WorkQueueError: Error, Equatable, CustomStringConvertible {
    case jobFailed(queue: String, job: String, error: String)
    case unknownJob(queue: String, job: String)

    public var description: String {
        switch self {
        case .jobFailed(let queue, let job, let error): "\(queue): job \(job) failed: \(error)"
        case .unknownJob(let queue, let job): "\(queue): job '\(job)' is not one this process knows; is its config the same?"
        }
    }
}

/// A queue of jobs kept as a study of its own in the search's storage (named
/// `<study>/<stage>`): one waiting trial per job, whose parameter `job` names it. A process
/// claims the next job (`StudyStorage.startWaitingTrial`), beats while it runs it and stores
/// the job's result (text, JSON) on it; a job whose process died stops beating and is queued
/// again, once, as a search trial is. Finished jobs are never run again, so a rerun resumes.
struct WorkQueue: Sendable {
    let name: String
    let studyID: Int
    let storage: any StudyStorage
    var heartbeatInterval: Duration
    /// A running job silent this long belongs to a dead process.
    var staleTimeout: Double
    var log: @Sendable (String) -> Void

    static let jobParameter = "job", resultAttribute = "result", errorAttribute = "error"
    /// The queue study's attribute holding its job count, written after every job is enqueued:
    /// until then the queue is not ready, and a process that opens it waits.
    static let jobCountAttribute = "jobs"

    /// The queue with `jobs`: created when it does not exist yet; an existing one (a rerun's)
    /// keeps its jobs and gets those it lacks. One process (the search) creates a queue.
    static func create(named name: String, jobs: [String], storage: any StudyStorage, heartbeatInterval: Duration,
                       staleTimeout: Double, log: @escaping @Sendable (String) -> Void) async throws -> WorkQueue {
        let record: StudyRecord
        do {
            record = try await storage.createStudy(name: name, directions: [.maximize], attributes: [:])
        } catch StudyStorageError.studyAlreadyExists {
            record = try await storage.study(named: name)
        }
        let queued = Set(try await storage.trials(studyID: record.id, states: nil).compactMap { $0.parameters[jobParameter]?.stringValue })
        for job in jobs where !queued.contains(job) {
            _ = try await storage.enqueueTrial(studyID: record.id, parameters: [jobParameter: .string(job)])
        }
        try await storage.setStudyAttribute(studyID: record.id, key: jobCountAttribute, value: String(queued.union(jobs).count))
        return WorkQueue(name: name, studyID: record.id, storage: storage, heartbeatInterval: heartbeatInterval,
                         staleTimeout: staleTimeout, log: log)
    }

    /// The queue named `name` once its creator has enqueued every job; nil before.
    static func open(named name: String, storage: any StudyStorage, heartbeatInterval: Duration, staleTimeout: Double,
                     log: @escaping @Sendable (String) -> Void) async throws -> WorkQueue? {
        guard let record = try? await storage.study(named: name), record.attributes[jobCountAttribute] != nil else { return nil }
        return WorkQueue(name: name, studyID: record.id, storage: storage, heartbeatInterval: heartbeatInterval,
                         staleTimeout: staleTimeout, log: log)
    }

    /// Runs waiting jobs until none waits; returns how many this process ran. A job that
    /// throws is failed (its error stored) and the error rethrown; a job taken over by another
    /// process after this one missed its heartbeats is dropped here.
    @discardableResult
    func work(_ run: @Sendable (String) async throws -> String) async throws -> Int {
        var ran = 0
        while true {
            for dead in try await storage.failStaleTrials(studyID: studyID, timeout: staleTimeout, maxRetries: 1) {
                log("\(name): job (trial id \(dead)) stopped beating (its process died); queued again")
            }
            guard let trial = try await storage.startWaitingTrial(studyID: studyID) else { return ran }
            let job = trial.parameters[Self.jobParameter]?.stringValue ?? ""
            try await storage.setUserAttribute(trialID: trial.id, key: TrialRecord.workerAttribute, value: TrialRecord.thisWorker)
            let heart = Task { [storage, heartbeatInterval] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: heartbeatInterval)
                    try? await storage.heartbeat(trialID: trial.id)
                }
            }
            defer { heart.cancel() }
            do {
                let result = try await run(job)
                try await storage.setUserAttribute(trialID: trial.id, key: Self.resultAttribute, value: result)
                try await storage.finishTrial(trialID: trial.id, state: .complete, values: [0], constraints: nil)
                ran += 1
            } catch StudyStorageError.trialAlreadyFinished(_, let state) {
                log("\(name): job \(job) was finished as \(state.rawValue) elsewhere while this process ran it; its result here is dropped")
            } catch {
                try? await storage.setUserAttribute(trialID: trial.id, key: Self.errorAttribute, value: "\(error)")
                try? await storage.finishTrial(trialID: trial.id, state: .failed, values: nil, constraints: nil)
                throw error
            }
        }
    }

    /// Works the queue until every job is finished, also waiting for jobs other processes run
    /// (and running those whose process died); returns each job's result by name.
    func finish(pollInterval: Duration = .seconds(1), _ run: @Sendable (String) async throws -> String) async throws -> [String: String] {
        var waitingLogged = false
        while true {
            try await work(run)
            let running = try await storage.trials(studyID: studyID, states: [.running]).count
            if running == 0, try await storage.trials(studyID: studyID, states: [.waiting]).isEmpty { break }
            if !waitingLogged, running > 0 { log("\(name): waiting for \(running) job(s) other processes run") }
            waitingLogged = true
            try await Task.sleep(for: pollInterval)
        }
        return try await results()
    }

    /// The results of the finished jobs; throws for a job that failed for good (no run of it
    /// complete, none waiting or running).
    func results() async throws -> [String: String] {
        let trials = try await storage.trials(studyID: studyID, states: nil)
        var results: [String: String] = [:]
        for trial in trials where trial.state == .complete {
            let job = trial.parameters[Self.jobParameter]?.stringValue ?? ""
            if results[job] == nil { results[job] = trial.userAttributes[Self.resultAttribute] }
        }
        for trial in trials where trial.state == .failed {
            let job = trial.parameters[Self.jobParameter]?.stringValue ?? ""
            let pending = trials.contains { $0.parameters == trial.parameters && ($0.state == .waiting || $0.state == .running) }
            if results[job] == nil, !pending {
                throw WorkQueueError.jobFailed(queue: name, job: job,
                                               error: trial.userAttributes[Self.errorAttribute] ?? "its process died twice")
            }
        }
        return results
    }
}
