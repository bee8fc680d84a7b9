// EdgeNAS side of the hardware benchmark (Benchmarks/hardware/run.sh runs it beside
// python3-torch and onnxruntime from Python): batch-1 latency of a detector through EdgeNAS's
// libtorch and ONNX Runtime backends.
//
//   edgenas-bench-hardware graph NAME                      layer graph JSON for the Python peer
//   edgenas-bench-hardware measure NAME [ENGINE] [THREADS] FP32 and INT8 latency, one line each
//   edgenas-bench-hardware onnx NAME DIR                   DIR/NAME-{fp32,int8}.onnx, the models the onnxruntime backend runs
//   edgenas-bench-hardware measure-onnx FILE NAME PRECISION [THREADS]   that file through the onnxruntime backend
//   edgenas-bench-hardware profile NAME [ENGINE] [THREADS] layer-sum check and block shares
//   edgenas-bench-hardware rank COUNT SEED [ENGINE]        COUNT head-space architectures through every backend (CSV)
import Estimation
import Foundation
import Hardware
import Randomness
import LatencyBackends
import Torch
import Vision

Torch.relaunchWithPassiveOpenMPIfNeeded()

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}

let arguments = Array(CommandLine.arguments.dropFirst())
/// The line every measurement prints (run.sh and the Python peers print the same fields).
func report(_ name: String, _ precision: String, _ engine: String, _ result: LatencyMeasurement) {
    print(String(format: "name=%@ precision=%@ engine=%@ median_ms=%.4f iqr_ms=%.4f runs=%d", name, precision, engine, result.median,
                 result.interquartileRange, result.samplesMilliseconds.count))
    fflush(nil)
}

guard arguments.count >= 2 else { fail("usage: edgenas-bench-hardware graph|measure|onnx|measure-onnx|profile|rank ...") }
do throws(any Error) {
    if arguments[0] == "measure-onnx" {
        guard arguments.count >= 4, let precision = ONNXRuntimeBackend.Precision(rawValue: arguments[3]) else {
            fail("usage: edgenas-bench-hardware measure-onnx FILE NAME fp32|int8 [THREADS]")
        }
        let architecture = try DetectorArchitecture(shortName: arguments[2])
        let threads = arguments.count > 4 ? Int(arguments[4]) ?? 1 : 1
        let side = architecture.inputWidth
        // The input's values do not change the time; the Python peer uses uniform [0, 1) too.
        var generator = SplitMix64(seed: 0)
        let input = (0..<(3 * side * side)).map { _ in Float(generator.nextUnit()) }
        let result = try ONNXRuntimeBackend(precision: precision, threads: threads)
            .measure(modelFile: URL(fileURLWithPath: arguments[1]), input: input, shape: [1, 3, side, side], architecture: architecture.description)
        report(architecture.description, precision.rawValue, "onnxruntime", result)
        exit(0)
    }
    if arguments[0] == "rank" {
        guard let count = Int(arguments[1]), arguments.count > 2, let seed = UInt64(arguments[2]) else {
            fail("usage: edgenas-bench-hardware rank COUNT SEED [ENGINE]")
        }
        let rankEngine = arguments.count > 3 ? arguments[3] : (QuantizedDetector.defaultEngine ?? "qnnpack")
        let backends: [any LatencyBackend] = [TorchFP32Backend(), TorchInt8Backend(engine: rankEngine), ONNXRuntimeBackend(precision: .fp32),
                                              ONNXRuntimeBackend(precision: .int8)]
        print("architecture," + backends.map(\.name).joined(separator: ","))
        var columns = Array(repeating: [Double](), count: backends.count)
        for candidate in try DetectorHeadSpace.seed.sample(count, seed: seed) {
            let medians = try backends.map { try $0.measure(architecture: candidate).median }
            for (index, median) in medians.enumerated() { columns[index].append(median) }
            print(candidate.description + "," + medians.map { String(format: "%.4f", $0) }.joined(separator: ","))
            fflush(nil)
        }
        for (index, backend) in backends.enumerated() {
            let versusInt8 = try RankStatistics.kendallTau(columns[index], columns[3])
            let versusFP32 = try RankStatistics.kendallTau(columns[index], columns[2])
            print(String(format: "# kendall_tau %@ vs onnxruntime-int8 %.3f, vs onnxruntime-fp32 %.3f", backend.name, versusInt8, versusFP32))
        }
        exit(0)
    }
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
        let file = GraphFile(architecture: .init(name: architecture.description, inputSize: architecture.inputWidth), nodes: graph.nodes)
        FileHandle.standardOutput.write(try JSONEncoder().encode(file))
    case "measure":
        let backends: [any LatencyBackend] = [TorchFP32Backend(threads: threads), TorchInt8Backend(engine: engine, threads: threads)]
        for backend in backends {
            report(architecture.description, backend is TorchFP32Backend ? "fp32" : "int8", engine, try backend.measure(architecture: architecture))
        }
    case "onnx":
        let directory = URL(fileURLWithPath: arguments[2])
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for precision in ONNXRuntimeBackend.Precision.allCases {
            try ONNXRuntimeBackend(precision: precision).model(architecture)
                .write(to: directory.appendingPathComponent("\(architecture)-\(precision.rawValue).onnx"))
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
        fail("unknown command \(arguments[0]); expected graph, measure, onnx, measure-onnx, profile or rank")
    }
} catch {
    fail("edgenas-bench-hardware: \(error)")
}
