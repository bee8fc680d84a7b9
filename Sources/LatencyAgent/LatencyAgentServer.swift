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
    /// export) runs in ONNX Runtime in this process (`OnnxRuntimeBackend`), as the board deploys
    /// it; without an upload, or with a checkpoint, EdgeNAS's own eager libtorch FP32 detector
    /// (`TorchFP32Backend`) is built from the architecture's name.
    case torch(policy: MeasurementPolicy, seed: UInt64)
    /// An external benchmark command (`CommandLatencyBackend`); `{model}` is the uploaded file.
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

    public init(host: String = "127.0.0.1", port: Int = 8420, token: String, maximumUploadBytes: Int = 64 << 20,
                maximumQueueLength: Int = 64, defaultThreads: Int = 1,
                backend: AgentMeasurementBackend = .torch(policy: .endToEnd, seed: 0)) {
        self.host = host
        self.port = port
        self.token = token
        self.maximumUploadBytes = maximumUploadBytes
        self.maximumQueueLength = maximumQueueLength
        self.defaultThreads = defaultThreads
        self.backend = backend
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
/// The protocol is `AgentProtocol`'s; docs/hardware-agent.md describes it for other clients.
public struct LatencyAgentServer: Sendable {
    public let configuration: LatencyAgentConfiguration
    private let queue: MeasurementQueue
    private let logger: Logger

    public init(configuration: LatencyAgentConfiguration, logger: Logger = Logger(label: "edgenas.agent")) throws(LatencyAgentError) {
        try configuration.validate()
        self.configuration = configuration
        queue = MeasurementQueue(maximumLength: configuration.maximumQueueLength)
        self.logger = logger
    }

    /// Listens until the task is cancelled, or (with `stopsOnSignals`) the process gets
    /// SIGINT or SIGTERM; `onListening` gets the bound port (useful with port 0).
    public func run(stopsOnSignals: Bool = true, onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let router = Router(context: AgentRequestContext.self)
        router.add(middleware: BearerTokenMiddleware(token: configuration.token))
        router.get(RouterPath(AgentProtocol.healthPath)) { _, _ in try health() }
        router.post(RouterPath(AgentProtocol.measurePath)) { request, context in try await measure(request, context: context) }
        let host = configuration.host
        if !["127.0.0.1", "localhost", "::1"].contains(host) {
            logger.warning("listening on \(host): the token and models travel unencrypted; expose the agent only on a trusted network or behind a TLS proxy")
        }
        let logger = logger
        let application = Application(
            router: router, configuration: .init(address: .hostname(host, port: configuration.port), serverName: "edgenas-agent"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("edgenas agent listening on \(host):\(port)")
                await onListening(port)
            },
            logger: logger)
        let services = ServiceGroup(configuration: .init(
            services: [application], gracefulShutdownSignals: stopsOnSignals ? [.sigterm, .sigint] : [], logger: logger))
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
                                  maximumQueueLength: configuration.maximumQueueLength, maximumUploadBytes: configuration.maximumUploadBytes))
    }

    private func measure(_ request: Request, context: AgentRequestContext) async throws -> Response {
        var query: [String: String] = [:]
        for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
        let settings: MeasureRequest
        do { settings = try MeasureRequest(query: query) } catch { return try self.error(.badRequest, error.description) }

        let limit = configuration.maximumUploadBytes
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            return try tooLarge(declared)
        }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: limit)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            return try tooLarge(nil)
        }
        let model = Data(buffer: body)
        if !model.isEmpty && settings.modelFormat == nil {
            return try error(.badRequest, "an uploaded model needs model_format=\(ModelFormat.allCases.map(\.rawValue).joined(separator: " or "))")
        }
        if model.isEmpty, let format = settings.modelFormat {
            return try error(.badRequest, "model_format=\(format.rawValue) was given but the request body (the model file) is empty")
        }

        let backend = configuration.backend, threads = settings.threads ?? configuration.defaultThreads
        let outcome: (LatencyMeasurement, QueueReport)
        do {
            outcome = try await queue.submit {
                try Self.measure(settings, model: model, threads: threads, backend: backend)
            }
        } catch let full as QueueFull {
            var response = try error(.serviceUnavailable, "the board's measurement queue is full (\(full.length) requests); try again later")
            response.headers[.retryAfter] = "5"
            return response
        } catch let refused as UnusableModel {
            return try error(.unprocessableContent, refused.description)
        } catch {
            logger.warning("measurement of \(settings.architecture) failed: \(error)")
            return try self.error(.internalServerError, "measurement of \(settings.architecture) failed: \(error)")
        }
        let (measurement, report) = outcome
        logger.info("measured \(settings.architecture): median \(String(format: "%.3f", measurement.median)) ms after waiting \(String(format: "%.1f", report.waitSeconds)) s behind \(report.positionOnArrival) request(s)")
        return try json(.ok, AgentMeasurement(measurement: measurement, queue: report))
    }

    /// Runs on the measurement lane: saves the upload, measures, removes the upload.
    private static func measure(_ settings: MeasureRequest, model: Data, threads: Int, backend: AgentMeasurementBackend) throws -> LatencyMeasurement {
        var modelFile: URL?
        if let format = settings.modelFormat {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-agent-\(UUID().uuidString).\(format.rawValue)")
            try model.write(to: file)
            modelFile = file
        }
        defer { if let modelFile { try? FileManager.default.removeItem(at: modelFile) } }
        switch backend {
        case .torch(let policy, let seed):
            if settings.modelFormat == .onnx, let modelFile {
                // The upload's precision is whatever the client exported: named by the runtime only.
                var measurement = try OnnxRuntimeBackend(policy: settings.policy(overriding: policy), threads: threads, seed: seed)
                    .measure(modelFile: modelFile, architecture: settings.architecture)
                measurement.backend = "onnxruntime"
                return measurement
            }
            let torch = TorchFP32Backend(policy: settings.policy(overriding: policy), threads: threads, seed: seed, weights: modelFile)
            do {
                return try torch.measure(architecture: settings.architecture)
            } catch let error where modelFile != nil && !(error is HardwareError) {
                // The weights did not fit the architecture's network (or were not a checkpoint).
                throw UnusableModel(description: "the uploaded checkpoint cannot be loaded into \(settings.architecture): \(error)")
            }
        case .command(let template, let timeoutSeconds):
            var command = CommandLatencyBackend(template: template, threads: threads, timeoutSeconds: timeoutSeconds)
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
