import Foundation
import Search
import Testing
@testable import Workflow

@Suite struct WorkQueueTests {
    static func queue(_ storage: any StudyStorage, jobs: [String], staleTimeout: Double = 60) async throws -> WorkQueue {
        try await WorkQueue.create(named: "s/jobs", jobs: jobs, storage: storage, heartbeatInterval: .milliseconds(50),
                                   staleTimeout: staleTimeout, log: { _ in })
    }

    @Test func processesSharingAQueueRunEachJobOnce() async throws {
        let storage = InMemoryStorage()
        #expect(try await WorkQueue.open(named: "s/jobs", storage: storage, heartbeatInterval: .seconds(1), staleTimeout: 60,
                                         log: { _ in }) == nil)
        let jobs = (0..<12).map { "job\($0)" }
        let queue = try await Self.queue(storage, jobs: jobs)
        let runs = LogLines()
        let results = try await withThrowingTaskGroup(of: [String: String].self) { group in
            for process in 0..<3 {
                group.addTask {
                    try await queue.finish(pollInterval: .milliseconds(10)) { job in
                        runs.append(job)
                        try await Task.sleep(for: .milliseconds(5))
                        return "\(job) by \(process)"
                    }
                }
            }
            return try await group.reduce(into: [[String: String]]()) { $0.append($1) }
        }
        #expect(runs.lines.sorted() == jobs.sorted())
        // Every process sees every job's result, whoever ran it.
        for result in results { #expect(result.keys.sorted() == jobs.sorted()) }
        // Opened by another process, and created again by a rerun: nothing new to run.
        let opened = try #require(try await WorkQueue.open(named: "s/jobs", storage: storage, heartbeatInterval: .seconds(1),
                                                           staleTimeout: 60, log: { _ in }))
        #expect(try await opened.work { _ in Issue.record("a finished job ran again"); return "" } == 0)
        let rerun = try await Self.queue(storage, jobs: jobs + ["job12"])
        #expect(try await rerun.finish { job in job } == (try await queue.results()))
        #expect(try await rerun.results()["job12"] == "job12")
    }

    @Test func aDeadProcesssJobIsRunAgainAndAFailedJobStopsTheStage() async throws {
        let storage = InMemoryStorage()
        let queue = try await Self.queue(storage, jobs: ["a", "b"], staleTimeout: 0)
        // A process took job a and died (no result, no more heartbeats).
        let dead = try #require(try await storage.startWaitingTrial(studyID: queue.studyID))
        #expect(dead.parameters[WorkQueue.jobParameter] == .string("a"))
        let results = try await queue.finish { job in "done \(job)" }
        #expect(results == ["a": "done a", "b": "done b"])

        struct Broken: Error, CustomStringConvertible { var description: String { "loss is NaN" } }
        let failing = try await WorkQueue.create(named: "s/failing", jobs: ["x"], storage: storage, heartbeatInterval: .seconds(1),
                                                 staleTimeout: 60, log: { _ in })
        await #expect(throws: Broken.self) { try await failing.finish { _ in throw Broken() } }
        await #expect(throws: WorkQueueError.jobFailed(queue: "s/failing", job: "x", error: "loss is NaN")) { try await failing.results() }
    }
}
