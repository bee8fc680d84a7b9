import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// `edgenas agent` as a board runs it: a process that must stop promptly on SIGTERM even while
/// it measures.
@Suite(.serialized)
struct AgentCommandTests {
    @Test func sigtermStopsTheAgentMidMeasurementAndAnswersTheOpenRequest() async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-agent-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = try DoctorCommandTests.executable()
        process.arguments = ["agent", "--port", "0", "--token", "sigterm-test-token", "--shutdown-grace", "1",
                             "--benchmark-command", "sleep 60; echo 1"]
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        // The agent logs the port it bound.
        var port: Int?
        let deadline = ContinuousClock.now + .seconds(60)
        while port == nil, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            let text = try String(contentsOf: log, encoding: .utf8)
            if let range = text.range(of: "listening on 127.0.0.1:") {
                port = Int(text[range.upperBound...].prefix { $0.isNumber })
            }
        }
        let agent = try #require(port.map { "http://127.0.0.1:\($0)" }, "the agent never said where it listens")

        // A measurement that would take 60 s is running when SIGTERM comes.
        var request = URLRequest(url: URL(string: "\(agent)/v1/measure?architecture=k3-g8-c24-w224")!)
        request.httpMethod = "POST"
        request.setValue("Bearer sigterm-test-token", forHTTPHeaderField: "Authorization")
        request.timeoutInterval = 120
        let open = Task { try await URLSession.shared.data(for: request) }
        try await Task.sleep(for: .seconds(1))
        let signalled = ContinuousClock.now
        kill(process.processIdentifier, SIGTERM)
        let (body, response) = try await open.value
        #expect((response as? HTTPURLResponse)?.statusCode == 503)
        #expect(String(decoding: body, as: UTF8.self).contains("stopping"))
        while process.isRunning, ContinuousClock.now - signalled < .seconds(30) { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning, "the agent was still running 30 s after SIGTERM")
        #expect(ContinuousClock.now - signalled < .seconds(10))
        let output = try String(contentsOf: log, encoding: .utf8)
        #expect(process.terminationStatus == 0, "\(output)")
    }
}
