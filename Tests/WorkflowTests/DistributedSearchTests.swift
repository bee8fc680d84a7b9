import DetectionData
import Foundation
import Search
import Storage
import Testing
@testable import Workflow

/// `edgenas search --config` and `edgenas worker --config` processes sharing one SQLite study of
/// a detector search, one worker killed with SIGKILL mid-trial and restarted.
@Suite(.serialized)
struct DistributedSearchTests {
    final class Process_ {
        let process = Process()
        let log: URL
        init(_ arguments: [String], in directory: URL, label: String) throws {
            log = directory.appendingPathComponent("\(label).log")
            FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            process.executableURL = try DoctorCommandTests.executable()
            process.arguments = arguments
            process.currentDirectoryURL = directory
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
        }
        var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
        deinit { if process.isRunning { process.terminate() } }
    }

    @Test func searchAndWorkersShareTheStudyAndAKilledWorkersTrialIsRunAgain() async throws {
        let directory = try temporaryDirectory("distributed")
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try SyntheticDataWriter().write(to: directory.appendingPathComponent("data"), seed: 5, trainCount: 8, valCount: 4)
        // Zero-cost estimator, INT8 latency here: a trial takes about a second, so the test
        // is about the sharing, not the training.
        try """
            name: distributed
            dataset: {path: data}
            budget: {trials: 12}
            estimator: proxy:params
            latency: {backend: int8}
            storage: sqlite://study.db
            seed: 4
            training: {epochs: 1, short_epochs: 1, batch_size: 4}
            retrain: {candidates: 2}
            output: report
            """.write(to: directory.appendingPathComponent("edgenas.yaml"), atomically: true, encoding: .utf8)
        let worker = ["worker", "--config", "edgenas.yaml", "--heartbeat", "0.5", "--stale-timeout", "4"]
        let search = try Process_(["search", "--config", "edgenas.yaml", "--heartbeat", "0.5", "--stale-timeout", "4"], in: directory, label: "search")
        var workers = try (0..<2).map { try Process_(worker, in: directory, label: "worker\($0)") }

        // Kill the first worker while it runs a trial: a running trial whose `worker` attribute
        // names its process.
        let storage = try SQLiteStorage(path: directory.appendingPathComponent("study.db").path)
        let victim = ":\(workers[0].process.processIdentifier)"
        var killed = false
        let deadline = ContinuousClock.now + .seconds(300)
        while !killed, ContinuousClock.now < deadline, workers[0].process.isRunning {
            if let record = try? await storage.study(named: "distributed"),
               try await storage.trials(studyID: record.id, states: [.running])
                   .contains(where: { $0.userAttributes[TrialRecord.workerAttribute]?.hasSuffix(victim) == true }) {
                kill(workers[0].process.processIdentifier, SIGKILL)
                killed = true
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(killed, "the first worker never ran a trial: \(workers[0].output)")
        workers[0].process.waitUntilExit()
        workers.append(try Process_(worker, in: directory, label: "worker-restarted"))

        for process in [search] + workers {
            while process.process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(search.process.terminationStatus == 0, "\(search.output)")
        for worker in workers.dropFirst() { #expect(worker.process.terminationStatus == 0, "\(worker.output)") }

        let record = try await storage.study(named: "distributed")
        let trials = try await storage.trials(studyID: record.id, states: nil)
        await storage.close()
        let complete = trials.filter { $0.state == .complete }
        #expect(complete.count >= 12, "\(trials.map { "\($0.number) \($0.state)" })")
        #expect(Set(trials.map(\.number)).count == trials.count)
        #expect(!trials.contains { $0.state == .running || $0.state == .waiting })
        // The killed worker's trial was failed as stale and run again by someone else.
        let failed = trials.filter { $0.state == .failed }
        #expect(failed.count == 1)
        for trial in failed {
            #expect(complete.contains { $0.parameters == trial.parameters },
                    "trial \(trial.number) was not run again: \(([search] + workers).map(\.output).joined(separator: "\n----\n"))")
        }
        // More than one process ran the study's trials, and the front was retrained and reported once.
        let processes = Set(complete.compactMap { $0.userAttributes[TrialRecord.workerAttribute] })
        #expect(processes.count >= 2, "\(processes)")
        let snapshot = StudySnapshot(record: record, trials: trials)
        #expect(!snapshot.retrained.isEmpty && snapshot.retrained.count <= 3)
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("report/index.html").path))
    }
}
