import Foundation
import Hardware
import Vision

/// The HTTP interface between search workers and `edgenas agent` on a board (see
/// docs/hardware-agent.md). Both sides use these types, so they cannot disagree.
///
/// `POST /v1/measure?architecture=NAME[&threads=N][&model_format=onnx|tflite|checkpoint][&warmup=N]
/// [&min_runs=N][&max_runs=N][&max_seconds=X][&request_id=ID]` with `Authorization: Bearer TOKEN`; the body is
/// the model file's bytes (empty when the agent builds the network from the architecture).
/// The answer is an `AgentMeasurement` (200) or an `AgentErrorBody` (4xx, 5xx).
/// `GET /v1/health` needs no token and answers an `AgentHealth`.
public enum AgentProtocol {
    public static let measurePath = "/v1/measure"
    public static let healthPath = "/v1/health"
    /// `POST /v1/profile`, with the same parameters and an ONNX upload exported by EdgeNAS: the
    /// board's per-layer profile from ONNX Runtime's own profiler (an `AgentProfile`).
    public static let profilePath = "/v1/profile"
    /// Header set to "true" on an answer given again to a retried `request_id`: no new
    /// measurement was made for it.
    public static let replayedHeader = "EdgeNAS-Replayed"
    /// Where both sides read the token when no flag gives it.
    public static let tokenEnvironmentVariable = "EDGENAS_AGENT_TOKEN"
}

/// What an uploaded model file is.
public enum ModelFormat: String, Codable, Hashable, Sendable, CaseIterable {
    /// An ONNX file, for an external benchmark command (e.g. onnxruntime's) or the agent's
    /// built-in ONNX Runtime.
    case onnx
    /// A TFLite file, for an external benchmark command (LiteRT's `benchmark_model` with the
    /// board's NPU delegate, or `scripts/benchmark_tflite.py`).
    case tflite
    /// EdgeNAS weights saved by `Module.save(to:)` (a training checkpoint's model file),
    /// for the agent's built-in torch backend.
    case checkpoint
}

/// The settings of one measurement request.
public struct MeasureRequest: Hashable, Sendable {
    public var architecture: DetectorArchitecture
    /// Intra-op threads; nil: the agent's default.
    public var threads: Int?
    /// The format of the uploaded model; nil when nothing is uploaded.
    public var modelFormat: ModelFormat?
    /// Overrides of the agent's measurement policy (built-in backend only); nil: the agent's.
    public var warmupRuns: Int?
    public var minimumRuns: Int?
    public var maximumRuns: Int?
    public var maximumSeconds: Double?
    /// The client's name for this measurement, the same on every retry: the agent measures a
    /// request id once and answers its retries with that measurement (1-128 of A-Z a-z 0-9 - _).
    public var requestID: String?

    public init(architecture: DetectorArchitecture, threads: Int? = nil, modelFormat: ModelFormat? = nil,
                warmupRuns: Int? = nil, minimumRuns: Int? = nil, maximumRuns: Int? = nil, maximumSeconds: Double? = nil,
                requestID: String? = nil) {
        self.architecture = architecture
        self.threads = threads
        self.modelFormat = modelFormat
        self.warmupRuns = warmupRuns
        self.minimumRuns = minimumRuns
        self.maximumRuns = maximumRuns
        self.maximumSeconds = maximumSeconds
        self.requestID = requestID
    }

    /// The request as URL query items, in a fixed order.
    public var queryItems: [URLQueryItem] {
        var items = [URLQueryItem(name: "architecture", value: architecture.description)]
        func add(_ name: String, _ value: CustomStringConvertible?) {
            if let value { items.append(URLQueryItem(name: name, value: value.description)) }
        }
        add("threads", threads)
        add("model_format", modelFormat?.rawValue)
        add("warmup", warmupRuns)
        add("min_runs", minimumRuns)
        add("max_runs", maximumRuns)
        add("max_seconds", maximumSeconds)
        add("request_id", requestID)
        return items
    }

    /// Reads a request from its query parameters; the error names the parameter.
    public init(query: [String: String]) throws(AgentRequestError) {
        let known: Set = ["architecture", "threads", "model_format", "warmup", "min_runs", "max_runs", "max_seconds", "request_id"]
        if let unknown = query.keys.sorted().first(where: { !known.contains($0) }) {
            throw .invalidParameter(unknown, value: query[unknown] ?? "", expected: "one of \(known.sorted().joined(separator: ", "))")
        }
        guard let name = query["architecture"] else {
            throw .invalidParameter("architecture", value: "(missing)", expected: "an architecture short name such as k3-g8-c24-w224")
        }
        do { architecture = try DetectorArchitecture(shortName: name) } catch {
            throw .invalidParameter("architecture", value: name, expected: "a valid architecture short name (\(error))")
        }
        func int(_ key: String, minimum: Int) throws(AgentRequestError) -> Int? {
            guard let text = query[key] else { return nil }
            guard let value = Int(text), value >= minimum else { throw .invalidParameter(key, value: text, expected: "an integer >= \(minimum)") }
            return value
        }
        threads = try int("threads", minimum: 1)
        warmupRuns = try int("warmup", minimum: 0)
        minimumRuns = try int("min_runs", minimum: 1)
        maximumRuns = try int("max_runs", minimum: 1)
        if let text = query["max_seconds"] {
            guard let value = Double(text), value > 0, value.isFinite else {
                throw .invalidParameter("max_seconds", value: text, expected: "a positive number of seconds")
            }
            maximumSeconds = value
        } else {
            maximumSeconds = nil
        }
        if let text = query["request_id"] {
            let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
            guard (1...128).contains(text.count), text.allSatisfy(allowed.contains) else {
                throw .invalidParameter("request_id", value: String(text.prefix(40)), expected: "1-128 characters of A-Z a-z 0-9 - _")
            }
            requestID = text
        } else {
            requestID = nil
        }
        if let text = query["model_format"] {
            guard let format = ModelFormat(rawValue: text) else {
                throw .invalidParameter("model_format", value: text, expected: ModelFormat.allCases.map(\.rawValue).joined(separator: " or "))
            }
            modelFormat = format
        } else {
            modelFormat = nil
        }
    }

    /// `base` with this request's overrides applied.
    public func policy(overriding base: MeasurementPolicy) -> MeasurementPolicy {
        var policy = base
        if let warmupRuns { policy.warmupRuns = warmupRuns }
        if let minimumRuns { policy.minimumRuns = minimumRuns }
        if let maximumRuns { policy.maximumRuns = maximumRuns }
        if let maximumSeconds { policy.maximumSeconds = maximumSeconds }
        return policy
    }
}

/// A request the agent cannot take as it is (HTTP 400).
public enum AgentRequestError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidParameter(String, value: String, expected: String)

    public var description: String {
        switch self {
        case .invalidParameter(let name, let value, let expected): "query parameter '\(name)' is '\(value)'; expected \(expected)"
        }
    }
}

/// The agent's answer to a measurement.
public struct AgentMeasurement: Codable, Hashable, Sendable {
    public var measurement: LatencyMeasurement
    public var queue: QueueReport
    /// Request values the agent lowered to its own limits, e.g. "warmup=5000 lowered to this
    /// agent's maximum 50" (absent: none).
    public var adjustments: [String]?

    public init(measurement: LatencyMeasurement, queue: QueueReport, adjustments: [String]? = nil) {
        self.measurement = measurement
        self.queue = queue
        self.adjustments = adjustments
    }
}

/// The agent's answer to a profile request.
public struct AgentProfile: Codable, Hashable, Sendable {
    public var profile: LayerProfile
    public var queue: QueueReport
    public var adjustments: [String]?

    public init(profile: LayerProfile, queue: QueueReport, adjustments: [String]? = nil) {
        self.profile = profile
        self.queue = queue
        self.adjustments = adjustments
    }
}

/// How a request fared in the board's queue: the board measures one model at a time, in
/// arrival order, so workers sharing it see how long they waited and why.
public struct QueueReport: Codable, Hashable, Sendable {
    /// Requests ahead of this one when it arrived (0: it ran at once).
    public var positionOnArrival: Int
    /// Seconds from arrival to the start of its measurement.
    public var waitSeconds: Double
    /// Seconds its measurement took (building the network, warm-up and timed runs).
    public var measureSeconds: Double

    public init(positionOnArrival: Int, waitSeconds: Double, measureSeconds: Double) {
        self.positionOnArrival = positionOnArrival
        self.waitSeconds = waitSeconds
        self.measureSeconds = measureSeconds
    }
}

/// `GET /v1/health`.
public struct AgentHealth: Codable, Hashable, Sendable {
    public var status: String
    /// The agent's backend, e.g. "torch-fp32" or "command".
    public var backend: String
    /// Requests waiting or running now.
    public var queueLength: Int
    public var maximumQueueLength: Int
    public var maximumUploadBytes: Int
    /// Requests dropped before their turn because their client went away (absent: an older agent).
    public var skippedRequests: Int?

    public init(status: String, backend: String, queueLength: Int, maximumQueueLength: Int, maximumUploadBytes: Int,
                skippedRequests: Int? = nil) {
        self.status = status
        self.backend = backend
        self.queueLength = queueLength
        self.maximumQueueLength = maximumQueueLength
        self.maximumUploadBytes = maximumUploadBytes
        self.skippedRequests = skippedRequests
    }
}

/// The body of every error answer.
public struct AgentErrorBody: Codable, Hashable, Sendable {
    public var error: String
    public init(error: String) { self.error = error }
}
