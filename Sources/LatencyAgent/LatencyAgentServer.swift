import Foundation
import Hardware
import Hummingbird
import LatencyBackends
import Logging
import ServiceLifecycle
import Vision

/// How the agent measures the models it is sent.
public enum AgentMeasurementBackend: Sendable, Hashable {
    /// The built-in backend: an uploaded ONNX model (what a search sends: the trial's INT8 QDQ
    /// export) runs in ONNX Runtime in this process (`ONNXRuntimeBackend`), as the board deploys
    /// it; without an upload, or with a checkpoint, EdgeNAS's own eager libtorch FP32 detector
    /// (`TorchFP32Backend`) is built from the architecture's name. It runs no TFLite upload:
    /// a board that runs LiteRT measures through a benchmark command.
    case torch(policy: MeasurementPolicy, seed: UInt64)
    /// An external benchmark command (`CommandLatencyBackend`); `{model}` is the uploaded file
    /// (ONNX, TFLite or checkpoint, with that extension), e.g. LiteRT's `benchmark_model` with
    /// the board's NPU delegate.
    case command(template: String, timeoutSeconds: Double)

    public var name: String {
        switch self {
        case .torch: "torch-fp32"
        case .command: "command"
        }
    }
}

/// Settings of `edgenas agent`.
public struct LatencyAgentConfiguration: Sendable {
    /// The address to listen on; loopback unless the board is to be reached from elsewhere.
    public var host: String
    /// 0 picks a free port (tests).
    public var port: Int
    /// The bearer token every request but the health check must carry.
    public var token: String
    /// Largest model upload accepted, in bytes; larger ones get HTTP 413.
    public var maximumUploadBytes: Int
    /// Requests waiting or running at once; more get HTTP 503 (the client retries later).
    public var maximumQueueLength: Int
    /// Threads when a request does not say.
    public var defaultThreads: Int
    public var backend: AgentMeasurementBackend
    /// What one request may ask of the board, and how long the agent waits for anything.
    public var limits: AgentLimits

    public init(host: String = "127.0.0.1", port: Int = 8420, token: String, maximumUploadBytes: Int = 64 << 20,
                maximumQueueLength: Int = 64, defaultThreads: Int = 1,
                backend: AgentMeasurementBackend = .torch(policy: .endToEnd, seed: 0), limits: AgentLimits = AgentLimits()) {
        self.host = host
        self.port = port
        self.token = token
        self.maximumUploadBytes = maximumUploadBytes
        self.maximumQueueLength = maximumQueueLength
        self.defaultThreads = defaultThreads
        self.backend = backend
        self.limits = limits
    }

    public func validate() throws(LatencyAgentError) {
        guard !token.isEmpty else { throw .missingToken }
        guard !token.contains(where: { $0.isWhitespace || $0.isNewline }) else {
            throw .invalidSetting("token", value: "(hidden)", expected: "no spaces or line breaks (it travels in an HTTP header)")
        }
        guard !host.isEmpty else { throw .invalidSetting("host", value: "''", expected: "an address such as 127.0.0.1") }
        guard (0...65535).contains(port) else { throw .invalidSetting("port", value: "\(port)", expected: "0...65535") }
        guard maximumUploadBytes >= 1 else {
            throw .invalidSetting("maximumUploadBytes", value: "\(maximumUploadBytes)", expected: "at least 1 byte")
        }
        guard maximumQueueLength >= 1 else {
            throw .invalidSetting("maximumQueueLength", value: "\(maximumQueueLength)", expected: "at least 1")
        }
        guard defaultThreads >= 1 else { throw .invalidSetting("defaultThreads", value: "\(defaultThreads)", expected: "at least 1") }
        try limits.validate()
        switch backend {
        case .torch(let policy, _):
            do { try policy.validate() } catch { throw .invalidSetting("policy", value: "\(error)", expected: "a valid measurement policy") }
        case .command(let template, let timeoutSeconds):
            guard !template.isEmpty else { throw .invalidSetting("benchmark command", value: "''", expected: "a command line") }
            guard timeoutSeconds > 0 else {
                throw .invalidSetting("benchmark timeout", value: "\(timeoutSeconds)", expected: "a positive number of seconds")
            }
        }
    }
}

public enum LatencyAgentError: Error, Equatable, Sendable, CustomStringConvertible {
    case missingToken
    case invalidSetting(String, value: String, expected: String)

    public var description: String {
        switch self {
        case .missingToken:
            "the agent needs a token: pass --token or set \(AgentProtocol.tokenEnvironmentVariable) (every client sends it as a bearer token)"
        case .invalidSetting(let field, let value, let expected): "agent setting '\(field)' is \(value); expected \(expected)"
        }
    }
}

/// `edgenas agent`: an HTTP server on the board that measures the models search workers send.
/// The protocol is `AgentProtocol`'s; docs/hardware-agent.md describes it for other clients,
/// and its hostile-input table says how each limit of `AgentLimits` answers.
public struct LatencyAgentServer: Sendable {
    public let configuration: LatencyAgentConfiguration
    private let queue: MeasurementQueue
    private let uploads: UploadSlots
    private let ledger: RequestLedger
    private let logger: Logger

    public init(configuration: LatencyAgentConfiguration, logger: Logger = Logger(label: "edgenas.agent")) throws(LatencyAgentError) {
        try configuration.validate()
        self.configuration = configuration
        queue = MeasurementQueue(maximumLength: configuration.maximumQueueLength)
        uploads = UploadSlots(count: configuration.limits.maximumConcurrentUploads)
        ledger = RequestLedger(capacity: configuration.limits.rememberedAnswers, keepSeconds: configuration.limits.rememberSeconds)
        self.logger = logger
    }

    /// Listens until the task is cancelled, or (with `stopsOnSignals`) the process gets
    /// SIGINT or SIGTERM; `onListening` gets the bound port (useful with port 0). Open requests
    /// get `limits.shutdownGraceSeconds` to finish, then they are cut off (a measurement in
    /// progress is not waited for).
    public func run(stopsOnSignals: Bool = true, onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let router = Router(context: AgentRequestContext.self)
        router.add(middleware: BearerTokenMiddleware(token: configuration.token))
        router.get(RouterPath(AgentProtocol.healthPath)) { _, _ in try health() }
        router.post(RouterPath(AgentProtocol.measurePath)) { request, context in try await serve(.latency, request, context: context) }
        router.post(RouterPath(AgentProtocol.profilePath)) { request, context in try await serve(.profile, request, context: context) }
        let host = configuration.host, limits = configuration.limits
        if !["127.0.0.1", "localhost", "::1"].contains(host) {
            logger.warning("listening on \(host): the token and models travel unencrypted; expose the agent only on a trusted network or behind a TLS proxy")
        }
        let logger = logger
        let application = Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: .nanoseconds(Int64(limits.idleTimeoutSeconds * 1e9)))),
            configuration: .init(address: .hostname(host, port: configuration.port), serverName: "edgenas-agent"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("edgenas agent listening on \(host):\(port)")
                await onListening(port)
            },
            logger: logger)
        // Services stop in reverse order: the queue closes first, answering the requests it
        // holds, so the server's graceful shutdown does not wait for measurements.
        var groupConfiguration = ServiceGroupConfiguration(
            services: [application, QueueCloser(queue: queue)], gracefulShutdownSignals: stopsOnSignals ? [.sigterm, .sigint] : [], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .nanoseconds(Int64(limits.shutdownGraceSeconds * 1e9))
        let services = ServiceGroup(configuration: groupConfiguration)
        // Cancelling the caller shuts the server down gracefully (open requests are answered)
        // rather than cancelling its connections mid-flight, which NIO does not survive; the
        // group runs in a task of its own so the cancellation does not reach it directly.
        let running = Task { try await services.run() }
        try await withTaskCancellationHandler {
            try await running.value
        } onCancel: {
            Task { await services.triggerGracefulShutdown() }
        }
    }

    private func health() throws -> Response {
        try json(.ok, AgentHealth(status: "ok", backend: configuration.backend.name, queueLength: queue.length,
                                  maximumQueueLength: configuration.maximumQueueLength, maximumUploadBytes: configuration.maximumUploadBytes,
                                  skippedRequests: queue.skippedCount))
    }

    /// What a request asks the board for.
    enum Work: Sendable {
        /// End-to-end latency (`/v1/measure`).
        case latency
        /// Per-layer times from ONNX Runtime's profiler (`/v1/profile`).
        case profile
    }

    /// Admission, then the upload, then the measurement: each step refuses before the next
    /// costs anything. The whole request is cancelled when its client's connection closes.
    private func serve(_ work: Work, _ request: Request, context: AgentRequestContext) async throws -> Response {
        var query: [String: String] = [:]
        for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
        let settings: MeasureRequest
        do { settings = try MeasureRequest(query: query) } catch { return try self.error(.badRequest, error.description) }

        // A retry of a request already measured or in flight: its answer, without a new upload.
        if let id = settings.requestID, await ledger.knows(id) {
            return try await request.body.consumeWithCancellationOnInboundClose { body in
                // The retry's upload is read and dropped, so the connection's close is still seen.
                _ = await Self.collect(body, upTo: configuration.maximumUploadBytes, timeoutSeconds: configuration.limits.uploadTimeoutSeconds)
                let gone = stored(503, AgentErrorBody(error: "the earlier request with request_id \(id) was dropped; send it again"))
                return try response(await ledger.answer(for: id) { _ in gone }.answer, replayed: true)
            }
        }
        let limit = configuration.maximumUploadBytes
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            return try tooLarge(declared)
        }
        let admission: Admission
        do { admission = try queue.admit() } catch let full as QueueFull {
            return try busy(full.stopping ? "the agent is stopping" : "the board's measurement queue is full (\(full.length) requests)")
        }
        guard uploads.take() else {
            queue.withdraw(admission)
            return try busy("\(configuration.limits.maximumConcurrentUploads) uploads are already arriving")
        }
        var uploadSlotHeld = true
        defer { if uploadSlotHeld { uploads.giveBack() } }
        var admitted: Admission? = admission
        defer { if let admitted { queue.withdraw(admitted) } }

        return try await request.body.consumeWithCancellationOnInboundClose { body in
            let model: Data
            switch await Self.collect(body, upTo: limit, timeoutSeconds: configuration.limits.uploadTimeoutSeconds) {
            case .success(let data): model = data
            case .failure(.tooLarge): return try tooLarge(nil)
            case .failure(.tooSlow(let seconds)):
                return try error(.requestTimeout, "the upload did not arrive within \(seconds) s (this agent's upload timeout)")
            case .failure(.broken(let reason)): return try error(.badRequest, "the upload could not be read: \(reason)")
            }
            uploads.giveBack()
            uploadSlotHeld = false
            if !model.isEmpty && settings.modelFormat == nil {
                return try error(.badRequest, "an uploaded model needs model_format=\(ModelFormat.allCases.map(\.rawValue).joined(separator: " or "))")
            }
            if model.isEmpty, let format = settings.modelFormat {
                return try error(.badRequest, "model_format=\(format.rawValue) was given but the request body (the model file) is empty")
            }
            if work == .profile, let refusal = profileRefusal(settings) { return try error(.unprocessableContent, refusal) }
            admitted = nil  // from here the queue owns the place
            guard let id = settings.requestID else {
                return try response(await self.answer(work, settings, model: model, admission: admission), replayed: false)
            }
            let (answer, joined) = await ledger.answer(for: id) { waiting in
                await self.answer(work, settings, model: model, admission: admission, isWanted: { waiting.anyone })
            }
            if joined { queue.withdraw(admission) }
            return try response(answer, replayed: joined)
        }
    }

    /// Measures one admitted request and turns every outcome into the answer to send.
    private func answer(_ work: Work, _ settings: MeasureRequest, model: Data, admission: Admission,
                        isWanted: @escaping @Sendable () -> Bool = { true }) async -> StoredAnswer {
        let limits = configuration.limits, backend = configuration.backend
        let base: MeasurementPolicy = if case .torch(let policy, _) = backend { policy } else { .endToEnd }
        let (policy, threads, adjustments) = limits.clamp(
            settings.policy(overriding: base), threads: settings.threads ?? configuration.defaultThreads, request: settings)
        let said = adjustments.isEmpty ? nil : adjustments
        let seed: UInt64 = if case .torch(_, let seed) = backend { seed } else { 0 }
        do {
            switch work {
            case .latency:
                let (measurement, report) = try await queue.run(admission, timeoutSeconds: limits.measurementTimeoutSeconds, isWanted: isWanted) {
                    try Self.measure(settings, model: model, policy: policy, threads: threads, backend: backend,
                                     timeoutSeconds: limits.measurementTimeoutSeconds)
                }
                logger.info("measured \(settings.architecture): median \(String(format: "%.3f", measurement.median)) ms after waiting \(String(format: "%.1f", report.waitSeconds)) s behind \(report.positionOnArrival) request(s)")
                return stored(200, AgentMeasurement(measurement: measurement, queue: report, adjustments: said))
            case .profile:
                let (profile, report) = try await queue.run(admission, timeoutSeconds: limits.measurementTimeoutSeconds, isWanted: isWanted) {
                    try Self.profile(settings, model: model, policy: policy, threads: threads, seed: seed)
                }
                logger.info("profiled \(settings.architecture): \(profile.layers.count) layers, end-to-end median \(String(format: "%.3f", profile.endToEnd.median)) ms")
                return stored(200, AgentProfile(profile: profile, queue: report, adjustments: said))
            }
        } catch is CancellationError {
            logger.info("skipped the request for \(settings.architecture): its client went away before its turn")
            return stored(503, AgentErrorBody(error: "the request was dropped: its client went away before its turn"))
        } catch is AgentStopping {
            return stored(503, AgentErrorBody(error: "the agent is stopping; try again later"))
        } catch let refused as UnusableModel {
            return stored(422, AgentErrorBody(error: refused.description))
        } catch let timedOut as MeasurementTimedOut {
            logger.warning("measurement of \(settings.architecture) ran past \(timedOut.seconds) s")
            return stored(422, AgentErrorBody(error: timedOut.description))
        } catch {
            logger.warning("measurement of \(settings.architecture) failed: \(error)")
            return stored(500, AgentErrorBody(error: "measurement of \(settings.architecture) failed: \(error)"))
        }
    }

    /// Runs on the measurement lane: saves the upload, measures, removes the upload.
    private static func measure(_ settings: MeasureRequest, model: Data, policy: MeasurementPolicy, threads: Int,
                                backend: AgentMeasurementBackend, timeoutSeconds: Double) throws -> LatencyMeasurement {
        var modelFile: URL?
        if let format = settings.modelFormat {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-agent-\(UUID().uuidString).\(format.rawValue)")
            try model.write(to: file)
            modelFile = file
        }
        defer { if let modelFile { try? FileManager.default.removeItem(at: modelFile) } }
        switch backend {
        case .torch(_, let seed):
            if settings.modelFormat == .onnx, let modelFile {
                // The upload's precision is whatever the client exported: named by the runtime only.
                var measurement = try ONNXRuntimeBackend(policy: policy, threads: threads, seed: seed)
                    .measure(modelFile: modelFile, architecture: settings.architecture)
                measurement.backend = "onnxruntime"
                return measurement
            }
            if settings.modelFormat == .tflite {
                throw UnusableModel(description: "this agent's built-in backend runs ONNX uploads and checkpoints, not TFLite; "
                    + "start it with --benchmark-command to measure TFLite models (e.g. LiteRT's benchmark_model, or scripts/benchmark_tflite.py)")
            }
            let torch = TorchFP32Backend(policy: policy, threads: threads, seed: seed, weights: modelFile)
            do {
                return try torch.measure(architecture: settings.architecture)
            } catch let error where modelFile != nil && !(error is HardwareError) {
                // The weights did not fit the architecture's network (or were not a checkpoint).
                throw UnusableModel(description: "the uploaded checkpoint cannot be loaded into \(settings.architecture): \(error)")
            }
        case .command(let template, let commandTimeout):
            var command = CommandLatencyBackend(template: template, threads: threads, timeoutSeconds: min(commandTimeout, timeoutSeconds))
            if let file = modelFile { command.modelFile = { @Sendable _ in file } }
            do {
                return try command.measure(architecture: settings.architecture)
            } catch let error as CommandBackendError {
                if case .noModelFile = error {
                    throw UnusableModel(description: "this agent's benchmark command needs a model file; upload one with model_format=onnx")
                }
                throw error
            }
        }
    }

    /// Why this agent cannot profile the request (nil: it can). Profiles come from ONNX
    /// Runtime's profiler on an uploaded ONNX file, in the built-in backend.
    private func profileRefusal(_ settings: MeasureRequest) -> String? {
        if case .command = configuration.backend {
            return "this agent measures with a benchmark command, which gives no per-layer times; start it without --benchmark-command to profile"
        }
        guard settings.modelFormat == .onnx else { return "a profile needs the model as an ONNX upload (model_format=onnx) exported by EdgeNAS" }
        return nil
    }

    /// Runs on the measurement lane: the uploaded ONNX file profiled by ONNX Runtime.
    private static func profile(_ settings: MeasureRequest, model: Data, policy: MeasurementPolicy, threads: Int, seed: UInt64) throws -> LayerProfile {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-agent-\(UUID().uuidString).onnx")
        try model.write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        // The profiler's kernel times come from runs of their own; the policy's run cap bounds them.
        let profiler = ONNXRuntimeLayerProfiler(threads: threads, seed: seed, endToEndPolicy: policy, runs: min(50, policy.maximumRuns),
                                                warmupRuns: min(5, policy.warmupRuns))
        do {
            return try profiler.profile(modelFile: file, architecture: settings.architecture)
        } catch let error where !(error is HardwareError) {
            throw UnusableModel(description: "the uploaded ONNX model could not be profiled as \(settings.architecture): \(error)")
        }
    }

    private enum UploadFailure: Error {
        case tooLarge
        case tooSlow(seconds: Double)
        case broken(String)
    }

    /// Reads the whole body, or stops at `limit` bytes or after `timeoutSeconds`.
    private static func collect(_ body: RequestBody, upTo limit: Int, timeoutSeconds: Double) async -> Result<Data, UploadFailure> {
        await withTaskGroup(of: Result<Data, UploadFailure>?.self) { group in
            group.addTask {
                var data = Data()
                do {
                    for try await buffer in body {
                        guard data.count + buffer.readableBytes <= limit else { return .failure(.tooLarge) }
                        data.append(contentsOf: buffer.readableBytesView)
                    }
                } catch is CancellationError {
                    return nil
                } catch {
                    return .failure(.broken("\(error)"))
                }
                return .success(data)
            }
            group.addTask {
                try? await Task.sleep(for: .nanoseconds(Int64(timeoutSeconds * 1e9)))
                return Task.isCancelled ? nil : .failure(.tooSlow(seconds: timeoutSeconds))
            }
            defer { group.cancelAll() }
            while let next = await group.next() {
                if let next { return next }
            }
            return .failure(.broken("the connection closed"))
        }
    }

    private func response(_ answer: StoredAnswer, replayed: Bool) throws -> Response {
        var response = Response(status: .init(code: answer.status), headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
        // Tells a client its retry was answered with the measurement it already asked for.
        if replayed { response.headers[.init(AgentProtocol.replayedHeader)!] = "true" }
        if answer.status == 503 { response.headers[.retryAfter] = "5" }
        return response
    }

    private func stored(_ status: Int, _ value: some Encodable) -> StoredAnswer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return StoredAnswer(status: status, body: (try? encoder.encode(value)) ?? Data())
    }

    private func busy(_ reason: String) throws -> Response {
        var response = try error(.serviceUnavailable, "\(reason); try again later")
        response.headers[.retryAfter] = "5"
        return response
    }

    private func tooLarge(_ declared: Int?) throws -> Response {
        let size = declared.map { "\($0) bytes" } ?? "the upload"
        return try error(.contentTooLarge, "\(size) is over this agent's upload limit of \(configuration.maximumUploadBytes) bytes (--max-upload-mb)")
    }

    private func error(_ status: HTTPResponse.Status, _ message: String) throws -> Response {
        try json(status, AgentErrorBody(error: message))
    }
}

/// A model the agent's backend cannot measure (HTTP 422).
struct UnusableModel: Error, CustomStringConvertible {
    var description: String
}

/// Closes the measurement queue when the agent starts to stop.
private struct QueueCloser: Service {
    let queue: MeasurementQueue

    func run() async throws {
        try? await gracefulShutdown()
        queue.close()
    }
}

/// A bounded count of uploads being received at once.
final class UploadSlots: @unchecked Sendable {
    private let lock = NSLock()
    private var free: Int

    init(count: Int) { free = count }

    /// Takes a slot, or returns false when none is free.
    func take() -> Bool {
        lock.withLock {
            guard free > 0 else { return false }
            free -= 1
            return true
        }
    }

    func giveBack() { lock.withLock { free += 1 } }
}

/// JSON answer with `status`.
func json(_ status: HTTPResponse.Status, _ value: some Encodable) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let data = try encoder.encode(value)
    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

/// Each request's context; uploads are capped by the agent itself, so the default decoding
/// cap (used by nothing here) is left as it is.
struct AgentRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    init(source: ApplicationRequestContextSource) { coreContext = .init(source: source) }
}

/// Lets the health check through and demands `Authorization: Bearer TOKEN` of everything else.
struct BearerTokenMiddleware: RouterMiddleware {
    typealias Context = AgentRequestContext
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path == AgentProtocol.healthPath { return try await next(request, context) }
        let header = request.headers[.authorization] ?? ""
        let prefix = "Bearer "
        guard header.hasPrefix(prefix) else {
            return try unauthorized(header.isEmpty ? "this agent needs Authorization: Bearer TOKEN" : "the Authorization header is not a bearer token")
        }
        guard Self.constantTimeEqual(Array(header.dropFirst(prefix.count).utf8), Array(token.utf8)) else {
            return try unauthorized("wrong token")
        }
        return try await next(request, context)
    }

    private func unauthorized(_ message: String) throws -> Response {
        var response = try json(.unauthorized, AgentErrorBody(error: message))
        response.headers[.wwwAuthenticate] = "Bearer"
        return response
    }

    /// Compares without stopping at the first difference, so the answer time does not tell
    /// how much of a guessed token was right.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0 && a.count == b.count
    }
}
