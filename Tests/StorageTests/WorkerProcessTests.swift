import Foundation
import Search
import Testing
@testable import Storage

/// Many worker processes on one study: the guarantees that make distributed search safe.
enum WorkerProcessChecks {
    /// 8 processes x 50 trials: exactly 400 complete trials numbered 0..399.
    static func eightWorkers(url: String, storage: any StudyStorage) async throws {
        let name = TestEngines.uniqueStudyName("parallel")
        let study = try await storage.createStudy(name: name, directions: [.minimize], attributes: [:])
        let results = try await WorkerProcesses.run((0..<8).map { index in
            ["--storage", url, "--study", name, "--trials", "50", "--seed", String(index)]
        })
        for result in results { #expect(result.status == 0, "worker failed: \(result.errors)") }
        let trials = try await storage.trials(studyID: study.id, states: nil)
        #expect(trials.count == 400)
        #expect(trials.allSatisfy { $0.state == .complete })
        #expect(trials.map(\.number) == Array(0..<400))
        #expect(Set(trials.map(\.id)).count == 400)
        // Each trial's value is its own parameter's objective: no result landed on another trial.
        for trial in trials {
            let x = try #require(trial.parameters["x"]?.doubleValue)
            #expect(trial.values == [(x - 2) * (x - 2)])
        }
    }

    /// A worker killed mid-trial: its trial is failed after the heartbeat timeout, re-queued,
    /// and completed by another worker; the trials finished before stay as they were.
    static func killedWorker(url: String, storage: any StudyStorage) async throws {
        let name = TestEngines.uniqueStudyName("killed")
        let budget = 6
        let study = try await storage.createStudy(name: name, directions: [.minimize], attributes: ["budget": String(budget)])
        let common = ["--storage", url, "--study", name, "--heartbeat-interval", "0.2", "--stale-timeout", "1"]
        let warmup = try await WorkerProcesses.run([common + ["--trials", "3", "--seed", "1"]])
        #expect(warmup[0].status == 0, "worker failed: \(warmup[0].errors)")
        let before = try await storage.trials(studyID: study.id, states: nil)

        let victim = try WorkerProcesses.Worker(arguments: common + ["--trials", "1", "--sleep", "60", "--seed", "2"])
        var running: FrozenTrial?
        let started = try await eventually(within: 30) {
            running = try await storage.trials(studyID: study.id, states: [.running]).first { $0.parameters["x"] != nil }
            return running != nil
        }
        try #require(started, "the victim worker never started its trial")
        victim.kill()
        _ = await victim.finished()
        let dead = try #require(running)

        // Past the heartbeat timeout, a fresh worker fails the dead trial and runs it again.
        try await Task.sleep(for: .milliseconds(1300))
        let rescuer = try await WorkerProcesses.run([common + ["--sleep", "0.05", "--seed", "3"]])
        #expect(rescuer[0].status == 0, "worker failed: \(rescuer[0].errors)")

        let trials = try await storage.trials(studyID: study.id, states: nil)
        let byID = Dictionary(uniqueKeysWithValues: trials.map { ($0.id, $0) })
        #expect(byID[dead.id]?.state == .failed)
        let rerun = try #require(trials.first { $0.retryCount == 1 })
        #expect(rerun.state == .complete)
        #expect(rerun.parameters == dead.parameters)
        #expect(trials.filter { $0.state == .complete }.count == budget)
        for trial in before { #expect(byID[trial.id] == trial) }
        #expect(Set(trials.map(\.number)).count == trials.count)
    }
}

@Suite("Worker processes on SQLite", .serialized)
struct SQLiteWorkerProcessTests {
    @Test func eightWorkersShareOneStudy() async throws {
        let url = try TestEngines.sqliteURL()
        try await WorkerProcessChecks.eightWorkers(url: url, storage: makeStudyStorage(url: url))
    }

    @Test func killedWorkersTrialIsRunAgain() async throws {
        let url = try TestEngines.sqliteURL()
        try await WorkerProcessChecks.killedWorker(url: url, storage: makeStudyStorage(url: url))
    }
}

@Suite(
    "Worker processes on PostgreSQL", .serialized,
    .enabled(if: TestEngines.postgresURL != nil, TestEngines.postgresSkipMessage))
struct PostgresWorkerProcessTests {
    @Test func eightWorkersShareOneStudy() async throws {
        try await WorkerProcessChecks.eightWorkers(url: #require(TestEngines.postgresURL), storage: TestEngines.postgres())
    }

    @Test func killedWorkersTrialIsRunAgain() async throws {
        try await WorkerProcessChecks.killedWorker(url: #require(TestEngines.postgresURL), storage: TestEngines.postgres())
    }

    /// The server restarts (dropping every connection) while 4 workers run: each reconnects
    /// and finishes its trials.
    @Test(
        .enabled(if: TestEngines.postgresRestartCommand != nil, TestEngines.restartSkipMessage),
        .timeLimit(.minutes(2)))
    func workersSurviveAServerRestart() async throws {
        let url = try #require(TestEngines.postgresURL)
        let storage = try await TestEngines.postgres()
        let name = TestEngines.uniqueStudyName("restart")
        let study = try await storage.createStudy(name: name, directions: [.minimize], attributes: [:])
        let workers = try (0..<4).map { index in
            try WorkerProcesses.Worker(arguments: [
                "--storage", url, "--study", name, "--trials", "40", "--sleep", "0.03", "--seed", String(index),
            ])
        }
        let halfway = try await eventually(within: 60) {
            try await storage.trials(studyID: study.id, states: [.complete]).count >= 40
        }
        try #require(halfway, "the workers did not get going")
        // The restarted server would inherit (and hold open forever) a pipe given as the
        // command's output, so the command writes to a file instead.
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-restart-\(UUID().uuidString).log")
        let command = try #require(TestEngines.postgresRestartCommand)
        let restart = try WorkerProcesses.Worker(
            executable: URL(fileURLWithPath: "/bin/sh"), arguments: ["-c", "(\(command)) </dev/null >'\(log.path)' 2>&1 || { cat '\(log.path)' >&2; exit 1; }"])
        let restarted = await restart.finished()
        #expect(restarted.status == 0, "restart failed: \(restarted.errors)")

        for worker in workers {
            let result = await worker.finished()
            #expect(result.status == 0, "worker failed: \(result.errors)")
        }
        let all = try await storage.trials(studyID: study.id, states: nil)
        let complete = all.filter { $0.state == .complete }
        #expect(complete.count == 160, "not complete: \(all.filter { $0.state != .complete })")
        #expect(Set(complete.map(\.number)).count == 160)
        // The restart happened mid-study, not after it.
        #expect(complete.filter { $0.completedAt! > Date().addingTimeInterval(-600) }.count == 160)
    }
}
