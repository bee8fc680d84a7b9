import Hardware

/// Latency backends by the specification a config's `latency.backend` holds.
public enum LatencyBackends {
    public static let names = ["torch-fp32"]

    public static func make(spec: String, threads: Int, seed: UInt64) throws(ProjectConfigError) -> any LatencyBackend {
        switch spec {
        case "torch-fp32": return TorchFP32Backend(threads: threads, seed: seed)
        default: throw .invalidValue(key: "latency.backend", expected: "one of \(names.joined(separator: ", "))", found: "'\(spec)'")
        }
    }
}
