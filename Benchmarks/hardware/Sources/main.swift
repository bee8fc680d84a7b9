// EdgeNAS side of the hardware benchmark (Benchmarks/hardware/run.sh runs it beside
// python3-torch): batch-1 latency of a detector through EdgeNAS's libtorch backends.
//
//   edgenas-bench-hardware graph NAME                      layer graph JSON for the Python peer
//   edgenas-bench-hardware measure NAME [ENGINE] [THREADS] FP32 and INT8 latency, one line each
//   edgenas-bench-hardware profile NAME [ENGINE] [THREADS] layer-sum check and block shares
import Foundation
import Hardware
import Torch
import Vision

Torch.relaunchWithPassiveOpenMPIfNeeded()

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count >= 2 else { fail("usage: edgenas-bench-hardware graph|measure|profile NAME [ENGINE] [THREADS]") }
do {
    let architecture = try DetectorArchitecture(shortName: arguments[1])
    let engine = arguments.count > 2 ? arguments[2] : (QuantizedDetector.defaultEngine ?? "qnnpack")
    let threads = arguments.count > 3 ? Int(arguments[3]) ?? 1 : 1
    switch arguments[0] {
    case "graph":
        struct GraphFile: Encodable {
            struct Header: Encodable {
                var name: String
                var inputSize: Int
            }
            var architecture: Header
            var nodes: [GraphNode]
        }
        let graph = try DetectorGraph(architecture)
        let file = GraphFile(architecture: .init(name: architecture.description, inputSize: architecture.inputSizePixels), nodes: graph.nodes)
        FileHandle.standardOutput.write(try JSONEncoder().encode(file))
    case "measure":
        let backends: [any LatencyBackend] = [TorchFP32Backend(threads: threads), TorchInt8Backend(engine: engine, threads: threads)]
        for backend in backends {
            let result = try backend.measure(architecture: architecture)
            let precision = backend is TorchFP32Backend ? "fp32" : "int8"
            print(String(format: "name=%@ precision=%@ engine=%@ median_ms=%.4f iqr_ms=%.4f runs=%d", architecture.description, precision,
                         engine, result.median, result.interquartileRange, result.samplesMilliseconds.count))
            fflush(nil)
        }
    case "profile":
        let profiler = LayerProfiler(threads: threads, engine: engine)
        for precision in LayerProfiler.Precision.allCases {
            let profile = try profiler.profile(architecture, precision: precision)
            print(String(format: "name=%@ precision=%@ end_to_end_ms=%.4f layer_sum_ms=%.4f gap=%+.3f min_end_to_end_ms=%.4f min_layer_sum_ms=%.4f min_gap=%+.3f",
                         profile.architecture, profile.precision, profile.endToEnd.median, profile.layerSumMilliseconds, profile.relativeGap,
                         profile.endToEnd.minimum, profile.layerMinimumSumMilliseconds, profile.minimumRelativeGap)
                  + " blocks=" + profile.blocks.map { "\($0.block.rawValue):\(String(format: "%.3f", $0.share))" }.joined(separator: ","))
            fflush(nil)
        }
    default:
        fail("unknown command \(arguments[0]); expected graph, measure or profile")
    }
} catch {
    fail("edgenas-bench-hardware: \(error)")
}
