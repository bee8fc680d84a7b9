import Torch
import Vision

/// The INT8 network of a calibrated `Detector`, run through libtorch's quantized kernels:
/// quint8 activations (per tensor, the calibrated grids), qint8 per-channel symmetric weights
/// of the batch-norm-folded convolutions with float biases, conv + ReLU fused in one kernel.
/// The detection output (sigmoid, softmax) is computed in float from the dequantized branches.
///
/// The quantized engine is process-wide in libtorch: the initializer prepacks the weights and
/// `forward`, `outputs` and `apply` run them inside `QuantizedEngine.using(engine)`, so detectors
/// on different engines can be used from several threads (one at a time).
public final class QuantizedDetector {
    public let architecture: DetectorArchitecture
    public let graph: DetectorGraph
    public let parameters: QuantizationParameters
    public let engine: String
    private let steps: [Step]
    private let inputGrid: ActivationQuantization
    /// For each node, the inputs whose last reader it is (freed after it runs).
    private let releases: [[String]]

    /// What one node does in INT8.
    private enum Step {
        case convolution(PackedQuantizedConv2d, relu: Bool, ActivationQuantization)
        case maxPool(kernel: Int, stride: Int, padding: Int)
        case averagePool(kernel: Int, stride: Int, padding: Int)
        case upsample(scale: Int)
        case concatenate(ActivationQuantization)
        case add(relu: Bool, ActivationQuantization)
        case slice(start: Int, count: Int)
        case shuffle(groups: Int)
        case output
    }

    /// The engines this libtorch can run INT8 kernels on, e.g. ["qnnpack", "onednn"].
    public static var availableEngines: [String] { QuantizedEngine.supported.filter { $0 != "none" } }

    /// The engine used when none is named: oneDNN on x86 (the faster of the two in this
    /// libtorch on this machine class), else the first available.
    public static var defaultEngine: String? {
        let available = availableEngines
        for preferred in ["x86", "onednn", "fbgemm", "qnnpack"] where available.contains(preferred) { return preferred }
        return available.first
    }

    /// The engine INT8 accuracy is computed on: QNNPACK where available, else `defaultEngine`.
    /// QNNPACK requantizes in integers as deployed runtimes do: onnxruntime and LiteRT on the
    /// exported models agree with it to 0.05-0.27 quantization steps on trained detectors, with
    /// oneDNN to 0.6-1.7 (docs/deployment.md). Latency keeps `defaultEngine`, the faster here.
    public static var referenceEngine: String? {
        availableEngines.contains("qnnpack") ? "qnnpack" : defaultEngine
    }

    /// `bias` on the int32 grid deployed models store it on (input scale x weight scale, per
    /// output channel, from the scales as float32): libtorch adds its float bias unrounded,
    /// while ONNX Runtime and LiteRT add the exported int32 bias.
    static func deployedBias(_ bias: [Float], weightScales: [Double], inputScale: Double) -> [Float] {
        zip(bias, weightScales).map { value, weightScale in
            let step = Float(Double(Float(weightScale)) * inputScale)
            return (value / step).rounded(.toNearestOrEven) * step
        }
    }

    /// Quantizes `detector`'s current weights with `parameters` (calibrated for the same
    /// architecture) and prepacks them for `engine`.
    public init(_ detector: Detector, parameters: QuantizationParameters, engine: String) throws {
        guard Self.availableEngines.contains(engine) else {
            throw HardwareError.unsupportedQuantizedEngine(engine, available: Self.availableEngines)
        }
        guard parameters.architecture == detector.architecture.description else {
            throw QuantizationError.architectureMismatch(parameters: parameters.architecture, network: detector.architecture.description)
        }
        self.engine = engine
        architecture = detector.architecture
        let graph = detector.graph
        self.graph = graph
        self.parameters = parameters
        inputGrid = try parameters.activation(DetectorGraph.inputName)
        let folded = try detector.foldedConvolutions()
        steps = try QuantizedEngine.using(engine) { try Self.steps(graph, folded: folded, parameters: parameters) }
        var lastReader: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for input in node.inputs { lastReader[input] = index }
        }
        var releases = Array(repeating: [String](), count: graph.nodes.count)
        for (name, index) in lastReader { releases[index].append(name) }
        self.releases = releases
    }

    /// The INT8 step of every node: weights quantized and prepacked for the selected engine.
    private static func steps(_ graph: DetectorGraph, folded: [String: FoldedConvolution], parameters: QuantizationParameters) throws -> [Step] {
        var steps: [Step] = []
        for node in graph.nodes {
            switch node.operation {
            case .convolution(let spec):
                guard let conv = folded[node.name] else { throw QuantizationError.missingNode(node.name, kind: "convolution") }
                // The input's grid (operations that keep the range carry their input's, inherited).
                let inputScale = try parameters.activation(node.inputs[0]).scale
                let scales = try parameters.weight(node.name).scales
                let weight = try Tensor(conv.weight, shape: conv.weightShape)
                    .quantized(scales: scales, zeroPoints: Array(repeating: 0, count: scales.count), axis: 0, dtype: .qint8)
                let packed = try PackedQuantizedConv2d(weight: weight, bias: Tensor(Self.deployedBias(conv.bias, weightScales: scales, inputScale: inputScale)),
                                                       stride: spec.stride, padding: spec.padding, groups: spec.groups)
                steps.append(.convolution(packed, relu: spec.relu, try parameters.activation(node.name)))
            case .maxPool(let kernel, let stride, let padding): steps.append(.maxPool(kernel: kernel, stride: stride, padding: padding))
            case .averagePool(let kernel, let stride, let padding):
                steps.append(.averagePool(kernel: kernel, stride: stride, padding: padding))
            case .upsampleNearest(let scale): steps.append(.upsample(scale: scale))
            case .concatenate: steps.append(.concatenate(try parameters.activation(node.name)))
            case .add(let relu): steps.append(.add(relu: relu, try parameters.activation(node.name)))
            case .channelSlice(let start, let count): steps.append(.slice(start: start, count: count))
            case .channelShuffle(let groups): steps.append(.shuffle(groups: groups))
            case .detectionOutput: steps.append(.output)
            }
        }
        return steps
    }

    /// The float image [N, 3, H, W] quantized to the input grid.
    public func quantizeInput(_ image: Tensor) throws -> Tensor {
        try image.quantized(scale: inputGrid.scale, zeroPoint: inputGrid.zeroPoint, dtype: .quint8)
    }

    /// The detector's output [N, 1 + 4 + classes, H, W] in float, like `Detector.forward`.
    public func forward(_ image: Tensor) throws -> Tensor {
        try QuantizedEngine.using(engine) {
            var values: [String: Tensor] = [DetectorGraph.inputName: try quantizeInput(image)]
            for (index, node) in graph.nodes.enumerated() {
                values[node.name] = try run(index, node.inputs.map { values[$0]! })
                for name in releases[index] { values[name] = nil }
            }
            return values[graph.output.name]!
        }
    }

    public func callAsFunction(_ image: Tensor) throws -> Tensor { try forward(image) }

    /// Runs the whole graph and keeps every node's output (quantized, except the float detection
    /// output), keyed by node name plus "image", for per-node timing on cached inputs.
    public func outputs(_ image: Tensor) throws -> [String: Tensor] {
        try QuantizedEngine.using(engine) {
            var values: [String: Tensor] = [DetectorGraph.inputName: try quantizeInput(image)]
            for (index, node) in graph.nodes.enumerated() {
                values[node.name] = try run(index, node.inputs.map { values[$0]! })
            }
            return values
        }
    }

    /// Node `index`'s output for its (quantized) input values, in `node.inputs` order.
    public func apply(_ index: Int, _ inputs: [Tensor]) throws -> Tensor {
        try QuantizedEngine.using(engine) { try run(index, inputs) }
    }

    /// `apply` on the engine already selected.
    private func run(_ index: Int, _ inputs: [Tensor]) throws -> Tensor {
        switch steps[index] {
        case let .convolution(conv, relu, grid):
            return try conv(inputs[0], relu: relu, scale: grid.scale, zeroPoint: grid.zeroPoint)
        case let .maxPool(kernel, stride, padding):
            return try Functional.maxPool2d(inputs[0], kernel: (kernel, kernel), stride: (stride, stride), padding: (padding, padding))
        case let .averagePool(kernel, stride, padding):
            return try Functional.avgPool2d(inputs[0], kernel: (kernel, kernel), stride: (stride, stride), padding: (padding, padding))
        case .upsample(let scale):
            return try Functional.upsampleNearest(inputs[0], scale: scale)
        case .concatenate(let grid):
            return try QuantizedFunctional.cat(inputs, dim: 1, scale: grid.scale, zeroPoint: grid.zeroPoint)
        case let .add(relu, grid):
            return try QuantizedFunctional.add(inputs[0], inputs[1], relu: relu, scale: grid.scale, zeroPoint: grid.zeroPoint)
        case let .slice(start, count):
            return try inputs[0].narrow(dim: 1, start: start, length: count)
        case .shuffle(let groups):
            let shape = inputs[0].shape
            let (batch, channels, height, width) = (shape[0], shape[1], shape[2], shape[3])
            // reshape, not view: quantized convolutions may return channels-last memory, which
            // a view cannot regroup.
            return try inputs[0].reshape([batch, groups, channels / groups, height, width]).transpose(1, 2)
                .contiguous().reshape([batch, channels, height, width])
        case .output:
            let branches = try inputs.map { try $0.dequantized() }
            return try Tensor.cat([branches[0].sigmoid(), branches[1], branches[2].softmax(dim: 1)], dim: 1)
        }
    }
}
