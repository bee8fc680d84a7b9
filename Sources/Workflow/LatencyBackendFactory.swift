import Hardware
import LatencyBackends

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

    private static func split(_ spec: String) -> (kind: String, argument: String) {
        let trimmed = spec.trimmingCharacters(in: .whitespaces)
        let kind = String(trimmed.prefix { !$0.isWhitespace })
        return (kind, String(trimmed.dropFirst(kind.count)).trimmingCharacters(in: .whitespaces))
    }
}
