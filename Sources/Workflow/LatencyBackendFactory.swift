import Hardware
import LatencyBackends
import Vision

/// The backend of a config's `latency.backend`, in `LatencyBackendSpec`'s grammar, with its
/// errors reported against that key.
public enum LatencyBackendFactory {
    /// Checks a spec without building the backend (for config errors before any work).
    public static func validate(_ spec: String) throws(ProjectConfigError) {
        _ = try parse(spec)
    }

    public static func make(spec: String, threads: Int, seed: UInt64, deployedPrecision: ONNXRuntimeBackend.Precision = .int8,
                            deployedFormat: DeployedModel.Format = .onnx) throws -> any LatencyBackend {
        try parse(spec).makeBackend(LatencyBackendSettings(threads: threads, seed: seed, deployedPrecision: deployedPrecision,
                                                           deployedFormat: deployedFormat))
    }

    /// The layer-by-layer profile of `architecture` on the runtime the spec measures on.
    public static func profile(_ architecture: DetectorArchitecture, spec: String, threads: Int, seed: UInt64) throws -> LayerProfile {
        try parse(spec).profile(architecture, settings: LatencyBackendSettings(threads: threads, seed: seed))
    }

    private static func parse(_ spec: String) throws(ProjectConfigError) -> LatencyBackendSpec {
        do { return try LatencyBackendSpec(parsing: spec) } catch {
            throw .invalidValue(key: "latency.backend", expected: LatencyBackendSpec.grammar, found: "'\(spec)' (\(error))")
        }
    }
}
