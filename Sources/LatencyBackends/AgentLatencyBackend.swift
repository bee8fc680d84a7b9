import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hardware
import Vision

/// Latency measured on a board by `edgenas agent`, reached over HTTP.
///
/// Each measurement is one `POST /v1/measure` (see `AgentProtocol`). A board that does not
/// answer in `requestTimeoutSeconds`, refuses the connection, or says it is busy (502, 503,
/// 504) is retried after `backoffSeconds`, doubling each time up to `maximumBackoffSeconds`,
/// for at most `attempts` tries; then
/// the measurement fails with an error naming the URL, and the caller (a study worker) fails
/// that one trial and goes on. Answers that another try would not change (a bad token, a bad
/// architecture, a failed measurement) fail at once.
public struct AgentLatencyBackend: LatencyBackend {
    /// The agent's base URL, e.g. http://127.0.0.1:8420.
    public let url: URL
    public let token: String
    /// Threads the board measures with; nil: the agent's default.
    public var threads: Int?
    /// Longest wait for the answer of one try, in seconds. It covers the time in the board's
    /// queue as well as the measurement itself, so it grows with the number of workers that
    /// share one board.
    public var requestTimeoutSeconds: Double
    /// Tries per measurement (1: no retry).
    public var attempts: Int
    /// Wait before the first retry, in seconds; it doubles before each further retry.
    public var backoffSeconds: Double
    /// The longest wait between two tries: without a cap, doubling from 2 s makes the 20th try
    /// wait six days.
    public var maximumBackoffSeconds: Double
    /// The model file to upload for an architecture and its format; nil: upload nothing and
    /// let the board build the network from the architecture's name.
    public var modelFile: (@Sendable (DetectorArchitecture) throws -> (URL, ModelFormat))?
    private let session: SessionHolder

    public init(url: URL, token: String, threads: Int? = nil, requestTimeoutSeconds: Double = 600, attempts: Int = 3,
                backoffSeconds: Double = 2, maximumBackoffSeconds: Double = 30, modelFile: (@Sendable (DetectorArchitecture) throws -> (URL, ModelFormat))? = nil)
        throws(AgentBackendError)
    {
        guard let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil else {
            throw .invalidSetting(url: url.absoluteString, "url", value: url.absoluteString, expected: "an http:// or https:// URL with a host")
        }
        guard !token.isEmpty else { throw .missingToken(url: url.absoluteString) }
        guard requestTimeoutSeconds > 0 else {
            throw .invalidSetting(url: url.absoluteString, "requestTimeoutSeconds", value: "\(requestTimeoutSeconds)", expected: "> 0")
        }
        guard attempts >= 1 else { throw .invalidSetting(url: url.absoluteString, "attempts", value: "\(attempts)", expected: ">= 1") }
        guard backoffSeconds >= 0 else {
            throw .invalidSetting(url: url.absoluteString, "backoffSeconds", value: "\(backoffSeconds)", expected: ">= 0")
        }
        guard maximumBackoffSeconds >= backoffSeconds else {
            throw .invalidSetting(url: url.absoluteString, "maximumBackoffSeconds", value: "\(maximumBackoffSeconds)",
                                  expected: ">= backoffSeconds (\(backoffSeconds))")
        }
        self.url = url
        self.token = token
        self.threads = threads
        self.requestTimeoutSeconds = requestTimeoutSeconds
        self.attempts = attempts
        self.backoffSeconds = backoffSeconds
        self.maximumBackoffSeconds = maximumBackoffSeconds
        self.modelFile = modelFile
        session = SessionHolder(timeoutSeconds: requestTimeoutSeconds)
    }

    public var name: String { "agent" }

    public func measure(architecture: DetectorArchitecture) throws -> LatencyMeasurement {
        try measureOnBoard(architecture: architecture).measurement
    }

    /// The board's full answer, with its queue report.
    public func measureOnBoard(architecture: DetectorArchitecture) throws -> AgentMeasurement {
        try exchange(AgentProtocol.measurePath, architecture: architecture)
    }

    /// The board's per-layer profile of `architecture` (`POST /v1/profile`): the uploaded
    /// model run under ONNX Runtime's profiler on the board, attributed to the graph's layers.
    public func profileOnBoard(architecture: DetectorArchitecture) throws -> AgentProfile {
        try exchange(AgentProtocol.profilePath, architecture: architecture)
    }

    /// One request to `path` with the architecture's model, retried on transport failures and
    /// 502/503/504 under one request id, and its answer decoded.
    private func exchange<Answer: Decodable>(_ path: String, architecture: DetectorArchitecture) throws -> Answer {
        var body = Data()
        var format: ModelFormat?
        if let modelFile {
            let (file, fileFormat) = try modelFile(architecture)
            do { body = try Data(contentsOf: file) } catch {
                throw AgentBackendError.unreadableModel(path: file.path, reason: error.localizedDescription)
            }
            format = fileFormat
        }
        // One id for every try: the agent measures it once and answers a retry with that result.
        let request = try makeRequest(path, MeasureRequest(architecture: architecture, threads: threads, modelFormat: format,
                                                           requestID: UUID().uuidString), body: body)
        var lastFailure = ""
        for attempt in 1...attempts {
            if attempt > 1 { Thread.sleep(forTimeInterval: delay(beforeAttempt: attempt)) }
            switch session.send(request, body: body, timeoutSeconds: requestTimeoutSeconds) {
            case .failure(let transport):
                lastFailure = transport.description
            case .success(let (status, data)):
                if status == 200 {
                    do { return try JSONDecoder().decode(Answer.self, from: data) } catch {
                        throw AgentBackendError.unreadableAnswer(url: url.absoluteString, reason: "\(error)")
                    }
                }
                let message = (try? JSONDecoder().decode(AgentErrorBody.self, from: data))?.error
                    ?? String(decoding: data.prefix(500), as: UTF8.self)
                guard [502, 503, 504].contains(status) else {
                    throw AgentBackendError.rejected(url: url.absoluteString, status: status, message: message)
                }
                lastFailure = "HTTP \(status): \(message)"
            }
        }
        throw AgentBackendError.unreachable(url: url.absoluteString, attempts: attempts, lastFailure: lastFailure)
    }

    /// Seconds to wait before try `attempt` (2 or more): `backoffSeconds` doubled for each
    /// earlier retry, at most `maximumBackoffSeconds`.
    func delay(beforeAttempt attempt: Int) -> Double {
        min(maximumBackoffSeconds, backoffSeconds * pow(2, Double(min(attempt - 2, 60))))
    }

    public func health() throws -> AgentHealth {
        var request = URLRequest(url: url.appendingPathComponent(String(AgentProtocol.healthPath.dropFirst())))
        request.httpMethod = "GET"
        switch session.send(request, body: nil, timeoutSeconds: min(requestTimeoutSeconds, 30)) {
        case .failure(let transport):
            throw AgentBackendError.unreachable(url: url.absoluteString, attempts: 1, lastFailure: transport.description)
        case .success(let (status, data)):
            guard status == 200 else {
                throw AgentBackendError.rejected(url: url.absoluteString, status: status, message: String(decoding: data.prefix(500), as: UTF8.self))
            }
            do { return try JSONDecoder().decode(AgentHealth.self, from: data) } catch {
                throw AgentBackendError.unreadableAnswer(url: url.absoluteString, reason: "\(error)")
            }
        }
    }

    private func makeRequest(_ path: String, _ measure: MeasureRequest, body: Data) throws(AgentBackendError) -> URLRequest {
        let endpoint = url.appendingPathComponent(String(path.dropFirst()))
        guard var components = URLComponents(url: endpoint, resolvingAgainstBaseURL: false) else {
            throw .invalidSetting(url: url.absoluteString, "url", value: url.absoluteString, expected: "a URL that can take a path")
        }
        components.queryItems = measure.queryItems
        guard let full = components.url else {
            throw .invalidSetting(url: url.absoluteString, "url", value: url.absoluteString, expected: "a URL that can take a query")
        }
        var request = URLRequest(url: full)
        request.httpMethod = "POST"
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        request.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")
        request.setValue("\(body.count)", forHTTPHeaderField: "Content-Length")
        return request
    }
}

/// One URLSession per backend, closed with it. Requests block the calling thread because
/// `LatencyBackend.measure` is synchronous (a study worker measures one trial at a time).
private final class SessionHolder: @unchecked Sendable {
    private let session: URLSession

    init(timeoutSeconds: Double) {
        // `send` enforces the limit itself (Foundation on Linux rounds sub-second timeouts);
        // the session's own limits only back it up.
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeoutSeconds.rounded(.up) + 5
        configuration.timeoutIntervalForResource = timeoutSeconds.rounded(.up) + 5
        session = URLSession(configuration: configuration)
    }

    deinit { session.invalidateAndCancel() }

    /// The status and body of the answer, or why none came (a transport failure).
    func send(_ request: URLRequest, body: Data?, timeoutSeconds: Double) -> Result<(Int, Data), TransportFailure> {
        var request = request
        request.timeoutInterval = timeoutSeconds.rounded(.up) + 5
        let done = DispatchSemaphore(value: 0)
        let box = AnswerBox()
        let completion: @Sendable (Data?, URLResponse?, (any Error)?) -> Void = { data, response, error in
            if let error {
                box.set(.failure(TransportFailure(error, timeoutSeconds: timeoutSeconds)))
            } else if let http = response as? HTTPURLResponse {
                box.set(.success((http.statusCode, data ?? Data())))
            } else {
                box.set(.failure(TransportFailure(description: "the answer was not HTTP")))
            }
            done.signal()
        }
        let task = body.map { session.uploadTask(with: request, from: $0, completionHandler: completion) }
            ?? session.dataTask(with: request, completionHandler: completion)
        task.resume()
        if done.wait(timeout: .now() + timeoutSeconds) == .timedOut {
            task.cancel()
            return .failure(TransportFailure(description: "no answer within \(timeoutSeconds) s"))
        }
        return box.get()
    }
}

/// Why no HTTP answer came, in words for the error message.
struct TransportFailure: Error, CustomStringConvertible {
    var description: String

    init(description: String) { self.description = description }

    init(_ error: any Error, timeoutSeconds: Double) {
        if let urlError = error as? URLError, urlError.code == .timedOut {
            description = "no answer within \(timeoutSeconds) s"
        } else if let urlError = error as? URLError {
            description = "\(urlError.localizedDescription) (URLError \(urlError.code.rawValue))"
        } else {
            description = "\(error)"
        }
    }
}

private final class AnswerBox: @unchecked Sendable {
    private let lock = NSLock()
    private var answer: Result<(Int, Data), TransportFailure> = .failure(TransportFailure(description: "no answer"))

    func set(_ value: Result<(Int, Data), TransportFailure>) { lock.withLock { answer = value } }
    func get() -> Result<(Int, Data), TransportFailure> { lock.withLock { answer } }
}

public enum AgentBackendError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No answer after every try: the board is down, unreachable or stuck.
    case unreachable(url: String, attempts: Int, lastFailure: String)
    /// The agent answered with an error another try would not change.
    case rejected(url: String, status: Int, message: String)
    case unreadableAnswer(url: String, reason: String)
    case unreadableModel(path: String, reason: String)
    case missingToken(url: String)
    case invalidSetting(url: String, String, value: String, expected: String)

    public var description: String {
        switch self {
        case .unreachable(let url, let attempts, let lastFailure):
            "latency agent at \(url) did not answer after \(attempts) \(attempts == 1 ? "try" : "tries") (last: \(lastFailure)); "
                + "is the board up and `edgenas agent` running there?"
        case .rejected(let url, let status, let message):
            "latency agent at \(url) refused the measurement (HTTP \(status)): \(message)"
                + (status == 401 ? " (check the token: --agent-token or \(AgentProtocol.tokenEnvironmentVariable))" : "")
        case .unreadableAnswer(let url, let reason): "latency agent at \(url) sent an answer that is not a measurement: \(reason)"
        case .unreadableModel(let path, let reason): "cannot read model file \(path) for upload: \(reason)"
        case .missingToken(let url):
            "no token for the latency agent at \(url); set \(AgentProtocol.tokenEnvironmentVariable) to the token the agent was started with"
        case .invalidSetting(let url, let field, let value, let expected):
            "latency agent \(url): setting '\(field)' is \(value); expected \(expected)"
        }
    }
}
