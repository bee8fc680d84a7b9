import Foundation
import Vision

/// Writes a detector as a TFLite model by walking its `DetectorGraph`, as the ONNX exporter
/// does, for the NXP deployment path (LiteRT with an NPU delegate on i.MX 8M Plus; Vela for the
/// i.MX 93's Ethos-U65). TFLite is channels-last: the input is float [1, S, S, 3] (RGB, / 255,
/// letterboxed), the output float [1, S/16, S/16, 5 + classes] (objectness after sigmoid, box
/// values, class probabilities after softmax: the ONNX output's channels, moved last).
///
/// Two precisions:
/// - FP32.
/// - Full-integer INT8 with EdgeNAS's calibration (the ONNX QDQ export's grids): the float
///   input is quantized once, every activation is int8 on its node's grid (the quint8 grid of
///   `QuantizationParameters` moved down by 128: same scale, zero point - 128), weights int8
///   per output channel (symmetric), biases int32 with scale input scale x weight scale;
///   operations that cannot change the range (padding, pooling, slicing, shuffling,
///   upsampling) keep their input's grid, as TFLite's int8 kernels require and EdgeNAS's INT8
///   path does; a concatenation's inputs are requantized to its grid first (a 1x1 depthwise
///   convolution of weight 1, see `requantized`), which XNNPACK and the NPUs require. The three head branches are dequantized for the sigmoid, softmax and
///   concatenation, which stay float, as in `QuantizedDetector`.
///
/// Operators are the ones Arm's Vela maps to Ethos-U (CONV_2D, DEPTHWISE_CONV_2D, PAD,
/// MAX_POOL_2D, AVERAGE_POOL_2D, CONCATENATION, ADD, SLICE, RESHAPE, TRANSPOSE, SPLIT,
/// RESIZE_NEAREST_NEIGHBOR, QUANTIZE; the float head stays on the CPU): PyTorch's symmetric
/// padding of strided windows becomes an explicit PAD before a VALID window (TFLite's SAME pads
/// the bottom and right only), and a grouped convolution that is not depthwise becomes SPLIT,
/// one CONV_2D per group and CONCATENATION.
public enum DetectorTFLiteExporter {
    public static let inputName = "image"
    public static let outputName = "detections"

    /// The `.tflite` file of `graph` with the folded convolutions `convolutions` (keyed by node
    /// name), FP32, or full-integer INT8 when `quantization` is given.
    public static func serializedModel(
        graph: DetectorGraph, convolutions: [String: FoldedConvolution], quantization: QuantizationParameters? = nil,
        classNames: [String]
    ) throws(DetectorExportError) -> Data {
        Data(try model(graph: graph, convolutions: convolutions, quantization: quantization, classNames: classNames).serialized())
    }

    /// The model before serialization (tensors, operators, buffers), for tests to inspect.
    static func model(
        graph: DetectorGraph, convolutions: [String: FoldedConvolution], quantization: QuantizationParameters?, classNames: [String]
    ) throws(DetectorExportError) -> TFLiteModel {
        let architecture = graph.architecture
        try DetectorExportError.checkInputs(graph, classNames: classNames, quantization: quantization)
        var writer = TFLiteGraphWriter(quantization: quantization)
        writer.model.description = "EdgeNAS FastestDet-style detector \(architecture) (\(quantization == nil ? "FP32" : "INT8")); "
            + "classes \(classNames.joined(separator: ","))"
        try writer.write(graph, convolutions: convolutions)
        return writer.model
    }

    /// The `.tflite` file of `detector`'s current weights (batch norm folded with its running
    /// statistics), FP32 or INT8.
    public static func serializedModel(_ detector: Detector, quantization: QuantizationParameters? = nil, classNames: [String]) throws -> Data {
        try export(detector, quantization: quantization, classNames: classNames).bytes
    }

    /// The `.tflite` file of `detector`'s current weights and what it runs in float.
    public static func export(_ detector: Detector, quantization: QuantizationParameters? = nil, classNames: [String]) throws -> TFLiteFile {
        let written = try model(graph: detector.graph, convolutions: detector.foldedConvolutions(), quantization: quantization,
                                classNames: classNames)
        return TFLiteFile(bytes: Data(written.serialized()), floatOperatorCount: written.floatOperatorCount)
    }
}

/// A written `.tflite` model.
public struct TFLiteFile: Sendable {
    public var bytes: Data
    /// Operators that read or write float tensors (in INT8: the input's quantization and the
    /// float head). An integer-only NPU leaves these on the CPU; any further CPU operator is
    /// one the NPU lacks.
    public var floatOperatorCount: Int
}

/// Translates the detector graph node by node into TFLite tensors and operators.
private struct TFLiteGraphWriter {
    var model = TFLiteModel(description: "")
    let quantization: QuantizationParameters?
    /// For each detector node (and the image), the tensor holding its output (NHWC).
    private var tensorOf: [String: Int32] = [:]

    init(quantization: QuantizationParameters?) { self.quantization = quantization }

    private var activationType: TFLiteTensorType { quantization == nil ? .float32 : .int8 }

    mutating func write(_ graph: DetectorGraph, convolutions: [String: FoldedConvolution]) throws(DetectorExportError) {
        let shape = [1, Int32(graph.architecture.inputHeight), Int32(graph.architecture.inputWidth), 3]
        let image = addTensor(DetectorTFLiteExporter.inputName, shape: shape, type: .float32)
        model.inputs = [image]
        if quantization != nil {
            let grid = try activationGrid(DetectorGraph.inputName)
            tensorOf[DetectorGraph.inputName] = operation(.quantize, inputs: [image], output: "image.quantized",
                                                          shape: shape, quantization: grid)
        } else {
            tensorOf[DetectorGraph.inputName] = image
        }
        for node in graph.nodes {
            let input = tensorOf[node.inputs[0]]!
            let inputGrid = model.tensors[Int(input)].quantization
            let shape = nhwc(node.outputShape)
            let output: Int32
            switch node.operation {
            case .convolution(let spec):
                let folded = try DetectorExportError.weights(of: node.name, spec, in: convolutions)
                output = try convolution(node.name, spec, folded, input: input, inputNode: node.inputs[0], shape: shape)
            case let .maxPool(kernel, stride, padding), let .averagePool(kernel, stride, padding):
                let padded = pad(input, node.name, by: padding)
                let isMax = if case .maxPool = node.operation { true } else { false }
                // PyTorch's average pool counts the zero padding in the divisor (count_include_pad),
                // which an explicit PAD before a VALID window reproduces.
                output = operation(isMax ? .maxPool2D : .averagePool2D, inputs: [padded], output: node.name, shape: shape,
                                   quantization: inputGrid,
                                   options: .pool2D(padding: .valid, stride: Int32(stride), filter: Int32(kernel), activation: .none))
            case .upsampleNearest:
                // Legacy nearest resizing (no corner alignment, no half-pixel centres) is PyTorch's nearest.
                let outputSize = constant("\(node.name).size", int32: [shape[1], shape[2]], shape: [2])
                output = operation(.resizeNearestNeighbor, inputs: [input, outputSize], output: node.name, shape: shape,
                                   quantization: inputGrid, options: .resizeNearestNeighbor)
            case .concatenate:
                let grid = try activationGrid(node.name)
                let inputs = node.inputs.map { requantized(tensorOf[$0]!, to: grid) }
                output = operation(.concatenation, inputs: inputs, output: node.name, shape: shape, quantization: grid,
                                   options: .concatenation(axis: 3, activation: .none))
            case .add(let relu):
                output = operation(.add, inputs: node.inputs.map { tensorOf[$0]! }, output: node.name, shape: shape,
                                   quantization: try activationGrid(node.name), options: .add(activation: relu ? .relu : .none))
            case let .channelSlice(start, count):
                let begin = constant("\(node.name).begin", int32: [0, 0, 0, Int32(start)], shape: [4])
                let sizes = constant("\(node.name).size", int32: [1, shape[1], shape[2], Int32(count)], shape: [4])
                output = operation(.slice, inputs: [input, begin, sizes], output: node.name, shape: shape, quantization: inputGrid,
                                   options: .slice)
            case .channelShuffle(let groups):
                output = channelShuffle(node.name, input: input, groups: Int32(groups), shape: shape, quantization: inputGrid)
            case .detectionOutput:
                output = try detectionOutput(node, shape: shape)
            }
            tensorOf[node.name] = output
        }
        model.outputs = [tensorOf[graph.nodes.last!.name]!]
    }

    /// TFLite's NHWC shape of a feature map at batch 1.
    private func nhwc(_ shape: FeatureShape) -> [Int32] { [1, Int32(shape.height), Int32(shape.width), Int32(shape.channels)] }

    // MARK: tensors and operators

    private mutating func addTensor(_ name: String, shape: [Int32], type: TFLiteTensorType, data: [UInt8]? = nil,
                                    quantization: TFLiteQuantization? = nil) -> Int32 {
        var buffer: UInt32 = 0
        if let data {
            buffer = UInt32(model.buffers.count)
            model.buffers.append(data)
        }
        model.tensors.append(TFLiteTensor(name: name, shape: shape, type: type, buffer: buffer, quantization: quantization))
        return Int32(model.tensors.count - 1)
    }

    /// Appends an operator and its output tensor (activation type, the given grid); returns the output.
    private mutating func operation(_ code: TFLiteOperator, inputs: [Int32], output name: String, shape: [Int32],
                                    type: TFLiteTensorType? = nil, quantization: TFLiteQuantization?,
                                    options: TFLiteOptions? = nil) -> Int32 {
        let output = addTensor(name, shape: shape, type: type ?? activationType, quantization: quantization)
        model.operations.append(TFLiteOperation(code: code, inputs: inputs, outputs: [output], options: options))
        return output
    }

    private mutating func constant(_ name: String, int32 values: [Int32], shape: [Int32]) -> Int32 {
        addTensor(name, shape: shape, type: .int32, data: littleEndianBytes(values))
    }

    /// The int8 grid of a node's output (nil in FP32): the quint8 grid moved down by 128.
    private func activationGrid(_ node: String) throws(DetectorExportError) -> TFLiteQuantization? {
        guard let quantization else { return nil }
        guard let grid = quantization.activations[node] else { throw .missingGrid(node: node, kind: "activation") }
        return TFLiteQuantization(scales: [Float(grid.scale)], zeroPoints: [Int64(grid.zeroPoint - 128)])
    }

    /// `input` on `grid`: itself when it is on it already (or in FP32), else requantized by a 1x1
    /// depthwise convolution with weights 1 (int8 127 at scale 1/127) and zero biases. A
    /// concatenation's inputs must share its output's grid in XNNPACK's and NPUs' int8 kernels;
    /// EdgeNAS's INT8 path requantizes them the same way, rounding once and exactly. TFLite's
    /// own int8-to-int8 QUANTIZE does not: XNNPACK keeps the scale ratio in 8 bits and the
    /// builtin kernel rounds twice, which put 2 to 19 % of a requantized tensor one step off
    /// and moved the network's outputs ~2 steps from onnxruntime's; through the convolution's
    /// requantization LiteRT computes onnxruntime's outputs bit for bit (docs/deployment.md).
    private mutating func requantized(_ input: Int32, to grid: TFLiteQuantization?) -> Int32 {
        let source = model.tensors[Int(input)]
        guard let grid, let sourceGrid = source.quantization, sourceGrid != grid else { return input }
        let channels = Int(source.shape[3]), name = "\(source.name).requantized"
        let unitScales = [Double](repeating: 1 / Double(WeightQuantization.quantizedMaximum), count: channels)
        let filter = weights(name, [Float](repeating: 1, count: channels), shape: [1, 1, 1, Int32(channels)], scales: unitScales,
                             channelsOf: { $0 }, dimension: 3)
        let bias = biases(name, [Float](repeating: 0, count: channels), weightScales: unitScales, inputScale: Double(sourceGrid.scales[0]))
        return operation(.depthwiseConv2D, inputs: [input, filter, bias], output: name, shape: source.shape, quantization: grid,
                         options: .depthwiseConv2D(padding: .valid, stride: 1, activation: .none))
    }

    /// `input` padded with zeros (in INT8: its zero point, the real 0) by `padding` on the top,
    /// bottom, left and right; `input` itself when `padding` is 0.
    private mutating func pad(_ input: Int32, _ name: String, by padding: Int) -> Int32 {
        guard padding > 0 else { return input }
        let source = model.tensors[Int(input)]
        let p = Int32(padding)
        let amounts = constant("\(name).padding", int32: [0, 0, p, p, p, p, 0, 0], shape: [4, 2])
        let shape = [source.shape[0], source.shape[1] + 2 * p, source.shape[2] + 2 * p, source.shape[3]]
        return operation(.pad, inputs: [input, amounts], output: "\(name).padded", shape: shape, quantization: source.quantization,
                         options: .pad)
    }

    // MARK: convolutions

    /// One convolution node (batch norm folded, ReLU fused): CONV_2D, DEPTHWISE_CONV_2D, or
    /// for a grouped one SPLIT, one CONV_2D per group and CONCATENATION.
    private mutating func convolution(_ name: String, _ spec: ConvolutionSpec, _ folded: FoldedConvolution, input: Int32,
                                      inputNode: String, shape: [Int32]) throws(DetectorExportError) -> Int32 {
        // Stride 1 with an odd kernel: TFLite's SAME is PyTorch's symmetric padding. Strided:
        // SAME would pad the bottom and right only, so the padding is explicit.
        let symmetric = spec.stride == 1
        let source = symmetric ? input : pad(input, name, by: spec.padding)
        let padding: TFLiteOptions.Padding = symmetric ? .same : .valid
        let outputGrid = try activationGrid(name)
        var weightScales: [Double]?
        if let quantization {
            guard let grid = quantization.weights[name] else { throw .missingGrid(node: name, kind: "weight") }
            weightScales = grid.scales
        }
        let inputScale = model.tensors[Int(input)].quantization.map { Double($0.scales[0]) }
        let activation: TFLiteOptions.Activation = spec.relu ? .relu : .none
        let k = spec.kernelSize, perGroupIn = spec.inputChannels / spec.groups

        if spec.isDepthwise {
            // [C, 1, k, k] -> [1, k, k, C]; quantized along the last dimension.
            let channels = spec.outputChannels
            var weight = [Float](repeating: 0, count: folded.weight.count)
            for c in 0..<channels { for y in 0..<k { for x in 0..<k { weight[(y * k + x) * channels + c] = folded.weight[(c * k + y) * k + x] } } }
            let filter = weights(name, weight, shape: [1, Int32(k), Int32(k), Int32(channels)], scales: weightScales, channelsOf: { $0 % channels },
                                 dimension: 3)
            let bias = biases(name, folded.bias, weightScales: weightScales, inputScale: inputScale)
            return operation(.depthwiseConv2D, inputs: [source, filter, bias], output: name, shape: shape, quantization: outputGrid,
                             options: .depthwiseConv2D(padding: padding, stride: Int32(spec.stride), activation: activation))
        }
        // [O, I/g, k, k] -> [O, k, k, I/g], for the output channels `range`.
        func filter(_ range: Range<Int>, label: String) -> Int32 {
            var weight: [Float] = []
            weight.reserveCapacity(range.count * k * k * perGroupIn)
            for o in range { for y in 0..<k { for x in 0..<k { for i in 0..<perGroupIn {
                weight.append(folded.weight[((o * perGroupIn + i) * k + y) * k + x])
            } } } }
            let scales = weightScales.map { Array($0[range]) }
            return weights(label, weight, shape: [Int32(range.count), Int32(k), Int32(k), Int32(perGroupIn)], scales: scales,
                           channelsOf: { $0 / (k * k * perGroupIn) }, dimension: 0)
        }
        func bias(_ range: Range<Int>, label: String) -> Int32 {
            biases(label, Array(folded.bias[range]), weightScales: weightScales.map { Array($0[range]) }, inputScale: inputScale)
        }
        let options = TFLiteOptions.conv2D(padding: padding, stride: Int32(spec.stride), activation: activation)
        if spec.groups == 1 {
            return operation(.conv2D, inputs: [source, filter(0..<spec.outputChannels, label: name), bias(0..<spec.outputChannels, label: name)],
                             output: name, shape: shape, quantization: outputGrid, options: options)
        }
        // Grouped: each group's input channels through their own convolution, then concatenated.
        let groups = spec.groups, perGroupOut = spec.outputChannels / groups
        let sourceTensor = model.tensors[Int(source)]
        let axis = constant("\(name).split_axis", int32: [3], shape: [])
        var parts: [Int32] = []
        for g in 0..<groups {
            parts.append(addTensor("\(name).group\(g).input", shape: [1, sourceTensor.shape[1], sourceTensor.shape[2], Int32(perGroupIn)],
                                   type: activationType, quantization: sourceTensor.quantization))
        }
        model.operations.append(TFLiteOperation(code: .split, inputs: [axis, source], outputs: parts, options: .split(count: Int32(groups))))
        var groupOutputs: [Int32] = []
        for g in 0..<groups {
            let range = (g * perGroupOut)..<((g + 1) * perGroupOut)
            let label = "\(name).group\(g)"
            groupOutputs.append(operation(.conv2D, inputs: [parts[g], filter(range, label: label), bias(range, label: label)],
                                          output: label, shape: [shape[0], shape[1], shape[2], Int32(perGroupOut)],
                                          quantization: outputGrid, options: options))
        }
        return operation(.concatenation, inputs: groupOutputs, output: name, shape: shape, quantization: outputGrid,
                         options: .concatenation(axis: 3, activation: .none))
    }

    /// A filter tensor: float, or int8 per channel (round half to even, clamped to [-127, 127]
    /// as EdgeNAS's INT8 path does); `channelsOf` maps an element's index to its channel. A
    /// per-tensor calibration's scales, all equal, are written as one.
    private mutating func weights(_ name: String, _ values: [Float], shape: [Int32], scales: [Double]?,
                                  channelsOf channel: (Int) -> Int, dimension: Int) -> Int32 {
        guard let scales else { return addTensor("\(name).weight", shape: shape, type: .float32, data: littleEndianBytes(values.map(\.bitPattern))) }
        let limit = Double(WeightQuantization.quantizedMaximum)
        let integers = values.enumerated().map { index, value -> Int8 in
            Int8(Swift.min(Swift.max((Double(value) / Double(Float(scales[channel(index)]))).rounded(.toNearestOrEven), -limit), limit))
        }
        let written = perTensorWeights ? Array(scales.prefix(1)) : scales
        let grid = TFLiteQuantization(scales: written.map { Float($0) }, zeroPoints: Array(repeating: 0, count: written.count),
                                      dimension: perTensorWeights ? 0 : dimension)
        return addTensor("\(name).weight", shape: shape, type: .int8, data: integers.map { UInt8(bitPattern: $0) }, quantization: grid)
    }

    /// Whether the calibration has one weight scale per convolution (written as one scale).
    private var perTensorWeights: Bool { quantization?.options.perTensorWeights ?? false }

    /// A bias tensor: float, or int32 on input scale x weight scale per channel.
    private mutating func biases(_ name: String, _ values: [Float], weightScales: [Double]?, inputScale: Double?) -> Int32 {
        let shape = [Int32(values.count)]
        guard let weightScales, let inputScale else {
            return addTensor("\(name).bias", shape: shape, type: .float32, data: littleEndianBytes(values.map(\.bitPattern)))
        }
        // From the scales as stored (float), as the runtime checks and uses them.
        let scales = weightScales.map { Float(Double(Float($0)) * inputScale) }
        let limit = Double(Int32.max)
        let integers = zip(values, scales).map { value, scale in
            Int32(Swift.min(Swift.max((Double(value) / Double(scale)).rounded(.toNearestOrEven), -limit), limit))
        }
        let written = perTensorWeights ? Array(scales.prefix(1)) : scales
        return addTensor("\(name).bias", shape: shape, type: .int32, data: littleEndianBytes(integers),
                         quantization: TFLiteQuantization(scales: written, zeroPoints: Array(repeating: 0, count: written.count)))
    }

    // MARK: shuffle and output

    /// ShuffleNetV2's channel shuffle, channels last: view the channels as (groups, C / groups),
    /// swap the two, flatten back.
    private mutating func channelShuffle(_ name: String, input: Int32, groups: Int32, shape: [Int32],
                                         quantization: TFLiteQuantization?) -> Int32 {
        let channels = shape[3], cells = shape[1] * shape[2]
        let groupedShape: [Int32] = [1, cells, groups, channels / groups]
        let grouped = operation(.reshape, inputs: [input, constant("\(name).grouped_shape", int32: groupedShape, shape: [4])],
                                output: "\(name).grouped", shape: groupedShape, quantization: quantization, options: .reshape(newShape: groupedShape))
        let swappedShape: [Int32] = [1, cells, channels / groups, groups]
        let swapped = operation(.transpose, inputs: [grouped, constant("\(name).perm", int32: [0, 1, 3, 2], shape: [4])],
                                output: "\(name).transposed", shape: swappedShape, quantization: quantization, options: .transpose)
        return operation(.reshape, inputs: [swapped, constant("\(name).shape", int32: shape, shape: [4])], output: name, shape: shape,
                         quantization: quantization, options: .reshape(newShape: shape))
    }

    /// Sigmoid of the objectness, the box values, softmax of the class scores, concatenated
    /// along channels, in float (the branches dequantized first in INT8).
    private mutating func detectionOutput(_ node: GraphNode, shape: [Int32]) throws(DetectorExportError) -> Int32 {
        var branches: [Int32] = []
        for input in node.inputs {
            let tensor = tensorOf[input]!
            let branchShape = model.tensors[Int(tensor)].shape
            branches.append(quantization == nil ? tensor : operation(.dequantize, inputs: [tensor], output: "\(input).dequantized",
                                                                     shape: branchShape, type: .float32, quantization: nil))
        }
        let objectness = operation(.logistic, inputs: [branches[0]], output: "\(node.name).objectness",
                                   shape: model.tensors[Int(branches[0])].shape, type: .float32, quantization: nil)
        let classes = operation(.softmax, inputs: [branches[2]], output: "\(node.name).classes",
                                shape: model.tensors[Int(branches[2])].shape, type: .float32, quantization: nil, options: .softmax(beta: 1))
        return operation(.concatenation, inputs: [objectness, branches[1], classes], output: DetectorTFLiteExporter.outputName,
                         shape: shape, type: .float32, quantization: nil, options: .concatenation(axis: 3, activation: .none))
    }
}

/// Values as little-endian bytes, as TFLite buffers hold them.
private func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(values.count * MemoryLayout<T>.size)
    for value in values { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    return bytes
}
