import Foundation
import Hardware
import Vision

/// Which latency backend a study measures with, as written on a command line (`--latency`) or in
/// a config (`latency.backend`); the one grammar of both (docs/hardware-agent.md):
///
/// - `int8 [ENGINE]`: libtorch's quantized kernels in this process (`TorchInt8Backend`), the
///   default engine unless one of this libtorch's engines is named;
/// - `fp32` (or `local`): eager libtorch FP32 on this machine (`TorchFP32Backend`);
/// - `onnxruntime [int8|fp32]`: the exported ONNX model in ONNX Runtime on this machine
///   (`ONNXRuntimeBackend`, INT8 QDQ unless `fp32`), the deployment-grade figure;
/// - `agent URL`: a board running `edgenas agent`, e.g. `agent http://192.0.2.7:8420`;
/// - `command TEMPLATE`: an external benchmark run here, e.g.
///   `command 'python3 bench.py --arch {architecture} --threads {threads}'`;
/// - `predictor FILE`: a latency predictor saved as JSON by `LatencyPredictor.save(to:)`;
/// - `vela ACCELERATOR`: Arm's Vela estimate for an Ethos-U NPU, e.g. `vela ethos-u65-256`
///   (the i.MX 93's), of the full-integer INT8 TFLite model (`VelaLatencyBackend`).
public enum LatencyBackendSpec: Hashable, Sendable, CustomStringConvertible {
    case int8(engine: String?)
    case fp32
    case onnxruntime(ONNXRuntimeBackend.Precision)
    case agent(URL)
    case command(String)
    case predictor(path: String)
    case vela(accelerator: String)

    public init(parsing text: String) throws(LatencyBackendSpecError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let kind = String(trimmed.prefix { !$0.isWhitespace })
        let argument = Self.unquoted(String(trimmed.dropFirst(kind.count)).trimmingCharacters(in: .whitespaces))
        switch kind {
        case "int8":
            let engines = QuantizedDetector.availableEngines
            guard argument.isEmpty || engines.contains(argument) else {
                throw .invalidArgument(text, kind: kind, expected: "one of this libtorch's engines (\(engines.joined(separator: ", "))) or none")
            }
            self = .int8(engine: argument.isEmpty ? nil : argument)
        case "fp32", "local":
            guard argument.isEmpty else { throw .unexpectedArgument(text, kind: kind) }
            self = .fp32
        case "onnxruntime":
            guard let precision = argument.isEmpty ? .int8 : ONNXRuntimeBackend.Precision(rawValue: argument) else {
                throw .invalidArgument(text, kind: kind, expected: "int8 or fp32 (default int8), e.g. onnxruntime int8")
            }
            self = .onnxruntime(precision)
        case "agent":
            guard let url = URL(string: argument), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
                  url.host != nil else {
                throw .invalidArgument(text, kind: kind, expected: "an http:// or https:// URL, e.g. agent http://127.0.0.1:8420")
            }
            self = .agent(url)
        case "command":
            guard !argument.isEmpty else {
                throw .invalidArgument(text, kind: kind, expected: "a benchmark command line, e.g. command 'my-bench --model {model} --threads {threads}'")
            }
            self = .command(argument)
        case "predictor":
            guard !argument.isEmpty else { throw .invalidArgument(text, kind: kind, expected: "the predictor's JSON file, e.g. predictor latency.json") }
            self = .predictor(path: argument)
        case "vela":
            guard VelaLatencyBackend.accelerators.contains(argument) else {
                throw .invalidArgument(text, kind: kind, expected: "an Ethos-U configuration: \(VelaLatencyBackend.accelerators.joined(separator: ", "))")
            }
            self = .vela(accelerator: argument)
        default:
            throw .unknownKind(text)
        }
    }

    public var description: String {
        switch self {
        case .int8(let engine): engine.map { "int8 \($0)" } ?? "int8"
        case .fp32: "fp32"
        case .onnxruntime(let precision): "onnxruntime \(precision.rawValue)"
        case .agent(let url): "agent \(url.absoluteString)"
        // Parsing drops one pair of outer quotes, so a template in quotes of its own gets one more.
        case .command(let template): Self.unquoted(template) == template ? "command \(template)" : "command '\(template)'"
        case .predictor(let path): "predictor \(path)"
        case .vela(let accelerator): "vela \(accelerator)"
        }
    }

    /// The backend this spec names, with `settings`.
    public func makeBackend(_ settings: LatencyBackendSettings = LatencyBackendSettings()) throws -> any LatencyBackend {
        switch self {
        case .int8(let engine):
            guard let engine = engine ?? QuantizedDetector.defaultEngine else {
                throw LatencyBackendSpecError.invalidArgument(description, kind: "int8", expected: "a libtorch with a quantized engine")
            }
            return TorchInt8Backend(engine: engine, policy: settings.policy, threads: settings.threads, seed: settings.seed)
        case .fp32:
            return TorchFP32Backend(policy: settings.policy, threads: settings.threads, seed: settings.seed)
        case .onnxruntime(let precision):
            return ONNXRuntimeBackend(precision: precision, policy: settings.policy, threads: settings.threads, seed: settings.seed)
        case .agent(let url):
            return try Self.agent(url, settings)
        case .command(let template):
            return CommandLatencyBackend(template: template, threads: settings.threads, timeoutSeconds: settings.commandTimeoutSeconds,
                                         modelFile: Self.deployedModelFile(settings.deployedModel))
        case .predictor(let path):
            return PredictorLatencyBackend(predictor: try LatencyPredictor.load(from: URL(fileURLWithPath: path)))
        case .vela(let accelerator):
            return VelaLatencyBackend(accelerator: accelerator, seed: settings.seed, timeoutSeconds: settings.commandTimeoutSeconds)
        }
    }

    /// The client of the agent at `url`; it uploads each architecture's deployed model.
    private static func agent(_ url: URL, _ settings: LatencyBackendSettings) throws -> AgentLatencyBackend {
        let token = settings.agentToken ?? ProcessInfo.processInfo.environment[AgentProtocol.tokenEnvironmentVariable] ?? ""
        let deployed = settings.deployedModel
        let file = deployedModelFile(deployed)
        return try AgentLatencyBackend(url: url, token: token, threads: settings.threads, requestTimeoutSeconds: settings.requestTimeoutSeconds,
                                       attempts: settings.attempts, backoffSeconds: settings.backoffSeconds,
                                       maximumBackoffSeconds: max(30, settings.backoffSeconds),
                                       modelFile: { architecture in (try file(architecture), deployed.format.uploadFormat) })
    }

    /// What `{model}` names in a benchmark command and what an agent is sent: one file per
    /// architecture in the temporary directory, rewritten for each measurement.
    static func deployedModelFile(_ model: DeployedModel) -> @Sendable (DetectorArchitecture) throws -> URL {
        { architecture in
            try model.write(architecture, into: FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-command-models"))
        }
    }

    /// The layer-by-layer profile of `architecture` on the runtime this spec measures on:
    /// libtorch INT8 (with the spec's engine) or FP32, ONNX Runtime, the board behind an agent
    /// (its ONNX Runtime profiler on the uploaded INT8 model), or Vela's per-layer estimate for
    /// the NPU. A benchmark command and a predictor give no per-layer times, so those are
    /// profiled on libtorch INT8, as the closest runtime at hand; the profile's backend field
    /// says which runtime it is.
    public func profile(_ architecture: DetectorArchitecture, settings: LatencyBackendSettings = LatencyBackendSettings()) throws -> LayerProfile {
        let threads = settings.threads, seed = settings.seed
        var profiler = LayerProfiler(threads: threads, seed: seed)
        switch self {
        case .int8(let engine):
            if let engine { profiler.engine = engine }
            return try profiler.profile(architecture, precision: .int8)
        case .fp32:
            return try profiler.profile(architecture, precision: .fp32)
        case .onnxruntime(let precision):
            return try ONNXRuntimeLayerProfiler(precision: precision, threads: threads, seed: seed).profile(architecture)
        case .agent(let url):
            // The board profiles what it deploys, in the one format its profiler reads: the INT8 ONNX model.
            var int8 = settings
            int8.deployedPrecision = .int8
            int8.deployedFormat = .onnx
            return try Self.agent(url, int8).profileOnBoard(architecture: architecture).profile
        case .vela(let accelerator):
            return try VelaLatencyBackend(accelerator: accelerator, seed: seed, timeoutSeconds: settings.commandTimeoutSeconds).profile(architecture)
        case .command, .predictor:
            return try profiler.profile(architecture, precision: .int8)
        }
    }

    /// Whether its measurements say how an NPU compiler mapped the network (`LatencyMeasurement.npu`).
    public var reportsNPUMapping: Bool {
        if case .vela = self { return true }
        return false
    }

    /// The grammar, for error messages and help texts.
    public static let grammar = "int8 [ENGINE], fp32, onnxruntime [int8|fp32], agent URL, command TEMPLATE, predictor FILE or vela ACCELERATOR"

    /// `text` without one pair of matching outer quotes, so `command 'a b'` and `command a b`
    /// mean the same.
    private static func unquoted(_ text: String) -> String {
        guard text.count >= 2, let first = text.first, first == "'" || first == "\"", text.last == first else { return text }
        return String(text.dropFirst().dropLast())
    }
}

/// Settings the backends of a spec are built with.
public struct LatencyBackendSettings: Sendable {
    /// Intra-op threads (all backends but the predictor, which keeps its training's).
    public var threads: Int
    /// Measurement policy of the local backend.
    public var policy: MeasurementPolicy
    public var seed: UInt64
    /// Token of the agent; nil: `EDGENAS_AGENT_TOKEN`.
    public var agentToken: String?
    public var requestTimeoutSeconds: Double
    public var attempts: Int
    public var backoffSeconds: Double
    public var commandTimeoutSeconds: Double
    /// Precision of the model file an agent or a benchmark command gets: INT8, as boards
    /// deploy detectors, or FP32 (e.g. for a runtime that quantizes on its own).
    public var deployedPrecision: ONNXRuntimeBackend.Precision
    /// Format of that file: ONNX (INT8 as QDQ) or TFLite (full-integer INT8), for a board that
    /// runs LiteRT.
    public var deployedFormat: DeployedModel.Format

    /// The model file an agent or a benchmark command gets.
    public var deployedModel: DeployedModel { DeployedModel(format: deployedFormat, precision: deployedPrecision, seed: seed) }

    public init(threads: Int = 1, policy: MeasurementPolicy = .endToEnd, seed: UInt64 = 0, agentToken: String? = nil,
                requestTimeoutSeconds: Double = 600, attempts: Int = 3, backoffSeconds: Double = 2, commandTimeoutSeconds: Double = 300,
                deployedPrecision: ONNXRuntimeBackend.Precision = .int8, deployedFormat: DeployedModel.Format = .onnx) {
        self.threads = threads
        self.policy = policy
        self.seed = seed
        self.agentToken = agentToken
        self.requestTimeoutSeconds = requestTimeoutSeconds
        self.attempts = attempts
        self.backoffSeconds = backoffSeconds
        self.commandTimeoutSeconds = commandTimeoutSeconds
        self.deployedPrecision = deployedPrecision
        self.deployedFormat = deployedFormat
    }
}

public enum LatencyBackendSpecError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownKind(String)
    case unexpectedArgument(String, kind: String)
    case invalidArgument(String, kind: String, expected: String)

    public var description: String {
        switch self {
        case .unknownKind(let text):
            "latency backend '\(text)' is not one of: \(LatencyBackendSpec.grammar)"
        case .unexpectedArgument(let text, let kind): "latency backend '\(text)': '\(kind)' takes no argument"
        case .invalidArgument(let text, let kind, let expected): "latency backend '\(text)': '\(kind)' needs \(expected)"
        }
    }
}
