// edgenas-storage-worker: a minimal worker process for the storage tests and benchmarks.
//
// It exercises exactly what a real `edgenas worker` does with its storage (start a trial,
// set its parameters, keep a heartbeat while it runs, finish it) around a cheap objective,
// (x - 2)^2, so that many processes can hammer one study.
//
//   edgenas-storage-worker --storage URL --study NAME [--create --budget N]
//                          [--trials K] [--sleep S] [--heartbeat-interval S]
//                          [--stale-timeout S] [--max-retries N] [--seed N]
//
// With --trials K the worker runs exactly K trials. Without it, it runs until the study
// holds `budget` (a study attribute) complete trials, and before each trial fails the
// stale trials of dead workers so that their parameters are run again.
import ArgumentParser
import Foundation
import Randomness
import Search
import Storage

@main
struct StorageWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edgenas-storage-worker", abstract: "Runs cheap trials against a study storage.")

    @Option(help: "Storage URL (sqlite:///path.db, postgresql://user:pass@host:port/db, memory:).")
    var storage: String
    @Option(help: "Study name.")
    var study: String
    @Flag(help: "Create the study (minimize one objective) when it does not exist.")
    var create = false
    @Option(help: "With --create: the number of complete trials the study needs.")
    var budget: Int?
    @Option(help: "Run exactly this many trials, ignoring the study's budget.")
    var trials: Int?
    @Option(help: "Seconds each trial sleeps before finishing (a stand-in for training).")
    var sleep: Double = 0
    @Option(help: "Seconds between heartbeats of the running trial.")
    var heartbeatInterval: Double = 1
    @Option(help: "Seconds without heartbeat after which a running trial counts as dead.")
    var staleTimeout: Double = 5
    @Option(help: "How many times a dead trial's parameters are run again.")
    var maxRetries: Int = 2
    @Option(help: "Seed of the parameter sampler (mixed with each trial's number).")
    var seed: UInt64 = 0

    func run() async throws {
        let storage = try await makeStudyStorage(url: storage)
        let record = try await openStudy(storage)
        let started = ContinuousClock.now
        var finished = 0
        while true {
            if let trials {
                if finished >= trials { break }
            } else {
                guard let budget = record.attributes["budget"].flatMap(Int.init) else {
                    throw ValidationError("study '\(study)' has no integer 'budget' attribute; pass --trials or create it with --budget")
                }
                _ = try await storage.failStaleTrials(studyID: record.id, timeout: staleTimeout, maxRetries: maxRetries)
                let complete = try await storage.trials(studyID: record.id, states: [.complete]).count
                if complete >= budget { break }
            }
            try await runTrial(storage, studyID: record.id)
            finished += 1
        }
        // The loop's own time, without process start-up: what the storage benchmark compares.
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        print("finished \(finished) trials in \(seconds) s")
        await storage.close()
    }

    private func openStudy(_ storage: any StudyStorage) async throws -> StudyRecord {
        guard create else { return try await storage.study(named: study) }
        do {
            let attributes = budget.map { ["budget": String($0)] } ?? [:]
            return try await storage.createStudy(name: study, directions: [.minimize], attributes: attributes)
        } catch StudyStorageError.studyAlreadyExists {
            // Another worker of the same launch created it first.
            return try await storage.study(named: study)
        }
    }

    private func runTrial(_ storage: any StudyStorage, studyID: Int) async throws {
        let trial = try await storage.startTrial(studyID: studyID)
        let heartbeats = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(heartbeatInterval))
                if Task.isCancelled { break }
                // A failed heartbeat is retried at the next beat; finishTrial reports the
                // real problem if the trial was taken away.
                try? await storage.heartbeat(trialID: trial.id)
            }
        }
        defer { heartbeats.cancel() }
        // A re-queued or enqueued trial brings its parameters; a new one samples them.
        let x: Double
        if let given = trial.parameters["x"]?.doubleValue {
            x = given
        } else {
            var generator = SplitMix64(seed: seed &+ UInt64(trial.number) &* 0x9E37_79B9_7F4A_7C15)
            x = Double.random(in: -10...10, using: &generator)
            try await storage.setParameters(trialID: trial.id, ["x": .double(x)])
        }
        if sleep > 0 { try await Task.sleep(for: .seconds(sleep)) }
        try await storage.finishTrial(trialID: trial.id, state: .complete, values: [(x - 2) * (x - 2)], constraints: nil)
    }
}
