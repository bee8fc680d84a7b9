import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import LatencyBackends
import Storage
import Testing
@testable import Workflow

/// `edgenas agent` started as a board starts it: its own process, on loopback, with a token.
final class AgentProcess {
    let process = Process()
    let log: URL
    let url: URL
    static let token = "agent-process-test-token"

    init(_ extraArguments: [String] = []) async throws {
        log = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-agent-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.executableURL = try DoctorCommandTests.executable()
        process.arguments = ["agent", "--port", "0", "--token", Self.token] + extraArguments
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        // The agent logs the port it bound.
        var port: Int?
        let deadline = ContinuousClock.now + .seconds(60)
        while port == nil, process.isRunning, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            let text = try String(contentsOf: log, encoding: .utf8)
            if let range = text.range(of: "listening on 127.0.0.1:") {
                port = Int(text[range.upperBound...].prefix { $0.isNumber })
            }
        }
        guard let port else {
            process.terminate()
            throw DoctorCommandTests.DoctorTestError(
                description: "the agent never said where it listens: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        }
        url = URL(string: "http://127.0.0.1:\(port)")!
    }

    var output: String { get throws { try String(contentsOf: log, encoding: .utf8) } }

    deinit {
        if process.isRunning { process.terminate() }
        try? FileManager.default.removeItem(at: log)
    }
}

@Suite(.serialized)
struct AgentCommandTests {
    @Test func sigtermStopsTheAgentMidMeasurementAndAnswersTheOpenRequest() async throws {
        let agent = try await AgentProcess(["--shutdown-grace", "1", "--benchmark-command", "sleep 60; echo 1"])
        // A measurement that would take 60 s is running when SIGTERM comes.
        var request = URLRequest(url: URL(string: "\(agent.url.absoluteString)/v1/measure?architecture=k3-g8-c24-w224")!)
        request.httpMethod = "POST"
        request.setValue("Bearer \(AgentProcess.token)", forHTTPHeaderField: "Authorization")
        request.timeoutInterval = 120
        let open = Task { try await URLSession.shared.data(for: request) }
        // SIGTERM once the request is in the agent's queue (on a loaded machine it can take
        // seconds to get there; an agent already stopping would refuse the connection).
        let health = URL(string: "\(agent.url.absoluteString)/v1/health")!
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let (data, _) = try await URLSession.shared.data(from: health)
            if String(decoding: data, as: UTF8.self).contains("\"queueLength\":1") { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let signalled = ContinuousClock.now
        kill(agent.process.processIdentifier, SIGTERM)
        let (body, response) = try await open.value
        #expect((response as? HTTPURLResponse)?.statusCode == 503)
        #expect(String(decoding: body, as: UTF8.self).contains("stopping"))
        while agent.process.isRunning, ContinuousClock.now - signalled < .seconds(30) { try await Task.sleep(for: .milliseconds(50)) }
        // Its measurement would take 60 s: ending within 30 s means it did not wait for it.
        #expect(!agent.process.isRunning, "the agent was still running 30 s after SIGTERM")
        let output = try agent.output
        #expect(agent.process.terminationStatus == 0, "\(output)")
    }

    /// A search whose latency backend is an agent in another process: every trial's latency is
    /// the agent's median for the INT8 model the search uploaded for that architecture.
    @Test func aSearchTakesEveryTrialsLatencyFromTheAgentsMeasurementOfItsUploadedModel() async throws {
        let agent = try await AgentProcess(["--max-seconds", "1"])
        let directory = try temporaryDirectory("agent-search")
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = try pipelineConfig(directory: directory, trials: 5, hours: "1")
        var components = fakeComponents
        components.latency = try LatencyBackendSpec(parsing: "agent \(agent.url.absoluteString)")
            .makeBackend(LatencyBackendSettings(agentToken: AgentProcess.token))
        let storage = try SQLiteStorage(path: directory.appendingPathComponent("study.db").path)
        _ = try await SearchPipeline(config: config, storage: storage, components: components, log: { _ in }).run()
        let record = try await storage.study(named: "tiny")
        let trials = try await storage.trials(studyID: record.id, states: [.complete])
        await storage.close()

        // "measured ARCH: median M ms ..." per measurement, in the agent's log.
        let pattern = try NSRegularExpression(pattern: #"measured (\S+): median ([0-9.]+) ms"#)
        let text = try agent.output
        var medians: [String: Double] = [:]
        for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            medians[String(text[Range(match.range(at: 1), in: text)!])] = Double(text[Range(match.range(at: 2), in: text)!])
        }
        #expect(trials.count == 5)
        for trial in trials {
            let architecture = try #require(TrialRecord(trial)?.architecture)
            let median = try #require(medians[architecture], "the agent never measured \(architecture)")
            #expect(abs(trial.values![1] - median) < 0.0006, "\(architecture): trial \(trial.values![1]) ms, agent \(median) ms")
        }
        #expect(!text.contains("failed"), "\(text)")
    }
}
