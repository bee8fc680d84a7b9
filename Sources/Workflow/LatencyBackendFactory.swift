import Hardware
import LatencyBackends
import Vision

/// Latency backends by the specification a config's `latency.backend` holds:
/// `int8 [ENGINE]` (libtorch's quantized kernels in this process, the default engine unless
/// named), `fp32` (eager libtorch FP32), or any spec of `LatencyBackendSpec`: `local`,
/// `onnxruntime [int8|fp32]`, `agent URL`, `command TEMPLATE`, `predictor FILE`.
public enum LatencyBackendFactory {
    static let expected = "int8 [ENGINE], fp32, onnxruntime [int8|fp32], agent URL, command TEMPLATE or predictor FILE"

    /// Checks a spec without building the backend (for config errors before any work).
    public static func validate(_ spec: String) throws(ProjectConfigError) {
        let (kind, argument) = split(spec)
        if kind == "int8" || kind == "fp32" {
            guard kind == "int8" || argument.isEmpty else {
                throw .invalidValue(key: "latency.backend", expected: expected, found: "'\(spec)' (fp32 takes no argument)")
            }
            return
        }
        do { _ = try LatencyBackendSpec(parsing: spec) } catch {
            throw .invalidValue(key: "latency.backend", expected: expected, found: "'\(spec)' (\(error))")
        }
    }

    public static func make(spec: String, threads: Int, seed: UInt64) throws -> any LatencyBackend {
        try validate(spec)
        let (kind, argument) = split(spec)
        switch kind {
        case "int8":
            let available = QuantizedDetector.availableEngines
            guard let engine = argument.isEmpty ? QuantizedDetector.defaultEngine : argument, available.contains(engine) else {
                throw ProjectConfigError.invalidValue(
                    key: "latency.backend", expected: "int8 with one of this libtorch's engines: \(available.joined(separator: ", "))",
                    found: "'\(spec)'")
            }
            return TorchInt8Backend(engine: engine, threads: threads, seed: seed)
        case "fp32":
            return TorchFP32Backend(threads: threads, seed: seed)
        default:
            return try LatencyBackendSpec(parsing: spec).makeBackend(LatencyBackendSettings(threads: threads, seed: seed))
        }
    }

    /// The layer-by-layer profile of `architecture` on the runtime the spec measures on:
    /// libtorch INT8 (with the spec's engine) or FP32, or ONNX Runtime. Backends outside this
    /// process (agent, command, predictor) are profiled on libtorch INT8 here, as the closest
    /// runtime at hand; the profile's backend field says which runtime it is.
    public static func profile(_ architecture: DetectorArchitecture, spec: String, threads: Int, seed: UInt64) throws -> LayerProfile {
        try validate(spec)
        let (kind, argument) = split(spec)
        var profiler = LayerProfiler(threads: threads, seed: seed)
        switch kind {
        case "int8":
            if !argument.isEmpty { profiler.engine = argument }
            return try profiler.profile(architecture, precision: .int8)
        case "fp32":
            return try profiler.profile(architecture, precision: .fp32)
        default:
            if case .onnxruntime(let precision) = try LatencyBackendSpec(parsing: spec) {
                return try OnnxRuntimeLayerProfiler(precision: precision, threads: threads, seed: seed).profile(architecture)
            }
            return try profiler.profile(architecture, precision: .int8)
        }
    }

    private static func split(_ spec: String) -> (kind: String, argument: String) {
        let trimmed = spec.trimmingCharacters(in: .whitespaces)
        let kind = String(trimmed.prefix { !$0.isWhitespace })
        return (kind, String(trimmed.dropFirst(kind.count)).trimmingCharacters(in: .whitespaces))
    }
}
