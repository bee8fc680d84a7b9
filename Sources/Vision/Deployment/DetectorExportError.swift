/// Why a detector could not be exported to a deployment format (ONNX, TFLite), and the checks
/// every exporter makes before it writes anything.
public enum DetectorExportError: Error, Equatable, Sendable, CustomStringConvertible {
    case missingConvolution(node: String)
    case weightShapeMismatch(node: String, expected: [Int], found: [Int])
    case classNamesMismatch(names: [String], classCount: Int)
    case quantizationMismatch(parameters: String, network: String)
    case missingGrid(node: String, kind: String)

    public var description: String {
        switch self {
        case .missingConvolution(let node): "export: no weights for convolution node '\(node)'"
        case let .weightShapeMismatch(node, expected, found):
            "export: weights of '\(node)' have shape \(found), but the architecture needs \(expected): "
                + "the checkpoint was trained for another architecture"
        case let .classNamesMismatch(names, classCount): "export: \(names.count) class names \(names) for a network with \(classCount) classes"
        case let .quantizationMismatch(parameters, network): "export: the INT8 calibration is for \(parameters), not \(network)"
        case let .missingGrid(node, kind): "export: the INT8 calibration has no \(kind) grid for node '\(node)'"
        }
    }

    /// One class name per class, and a calibration made for this architecture.
    public static func checkInputs(_ graph: DetectorGraph, classNames: [String], quantization: QuantizationParameters?) throws(DetectorExportError) {
        let architecture = graph.architecture
        guard classNames.count == architecture.classCount else {
            throw .classNamesMismatch(names: classNames, classCount: architecture.classCount)
        }
        if let quantization, quantization.architecture != architecture.description {
            throw .quantizationMismatch(parameters: quantization.architecture, network: architecture.description)
        }
    }

    /// The folded weights of convolution node `name`, checked against its specification.
    public static func weights(of name: String, _ spec: ConvolutionSpec, in convolutions: [String: FoldedConvolution])
        throws(DetectorExportError) -> FoldedConvolution
    {
        guard let folded = convolutions[name] else { throw .missingConvolution(node: name) }
        let shape = [spec.outputChannels, spec.inputChannels / spec.groups, spec.kernelSize, spec.kernelSize]
        guard folded.weightShape == shape, folded.bias.count == spec.outputChannels else {
            throw .weightShapeMismatch(node: name, expected: shape, found: folded.weightShape)
        }
        return folded
    }
}
