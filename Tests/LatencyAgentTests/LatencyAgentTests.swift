import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hardware
import Logging
import Testing
import Torch
import Vision
@testable import LatencyAgent
@testable import LatencyBackends

/// A detector small enough to build and run in well under a second.
let tinyArchitecture = DetectorArchitecture(
    headKernelSize: 3, headGroups: 2, headChannels: 16, inputWidthPixels: 64, stemChannels: 8,
    stageChannels: [16, 32, 64], stageRepeats: [2, 2, 1], neckChannels: 16, sppBranches: 2)

let quickPolicy = MeasurementPolicy(warmupRuns: 1, minimumRuns: 3, maximumRuns: 6, maximumSeconds: 5,
                                    stabilityWindow: 3, stabilityTolerance: 0.5)
let token = "test-token-0123456789abcdef"

/// Runs an agent on 127.0.0.1 with a free port for the duration of `body`, which gets its URL.
func withAgent<Value: Sendable>(
    _ configure: (inout LatencyAgentConfiguration) -> Void = { _ in },
    _ body: @Sendable (URL) async throws -> Value
) async throws -> Value {
    var configuration = LatencyAgentConfiguration(port: 0, token: token, backend: .torch(policy: quickPolicy, seed: 1))
    // The 120 s cap counts the wait for the machine lock, which the suite's own trainings hold;
    // the tests of the cap set their own.
    configuration.limits.measurementTimeoutSeconds = 900
    configure(&configuration)
    var logger = Logger(label: "edgenas.agent.test")
    logger.logLevel = .critical
    let server = try LatencyAgentServer(configuration: configuration, logger: logger)
    let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
    // The agent answers on threads of its own, as it does in its own process: the suite's
    // synchronous training tests can hold both concurrency-pool threads of a 2-core machine
    // for longer than a client waits.
    let running = Task(executorPreference: agentExecutor) { try await server.run(stopsOnSignals: false) { continuation.yield($0) } }
    defer { running.cancel() }
    var iterator = ports.makeAsyncIterator()
    guard let port = await iterator.next() else { throw CancellationError() }
    return try await body(URL(string: "http://127.0.0.1:\(port)")!)
}

/// Runs the in-process agents' tasks on dispatch threads outside the Swift concurrency pool.
final class DispatchTaskExecutor: TaskExecutor {
    private let queue = DispatchQueue(label: "edgenas.test.agent", attributes: .concurrent)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

let agentExecutor = DispatchTaskExecutor()

/// One raw HTTP exchange: status and body.
func send(_ method: String, _ url: URL, authorization: String? = nil, body: Data? = nil) async throws -> (Int, String) {
    var request = URLRequest(url: url)
    request.httpMethod = method
    // URLSession's 60 s default is not what these tests are about, and the suite's own training
    // tests can hold a 2-core machine's agent back that long.
    request.timeoutInterval = 300
    if let authorization { request.setValue(authorization, forHTTPHeaderField: "Authorization") }
    request.httpBody = body
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as! HTTPURLResponse).statusCode, String(decoding: data, as: UTF8.self))
}

/// Runs a blocking call on a thread of its own. The agent's handlers run on Swift's cooperative
/// pool in this same process (only as many threads as cores), so blocking clients there too
/// could starve the agent they wait for; `DispatchQueue.global()` is no better: on Linux it is
/// that same pool (CI once saw a 0.5 s cap answered after 27 s while clients blocked it).
func offPool<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) async throws -> Value {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

func measureDetached(_ backend: AgentLatencyBackend, _ architecture: DetectorArchitecture = tinyArchitecture) async throws -> AgentMeasurement {
    try await offPool { try backend.measureOnBoard(architecture: architecture) }
}

/// The command backend's time limit in these tests: a command holds the queue until the test
/// removes its file, and a test on a busy 2-core machine once took more than 60 s to get there.
let holdingCommandTimeout = 600.0

/// A shell command that waits while `file` exists: a command-backend measurement that holds
/// the agent's queue until the test removes the file.
func waitingWhileExists(_ file: URL) -> String {
    "while [ -e '\(file.path)' ]; do sleep 0.02; done; "
}

/// Polls the agent's health until `count` requests are queued or 30 s have passed; returns
/// the last queue length seen.
func waitUntilQueued(_ count: Int, probe: AgentLatencyBackend) async throws -> Int {
    let deadline = ContinuousClock.now + .seconds(30)
    while true {
        let length = try await offPool({ try probe.health() }).queueLength
        if length >= count || ContinuousClock.now >= deadline { return length }
        try await Task.sleep(for: .milliseconds(20))
    }
}

func temporaryFile(_ name: String, _ data: Data) throws -> URL {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-agent-test-\(UUID().uuidString)-\(name)")
    try data.write(to: file)
    return file
}

@Suite(.serialized)
struct LatencyAgentTests {
    @Test func theAgentRefusesToStartWithoutAToken() {
        #expect(throws: LatencyAgentError.missingToken) { try LatencyAgentServer(configuration: .init(token: "")) }
        #expect(throws: LatencyAgentError.self) { try LatencyAgentServer(configuration: .init(token: "two words")) }
        #expect(LatencyAgentError.missingToken.description.contains(AgentProtocol.tokenEnvironmentVariable))
    }

    @Test func aMissingOrWrongTokenIs401AndHealthNeedsNone() async throws {
        try await withAgent { url in
            let measure = URL(string: "\(url)/v1/measure?architecture=\(tinyArchitecture)")!
            let (missing, missingBody) = try await send("POST", measure)
            #expect(missing == 401 && missingBody.contains("Authorization: Bearer TOKEN"))
            #expect(try await send("POST", measure, authorization: "Bearer wrong-token").0 == 401)
            #expect(try await send("POST", measure, authorization: "Bearer \(token)x").0 == 401)
            #expect(try await send("POST", measure, authorization: "Basic \(token)").0 == 401)
            #expect(try await send("GET", URL(string: "\(url)/v1/other")!).0 == 401)

            let (status, body) = try await send("GET", URL(string: "\(url)/v1/health")!)
            #expect(status == 200)
            let health = try JSONDecoder().decode(AgentHealth.self, from: Data(body.utf8))
            #expect(health == AgentHealth(status: "ok", backend: "torch-fp32", queueLength: 0, maximumQueueLength: 64,
                                          maximumUploadBytes: 64 << 20, skippedRequests: 0))

            let backend = try AgentLatencyBackend(url: url, token: "wrong-token", attempts: 3, backoffSeconds: 0)
            let error = await #expect(throws: AgentBackendError.self) { try await measureDetached(backend) }
            guard case .rejected(url.absoluteString, 401, _) = error else {
                Issue.record("expected a 401 refusal, got \(String(describing: error))")
                return
            }
            #expect(error?.description.contains(AgentProtocol.tokenEnvironmentVariable) == true)
        }
    }

    @Test func anOversizeUploadIs413() async throws {
        try await withAgent({ $0.maximumUploadBytes = 1000 }) { url in
            let big = try temporaryFile("big.pt", Data(repeating: 7, count: 5000))
            defer { try? FileManager.default.removeItem(at: big) }
            let backend = try AgentLatencyBackend(url: url, token: token, attempts: 2, backoffSeconds: 0,
                                                  modelFile: { _ in (big, .checkpoint) })
            let error = await #expect(throws: AgentBackendError.self) { try await measureDetached(backend) }
            guard case .rejected(_, 413, let message) = error else {
                Issue.record("expected a 413 refusal, got \(String(describing: error))")
                return
            }
            #expect(message == "5000 bytes is over this agent's upload limit of 1000 bytes (--max-upload-mb)")
        }
    }

    @Test func badRequestsAreNamed() async throws {
        try await withAgent { url in
            let bearer = "Bearer \(token)"
            let (status, body) = try await send("POST", URL(string: "\(url)/v1/measure?architecture=k4-g1")!, authorization: bearer)
            #expect(status == 400 && body.contains("query parameter 'architecture' is 'k4-g1'"))
            let (threads, threadsBody) = try await send(
                "POST", URL(string: "\(url)/v1/measure?architecture=\(tinyArchitecture)&threads=0")!, authorization: bearer)
            #expect(threads == 400 && threadsBody.contains("'threads' is '0'"))
            let (format, formatBody) = try await send(
                "POST", URL(string: "\(url)/v1/measure?architecture=\(tinyArchitecture)")!, authorization: bearer, body: Data([1, 2, 3]))
            #expect(format == 400 && formatBody.contains("model_format"))
            // Three bytes are no ONNX model: ONNX Runtime's refusal comes back, and the agent goes on.
            let (onnx, onnxBody) = try await send(
                "POST", URL(string: "\(url)/v1/measure?architecture=\(tinyArchitecture)&model_format=onnx")!, authorization: bearer,
                body: Data([1, 2, 3]))
            #expect(onnx == 500 && onnxBody.contains("measurement of \(tinyArchitecture) failed"), "\(onnxBody)")
            let (health, _) = try await send("GET", URL(string: "\(url)/v1/health")!, authorization: nil)
            #expect(health == 200)
        }
    }

    @Test func aModelIsMeasuredEndToEndThroughTheAgentBackend() async throws {
        try await withAgent { url in
            let backend = try AgentLatencyBackend(url: url, token: token, threads: 1)
            let answer = try await measureDetached(backend)
            #expect(answer.measurement.backend == "torch-fp32")
            #expect(answer.measurement.architecture == tinyArchitecture.description && answer.measurement.threads == 1)
            #expect(answer.measurement.warmupRuns == quickPolicy.warmupRuns)
            #expect((3...6).contains(answer.measurement.samplesMilliseconds.count))
            #expect(answer.measurement.median > 0 && answer.measurement.median.isFinite)
            #expect(answer.queue.positionOnArrival == 0 && answer.queue.measureSeconds > 0)

            // With the checkpoint of a trained model: the weights are loaded into the network.
            Torch.manualSeed(5)
            let detector = try Detector(tinyArchitecture)
            let checkpoint = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-agent-test-\(UUID().uuidString).pt")
            try detector.save(to: checkpoint)
            defer { try? FileManager.default.removeItem(at: checkpoint) }
            let uploading = try AgentLatencyBackend(url: url, token: token, modelFile: { _ in (checkpoint, .checkpoint) })
            #expect(try await measureDetached(uploading).measurement.median > 0)
            // The same checkpoint does not fit another architecture's network.
            let other = DetectorArchitecture(headKernelSize: 5, headGroups: 1, headChannels: 24, inputWidthPixels: 64, stemChannels: 8,
                                             stageChannels: [16, 32, 64], stageRepeats: [2, 2, 1], neckChannels: 16, sppBranches: 2)
            let error = await #expect(throws: AgentBackendError.self) { try await measureDetached(uploading, other) }
            guard case .rejected(_, 422, let message) = error else {
                Issue.record("expected a 422 refusal, got \(String(describing: error))")
                return
            }
            #expect(message.contains("cannot be loaded into \(other)"))
        }
    }

    /// What a search with `latency: agent URL` does: every measurement uploads the trial's INT8
    /// QDQ ONNX export, and the default agent runs it in ONNX Runtime.
    @Test func aSearchsAgentSpecUploadsTheInt8ModelAndTheAgentRunsIt() async throws {
        try await withAgent { url in
            let spec = try LatencyBackendSpec(parsing: "agent \(url.absoluteString)")
            let backend = try #require(try spec.makeBackend(LatencyBackendSettings(agentToken: token)) as? AgentLatencyBackend)
            let answer = try await measureDetached(backend)
            #expect(answer.measurement.backend == "onnxruntime", "\(answer.measurement)")
            #expect(answer.measurement.architecture == tinyArchitecture.description)
            #expect(answer.measurement.median > 0 && answer.measurement.warmupRuns == quickPolicy.warmupRuns)
        }
    }

    @Test func aProfileOnTheAgentIsTheBoardsONNXRuntimeProfileOfTheUploadedModel() async throws {
        // The agent's 120 s cap is not under test here; a profile beside the suite's training
        // tests once took longer on 2 busy cores.
        try await withAgent({ $0.limits.measurementTimeoutSeconds = 900 }) { url in
            let spec = try LatencyBackendSpec(parsing: "agent \(url.absoluteString)")
            let profile = try await offPool { try spec.profile(tinyArchitecture, settings: LatencyBackendSettings(agentToken: token)) }
            #expect(profile.backend.contains("onnxruntime") && profile.precision == "int8", "\(profile.backend)")
            #expect(profile.architecture == tinyArchitecture.description)
            let graph = try DetectorGraph(tinyArchitecture)
            #expect(profile.layers.map(\.name) == ["image.quantize"] + graph.nodes.map(\.name))
            #expect(profile.endToEnd.median > 0 && profile.layerSumMilliseconds > 0)
        }
        // A benchmark-command agent has no per-layer times: a clear refusal, not a wrong profile.
        try await withAgent({ $0.backend = .command(template: "echo 1", timeoutSeconds: 10) }) { url in
            let spec = try LatencyBackendSpec(parsing: "agent \(url.absoluteString)")
            let error = await #expect(throws: AgentBackendError.self) {
                try await offPool { try spec.profile(tinyArchitecture, settings: LatencyBackendSettings(agentToken: token)) }
            }
            guard case .rejected(_, 422, let message) = error else {
                Issue.record("expected a 422 refusal, got \(String(describing: error))")
                return
            }
            #expect(message.contains("benchmark command"))
        }
    }

    @Test func aBenchmarkCommandAgentMeasuresTheUploadedFile() async throws {
        // The "benchmark" prints the uploaded file's size, so the answer proves which bytes it read.
        try await withAgent({ $0.backend = .command(template: "echo warm-up; wc -c < {model}", timeoutSeconds: 10) }) { url in
            let model = try temporaryFile("model.onnx", Data(repeating: 1, count: 1234))
            defer { try? FileManager.default.removeItem(at: model) }
            let backend = try AgentLatencyBackend(url: url, token: token, threads: 2, modelFile: { _ in (model, .onnx) })
            let answer = try await measureDetached(backend)
            #expect(answer.measurement.samplesMilliseconds == [1234])
            #expect(answer.measurement.backend == "command" && answer.measurement.threads == 2)

            let withoutModel = try AgentLatencyBackend(url: url, token: token)
            let error = await #expect(throws: AgentBackendError.self) { try await measureDetached(withoutModel) }
            guard case .rejected(_, 422, let message) = error else {
                Issue.record("expected a 422 refusal, got \(String(describing: error))")
                return
            }
            #expect(message.contains("needs a model file"))
        }
    }

    /// A board that runs LiteRT (`deployed_format: tflite`): its benchmark command gets the
    /// trial's INT8 TFLite model as a `.tflite` file; the built-in backend, which runs ONNX,
    /// refuses it by name.
    @Test func aLiteRTBoardsCommandGetsTheTFLiteModel() async throws {
        let template = "case {model} in *.tflite) ;; *) exit 9;; esac; test \"$(head -c 8 {model} | tail -c 4)\" = TFL3 && wc -c < {model}"
        let settings = LatencyBackendSettings(agentToken: token, deployedFormat: .tflite)
        let expectedBytes = try DeployedModel(format: .tflite).data(tinyArchitecture).count
        try await withAgent({ $0.backend = .command(template: template, timeoutSeconds: 30) }) { url in
            let backend = try LatencyBackendSpec(parsing: "agent \(url.absoluteString)").makeBackend(settings)
            let measurement = try await offPool { try backend.measure(architecture: tinyArchitecture) }
            #expect(measurement.samplesMilliseconds == [Double(expectedBytes)])
        }
        try await withAgent { url in
            let backend = try LatencyBackendSpec(parsing: "agent \(url.absoluteString)").makeBackend(settings)
            let error = await #expect(throws: AgentBackendError.self) { try await offPool { try backend.measure(architecture: tinyArchitecture) } }
            guard case .rejected(_, 422, let message) = error else {
                Issue.record("expected a 422 refusal, got \(String(describing: error))")
                return
            }
            #expect(message.contains("not TFLite") && message.contains("--benchmark-command"))
        }
    }

    @Test func measurementsQueueOneAtATimeInArrivalOrder() async throws {
        // Every measurement waits until all three requests are queued (the test then removes
        // the hold file), and logs its start and end: arrival order and "one at a time" are
        // then facts of the log, not of how fast a busy machine delivers the requests.
        let hold = try temporaryFile("hold", Data())
        let log = try temporaryFile("log", Data())
        defer { for file in [hold, log] { try? FileManager.default.removeItem(at: file) } }
        let template = waitingWhileExists(hold) + "echo start >> '\(log.path)'; sleep 0.1; echo end >> '\(log.path)'; echo 5"
        try await withAgent({ $0.backend = .command(template: template, timeoutSeconds: holdingCommandTimeout) }) { url in
            // Three workers, each with its own backend, send at once.
            let backends = try (0..<3).map { _ in try AgentLatencyBackend(url: url, token: token, attempts: 1) }
            let probe = try AgentLatencyBackend(url: url, token: token)
            let answers = try await withThrowingTaskGroup(of: AgentMeasurement?.self) { group in
                for backend in backends { group.addTask { try await measureDetached(backend) } }
                group.addTask {
                    _ = try await waitUntilQueued(3, probe: probe)
                    try FileManager.default.removeItem(at: hold)
                    return nil
                }
                var answers: [AgentMeasurement] = []
                for try await answer in group { if let answer { answers.append(answer) } }
                return answers.sorted { $0.queue.positionOnArrival < $1.queue.positionOnArrival }
            }
            #expect(answers.map(\.queue.positionOnArrival) == [0, 1, 2])
            #expect(answers.allSatisfy { $0.measurement.samplesMilliseconds == [5] })
            // Nothing ran side by side: each measurement ended before the next started.
            let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
            #expect(lines == ["start", "end", "start", "end", "start", "end"])
        }
    }

    @Test func aFullQueueIs503AndTheClientSaysSo() async throws {
        // The first measurement holds the queue's one place until the test removes this file,
        // not for a fixed time: on a busy machine the second request once took longer to
        // reach the board than a 1.5 s measurement took to finish, and got the place.
        let hold = try temporaryFile("hold", Data())
        defer { try? FileManager.default.removeItem(at: hold) }
        try await withAgent({
            $0.backend = .command(template: waitingWhileExists(hold) + "echo 5", timeoutSeconds: holdingCommandTimeout)
            $0.maximumQueueLength = 1
        }) { url in
            let backend = try AgentLatencyBackend(url: url, token: token, attempts: 2, backoffSeconds: 0)
            let first = Task { try await measureDetached(backend) }
            let probe = try AgentLatencyBackend(url: url, token: token)
            try #require(try await waitUntilQueued(1, probe: probe) == 1, "the first request never reached the queue")
            let error = await #expect(throws: AgentBackendError.self) { try await measureDetached(backend) }
            try FileManager.default.removeItem(at: hold)
            guard case .unreachable(url.absoluteString, 2, let lastFailure) = error else {
                Issue.record("expected the board to stay busy, got \(String(describing: error))")
                return
            }
            #expect(lastFailure.contains("HTTP 503") && lastFailure.contains("queue is full"))
            #expect(try await first.value.measurement.samplesMilliseconds == [5])
        }
    }

    @Test func aBoardThatNeverAnswersTimesOutAfterTheRetries() async throws {
        // A loopback socket that completes connections (the kernel does, from the listen
        // backlog) but never reads or answers: a board whose agent hangs.
        let listener = try SilentListener()
        defer { listener.close() }
        let url = URL(string: "http://127.0.0.1:\(listener.port)")!
        let backend = try AgentLatencyBackend(url: url, token: token, requestTimeoutSeconds: 0.5, attempts: 2, backoffSeconds: 0.1)
        let start = ContinuousClock.now
        let error = await #expect(throws: AgentBackendError.self) { try await measureDetached(backend) }
        #expect(error == .unreachable(url: url.absoluteString, attempts: 2, lastFailure: "no answer within 0.5 s"))
        #expect(error?.description.hasPrefix("latency agent at \(url.absoluteString) did not answer after 2 tries") == true)
        // Two tries of 0.5 s and a 0.1 s pause: the limits were waited out, not cut short.
        #expect(ContinuousClock.now - start >= .seconds(1.1))
    }

    @Test func retriesWaitTwiceAsLongEachTimeUpToTheCap() throws {
        let backend = try AgentLatencyBackend(url: URL(string: "http://127.0.0.1:9")!, token: token, backoffSeconds: 2, maximumBackoffSeconds: 30)
        #expect((2...7).map { backend.delay(beforeAttempt: $0) } == [2, 4, 8, 16, 30, 30])
        #expect(backend.delay(beforeAttempt: 10_000) == 30)
        #expect(throws: AgentBackendError.self) {
            try AgentLatencyBackend(url: URL(string: "http://127.0.0.1:9")!, token: token, backoffSeconds: 2, maximumBackoffSeconds: 1)
        }
    }
}

/// A TCP socket on 127.0.0.1 that listens but never accepts.
final class SilentListener: @unchecked Sendable {
    let descriptor: Int32
    let port: Int

    init() throws {
        let socketDescriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socketDescriptor >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketDescriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(socketDescriptor, 8) == 0 else {
            _ = Glibc.close(socketDescriptor)
            throw POSIXError(.EADDRINUSE)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketDescriptor, $0, &length) }
        }
        descriptor = socketDescriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { _ = Glibc.close(descriptor) }
}
