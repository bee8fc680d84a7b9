import Foundation
import Hardware
import ProcessRunning
import TFLiteExport
import Vision

/// Arm's Vela compiler as a latency backend (`vela ethos-u65-256`): the architecture's
/// full-integer INT8 TFLite model (seeded random weights, calibrated on seeded random images as
/// `onnxruntime int8` is: latency does not depend on the weights' values) compiled for an
/// Ethos-U configuration, and Vela's estimate of one inference on that NPU. Vela also says
/// which operators stay on the CPU: EdgeNAS's float head (dequantize, sigmoid, softmax,
/// concatenation) and the input's quantization always do (the model's float operators), so a
/// count above those is an operator the NPU lacks (`NPUMapping.fallbackOperators`, which the
/// constraint `npu_fallback_ops` bounds).
///
/// Vela is an external tool (PyPI `ethos-u-vela`), found on PATH or named by `EDGENAS_VELA`,
/// as a board's benchmark command is; `edgenas doctor` says whether it is there. Vela's defaults
/// apply for the system configuration and memory mode (it says which in its report).
public struct VelaLatencyBackend: LatencyBackend {
    /// Vela's `--accelerator-config`, e.g. `ethos-u65-256` (the i.MX 93's NPU).
    public var accelerator: String
    /// The `vela` command.
    public var executable: String
    public var seed: UInt64
    public var timeoutSeconds: Double

    public static let executableVariable = "EDGENAS_VELA"
    /// Vela's accelerator configurations (`vela --help`, `--accelerator-config`).
    public static let accelerators = [
        "ethos-u55-32", "ethos-u55-64", "ethos-u55-128", "ethos-u55-256", "ethos-u65-256", "ethos-u65-512",
        "ethos-u85-128", "ethos-u85-256", "ethos-u85-512", "ethos-u85-1024", "ethos-u85-2048",
    ]

    public init(accelerator: String, executable: String? = nil, seed: UInt64 = 0, timeoutSeconds: Double = 300) {
        self.accelerator = accelerator
        self.executable = executable ?? ProcessInfo.processInfo.environment[Self.executableVariable].flatMap { $0.isEmpty ? nil : $0 } ?? "vela"
        self.seed = seed
        self.timeoutSeconds = timeoutSeconds
    }

    public var name: String { "vela-\(accelerator)" }

    public func measure(architecture: DetectorArchitecture) throws -> LatencyMeasurement {
        let report = try compile(architecture)
        var measurement = try LatencyMeasurement(backend: name, architecture: architecture.description, threads: 1, warmupRuns: 0,
                                                 samples: TimedSamples(reported: [report.inferenceMilliseconds], stopReason: .maximumRuns))
        measurement.npu = report.mapping
        return measurement
    }

    /// Vela's per-layer estimate as a layer profile (`edgenas profile --latency 'vela ...'`, and
    /// so `suggest-space` on the NPU's own bottleneck). Each of Vela's operators is named after
    /// the tensor it writes, which EdgeNAS names after the graph node it comes from (see
    /// `LayerOwner`); its cycles, at the network's milliseconds per cycle, go to that node. An
    /// operator Vela fused with the next layer's explicit padding (the stem convolution writing
    /// straight into its max pool's padded input) goes to the layer that feeds the padding.
    /// Operators left on the CPU (the float input and head) have no cycles in Vela's estimate.
    public func profile(_ architecture: DetectorArchitecture) throws -> LayerProfile {
        let report = try compile(architecture, perLayer: true)
        let graph = try DetectorGraph(architecture)
        var index: [String: Int] = [:]
        for (position, node) in graph.nodes.enumerated() { index[node.name] = position }
        let millisecondsPerCycle = report.cycles > 0 ? report.inferenceMilliseconds / Double(report.cycles) : 0
        var layers = Array(repeating: 0.0, count: graph.nodes.count)
        var image = 0.0
        var previous = 0  // an operator no node owns goes with the one before it
        for layer in report.layers {
            let milliseconds = Double(layer.cycles) * millisecondsPerCycle
            switch LayerOwner.of(layer.name, among: index) {
            case .image: image += milliseconds
            case .node(var position):
                // An operator Vela fused with the next layer's explicit PAD writes the padded tensor and
                // takes its name: it belongs to the layer that feeds the padded one.
                if layer.name.hasSuffix(".padded"), layer.operation != "Pad", let source = index[graph.nodes[position].inputs[0]] {
                    position = source
                }
                previous = position
                layers[position] += milliseconds
            case nil: layers[previous] += milliseconds
            }
        }
        return try LayerProfiler.assemble(
            graph: graph, precision: .int8, backend: name, threads: 1, endToEnd: [report.inferenceMilliseconds],
            layerSamples: layers.map { [$0] }, inputQuantizationSamples: [image], tolerance: 0.01)
    }

    /// Exports the architecture's INT8 TFLite model, compiles it with Vela and reads its summary
    /// (and, with `perLayer`, its per-layer estimate).
    public func compile(_ architecture: DetectorArchitecture, perLayer: Bool = false) throws -> VelaReport {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-vela-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = directory.appendingPathComponent("\(architecture.description).tflite")
        let file: TFLiteFile
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            file = try DeployedModel(format: .tflite, precision: .int8, seed: seed).tfliteFile(architecture)
            try file.bytes.write(to: model)
        } catch {
            throw HardwareError.cannotWrite(path: model.path, reason: "\(error)")
        }
        let command = ([executable, model.path, "--accelerator-config", accelerator, "--output-dir", directory.path]
            + (perLayer ? ["--verbose-performance"] : [])).map(shellQuoted).joined(separator: " ")
        let output: CommandOutput
        do {
            output = try ExternalCommand(command, timeoutSeconds: timeoutSeconds).runBlocking()
        } catch {
            throw VelaError.failed(command: command, reason: "\(error)")
        }
        guard output.status == 0 else {
            throw VelaError.failed(command: command, reason: "exit status \(output.status): \(output.standardError.suffix(600))")
        }
        let written = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        func csv(_ marker: String) throws -> String {
            guard let name = written.first(where: { $0.hasSuffix(".csv") && $0.contains(marker) }),
                  let text = try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8) else {
                throw VelaError.unreadableReport(command: command, detail: "no *\(marker)*.csv in its output directory")
            }
            return text
        }
        var report = try VelaReport(summaryCSV: try csv("_summary_"), standardOutput: output.standardOutput, accelerator: accelerator,
                                    floatOperators: file.floatOperatorCount)
        if perLayer { report.layers = try VelaReport.layers(perLayerCSV: try csv("_per-layer")) }
        return report
    }
}

/// What Vela says about one compiled network.
public struct VelaReport: Codable, Hashable, Sendable {
    public var accelerator: String
    /// Estimated time of one inference on the NPU (Vela's `inference_time`).
    public var inferenceMilliseconds: Double
    public var cycles: Int
    /// Operators on the NPU and left on the CPU (beyond the model's float ones: fallbacks), SRAM.
    public var mapping: NPUMapping
    public var dramKiB: Double

    /// Vela's operators in execution order with their estimated cycles (empty unless the
    /// per-layer estimate was asked for).
    public var layers: [VelaLayer] = []
}

/// One operator of Vela's per-layer estimate (`--verbose-performance`), named after the tensor it
/// writes.
public struct VelaLayer: Codable, Hashable, Sendable {
    public var name: String
    /// The TFLite operator it came from, in Vela's words ("Conv2D", "MaxPool", ...).
    public var operation: String
    /// "NPU" or "CPU".
    public var target: String
    public var cycles: Int
}

extension VelaReport {
    /// Reads Vela's summary CSV (one header line, one row) and the operator counts its
    /// standard output prints ("CPU operators = 7 (5.4%)").
    public init(summaryCSV: String, standardOutput: String, accelerator: String, floatOperators: Int) throws(VelaError) {
        let lines = summaryCSV.split(whereSeparator: \.isNewline).map(String.init)
        guard lines.count >= 2 else { throw .unreadableReport(command: "vela", detail: "the summary CSV has no row") }
        let row = Dictionary(zip(lines[0].split(separator: ",").map(String.init), lines[1].split(separator: ",").map(String.init))) { a, _ in a }
        func number(_ key: String) throws(VelaError) -> Double {
            guard let value = row[key].flatMap(Double.init) else {
                throw .unreadableReport(command: "vela", detail: "no number in the summary's column '\(key)'")
            }
            return value
        }
        func operators(_ kind: String) throws(VelaError) -> Int {
            let line = standardOutput.split(whereSeparator: \.isNewline).first { $0.hasPrefix("\(kind) operators") }
            guard let count = line?.split(separator: "=").dropFirst().first?.split(separator: "(").first
                .flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) else {
                throw .unreadableReport(command: "vela", detail: "no '\(kind) operators = N' line in its output")
            }
            return count
        }
        self.accelerator = accelerator
        inferenceMilliseconds = try number("inference_time") * 1000
        cycles = Int(try number("cycles_total"))
        dramKiB = try number("dram_memory_used")
        mapping = NPUMapping(npuOperators: try operators("NPU"), cpuOperators: try operators("CPU"), floatOperators: floatOperators,
                             sramKiB: try number("sram_memory_used"))
    }

    /// Reads Vela's per-layer CSV: a header naming the columns, then one operator per line.
    public static func layers(perLayerCSV: String) throws(VelaError) -> [VelaLayer] {
        let lines = perLayerCSV.split(whereSeparator: \.isNewline).map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        guard let header = lines.first, let name = header.firstIndex(of: "Name"), let target = header.firstIndex(of: "Target"),
              let cycles = header.firstIndex(of: "Op Cycles"), let operation = header.firstIndex(of: "Original Operator") else {
            throw .unreadableReport(command: "vela", detail: "the per-layer CSV lacks a column 'Name', 'Original Operator', 'Target' or 'Op Cycles'")
        }
        var layers: [VelaLayer] = []
        for (line, fields) in lines.enumerated().dropFirst() {
            guard fields.count == header.count, let count = Int(fields[cycles]) else {
                throw .unreadableReport(command: "vela", detail: "line \(line + 1) of the per-layer CSV has no cycle count")
            }
            layers.append(VelaLayer(name: fields[name], operation: fields[operation], target: fields[target], cycles: count))
        }
        return layers
    }
}

public enum VelaError: Error, Equatable, Sendable, CustomStringConvertible {
    case failed(command: String, reason: String)
    case unreadableReport(command: String, detail: String)

    public var description: String {
        switch self {
        case let .failed(command, reason):
            "Vela failed: \(command): \(reason) (install it with 'pip install ethos-u-vela' or point \(VelaLatencyBackend.executableVariable) at it)"
        case let .unreadableReport(command, detail): "Vela's report cannot be read (\(command)): \(detail)"
        }
    }
}

/// A word for `/bin/sh`: single-quoted, its own single quotes escaped.
private func shellQuoted(_ word: String) -> String {
    "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
