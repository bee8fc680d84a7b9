import Foundation
import Torch
import Vision

/// Per-layer and per-block latency of one network at one precision, with the analytic figures
/// (MACs, FLOPs, parameters, activation memory) next to the times, and a check that the layer
/// times add up to the end-to-end time. Written as JSON by `edgenas profile` (format in
/// docs/profile-format.md); `edgenas suggest-space` reads the blocks.
public struct LayerProfile: Codable, Hashable, Sendable {
    public static let currentFormatVersion = 1

    public struct Layer: Codable, Hashable, Sendable {
        public var name: String
        public var block: NetworkBlock
        /// e.g. "conv 3x3 s2", "dwconv 5x5", "concat", "shuffle".
        public var operation: String
        /// "CxHxW" at batch 1.
        public var outputShape: String
        public var medianMilliseconds: Double
        /// The fastest run of the layer.
        public var minimumMilliseconds: Double
        /// medianMilliseconds / the sum over all layers.
        public var share: Double
        public var multiplyAccumulates: Int
        /// 2 x multiply-accumulates (one multiply and one add each).
        public var floatingPointOperations: Int
        public var parameters: Int
        /// Bytes of this layer's output at the profile's precision (4 per element in FP32, 1 in INT8).
        public var activationBytes: Int
    }

    public struct Block: Codable, Hashable, Sendable {
        public var block: NetworkBlock
        public var layerCount: Int
        /// Sum of its layers' medians.
        public var medianMilliseconds: Double
        public var share: Double
        public var multiplyAccumulates: Int
        public var floatingPointOperations: Int
        public var parameters: Int
        public var activationBytes: Int
        /// `DetectorArchitecture` fields whose values change this block's layers (see
        /// `NetworkBlock.controllingFields`).
        public var controllingFields: [String]
    }

    public var formatVersion: Int
    /// Short name of the architecture, and all its fields.
    public var architecture: String
    public var architectureFields: DetectorArchitecture
    /// "fp32" or "int8".
    public var precision: String
    /// The latency backend's name, e.g. "torch-fp32", "torch-int8-onednn".
    public var backend: String
    public var threads: Int
    /// The whole network run as deployed (one forward pass), measured with the end-to-end policy.
    public var endToEnd: LatencyStatistics
    /// Sum of the layer medians.
    public var layerSumMilliseconds: Double
    /// (layer sum - end-to-end median) / end-to-end median.
    public var relativeGap: Double
    /// The largest |relativeGap| accepted as "the layers add up".
    public var tolerance: Double
    public var layersAddUp: Bool
    /// Sum of the layer minimums and its gap to the end-to-end minimum: best cases, which a
    /// busy machine disturbs much less than medians (a short layer run often escapes
    /// preemption, a whole forward pass rarely does). A diagnostic beside the median check.
    public var layerMinimumSumMilliseconds: Double
    public var minimumRelativeGap: Double
    /// In graph (execution) order; INT8 profiles start with `inputQuantizationName`.
    public var layers: [Layer]
    /// In `NetworkBlock.allCases` order.
    public var blocks: [Block]

    /// Layers by decreasing time: the bottleneck ranking.
    /// The name of the INT8 profile's extra first layer: quantizing the float image to the
    /// input grid (it is not a graph node, but every INT8 forward pass runs it).
    public static let inputQuantizationName = "image.quantize"

    public var rankedLayers: [Layer] { layers.sorted { $0.medianMilliseconds > $1.medianMilliseconds } }
}

extension NetworkBlock {
    /// The `DetectorArchitecture` fields whose values change this block's layers (their count,
    /// channels, kernels or resolution), i.e. what a search space varies to make the block
    /// cheaper. Element i of an array field is written `field[i]`.
    public var controllingFields: [String] {
        switch self {
        case .stem: ["stemChannels", "inputWidthPixels"]
        case .stage2: ["stageChannels[0]", "stageRepeats[0]", "stemChannels", "inputWidthPixels"]
        case .stage3: ["stageChannels[1]", "stageRepeats[1]", "stageChannels[0]", "inputWidthPixels"]
        case .stage4: ["stageChannels[2]", "stageRepeats[2]", "stageChannels[1]", "inputWidthPixels"]
        case .neck: ["neckChannels", "stageChannels", "inputWidthPixels"]
        case .spp: ["sppBranches", "neckChannels", "inputWidthPixels"]
        case .head: ["headKernelSize", "headGroups", "headChannels", "classCount", "neckChannels", "inputWidthPixels"]
        }
    }
}

/// Which graph layer a runtime's node or tensor belongs to, by name: exporters name every node
/// and tensor after the layer it comes from (`stage2.unit0.pw1`, `stem.maxpool.padded`,
/// `head.box.pw.requantized`), so its owner is the longest graph node name that is the whole
/// name or followed by `.` or `_`; the image's quantization when it is `image...`.
public enum LayerOwner: Equatable, Sendable {
    case image
    case node(Int)

    /// The owner of `name` among graph node names indexed by their position; nil: none.
    public static func of(_ name: String, among index: [String: Int]) -> LayerOwner? {
        func belongs(_ candidate: String) -> Bool {
            guard name.hasPrefix(candidate) else { return false }
            let rest = name.dropFirst(candidate.count)
            return rest.isEmpty || rest.hasPrefix(".") || rest.hasPrefix("_")
        }
        var best: (length: Int, owner: LayerOwner)?
        for (candidate, position) in index where belongs(candidate) && candidate.count > (best?.length ?? 0) {
            best = (candidate.count, .node(position))
        }
        if best == nil, belongs(DetectorGraph.inputName) { return .image }
        return best?.owner
    }
}

/// Measures `LayerProfile`s with libtorch, FP32 or INT8.
public struct LayerProfiler: Sendable {
    public enum Precision: String, Codable, Sendable, CaseIterable {
        case fp32, int8
    }

    public var layerPolicy: MeasurementPolicy
    public var endToEndPolicy: MeasurementPolicy
    public var threads: Int
    /// Quantized engine for INT8.
    public var engine: String
    public var seed: UInt64
    public var weights: URL?
    /// Stated tolerance of the layer-sum check: 20 % of the end-to-end median. Timing layers
    /// one at a time on cached inputs leaves out the graph walk between them and keeps inputs
    /// warm in cache, so the sum runs a little below the end-to-end time.
    public var tolerance: Double

    public init(
        layerPolicy: MeasurementPolicy = .perLayer, endToEndPolicy: MeasurementPolicy = .endToEnd, threads: Int = 1,
        engine: String = QuantizedDetector.defaultEngine ?? "qnnpack", seed: UInt64 = 0, weights: URL? = nil, tolerance: Double = 0.2
    ) {
        self.layerPolicy = layerPolicy
        self.endToEndPolicy = endToEndPolicy
        self.threads = threads
        self.engine = engine
        self.seed = seed
        self.weights = weights
        self.tolerance = tolerance
    }

    /// Profiles `architecture` at `precision`: the end-to-end time, then every node timed on
    /// its cached inputs, all under the machine's measurement lock.
    public func profile(_ architecture: DetectorArchitecture, precision: Precision) throws -> LayerProfile {
        try layerPolicy.validate()
        try endToEndPolicy.validate()
        return try withThreadCount(threads) {
            try Torch.withNoGrad {
                let image = try randomImage(architecture, seed: seed)
                let graph: DetectorGraph
                let backend: String
                let forward: () throws -> Void
                let cached: [String: Tensor]
                let applyNode: (Int, [Tensor]) throws -> Tensor
                var inputQuantizer: ((Tensor) throws -> Tensor)?
                switch precision {
                case .fp32:
                    let detector = try makeDetector(architecture, seed: seed, weights: weights)
                    graph = detector.graph
                    backend = TorchFP32Backend().name
                    forward = { _ = try detector(image) }
                    cached = try detector.outputs(image)
                    applyNode = { try detector.apply(graph.nodes[$0], $1) }
                case .int8:
                    let int8Backend = TorchInt8Backend(engine: engine, threads: threads, seed: seed, weights: weights)
                    let network = try int8Backend.makeQuantizedDetector(architecture)
                    graph = network.graph
                    backend = int8Backend.name
                    forward = { _ = try network(image) }
                    cached = try network.outputs(image)
                    applyNode = { try network.apply($0, $1) }
                    inputQuantizer = { try network.quantizeInput($0) }
                }
                // INT8 runs one step outside the graph: quantizing the float image.
                let quantizeInput: (() throws -> Void)? = inputQuantizer.map { quantize in { _ = try quantize(image) } }
                return try MeasurementLock.measuring {
                    let endToEnd = try LatencyHarness.run(policy: endToEndPolicy, forward)
                    let quantizationSamples = try quantizeInput.map { try LatencyHarness.run(policy: layerPolicy, $0).milliseconds }
                    var layerSamples: [[Double]] = []
                    for (index, node) in graph.nodes.enumerated() {
                        let inputs = node.inputs.map { cached[$0]! }
                        layerSamples.append(try LatencyHarness.run(policy: layerPolicy) { _ = try applyNode(index, inputs) }.milliseconds)
                    }
                    return try Self.assemble(
                        graph: graph, precision: precision, backend: backend, threads: threads, endToEnd: endToEnd.milliseconds,
                        layerSamples: layerSamples, inputQuantizationSamples: quantizationSamples, tolerance: tolerance)
                }
            }
        }
    }

    /// Builds the profile from measured times (separate from the clock so it can be tested).
    public static func assemble(
        graph: DetectorGraph, precision: Precision, backend: String, threads: Int, endToEnd: [Double], layerSamples: [[Double]],
        inputQuantizationSamples: [Double]? = nil, tolerance: Double
    ) throws -> LayerProfile {
        let layerStatistics = layerSamples.compactMap { LatencyStatistics($0) }
        guard let statistics = LatencyStatistics(endToEnd), layerStatistics.count == graph.nodes.count,
              layerSamples.count == graph.nodes.count else {
            throw HardwareError.invalidSetting("layerSamples", value: "\(layerSamples.count) sample lists",
                                               expected: "a non-empty one per graph node (\(graph.nodes.count)) and end-to-end samples")
        }
        let quantization = inputQuantizationSamples.flatMap { LatencyStatistics($0) }
        let total = layerStatistics.reduce(0) { $0 + $1.median } + (quantization?.median ?? 0)
        let bytesPerElement = precision == .fp32 ? 4 : 1
        let image = graph.architecture.imageShape
        // The image quantization of an INT8 network, as a first stem layer.
        let quantizationLayer = quantization.map {
            LayerProfile.Layer(
                name: LayerProfile.inputQuantizationName, block: .stem, operation: "quantize", outputShape: image.description,
                medianMilliseconds: $0.median, minimumMilliseconds: $0.minimum, share: total > 0 ? $0.median / total : 0,
                multiplyAccumulates: 0, floatingPointOperations: 0, parameters: 0, activationBytes: image.elementCount)
        }
        let layers = (quantizationLayer.map { [$0] } ?? []) + zip(graph.nodes, layerStatistics).map { node, layer in
            LayerProfile.Layer(
                name: node.name, block: node.block, operation: operationSummary(node.operation),
                outputShape: node.outputShape.description, medianMilliseconds: layer.median, minimumMilliseconds: layer.minimum,
                share: total > 0 ? layer.median / total : 0,
                multiplyAccumulates: node.multiplyAccumulates, floatingPointOperations: 2 * node.multiplyAccumulates,
                parameters: node.parameterCount,
                // The detection output stays float in INT8 too.
                activationBytes: node.outputShape.elementCount
                    * (node.operation == .detectionOutput ? 4 : bytesPerElement))
        }
        let blocks = NetworkBlock.allCases.map { block in
            let members = layers.filter { $0.block == block }
            let time = members.reduce(0) { $0 + $1.medianMilliseconds }
            return LayerProfile.Block(
                block: block, layerCount: members.count, medianMilliseconds: time, share: total > 0 ? time / total : 0,
                multiplyAccumulates: members.reduce(0) { $0 + $1.multiplyAccumulates },
                floatingPointOperations: members.reduce(0) { $0 + $1.floatingPointOperations },
                parameters: members.reduce(0) { $0 + $1.parameters }, activationBytes: members.reduce(0) { $0 + $1.activationBytes },
                controllingFields: block.controllingFields)
        }
        let gap = statistics.median > 0 ? (total - statistics.median) / statistics.median : 0
        let minimumSum = layers.reduce(0) { $0 + $1.minimumMilliseconds }
        return LayerProfile(
            formatVersion: LayerProfile.currentFormatVersion, architecture: graph.architecture.description,
            architectureFields: graph.architecture, precision: precision.rawValue, backend: backend, threads: threads,
            endToEnd: statistics, layerSumMilliseconds: total, relativeGap: gap, tolerance: tolerance,
            layersAddUp: abs(gap) <= tolerance, layerMinimumSumMilliseconds: minimumSum,
            minimumRelativeGap: statistics.minimum > 0 ? (minimumSum - statistics.minimum) / statistics.minimum : 0,
            layers: layers, blocks: blocks)
    }

    /// A short description of a node's operation for tables.
    public static func operationSummary(_ operation: GraphOperation) -> String {
        switch operation {
        case .convolution(let conv):
            let kind = conv.isDepthwise ? "dwconv" : conv.groups > 1 ? "gconv g\(conv.groups)" : "conv"
            return "\(kind) \(conv.kernelSize)x\(conv.kernelSize)" + (conv.stride > 1 ? " s\(conv.stride)" : "") + (conv.relu ? " relu" : "")
        case .maxPool(let kernel, let stride, _): return "maxpool \(kernel)x\(kernel) s\(stride)"
        case .averagePool(let kernel, let stride, _): return "avgpool \(kernel)x\(kernel) s\(stride)"
        case .upsampleNearest(let scale): return "upsample x\(scale)"
        case .concatenate: return "concat"
        case .add(let relu): return relu ? "add relu" : "add"
        case .channelSlice: return "slice"
        case .channelShuffle: return "shuffle"
        case .detectionOutput: return "output"
        }
    }
}

/// What `edgenas profile` writes to profile.json: one profile per precision.
public struct ProfileReport: Codable, Hashable, Sendable {
    public var formatVersion: Int
    public var profiles: [LayerProfile]

    public init(profiles: [LayerProfile]) {
        formatVersion = LayerProfile.currentFormatVersion
        self.profiles = profiles
    }

    /// Reads a profile.json, refusing other format versions; errors name the file.
    public init(contentsOf url: URL) throws(ProfileReadError) {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw .unreadable(path: url.path, reason: error.localizedDescription) }
        let report: ProfileReport
        do { report = try JSONDecoder().decode(ProfileReport.self, from: data) } catch {
            throw .notAProfile(path: url.path, reason: "\(error)")
        }
        guard report.formatVersion == LayerProfile.currentFormatVersion,
              report.profiles.allSatisfy({ $0.formatVersion == LayerProfile.currentFormatVersion }) else {
            throw .unsupportedVersion(path: url.path, version: report.formatVersion, expected: LayerProfile.currentFormatVersion)
        }
        self = report
    }
}

/// Why a profile.json could not be read.
public enum ProfileReadError: Error, Equatable, Sendable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case notAProfile(path: String, reason: String)
    case unsupportedVersion(path: String, version: Int, expected: Int)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): "cannot read \(path): \(reason)"
        case let .notAProfile(path, reason): "\(path) is not a profile written by 'edgenas profile' (docs/profile-format.md): \(reason)"
        case let .unsupportedVersion(path, version, expected): "\(path): profile format version \(version); this build reads version \(expected)"
        }
    }
}
