import ArgumentParser
import Foundation
import Hardware
import LatencyBackends
import Reports
import Torch
import Vision

/// Per-layer and per-block latency profile of an architecture in FP32 and INT8: what a user
/// reads to decide where to search.
struct ProfileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Per-layer and per-block FP32/INT8 latency, FLOPs, params and activation memory, with a bottleneck ranking.",
        discussion: """
        Times the whole network at batch 1 and then every layer on its cached inputs (single thread by \
        default), checks that the layer times add up to the end-to-end time, and writes to --output: \
        profile.json (format in docs/profile-format.md), layers-P.csv (graph order), bottlenecks-P.csv \
        (ranked), blocks-P.csv, blocks-P.svg and layers-P.svg for each precision P. Measurements hold the \
        machine lock: they wait for other measurements and for training on this machine. \
        --runtime onnxruntime profiles the exported ONNX model in ONNX Runtime instead (the deployment \
        runtime; per-node kernel times from its own profiler, attributed to the graph's layers). \
        --latency 'agent URL' profiles on the board: the agent runs the architecture's INT8 model under \
        ONNX Runtime's profiler there, so suggest-space can work from the board's own bottleneck.
        """)

    @Option(help: "Architecture short name (see 'edgenas arch --help').")
    var arch = DetectorArchitecture.baseline.description

    @Flag(help: "Profile FP32 (with --int8: both; neither flag: both).")
    var fp32 = false

    @Flag(help: "Profile INT8.")
    var int8 = false

    @Option(help: "Runtime to profile on: torch (libtorch, eager FP32 and quantized kernels) or onnxruntime.")
    var runtime = "torch"

    @Option(help: ArgumentHelp(
        "Profile on this latency backend's runtime instead (\(LatencyBackendSpec.grammar)); 'agent URL' is the board's INT8 profile.",
        valueName: "spec"))
    var latency: String?

    @Option(help: "Token of the agent (default: $\(AgentProtocol.tokenEnvironmentVariable)).")
    var agentToken: String?

    @OptionGroup var quantizedEngine: QuantizedEngineOption

    @OptionGroup var threading: MeasurementThreadsOption

    @Option(help: "Weights saved by training (e.g. CHECKPOINT/model.tensors); random weights otherwise.")
    var weights: String?

    @Option(help: "Rows of the printed bottleneck table.")
    var top = 15

    @Option(help: "Directory for the profile files.")
    var output: String

    func validate() throws {
        guard ["torch", "onnxruntime"].contains(runtime) else {
            throw ValidationError("--runtime must be torch or onnxruntime, not '\(runtime)'")
        }
        if let latency {
            do { _ = try LatencyBackendSpec(parsing: latency) } catch { throw ValidationError("--latency: \(error)") }
            guard runtime == "torch", !fp32, weights == nil else {
                throw ValidationError("--latency profiles the backend's own deployed INT8 model; leave out --runtime, --fp32 and --weights")
            }
        }
    }

    func run() throws {
        let architecture = try DetectorArchitecture(shortName: arch)
        let precisions: [LayerProfiler.Precision] = fp32 == int8 ? [.fp32, .int8] : fp32 ? [.fp32] : [.int8]
        let weightsFile = weights.map { URL(fileURLWithPath: $0) }
        var profiler = LayerProfiler(threads: threading.threads, weights: weightsFile)
        if let engine = quantizedEngine.engine { profiler.engine = engine }
        let directory = URL(fileURLWithPath: output)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)

        let profiles: [LayerProfile]
        if let latency {
            let settings = LatencyBackendSettings(threads: threading.threads, agentToken: agentToken)
            profiles = [try LatencyBackendSpec(parsing: latency).profile(architecture, settings: settings)]
        } else {
            profiles = try precisions.map { precision in
                runtime == "onnxruntime"
                    ? try ONNXRuntimeLayerProfiler(precision: precision == .int8 ? .int8 : .fp32, threads: threading.threads, weights: weightsFile)
                        .profile(architecture)
                    : try profiler.profile(architecture, precision: precision)
            }
        }
        for profile in profiles {
            report(profile)
            try write(profile, to: directory)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(ProfileReport(profiles: profiles)).write(to: directory.appendingPathComponent("profile.json"))
        print("wrote \(directory.path)/profile.json and the CSV/SVG files")
        if profiles.contains(where: { !$0.layersAddUp }) {
            print("warning: a profile's layer sum is outside its tolerance; its layer shares are less reliable (rerun on an idle machine)")
        }
    }

    private func report(_ profile: LayerProfile) {
        print("\(profile.architecture) \(profile.precision) (\(profile.backend), \(profile.threads) thread(s))")
        print(String(format: "end-to-end median %.3f ms (IQR %.3f ms); layer sum %.3f ms; gap %+.1f %% (tolerance ±%.0f %%: %@)",
                     profile.endToEnd.median, profile.endToEnd.interquartileRange, profile.layerSumMilliseconds,
                     100 * profile.relativeGap, 100 * profile.tolerance, profile.layersAddUp ? "ok" : "OUTSIDE"))
        print(blockTable(profile).text)
        var ranked = bottleneckTable(profile)
        ranked.rows = Array(ranked.rows.prefix(top))
        print(ranked.text)
    }

    private func write(_ profile: LayerProfile, to directory: URL) throws {
        let suffix = profile.precision
        try layerTable(profile.layers).csv.write(to: directory.appendingPathComponent("layers-\(suffix).csv"), atomically: true, encoding: .utf8)
        try bottleneckTable(profile).csv.write(to: directory.appendingPathComponent("bottlenecks-\(suffix).csv"), atomically: true, encoding: .utf8)
        try blockTable(profile).csv.write(to: directory.appendingPathComponent("blocks-\(suffix).csv"), atomically: true, encoding: .utf8)
        let blocks = NetworkBlock.allCases
        let legend = blocks.enumerated().map { (name: $0.element.rawValue, colorIndex: $0.offset) }
        let blockChart = BarChart(
            title: "\(profile.architecture) \(profile.precision): latency per block",
            valueAxisLabel: "median latency (ms), \(profile.threads) thread(s)",
            bars: profile.blocks.sorted { $0.medianMilliseconds > $1.medianMilliseconds }.map {
                BarChart.Bar(label: $0.block.rawValue, value: $0.medianMilliseconds, annotation: percent($0.share),
                             colorIndex: blocks.firstIndex(of: $0.block)!)
            })
        try blockChart.svg().write(to: directory.appendingPathComponent("blocks-\(suffix).svg"), atomically: true, encoding: .utf8)
        let layerChart = BarChart(
            title: "\(profile.architecture) \(profile.precision): the 25 slowest layers",
            valueAxisLabel: "median latency (ms), \(profile.threads) thread(s)",
            bars: profile.rankedLayers.prefix(25).map {
                BarChart.Bar(label: $0.name, value: $0.medianMilliseconds, annotation: percent($0.share),
                             colorIndex: blocks.firstIndex(of: $0.block)!)
            }, legend: legend)
        try layerChart.svg().write(to: directory.appendingPathComponent("layers-\(suffix).svg"), atomically: true, encoding: .utf8)
    }

    private func percent(_ share: Double) -> String { String(format: "%.1f %%", 100 * share) }

    private func layerRow(_ layer: LayerProfile.Layer) -> [String] {
        [layer.name, layer.block.rawValue, layer.operation, layer.outputShape, String(format: "%.4f", layer.medianMilliseconds),
         String(format: "%.2f", 100 * layer.share), String(layer.multiplyAccumulates), String(layer.floatingPointOperations),
         String(layer.parameters), String(layer.activationBytes)]
    }

    private static let layerColumns = ["layer", "block", "operation", "output", "median ms", "share %", "MACs", "FLOPs", "params", "activation bytes"]

    private func layerTable(_ layers: [LayerProfile.Layer]) -> Table {
        Table(columns: Self.layerColumns, rows: layers.map(layerRow))
    }

    private func bottleneckTable(_ profile: LayerProfile) -> Table {
        Table(columns: ["rank"] + Self.layerColumns,
              rows: profile.rankedLayers.enumerated().map { [String($0.offset + 1)] + layerRow($0.element) })
    }

    private func blockTable(_ profile: LayerProfile) -> Table {
        Table(columns: ["block", "layers", "median ms", "share %", "MMACs", "params", "activation KB", "controlled by"],
              rows: profile.blocks.map {
                  [$0.block.rawValue, String($0.layerCount), String(format: "%.3f", $0.medianMilliseconds),
                   String(format: "%.1f", 100 * $0.share), String(format: "%.2f", Double($0.multiplyAccumulates) / 1e6),
                   String($0.parameters), String(format: "%.1f", Double($0.activationBytes) / 1024),
                   $0.controllingFields.joined(separator: " ")]
              })
    }
}
