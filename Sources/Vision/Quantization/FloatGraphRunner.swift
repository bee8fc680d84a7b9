import Torch

/// Runs the nodes of a `Detector`'s graph one at a time in FP32 (eager libtorch), so INT8
/// calibration can observe every node's output and a profile can time each node on its cached
/// inputs. The operations are those `Detector.forward` runs,
/// node for node; the profile's check that the layer times add up to the end-to-end time
/// (measured with `Detector.forward` itself) guards against the two drifting apart.
public final class FloatGraphRunner {
    public let detector: Detector
    public var graph: DetectorGraph { detector.graph }
    private let units: [String: any Module]

    /// Puts `detector` in evaluation mode (running batch-norm statistics).
    public init(_ detector: Detector) {
        detector.eval()
        self.detector = detector
        units = Dictionary(detector.units.map { ($0.name, $0.module) }, uniquingKeysWith: { first, _ in first })
    }

    /// The output of `node` for its input values, in `node.inputs` order.
    public func apply(_ node: GraphNode, _ inputs: [Tensor]) throws -> Tensor {
        switch node.operation {
        case .convolution:
            guard let unit = units[node.name] else {
                throw TorchError(message: "detector has no convolution unit named '\(node.name)'")
            }
            return try unit(inputs[0])
        case .maxPool(let kernel, let stride, let padding):
            return try Functional.maxPool2d(inputs[0], kernel: (kernel, kernel), stride: (stride, stride), padding: (padding, padding))
        case .averagePool(let kernel, let stride, let padding):
            return try Functional.avgPool2d(inputs[0], kernel: (kernel, kernel), stride: (stride, stride), padding: (padding, padding))
        case .upsampleNearest(let scale):
            return try Functional.upsampleNearest(inputs[0], scale: scale)
        case .concatenate:
            return try Tensor.cat(inputs, dim: 1)
        case .add(let relu):
            let sum = try inputs[0] + inputs[1]
            return relu ? try sum.relu() : sum
        case .channelSlice(let start, let count):
            return try inputs[0].narrow(dim: 1, start: start, length: count)
        case .channelShuffle(let groups):
            let shape = inputs[0].shape
            let (batch, channels, height, width) = (shape[0], shape[1], shape[2], shape[3])
            return try inputs[0].view([batch, groups, channels / groups, height, width]).transpose(1, 2)
                .contiguous().view([batch, channels, height, width])
        case .detectionOutput:
            return try Tensor.cat([inputs[0].sigmoid(), inputs[1], inputs[2].softmax(dim: 1)], dim: 1)
        }
    }

    /// Runs the whole graph on `image` and keeps every node's output (for calibration and
    /// for per-node timing on cached inputs), keyed by node name plus `DetectorGraph.inputName`.
    public func outputs(_ image: Tensor) throws -> [String: Tensor] {
        var values: [String: Tensor] = [DetectorGraph.inputName: image]
        for node in graph.nodes {
            values[node.name] = try apply(node, node.inputs.map { values[$0]! })
        }
        return values
    }
}
