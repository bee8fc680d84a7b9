import DetectionData
import Foundation
import Search
import Storage
import Testing
@testable import Workflow

/// `edgenas search --config` and `edgenas worker --config` processes sharing one study of a
/// detector search (the selection's references, the trials and the retraining), workers killed
/// with SIGKILL mid-trial and restarted.
@Suite(.serialized)
struct DistributedSearchTests {
    final class Process_ {
        let process = Process()
        let log: URL
        init(_ arguments: [String], in directory: URL, label: String, environment: [String: String] = [:]) throws {
            log = directory.appendingPathComponent("\(label).log")
            FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            process.executableURL = try DoctorCommandTests.executable()
            process.arguments = arguments
            process.currentDirectoryURL = directory
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
        }
        var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
        /// Waits for the process to end without blocking a concurrency-pool thread; throws when
        /// it is still running at `deadline`, or at once when `watched` (the search, whose plan
        /// the workers wait for) has failed meanwhile.
        func exit(before deadline: ContinuousClock.Instant, unlessFailed watched: Process_? = nil) async throws {
            while process.isRunning, ContinuousClock.now < deadline {
                if let watched, !watched.process.isRunning {
                    try #require(watched.process.terminationStatus == 0,
                                 "\(watched.log.lastPathComponent) failed while \(log.lastPathComponent) waited: \(watched.output)")
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            try #require(!process.isRunning, "\(log.lastPathComponent) still running at the deadline: \(output)")
        }
        deinit { if process.isRunning { process.terminate() } }
    }

    @Test func searchAndWorkersShareTheStudyAndAKilledWorkersTrialIsRunAgain() async throws {
        let directory = try temporaryDirectory("distributed")
        defer { try? FileManager.default.removeItem(at: directory) }
        try await Self.run(in: directory, storage: "sqlite://study.db", studyName: "distributed", trials: 24, workers: 2, kills: 1,
                           estimator: "select", restartCommand: nil)
    }

    /// The same on PostgreSQL at the issue's scale: 4 workers, 24 trials, two workers killed
    /// mid-trial and restarted, the server restarted once.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["EDGENAS_TEST_POSTGRES_URL"] != nil, "needs the test PostgreSQL server"))
    func fourWorkersOnPostgreSQLSurviveKillsAndAServerRestart() async throws {
        let directory = try temporaryDirectory("distributed-pg")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = try #require(ProcessInfo.processInfo.environment["EDGENAS_TEST_POSTGRES_URL"])
        try await Self.run(in: directory, storage: url, studyName: "distributed-\(UUID().uuidString.prefix(8))", trials: 24, workers: 4,
                           kills: 2, estimator: "select", restartCommand: ProcessInfo.processInfo.environment["EDGENAS_TEST_POSTGRES_RESTART"])
    }

    /// `search --config` and `workers` `worker --config` processes on one study; `kills` workers
    /// die by SIGKILL in the middle of a trial and are restarted; `restartCommand` restarts the
    /// database server meanwhile.
    static func run(in directory: URL, storage url: String, studyName: String, trials: Int, workers count: Int, kills: Int,
                    estimator: String, restartCommand: String?) async throws {
        _ = try SyntheticDataWriter().write(to: directory.appendingPathComponent("data"), seed: 5, trainCount: 8, valCount: 4)
        // A cheap estimator and INT8 latency here: a trial takes about a second, so the test is
        // about the sharing, not the training.
        try """
            name: \(studyName)
            dataset: {path: data}
            budget: {trials: \(trials)}
            estimator: \(estimator)
            selection: {references: 4, resamples: 50}
            latency: {backend: int8}
            storage: \(url)
            seed: 4
            training: {epochs: 2, short_epochs: 1, batch_size: 4}
            retrain: {candidates: 2}
            output: report
            """.write(to: directory.appendingPathComponent("edgenas.yaml"), atomically: true, encoding: .utf8)
        // A worker beats every half second; 20 s of silence means it died. A busy CI machine
        // has held a live worker's beats back for 4 s (its trial was then run twice).
        let liveness = ["--heartbeat", "0.5", "--stale-timeout", "20"]
        let search = try Process_(["search", "--config", "edgenas.yaml"] + liveness, in: directory, label: "search")
        // The first `kills` workers kill themselves with SIGKILL in their second trial, mid-trial
        // (`EDGENAS_CRASH_DRILL_TRIAL`); each is restarted once it is dead.
        var workers = try (0..<count).map { index in
            try Process_(["worker", "--config", "edgenas.yaml"] + liveness, in: directory, label: "worker\(index)",
                         environment: index < kills ? ["EDGENAS_CRASH_DRILL_TRIAL": "2"] : [:])
        }
        let storage = try await makeStudyStorage(url: url.hasPrefix("sqlite://") ? "sqlite://" + directory.appendingPathComponent("study.db").path : url)
        let deadline = ContinuousClock.now + .seconds(600)

        for victim in 0..<kills {
            try await workers[victim].exit(before: deadline, unlessFailed: search)
            #expect(workers[victim].process.terminationReason == .uncaughtSignal && workers[victim].process.terminationStatus == SIGKILL,
                    "worker \(victim) did not die mid-trial: \(workers[victim].output)")
            workers.append(try Process_(["worker", "--config", "edgenas.yaml"] + liveness, in: directory, label: "worker\(victim)-restarted"))
            if victim == 0, let restartCommand {
                let log = directory.appendingPathComponent("restart.log")
                let restart = Process()
                restart.executableURL = URL(fileURLWithPath: "/bin/sh")
                // The restarted server must not inherit a pipe, so the command writes to a file.
                restart.arguments = ["-c", "(\(restartCommand)) </dev/null >'\(log.path)' 2>&1"]
                try restart.run()
                while restart.isRunning { try await Task.sleep(for: .milliseconds(100)) }
                #expect(restart.terminationStatus == 0, "server restart failed: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
            }
        }

        for process in [search] + workers { try await process.exit(before: deadline, unlessFailed: search) }
        #expect(search.process.terminationStatus == 0, "\(search.output)")
        for worker in workers.dropFirst(kills) { #expect(worker.process.terminationStatus == 0, "\(worker.output)") }

        let record = try await storage.study(named: studyName)
        let all = try await storage.trials(studyID: record.id, states: nil)
        await storage.close()
        let complete = all.filter { $0.state == .complete }
        #expect(complete.count >= trials, "\(all.map { "\($0.number) \($0.state)" })")
        #expect(Set(all.map(\.number)).count == all.count)
        #expect(!all.contains { $0.state == .running || $0.state == .waiting })
        // Each killed worker's trial was failed as stale and run again by another process. On a
        // busy machine the second victim can take the first victim's re-queued trial as its
        // own fatal trial: a trial whose retry died too is given up (one retry per trial).
        let failed = all.filter { $0.state == .failed }
        #expect(failed.count == kills)
        for trial in failed {
            let rerun = complete.contains { $0.parameters == trial.parameters }
            let givenUp = failed.filter { $0.parameters == trial.parameters }.map(\.retryCount).sorted() == [0, 1]
            #expect(rerun || givenUp,
                    "trial \(trial.number) was not run again; the study's trials: \(all.map { "\($0.number) \($0.state) retry \($0.retryCount) \($0.parameters)" })")
        }
        // Several processes ran trials; the plan, the selection's ranking and the report happened
        // once, in the search process.
        #expect(Set(complete.compactMap { $0.userAttributes[TrialRecord.workerAttribute] }).count >= 2)
        let snapshot = StudySnapshot(record: record, trials: all)
        #expect(!snapshot.retrained.isEmpty && snapshot.retrained.count <= 3)
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("report/index.html").path))
        if estimator == "select" {
            #expect(search.output.components(separatedBy: "select: done").count == 2, "\(search.output)")
        }
        // The selection's reference trainings and the retraining are queued jobs that any
        // process takes: each job was done exactly once, and none is left.
        let jobCounts = try await queuedJobs(storage: url.hasPrefix("sqlite://") ? "sqlite://" + directory.appendingPathComponent("study.db").path : url,
                                             study: studyName)
        #expect(jobCounts[SearchPipeline.workQueueNames(study: studyName)[1]] == snapshot.retrained.count)
        if estimator == "select" { #expect(jobCounts[SearchPipeline.workQueueNames(study: studyName)[0]] == 4) }
    }

    /// Complete jobs of each of the study's work queues that exist, checking that no job was
    /// completed twice and none is waiting or running.
    static func queuedJobs(storage url: String, study: String) async throws -> [String: Int] {
        let storage = try await makeStudyStorage(url: url)
        defer { Task { await storage.close() } }
        var counts: [String: Int] = [:]
        for name in SearchPipeline.workQueueNames(study: study) {
            guard let queue = try? await storage.study(named: name) else { continue }
            let jobs = try await storage.trials(studyID: queue.id, states: nil)
            let done = jobs.filter { $0.state == .complete }.compactMap { $0.parameters[WorkQueue.jobParameter]?.stringValue }
            #expect(Set(done).count == done.count, "\(name): a job was done twice: \(done)")
            #expect(!jobs.contains { $0.state == .waiting || $0.state == .running }, "\(name): \(jobs)")
            counts[name] = done.count
        }
        return counts
    }
}
