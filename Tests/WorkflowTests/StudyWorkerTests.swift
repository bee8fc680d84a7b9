import Foundation
import Search
import Storage
import Testing
@testable import Workflow

private let space = try! SearchSpace([
    SearchParameter("x", .float(low: 0, high: 1, step: nil, log: false)),
    SearchParameter("kernel", .categorical([.int(3), .int(5)])),
])

@Suite struct CommandObjectiveTests {
    @Test func readsEveryResultForm() throws {
        #expect(try CommandObjective.parseResult("{\"values\": [0.5, 7], \"constraints\": [-1]}", command: "c")
            == Evaluation(values: [0.5, 7], constraints: [-1]))
        #expect(try CommandObjective.parseResult("[1, 2.5]", command: "c") == Evaluation(values: [1, 2.5]))
        #expect(try CommandObjective.parseResult("0.25 4", command: "c") == Evaluation(values: [0.25, 4]))
        #expect(throws: CommandObjectiveError.self) { try CommandObjective.parseResult("AP is 0.5", command: "c") }
        #expect(throws: CommandObjectiveError.self) { try CommandObjective.parseResult("{\"value\": 1}", command: "c") }
    }

    @Test func passesParametersAndReadsTheLastLine() async throws {
        // The command checks its stdin and environment hold the parameters, then answers.
        let objective = CommandObjective(command: """
            input=$(cat); case "$input" in *'"kernel":5'*) ;; *) exit 9;; esac
            case "$EDGENAS_PARAMETERS" in *'"x":0.25'*) ;; *) exit 8;; esac
            echo "progress line"; echo "{\\"values\\": [$EDGENAS_TRIAL_NUMBER, 1.5]}"
            """)
        let evaluation = try await objective.evaluate(parameters: ["x": .double(0.25), "kernel": .int(5)], trialNumber: 7)
        #expect(evaluation == Evaluation(values: [7, 1.5]))
    }

    @Test func failingAndSlowCommandsAreClearErrors() async throws {
        do {
            _ = try await CommandObjective(command: "echo 'board not found' >&2; exit 3").evaluate(parameters: [:], trialNumber: 0)
            Issue.record("a failing command must throw")
        } catch let error as CommandObjectiveError {
            #expect(error.description.contains("status 3") && error.description.contains("board not found"))
        }
        do {
            _ = try await CommandObjective(command: "sleep 20", timeoutSeconds: 0.5).evaluate(parameters: [:], trialNumber: 0)
            Issue.record("a command past its limit must throw")
        } catch let error as CommandObjectiveError {
            guard case .timedOut = error else { Issue.record("expected timedOut, got \(error)"); return }
        }
    }
}

@Suite struct StudyWorkerTests {
    private func temporaryDatabase() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-worker-\(UUID().uuidString).db").path
    }

    @Test func twoWorkersReachTheBudgetStartingWithTheBaseline() async throws {
        let path = temporaryDatabase()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let creator = try SQLiteStorage(path: path)
        let settings = StudySettings(space: space, directions: [.minimize], budget: 12, samplerName: "tpe", seed: 3)
        try await StudyWorker.create(storage: creator, name: "s", settings: settings, baseline: ["x": .double(0.5), "kernel": .int(5)])

        let objective: @Sendable (TrialHandle) async throws -> Evaluation = { trial in
            let x = trial.parameters["x"]!.numericValue!
            return [(x - 0.3) * (x - 0.3) + (trial.parameters["kernel"] == .int(3) ? 0 : 0.1)]
        }
        async let first = StudyWorker(storage: try SQLiteStorage(path: path), studyName: "s").run(objective: objective)
        async let second = StudyWorker(storage: try SQLiteStorage(path: path), studyName: "s").run(objective: objective)
        let ran = try await first + second

        let record = try await creator.study(named: "s")
        let complete = try await creator.trials(studyID: record.id, states: [.complete])
        // Two workers may each start one trial past the budget at the same moment.
        #expect((12...13).contains(complete.count))
        #expect(ran == complete.count)
        #expect(Set(complete.map(\.number)).count == complete.count)
        let baseline = try #require(complete.first { $0.number == 0 })
        #expect(baseline.parameters == ["x": .double(0.5), "kernel": .int(5)])
    }

    @Test func storedCommandIsTheObjectiveAndBrokenObjectivesStop() async throws {
        let storage = try SQLiteStorage()
        try await StudyWorker.create(storage: storage, name: "ok", settings: StudySettings(
            space: space, directions: [.maximize], budget: 3, samplerName: "random", objectiveCommand: "echo 0.5"))
        #expect(try await StudyWorker(storage: storage, studyName: "ok").run() == 3)

        try await StudyWorker.create(storage: storage, name: "broken", settings: StudySettings(
            space: space, directions: [.maximize], budget: 50, samplerName: "random", objectiveCommand: "exit 1"))
        await #expect(throws: StudyWorkerError.self) { try await StudyWorker(storage: storage, studyName: "broken").run() }
        let record = try await storage.study(named: "broken")
        #expect(try await storage.trials(studyID: record.id, states: [.failed]).count == 5)
    }

    @Test func settingsNameWhatIsMissing() async throws {
        let storage = try SQLiteStorage()
        _ = try await storage.createStudy(name: "bare", directions: [.minimize], attributes: [:])
        await #expect(throws: StudyWorkerError.missingAttribute(study: "bare", key: "search_space")) {
            try await StudyWorker(storage: storage, studyName: "bare").run(objective: { _ in [0] })
        }
        await #expect(throws: SamplerCatalogError.unknownSampler("annealing")) {
            try await StudyWorker.create(storage: storage, name: "x", settings: StudySettings(
                space: space, directions: [.minimize], budget: 1, samplerName: "annealing"))
        }
    }
}
