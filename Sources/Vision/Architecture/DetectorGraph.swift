/// The layer graph of a `DetectorArchitecture`: every operation the network runs, in
/// execution order, with its block, inputs and output shape.
///
/// It is the single description of the network: the torch model is built by walking it,
/// and params, MACs and activation memory are counted from it, so the analytic figures and
/// the executed operations cannot drift apart. Convolutions are the deploy-time unit:
/// convolution + batch norm (+ ReLU), which quantization and export fuse into one operator.
public struct DetectorGraph: Sendable {
    public let architecture: DetectorArchitecture
    /// Nodes in execution order; each node's inputs appear earlier (or are `inputName`).
    public let nodes: [GraphNode]

    /// The name inputs use to refer to the image.
    public static let inputName = "image"

    public init(_ architecture: DetectorArchitecture) throws(ArchitectureError) {
        try architecture.validate()
        self.architecture = architecture
        var builder = Builder(input: architecture.imageShape)
        builder.addBackbone(architecture)
        builder.addNeck(architecture)
        builder.addHead(architecture)
        nodes = builder.nodes
    }

    /// The last node: the detection output (objectness, box, class scores per grid cell).
    public var output: GraphNode { nodes[nodes.count - 1] }

    public func node(named name: String) -> GraphNode? { nodes.first { $0.name == name } }

    /// Learnable parameters: convolution weights plus batch-norm scale and shift, counted as
    /// PyTorch's `sum(p.numel() for p in model.parameters())` does.
    public var parameterCount: Int { nodes.reduce(0) { $0 + $1.parameterCount } }

    /// Multiply-accumulates of one forward pass at batch 1 (convolutions only, as is usual).
    public var multiplyAccumulates: Int { nodes.reduce(0) { $0 + $1.multiplyAccumulates } }

    /// The largest number of activation elements alive at once at batch 1: a tensor lives
    /// from the node that makes it until its last reader, and the image counts too.
    public var peakActivationElements: Int {
        var lastUse: [String: Int] = [:]
        for (index, node) in nodes.enumerated() {
            for input in node.inputs { lastUse[input] = index }
        }
        let image = architecture.imageShape.elementCount
        var live: [String: Int] = [Self.inputName: image]
        var peak = image
        for (index, node) in nodes.enumerated() {
            live[node.name] = node.outputShape.elementCount
            peak = max(peak, live.values.reduce(0, +))
            for input in node.inputs where lastUse[input] == index { live[input] = nil }
        }
        return peak
    }
}

/// Where a node sits in the network; profiles and search spaces are organised by block.
public enum NetworkBlock: String, Codable, Hashable, Sendable, CaseIterable {
    case stem, stage2, stage3, stage4, neck, spp, head
}

/// Channels, height and width of a feature map at batch 1.
public struct FeatureShape: Codable, Hashable, Sendable, CustomStringConvertible {
    public var channels: Int
    public var height: Int
    public var width: Int

    public var elementCount: Int { channels * height * width }
    public var description: String { "\(channels)x\(height)x\(width)" }
}

/// Convolution (no bias) + batch norm + optional ReLU.
public struct ConvolutionSpec: Codable, Hashable, Sendable {
    public var inputChannels: Int
    public var outputChannels: Int
    public var kernelSize: Int
    public var stride: Int
    public var groups: Int
    public var relu: Bool

    /// "Same" padding for odd kernels.
    public var padding: Int { kernelSize / 2 }
    public var isDepthwise: Bool { groups == inputChannels && groups == outputChannels && groups > 1 }
}

public enum GraphOperation: Codable, Hashable, Sendable {
    case convolution(ConvolutionSpec)
    case maxPool(kernel: Int, stride: Int, padding: Int)
    case averagePool(kernel: Int, stride: Int, padding: Int)
    case upsampleNearest(scale: Int)
    /// Concatenation of the inputs along channels, in input order.
    case concatenate
    /// Element-wise sum of two inputs, followed by ReLU when `relu`.
    case add(relu: Bool)
    /// Channels `start ..< start + count` of the input (ShuffleNetV2's channel split).
    case channelSlice(start: Int, count: Int)
    /// ShuffleNetV2's channel shuffle: view as (groups, C/groups), transpose, flatten.
    case channelShuffle(groups: Int)
    /// The detector's output from the objectness, box and class branches: sigmoid of the
    /// objectness, the box values as they are, softmax of the class scores, concatenated.
    case detectionOutput
}

public struct GraphNode: Codable, Hashable, Sendable {
    /// Unique, stable, dotted name, e.g. `stage3.unit0.branch2.pw1`; also the prefix of the
    /// node's parameter names in the torch model and in saved checkpoints.
    public var name: String
    public var block: NetworkBlock
    public var operation: GraphOperation
    /// Names of the nodes (or `DetectorGraph.inputName`) whose outputs this node reads.
    public var inputs: [String]
    public var outputShape: FeatureShape

    public var parameterCount: Int {
        guard case .convolution(let conv) = operation else { return 0 }
        let weights = conv.outputChannels * (conv.inputChannels / conv.groups) * conv.kernelSize * conv.kernelSize
        return weights + 2 * conv.outputChannels  // batch-norm scale and shift
    }

    public var multiplyAccumulates: Int {
        guard case .convolution(let conv) = operation else { return 0 }
        return outputShape.elementCount * (conv.inputChannels / conv.groups) * conv.kernelSize * conv.kernelSize
    }
}

/// Appends nodes while tracking each output's shape.
private struct Builder {
    var nodes: [GraphNode] = []
    var shapes: [String: FeatureShape]

    init(input: FeatureShape) {
        shapes = [DetectorGraph.inputName: input]
    }

    /// Output side of a window operation with PyTorch's floor rounding.
    static func slidingSize(_ size: Int, kernel: Int, stride: Int, padding: Int) -> Int {
        (size + 2 * padding - kernel) / stride + 1
    }

    @discardableResult
    mutating func add(_ name: String, _ block: NetworkBlock, _ operation: GraphOperation, _ inputs: [String]) -> String {
        let first = shapes[inputs[0]]!
        let shape: FeatureShape
        switch operation {
        case .convolution(let conv):
            shape = FeatureShape(
                channels: conv.outputChannels,
                height: Self.slidingSize(first.height, kernel: conv.kernelSize, stride: conv.stride, padding: conv.padding),
                width: Self.slidingSize(first.width, kernel: conv.kernelSize, stride: conv.stride, padding: conv.padding))
        case .maxPool(let kernel, let stride, let padding), .averagePool(let kernel, let stride, let padding):
            shape = FeatureShape(
                channels: first.channels,
                height: Self.slidingSize(first.height, kernel: kernel, stride: stride, padding: padding),
                width: Self.slidingSize(first.width, kernel: kernel, stride: stride, padding: padding))
        case .upsampleNearest(let scale):
            shape = FeatureShape(channels: first.channels, height: first.height * scale, width: first.width * scale)
        case .concatenate:
            shape = FeatureShape(channels: inputs.reduce(0) { $0 + shapes[$1]!.channels }, height: first.height, width: first.width)
        case .add, .channelShuffle:
            shape = first
        case .channelSlice(_, let count):
            shape = FeatureShape(channels: count, height: first.height, width: first.width)
        case .detectionOutput:
            shape = FeatureShape(channels: inputs.reduce(0) { $0 + shapes[$1]!.channels }, height: first.height, width: first.width)
        }
        shapes[name] = shape
        nodes.append(GraphNode(name: name, block: block, operation: operation, inputs: inputs, outputShape: shape))
        return name
    }

    @discardableResult
    mutating func conv(
        _ name: String, _ block: NetworkBlock, _ input: String, out: Int, kernel: Int = 1, stride: Int = 1,
        groups: Int = 1, depthwise: Bool = false, relu: Bool
    ) -> String {
        let inChannels = shapes[input]!.channels
        let spec = ConvolutionSpec(
            inputChannels: inChannels, outputChannels: depthwise ? inChannels : out, kernelSize: kernel,
            stride: stride, groups: depthwise ? inChannels : groups, relu: relu)
        return add(name, block, .convolution(spec), [input])
    }

    /// ShuffleNetV2 0.5x-style backbone (torchvision's unit layout). Returns nothing; the
    /// stage outputs are the nodes `stage2`, `stage3`, `stage4` (their last shuffles).
    mutating func addBackbone(_ arch: DetectorArchitecture) {
        var x = conv("stem.conv", .stem, DetectorGraph.inputName, out: arch.stemChannels, kernel: 3, stride: 2, relu: true)
        x = add("stem.maxpool", .stem, .maxPool(kernel: 3, stride: 2, padding: 1), [x])
        let blocks: [NetworkBlock] = [.stage2, .stage3, .stage4]
        for (stage, block) in blocks.enumerated() {
            let outChannels = arch.stageChannels[stage]
            let half = outChannels / 2
            for unit in 0..<arch.stageRepeats[stage] {
                let prefix = "\(block.rawValue).unit\(unit)"
                let isLast = unit == arch.stageRepeats[stage] - 1
                let shuffleName = isLast ? block.rawValue : "\(prefix).shuffle"
                if unit == 0 {
                    // Stride 2: both branches see the whole input and halve the resolution.
                    var b1 = conv("\(prefix).branch1.dw", block, x, out: 0, kernel: 3, stride: 2, depthwise: true, relu: false)
                    b1 = conv("\(prefix).branch1.pw", block, b1, out: half, relu: true)
                    var b2 = conv("\(prefix).branch2.pw1", block, x, out: half, relu: true)
                    b2 = conv("\(prefix).branch2.dw", block, b2, out: 0, kernel: 3, stride: 2, depthwise: true, relu: false)
                    b2 = conv("\(prefix).branch2.pw2", block, b2, out: half, relu: true)
                    let joined = add("\(prefix).concat", block, .concatenate, [b1, b2])
                    x = add(shuffleName, block, .channelShuffle(groups: 2), [joined])
                } else {
                    // Stride 1: half the channels pass through, the other half is transformed.
                    let kept = add("\(prefix).split0", block, .channelSlice(start: 0, count: half), [x])
                    var b2 = add("\(prefix).split1", block, .channelSlice(start: half, count: half), [x])
                    b2 = conv("\(prefix).branch2.pw1", block, b2, out: half, relu: true)
                    b2 = conv("\(prefix).branch2.dw", block, b2, out: 0, kernel: 3, depthwise: true, relu: false)
                    b2 = conv("\(prefix).branch2.pw2", block, b2, out: half, relu: true)
                    let joined = add("\(prefix).concat", block, .concatenate, [kept, b2])
                    x = add(shuffleName, block, .channelShuffle(groups: 2), [joined])
                }
            }
        }
    }

    /// FastestDet's neck: stride-8 features average-pooled and stride-32 features upsampled
    /// to stride 16, concatenated with stride 16, reduced to `neckChannels`, then an SPP of
    /// depthwise 5x5 branches of depth 1, 2, 3 with a residual connection.
    mutating func addNeck(_ arch: DetectorArchitecture) {
        let pooled = add("neck.pool8", .neck, .averagePool(kernel: 3, stride: 2, padding: 1), ["stage2"])
        let upsampled = add("neck.upsample32", .neck, .upsampleNearest(scale: 2), ["stage4"])
        let fused = add("neck.concat", .neck, .concatenate, [pooled, "stage3", upsampled])
        let reduced = conv("neck.reduce", .neck, fused, out: arch.neckChannels, relu: true)
        var branches: [String] = []
        for branch in 1...arch.sppBranches {
            var y = reduced
            for depth in 0..<branch {
                y = conv("spp.branch\(branch).dw\(depth)", .spp, y, out: 0, kernel: 5, depthwise: true, relu: true)
            }
            branches.append(y)
        }
        let joined = add("spp.concat", .spp, .concatenate, branches)
        let projected = conv("spp.project", .spp, joined, out: arch.neckChannels, relu: false)
        add("spp", .spp, .add(relu: true), [reduced, projected])
    }

    /// FastestDet's head: a pointwise convolution to `headChannels` (grouped by `headGroups`),
    /// then objectness, box and class branches of a depthwise k x k convolution and a
    /// pointwise projection each.
    mutating func addHead(_ arch: DetectorArchitecture) {
        let x = conv("head.input", .head, "spp", out: arch.headChannels, groups: arch.headGroups, relu: true)
        var outputs: [String] = []
        for (branch, channels) in [("objectness", 1), ("box", 4), ("class", arch.classCount)] {
            var y = conv("head.\(branch).dw", .head, x, out: 0, kernel: arch.headKernelSize, depthwise: true, relu: true)
            y = conv("head.\(branch).pw", .head, y, out: channels, relu: false)
            outputs.append(y)
        }
        add("head.output", .head, .detectionOutput, outputs)
    }
}
