import Foundation
import SwiftProtobuf
import Vision

/// Writes a detector as an ONNX model by walking its `DetectorGraph`, the same description the
/// torch model, the profiler and INT8 quantization walk, so the exported network is the trained
/// one node for node. Every convolution node becomes one Conv with its batch norm folded in
/// (`FoldedConvolution`), followed by Relu where the node has one.
///
/// Two precisions:
/// - FP32: float weights and activations.
/// - INT8 in QDQ form: every activation passes through QuantizeLinear/DequantizeLinear with the
///   calibrated per-tensor quint8 grid of `QuantizationParameters` (the grids EdgeNAS's own INT8
///   path runs with), weights are stored as qint8 per output channel (symmetric, zero point 0),
///   biases as int32 with scale input scale x weight scale, the convention runtimes expect to fuse
///   DQ -> Conv -> Q into an integer convolution. The detection output (sigmoid, softmax) stays
///   float, as in `QuantizedDetector`.
///
/// Operator set 13, IR version 8. Input `image`: float [batch, 3, S, S]; output `detections`:
/// float [batch, 1 + 4 + classes, S/16, S/16]. Pre- and post-processing are described in the
/// model's metadata (`ONNXModelMetadata`).
public enum DetectorONNXExporter {
    public static let opsetVersion = 13
    public static let irVersion = 8
    public static let inputName = "image"
    public static let outputName = "detections"

    /// The ONNX model of `graph` with the folded convolutions `convolutions` (keyed by node name),
    /// in FP32, or INT8 QDQ when `quantization` is given.
    public static func model(
        graph: DetectorGraph, convolutions: [String: FoldedConvolution], quantization: QuantizationParameters? = nil,
        classNames: [String]
    ) throws(DetectorExportError) -> Onnx_ModelProto {
        let architecture = graph.architecture
        try DetectorExportError.checkInputs(graph, classNames: classNames, quantization: quantization)
        var writer = GraphWriter(quantization: quantization)
        try writer.write(graph, convolutions: convolutions)

        var onnxGraph = Onnx_GraphProto()
        onnxGraph.name = "edgenas-\(architecture)"
        onnxGraph.node = writer.builder.nodes
        onnxGraph.initializer = writer.builder.initializers
        onnxGraph.input = [batchedFloatValue(inputName, channels: 3, height: architecture.inputHeight, width: architecture.inputWidth)]
        let output = graph.output.outputShape
        onnxGraph.output = [batchedFloatValue(outputName, channels: output.channels, height: output.height, width: output.width)]

        var model = Onnx_ModelProto()
        model.irVersion = Int64(irVersion)
        var opset = Onnx_OperatorSetIdProto()
        opset.domain = ""
        opset.version = Int64(opsetVersion)
        model.opsetImport = [opset]
        model.producerName = "edgenas"
        model.producerVersion = ONNXModelMetadata.producerVersion
        model.docString = "EdgeNAS FastestDet-style detector \(architecture) (\(quantization == nil ? "FP32" : "INT8 QDQ"))"
        model.graph = onnxGraph
        model.metadataProps = ONNXModelMetadata(architecture: architecture, classNames: classNames, quantization: quantization)
            .entries.map { key, value in
                var entry = Onnx_StringStringEntryProto()
                entry.key = key
                entry.value = value
                return entry
            }
        return model
    }

    /// The serialized bytes of `model(...)`, ready to write to a `.onnx` file.
    public static func serializedModel(
        graph: DetectorGraph, convolutions: [String: FoldedConvolution], quantization: QuantizationParameters? = nil,
        classNames: [String]
    ) throws -> Data {
        try model(graph: graph, convolutions: convolutions, quantization: quantization, classNames: classNames).serializedData()
    }
}

/// What is written into an exported model's `metadata_props`, so a deployment engineer (or a
/// tool) can run the model without EdgeNAS: which network it is, how to prepare its input and how
/// to read its output.
public struct ONNXModelMetadata: Sendable {
    public static let producerVersion = "0.1.0"

    public var entries: [(key: String, value: String)]

    public init(architecture: DetectorArchitecture, classNames: [String], quantization: QuantizationParameters?) {
        let (width, height) = (architecture.inputWidth, architecture.inputHeight)
        let padding = String(format: "%.6f", Double(114) / 255)
        let classes = (try? JSONEncoder().encode(classNames)).flatMap { String(data: $0, encoding: .utf8) } ?? "[]"
        var entries: [(String, String)] = [
            ("edgenas.architecture", architecture.description),
            ("edgenas.input_size", "\(width)x\(height)"),
            ("edgenas.class_names", classes),
            ("edgenas.precision", quantization == nil ? "fp32" : "int8-qdq"),
            ("edgenas.preprocessing",
             "RGB, float32 NCHW, values in [0, 1] (pixel / 255), no mean or std; letterbox the image to \(width)x\(height) (width x height): "
                + "scale by min(\(width)/width, \(height)/height), centre, pad with \(padding)."),
            ("edgenas.postprocessing",
             "output [batch, 5 + classes, \(architecture.gridHeight), \(architecture.gridWidth)] (rows, columns), one cell per \(DetectorArchitecture.outputStride) px: "
                + "channel 0 objectness (sigmoid applied), 1-2 box centre offsets (centre = (cell + tanh(v)) / cells along that axis), "
                + "3-4 box width and height (sigmoid(v) x input width, sigmoid(v) x input height), 5... class probabilities (softmax applied); "
                + "score = objectness^0.6 x class probability^0.4; per-class NMS at IoU 0.45; map boxes back through the letterbox."),
        ]
        if let quantization {
            entries.append(("edgenas.quantization",
                            "activations quint8 per tensor (\(quantization.options.method.rawValue) calibration on \(quantization.imageCount) images), "
                                + "weights qint8 per output channel symmetric, bias int32 (input scale x weight scale)"))
        }
        self.entries = entries
    }
}

/// Translates the detector graph node by node into ONNX nodes.
private struct GraphWriter {
    var builder = ONNXGraphBuilder()
    let quantization: QuantizationParameters?
    /// For each detector node (and the image), the float tensor its readers use: the node's own
    /// output in FP32, the output of its DequantizeLinear in QDQ.
    private var readable: [String: String] = [:]

    init(quantization: QuantizationParameters?) { self.quantization = quantization }

    mutating func write(_ graph: DetectorGraph, convolutions: [String: FoldedConvolution]) throws(DetectorExportError) {
        readable[DetectorGraph.inputName] = try quantized(DetectorONNXExporter.inputName, node: DetectorGraph.inputName)
        for node in graph.nodes {
            let inputs = node.inputs.map { readable[$0]! }
            let output: String
            switch node.operation {
            case .convolution(let spec):
                let folded = try DetectorExportError.weights(of: node.name, spec, in: convolutions)
                output = try convolution(node.name, spec, folded, input: inputs[0], inputNode: node.inputs[0])
            case let .maxPool(kernel, stride, padding):
                output = builder.add("MaxPool", name: node.name, inputs: inputs, output: node.name,
                                     attributes: window(kernel: kernel, stride: stride, padding: padding))
            case let .averagePool(kernel, stride, padding):
                // libtorch's avg_pool2d counts the zero padding in the divisor; ONNX's default does not.
                output = builder.add("AveragePool", name: node.name, inputs: inputs, output: node.name,
                                     attributes: window(kernel: kernel, stride: stride, padding: padding) + [ONNXAttribute.int("count_include_pad", 1)])
            case .upsampleNearest(let scale):
                // Asymmetric coordinates with floor rounding are PyTorch's nearest upsampling.
                let scales = builder.constant("\(node.name).scales", .float([1, 1, Float(scale), Float(scale)]), dimensions: [4])
                output = builder.add("Resize", name: node.name, inputs: [inputs[0], "", scales], output: node.name, attributes: [
                    ONNXAttribute.string("mode", "nearest"), ONNXAttribute.string("coordinate_transformation_mode", "asymmetric"),
                    ONNXAttribute.string("nearest_mode", "floor"),
                ])
            case .concatenate:
                output = builder.add("Concat", name: node.name, inputs: inputs, output: node.name, attributes: [ONNXAttribute.int("axis", 1)])
            case .add(let relu):
                output = activated(builder.add("Add", name: relu ? "\(node.name).sum" : node.name, inputs: inputs,
                                               output: relu ? "\(node.name).sum" : node.name), relu: relu, name: node.name)
            case let .channelSlice(start, count):
                let starts = builder.constant("\(node.name).starts", .int64([Int64(start)]), dimensions: [1])
                let ends = builder.constant("\(node.name).ends", .int64([Int64(start + count)]), dimensions: [1])
                let axes = builder.constant("\(node.name).axes", .int64([1]), dimensions: [1])
                output = builder.add("Slice", name: node.name, inputs: [inputs[0], starts, ends, axes], output: node.name)
            case .channelShuffle(let groups):
                output = channelShuffle(node.name, input: inputs[0], groups: groups, shape: node.outputShape)
            case .detectionOutput:
                let objectness = builder.add("Sigmoid", name: "\(node.name).objectness", inputs: [inputs[0]], output: "\(node.name).objectness")
                let classes = builder.add("Softmax", name: "\(node.name).classes", inputs: [inputs[2]], output: "\(node.name).classes",
                                          attributes: [ONNXAttribute.int("axis", 1)])
                output = builder.add("Concat", name: node.name, inputs: [objectness, inputs[1], classes],
                                     output: DetectorONNXExporter.outputName, attributes: [ONNXAttribute.int("axis", 1)])
                readable[node.name] = output
                continue
            }
            readable[node.name] = try quantized(output, node: node.name)
        }
    }

    /// Conv with the folded weight and bias (+ Relu). In QDQ the weight and bias are integer
    /// constants behind DequantizeLinear.
    private mutating func convolution(_ name: String, _ spec: ConvolutionSpec, _ folded: FoldedConvolution, input: String,
                                      inputNode: String) throws(DetectorExportError) -> String {
        let shape = folded.weightShape
        let weight: String, bias: String
        if let quantization {
            guard let weightGrid = quantization.weights[name] else { throw .missingGrid(node: name, kind: "weight") }
            guard let inputGrid = quantization.activations[inputNode] else { throw .missingGrid(node: inputNode, kind: "activation") }
            weight = dequantizedWeight(name, folded, scales: weightGrid.scales, shape: shape)
            bias = dequantizedBias(name, folded.bias, scales: weightGrid.scales.map { $0 * Double(Float(inputGrid.scale)) })
        } else {
            weight = builder.constant("\(name).weight", .float(folded.weight), dimensions: shape)
            bias = builder.constant("\(name).bias", .float(folded.bias), dimensions: [spec.outputChannels])
        }
        let output = spec.relu ? "\(name).conv" : name
        builder.add("Conv", name: output, inputs: [input, weight, bias], output: output, attributes: [
            ONNXAttribute.ints("kernel_shape", [spec.kernelSize, spec.kernelSize]),
            ONNXAttribute.ints("strides", [spec.stride, spec.stride]),
            ONNXAttribute.ints("pads", Array(repeating: spec.padding, count: 4)),
            ONNXAttribute.ints("dilations", [1, 1]),
            ONNXAttribute.int("group", spec.groups),
        ])
        return activated(output, relu: spec.relu, name: name)
    }

    private mutating func activated(_ value: String, relu: Bool, name: String) -> String {
        relu ? builder.add("Relu", name: name, inputs: [value], output: name) : value
    }

    /// ShuffleNetV2's channel shuffle: reshape to (groups, C / groups), swap them, flatten back.
    private mutating func channelShuffle(_ name: String, input: String, groups: Int, shape: FeatureShape) -> String {
        let grouped = builder.constant("\(name).grouped_shape", .int64([-1, Int64(groups), Int64(shape.channels / groups),
                                                                        Int64(shape.height), Int64(shape.width)]), dimensions: [5])
        let flat = builder.constant("\(name).flat_shape", .int64([-1, Int64(shape.channels), Int64(shape.height), Int64(shape.width)]),
                                    dimensions: [4])
        let split = builder.add("Reshape", name: "\(name).group", inputs: [input, grouped], output: "\(name).grouped")
        let swapped = builder.add("Transpose", name: "\(name).transpose", inputs: [split], output: "\(name).transposed",
                                  attributes: [ONNXAttribute.ints("perm", [0, 2, 1, 3, 4])])
        return builder.add("Reshape", name: name, inputs: [swapped, flat], output: name)
    }

    /// Attributes of a square pooling window.
    private func window(kernel: Int, stride: Int, padding: Int) -> [Onnx_AttributeProto] {
        [ONNXAttribute.ints("kernel_shape", [kernel, kernel]), ONNXAttribute.ints("strides", [stride, stride]),
         ONNXAttribute.ints("pads", Array(repeating: padding, count: 4))]
    }

    // MARK: QDQ

    /// In QDQ, `value` (the output of detector node `node`) through QuantizeLinear and
    /// DequantizeLinear on the node's activation grid; in FP32, `value` itself.
    private mutating func quantized(_ value: String, node: String) throws(DetectorExportError) -> String {
        guard let quantization else { return value }
        guard let grid = quantization.activations[node] else { throw .missingGrid(node: node, kind: "activation") }
        let scale = builder.scalar("\(node).output_scale", .float([Float(grid.scale)]))
        let zeroPoint = builder.scalar("\(node).output_zero_point", .uint8([UInt8(grid.zeroPoint)]))
        let integer = builder.add("QuantizeLinear", name: "\(node).quantize", inputs: [value, scale, zeroPoint], output: "\(node).quantized")
        return builder.add("DequantizeLinear", name: "\(node).dequantize", inputs: [integer, scale, zeroPoint], output: "\(node).dequantized")
    }

    /// The folded weight as qint8 per output channel (round half to even, clamped to [-127, 127],
    /// as `Tensor.quantized(scales:...)` does for the libtorch INT8 path) behind DequantizeLinear.
    private mutating func dequantizedWeight(_ name: String, _ folded: FoldedConvolution, scales: [Double], shape: [Int]) -> String {
        let perChannel = folded.weight.count / shape[0]
        let limit = Double(WeightQuantization.quantizedMaximum)
        let integers = folded.weight.enumerated().map { index, value -> Int8 in
            let scale = Double(Float(scales[index / perChannel]))
            return Int8(Swift.min(Swift.max((Double(value) / scale).rounded(.toNearestOrEven), -limit), limit))
        }
        let values = builder.constant("\(name).weight_quantized", .int8(integers), dimensions: shape)
        let scale = builder.constant("\(name).weight_scale", .float(scales.map { Float($0) }), dimensions: [scales.count])
        let zeroPoint = builder.constant("\(name).weight_zero_point", .int8(Array(repeating: 0, count: scales.count)), dimensions: [scales.count])
        return builder.add("DequantizeLinear", name: "\(name).weight_dequantize", inputs: [values, scale, zeroPoint],
                           output: "\(name).weight_dequantized", attributes: [ONNXAttribute.int("axis", 0)])
    }

    /// The float bias as int32 on the grid input scale x weight scale (zero point 0) behind
    /// DequantizeLinear.
    private mutating func dequantizedBias(_ name: String, _ bias: [Float], scales: [Double]) -> String {
        let limit = Double(Int32.max)
        let integers = zip(bias, scales).map { value, scale in
            Int32(Swift.min(Swift.max((Double(value) / Double(Float(scale))).rounded(.toNearestOrEven), -limit), limit))
        }
        let values = builder.constant("\(name).bias_quantized", .int32(integers), dimensions: [bias.count])
        let scale = builder.constant("\(name).bias_scale", .float(scales.map { Float($0) }), dimensions: [scales.count])
        let zeroPoint = builder.constant("\(name).bias_zero_point", .int32(Array(repeating: 0, count: scales.count)), dimensions: [scales.count])
        return builder.add("DequantizeLinear", name: "\(name).bias_dequantize", inputs: [values, scale, zeroPoint],
                           output: "\(name).bias_dequantized", attributes: [ONNXAttribute.int("axis", 0)])
    }
}

extension DetectorONNXExporter {
    /// The serialized model of `detector`'s current weights (batch norm folded with its running
    /// statistics), FP32 or INT8 QDQ.
    public static func serializedModel(_ detector: Detector, quantization: QuantizationParameters? = nil, classNames: [String]) throws -> Data {
        try serializedModel(graph: detector.graph, convolutions: detector.foldedConvolutions(), quantization: quantization,
                            classNames: classNames)
    }
}
