import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif
import Hardware
import Testing
@testable import LatencyAgent
@testable import LatencyBackends

/// A plain TCP connection to the agent, for what URLSession will not do: send a request head
/// without its body, trickle a body, hang up early, or stay idle.
final class RawConnection: @unchecked Sendable {
    private let socket: Int32

    init(_ url: URL) throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(url.port!).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
    }

    deinit { close() }

    func close() { _ = Glibc.shutdown(socket, Int32(SHUT_RDWR)); _ = Glibc.close(socket) }

    func write(_ text: String) { write(Data(text.utf8)) }

    func write(_ data: Data) {
        data.withUnsafeBytes { _ = Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// A measurement request's head (and no body) with the test token.
    func sendHead(_ query: String, contentLength: Int) {
        write("POST /v1/measure?\(query) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
              + "Content-Type: application/octet-stream\r\nContent-Length: \(contentLength)\r\n\r\n")
    }

    /// Everything the agent sends until it closes or `seconds` pass; nil when the connection
    /// was closed with nothing sent. The wait blocks a thread, so it runs off the concurrency
    /// pool: on two cores a blocked pool thread is half the pool, and the agent under test
    /// answers on that pool.
    func read(for seconds: Double) async throws -> String? {
        try await offPool { self.readBlocking(for: seconds) }
    }

    private func readBlocking(for seconds: Double) -> String? {
        var timeout = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1e6))
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(socket, &buffer, buffer.count, 0)
            if count <= 0 { break }
            received.append(contentsOf: buffer[0..<count])
            // One complete answer is enough (the agent keeps the connection open).
            if let text = String(data: received, encoding: .utf8), let head = text.range(of: "\r\n\r\n"),
               let lengthLine = text[..<head.lowerBound].split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") }),
               let length = Int(lengthLine.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)),
               text.utf8.count - text.utf8.distance(from: text.startIndex, to: head.upperBound) >= length {
                break
            }
        }
        return received.isEmpty ? nil : String(decoding: received, as: UTF8.self)
    }
}

/// Status code of a raw answer ("HTTP/1.1 503 Service Unavailable" → 503).
func statusCode(_ answer: String?) -> Int? {
    answer.flatMap { $0.split(separator: " ").dropFirst().first.flatMap { Int($0) } }
}

/// A benchmark command that records each run in `counter` (one line per measurement), so a
/// test can count what the board actually measured.
func countingCommand(_ counter: URL, holdWhile hold: URL? = nil, seconds: Double = 0) -> String {
    (hold.map(waitingWhileExists) ?? "") + "echo {architecture} >> '\(counter.path)'; sleep \(seconds); echo 1.5"
}

func lines(_ file: URL) throws -> Int {
    try String(contentsOf: file, encoding: .utf8).split(separator: "\n").count
}

func measureQuery(_ extra: String = "") -> String { "architecture=\(tinyArchitecture)" + extra }

/// Every limit of `AgentLimits`, and the hostile inputs of docs/hardware-agent.md's table:
/// each test ends by checking that the agent still answers.
@Suite(.serialized)
struct AgentLimitsTests {
    @Test func valuesAboveTheLimitsAreLoweredAndTheAnswerSaysSo() async throws {
        try await withAgent({ $0.limits.maximumWarmupRuns = 2; $0.limits.maximumRuns = 4; $0.limits.maximumThreads = 1 }) { url in
            let query = measureQuery("&warmup=5000&min_runs=3&max_runs=100000&threads=64")
            let (status, body) = try await send("POST", URL(string: "\(url)/v1/measure?\(query)")!, authorization: "Bearer \(token)")
            #expect(status == 200)
            let answer = try JSONDecoder().decode(AgentMeasurement.self, from: Data(body.utf8))
            #expect(answer.adjustments == ["warmup=5000 lowered to this agent's maximum 2", "max_runs=100000 lowered to this agent's maximum 4",
                                           "threads=64 lowered to this agent's maximum 1"])
            #expect(answer.measurement.warmupRuns == 2 && answer.measurement.samplesMilliseconds.count <= 4)
            #expect(answer.measurement.threads == 1)
            // Within the limits nothing is said.
            let plain = try await send("POST", URL(string: "\(url)/v1/measure?\(measureQuery("&warmup=1"))")!, authorization: "Bearer \(token)")
            #expect(plain.0 == 200 && !plain.1.contains("adjustments"))
        }
    }

    @Test func aMeasurementPastTheWallClockCapIs422AndTheAgentGoesOn() async throws {
        let counter = try temporaryFile("counter", Data())
        defer { try? FileManager.default.removeItem(at: counter) }
        try await withAgent({
            $0.backend = .command(template: "sleep 30; echo 1", timeoutSeconds: 300)
            $0.limits.measurementTimeoutSeconds = 0.5
        }) { url in
            let start = ContinuousClock.now
            let (status, body) = try await send("POST", URL(string: "\(url)/v1/measure?\(measureQuery())")!, authorization: "Bearer \(token)")
            #expect(status == 422 && body.contains("cap of 0.5 s"))
            // Under the command's 30 s: it was cut off (the margin is for a busy machine).
            #expect(ContinuousClock.now - start < .seconds(25))
            // The command was killed at the cap, so the lane is free again.
            let probe = try AgentLatencyBackend(url: url, token: token)
            #expect(try await offPool { try probe.health() }.status == "ok")
        }
    }

    @Test func aFullQueueRefusesBeforeReadingTheUpload() async throws {
        let hold = try temporaryFile("hold", Data())
        let counter = try temporaryFile("counter", Data())
        defer { for file in [hold, counter] { try? FileManager.default.removeItem(at: file) } }
        try await withAgent({
            $0.backend = .command(template: countingCommand(counter, holdWhile: hold), timeoutSeconds: holdingCommandTimeout)
            $0.maximumQueueLength = 1
        }) { url in
            let backend = try AgentLatencyBackend(url: url, token: token, attempts: 1)
            let first = Task { try await measureDetached(backend) }
            try #require(try await waitUntilQueued(1, probe: backend) == 1)
            // Announces 50 MB and sends none of it: the refusal comes anyway, unread.
            let connection = try RawConnection(url)
            connection.sendHead(measureQuery("&model_format=onnx"), contentLength: 50_000_000)
            let answer = try await connection.read(for: 30)
            #expect(statusCode(answer) == 503 && answer?.contains("queue is full") == true)
            try FileManager.default.removeItem(at: hold)
            #expect(try await first.value.measurement.samplesMilliseconds == [1.5])
        }
    }

    @Test func uploadsBeyondTheConcurrentBoundAre503AndSlowOnesTimeOut() async throws {
        try await withAgent({ $0.limits.maximumConcurrentUploads = 1; $0.limits.uploadTimeoutSeconds = 1 }) { url in
            // A slow client holds the only upload slot: 10 of 1,000 bytes.
            let slow = try RawConnection(url)
            slow.sendHead(measureQuery("&model_format=checkpoint"), contentLength: 1000)
            slow.write(Data(repeating: 1, count: 10))
            try await Task.sleep(for: .milliseconds(200))
            let other = try RawConnection(url)
            other.sendHead(measureQuery("&model_format=checkpoint"), contentLength: 1000)
            let refused = try await other.read(for: 30)
            #expect(statusCode(refused) == 503 && refused?.contains("1 uploads are already arriving") == true)
            // The slow body is cut off at the upload timeout.
            let timedOut = try await slow.read(for: 30)
            #expect(statusCode(timedOut) == 408 && timedOut?.contains("did not arrive within 1.0 s") == true)
            // The slot is free again.
            let (status, _) = try await send("POST", URL(string: "\(url)/v1/measure?\(measureQuery())")!, authorization: "Bearer \(token)")
            #expect(status == 200)
        }
    }

    @Test func aRetriedRequestIdIsMeasuredOnce() async throws {
        let hold = try temporaryFile("hold", Data())
        let counter = try temporaryFile("counter", Data())
        defer { for file in [hold, counter] { try? FileManager.default.removeItem(at: file) } }
        try await withAgent({ $0.backend = .command(template: countingCommand(counter, holdWhile: hold), timeoutSeconds: holdingCommandTimeout) }) { url in
            let measure = URL(string: "\(url)/v1/measure?\(measureQuery("&request_id=retry-1"))")!
            // Two tries of one request in flight at once, then a third after the answer.
            let first = Task { try await send("POST", measure, authorization: "Bearer \(token)") }
            let probe = try AgentLatencyBackend(url: url, token: token)
            _ = try await waitUntilQueued(1, probe: probe)
            let second = Task { try await send("POST", measure, authorization: "Bearer \(token)") }
            try await Task.sleep(for: .milliseconds(300))
            try FileManager.default.removeItem(at: hold)
            let (a, b) = (try await first.value, try await second.value)
            let third = try await send("POST", measure, authorization: "Bearer \(token)")
            #expect(a.0 == 200 && b.0 == 200 && third.0 == 200)
            #expect(a.1 == b.1 && b.1 == third.1)
            #expect(try lines(counter) == 1)
            // Another id is measured again.
            let other = try await send("POST", URL(string: "\(url)/v1/measure?\(measureQuery("&request_id=retry-2"))")!,
                                       authorization: "Bearer \(token)")
            let measured = try lines(counter)
            #expect(other.0 == 200 && measured == 2)
        }
    }

    @Test func aQueuedRequestWhoseClientWentAwayIsSkipped() async throws {
        let hold = try temporaryFile("hold", Data())
        let counter = try temporaryFile("counter", Data())
        defer { for file in [hold, counter] { try? FileManager.default.removeItem(at: file) } }
        try await withAgent({ $0.backend = .command(template: countingCommand(counter, holdWhile: hold), timeoutSeconds: holdingCommandTimeout) }) { url in
            let backend = try AgentLatencyBackend(url: url, token: token, attempts: 1)
            let first = Task { try await measureDetached(backend) }
            try #require(try await waitUntilQueued(1, probe: backend) == 1)
            // Two clients queue behind it and hang up: one with a request id, one without.
            for id in ["&request_id=gone-1", ""] {
                let connection = try RawConnection(url)
                connection.sendHead(measureQuery(id), contentLength: 0)
                #expect(try await waitUntilQueued(id.isEmpty ? 3 : 2, probe: backend) == (id.isEmpty ? 3 : 2))
                connection.close()
            }
            try await Task.sleep(for: .milliseconds(300))
            try FileManager.default.removeItem(at: hold)
            _ = try await first.value
            let health = try await offPool { try backend.health() }
            #expect(health.skippedRequests == 2 && health.queueLength == 0)
            #expect(try lines(counter) == 1)
        }
    }

    @Test func aCraftedCheckpointIs422AndTheAgentGoesOn() async throws {
        // An EDGT archive whose one tensor claims 2^62 x 2^62 elements: the reader must refuse
        // the shape (its product overflows) instead of trapping or allocating.
        var crafted = Data("EDGT".utf8)
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { crafted.append(contentsOf: $0) } }
        append(UInt32(1)); append(UInt32(1))
        let name = Array("stem.conv.conv.weight".utf8)
        append(UInt32(name.count)); crafted.append(contentsOf: name)
        append(Int32(6)); append(UInt32(2)); append(Int64(1) << 62); append(Int64(1) << 62); append(UInt64(16))
        crafted.append(Data(repeating: 0, count: 16))
        let bytes = crafted
        try await withAgent { url in
            let model = try temporaryFile("crafted.tensors", bytes)
            defer { try? FileManager.default.removeItem(at: model) }
            let backend = try AgentLatencyBackend(url: url, token: token, attempts: 1, modelFile: { _ in (model, .checkpoint) })
            let error = await #expect(throws: AgentBackendError.self) { try await measureDetached(backend) }
            guard case .rejected(_, 422, let message) = error else {
                Issue.record("expected a 422 refusal, got \(String(describing: error))")
                return
            }
            #expect(message.contains("cannot be loaded"))
            #expect(try await measureDetached(try AgentLatencyBackend(url: url, token: token)).measurement.median > 0)
        }
    }

    @Test func anIdleConnectionIsClosed() async throws {
        try await withAgent({ $0.limits.idleTimeoutSeconds = 0.5 }) { url in
            let idle = try RawConnection(url)
            let start = ContinuousClock.now
            #expect(try await idle.read(for: 10) == nil)
            #expect(ContinuousClock.now - start < .seconds(9))  // the agent hung up before the read's own 10 s
            #expect(try await send("GET", URL(string: "\(url)/v1/health")!).0 == 200)
        }
    }

    @Test func aHundredRequestsFromTenRetryingClientsAreEachMeasuredOnce() async throws {
        let counter = try temporaryFile("counter", Data())
        defer { try? FileManager.default.removeItem(at: counter) }
        // Each measurement takes 0.1 s and ten clients wait behind each other, so a client's
        // 0.5 s answer timeout passes in the queue and it retries with the same request id.
        // Two clients at a time find the queue full (503) and retry until a place frees; which
        // one gets it is luck, so the number of tries is not what this test limits.
        try await withAgent({
            $0.backend = .command(template: countingCommand(counter, seconds: 0.1), timeoutSeconds: holdingCommandTimeout)
            $0.maximumQueueLength = 8
        }) { url in
            let answers = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        let client = try AgentLatencyBackend(url: url, token: token, requestTimeoutSeconds: 0.5, attempts: 2_000, backoffSeconds: 0.05,
                                                          maximumBackoffSeconds: 0.4)
                        var measured = 0
                        for _ in 0..<10 where try await measureDetached(client).measurement.samplesMilliseconds == [1.5] { measured += 1 }
                        return measured
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(answers == 100)
            #expect(try lines(counter) == 100)
            let health = try await offPool { try AgentLatencyBackend(url: url, token: token).health() }
            #expect(health.status == "ok" && health.queueLength == 0)
        }
    }
}
