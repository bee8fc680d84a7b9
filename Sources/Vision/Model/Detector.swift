import Torch

/// Convolution (no bias) + batch norm (+ ReLU): the module of one `.convolution` graph node.
public final class ConvolutionUnit: Module {
    public let spec: ConvolutionSpec
    public let convolution: Conv2d
    public let normalization: BatchNorm2d
    public var isTraining = true

    public init(_ spec: ConvolutionSpec) throws {
        self.spec = spec
        convolution = try Conv2d(
            inChannels: spec.inputChannels, outChannels: spec.outputChannels, kernelSize: spec.kernelSize,
            stride: spec.stride, padding: spec.padding, groups: spec.groups, bias: false)
        normalization = try BatchNorm2d(features: spec.outputChannels)
    }

    public var children: [(name: String, module: any Module)] { [("conv", convolution), ("bn", normalization)] }

    public func forward(_ input: Tensor) throws -> Tensor {
        let normalized = try normalization(convolution(input))
        return spec.relu ? try normalized.relu() : normalized
    }

    /// The same forward pass, showing `observer` the convolution's output (before batch norm)
    /// and, when the unit has one, the ReLU's output.
    func forward(_ input: Tensor, node: String, observer: ActivationObserver) throws -> Tensor {
        let convolved = try convolution(input)
        try observer(node, .weightedLayer, convolved)
        let normalized = try normalization(convolved)
        guard spec.relu else { return normalized }
        let activated = try normalized.relu()
        try observer(node, .relu, activated)
        return activated
    }
}

/// Which intermediate value an `ActivationObserver` is shown.
public enum ActivationKind: Sendable, Hashable {
    /// The output of a weighted layer (a convolution, or a linear layer in other networks),
    /// before batch norm: the layer output that Fisher-type saliencies read.
    case weightedLayer
    /// The output of a ReLU (a unit's or a residual sum's), whose on/off pattern NASWOT reads.
    case relu
}

/// Sees intermediate activations during a forward pass: the node's name, what the value is,
/// and the value itself (still attached to the autograd graph, so gradients can be taken
/// with respect to it).
public typealias ActivationObserver = (_ node: String, _ kind: ActivationKind, _ value: Tensor) throws -> Void

/// The three raw branch outputs of the head, before the output activations; the loss reads
/// these (logits are numerically safer than probabilities).
public struct DetectorBranches {
    /// Objectness logits, [N, 1, H, W].
    public let objectness: Tensor
    /// Box parameters, [N, 4, H, W]: centre offsets (tanh) and size (sigmoid), see `BoxCoding`.
    public let box: Tensor
    /// Class logits, [N, classes, H, W].
    public let classes: Tensor

    /// These branches of a network of `architecture` run at `input`'s size, with box sizes as
    /// fractions of the network's own input: the size logits shifted as
    /// `BoxCoding.sizeLogitShift` gives it (unchanged at the network's own size). Training at
    /// another width so keeps a person of the same pixel size at the same output, as an
    /// inherited network's weights do (`WeightInheritance`), instead of another fraction at each width.
    func atOwnBoxScale(of architecture: DetectorArchitecture, runningAt input: DetectorArchitecture) throws -> DetectorBranches {
        guard input.inputWidth != architecture.inputWidth || input.inputHeight != architecture.inputHeight else { return self }
        let offsets = try Tensor([0, 0] + BoxCoding.sizeLogitShift(trainedAt: architecture, runningAt: input), shape: [1, 4, 1, 1])
        return DetectorBranches(objectness: objectness, box: try box + offsets, classes: classes)
    }
}

/// The detector of a `DetectorArchitecture` as a torch module: one `ConvolutionUnit` per
/// convolution node of its `DetectorGraph`, run in graph order. Parameter names are the graph
/// node names (`stage3.unit0.branch2.pw1.conv.weight`), so checkpoints, the profiler and the
/// exporter agree on what each tensor is.
public final class Detector: Module {
    public let architecture: DetectorArchitecture
    public let graph: DetectorGraph
    /// Convolution units in graph order, named by node.
    public let units: [(name: String, module: any Module)]
    private let unitByName: [String: ConvolutionUnit]
    public var isTraining = true

    /// Builds the network with PyTorch's default initialisation from libtorch's generator
    /// (seed it with `Torch.manualSeed` for reproducible weights).
    public init(_ architecture: DetectorArchitecture) throws {
        self.architecture = architecture
        graph = try DetectorGraph(architecture)
        var units: [(name: String, module: any Module)] = []
        var unitByName: [String: ConvolutionUnit] = [:]
        for node in graph.nodes {
            guard case .convolution(let spec) = node.operation else { continue }
            let unit = try ConvolutionUnit(spec)
            units.append((node.name, unit))
            unitByName[node.name] = unit
        }
        self.units = units
        self.unitByName = unitByName
    }

    public var children: [(name: String, module: any Module)] { units }

    /// Whether activations run channels-last: they do once the convolution weights are stored
    /// so (`useChannelsLast()`, which `Trainer` calls; a training step is about 1.5x faster).
    /// Read from the stem's 3x3 weight, whose two layouts differ (a 1x1 weight's would not).
    public var runsChannelsLast: Bool {
        units.first.flatMap { unitByName[$0.name]?.convolution.weight.tensor.isChannelsLast } ?? false
    }

    /// The deployed output: [N, 1 + 4 + classes, H, W] with sigmoid objectness, box
    /// parameters and softmax class scores, as FastestDet's.
    public func forward(_ image: Tensor) throws -> Tensor {
        try run(image, through: graph.nodes.count)
    }

    /// The head's raw branch outputs for the loss.
    public func branches(_ image: Tensor) throws -> DetectorBranches {
        try branches(image, observer: nil)
    }

    /// The head's raw branch outputs, showing `observer` every convolution output and ReLU
    /// output on the way (zero-cost proxies read activations and their gradients).
    public func branches(_ image: Tensor, observer: ActivationObserver?) throws -> DetectorBranches {
        try branches(image, observer: observer, known: [:], keeping: []).branches
    }

    /// Every node's output for `image`, keyed by node name plus `DetectorGraph.inputName`: what
    /// INT8 calibration observes, and the cached inputs a per-layer profile times each node on
    /// (with `apply`). In evaluation mode for those uses (running batch-norm statistics).
    public func outputs(_ image: Tensor) throws -> [String: Tensor] {
        try evaluate(image, upTo: graph.nodes.count, keeping: Set(graph.nodes.map(\.name)).union([DetectorGraph.inputName]))
    }

    /// The output of one graph node for its input values, in `node.inputs` order: the step
    /// `forward` takes at that node, so a profile times exactly what the network runs.
    public func apply(_ node: GraphNode, _ inputs: [Tensor]) throws -> Tensor {
        try apply(node, inputs, observer: nil)
    }

    /// Runs the first `count` nodes and returns the output of the last one run.
    public func run(_ image: Tensor, through count: Int) throws -> Tensor {
        let last = graph.nodes[count - 1].name
        var values = try evaluate(image, upTo: count, keeping: [last])
        return values.removeValue(forKey: last)!
    }

    /// The head's raw branch outputs for `image` and the outputs of the nodes named in `names`
    /// (attached to the autograd graph): features other networks' heads read
    /// (`branches(_:reusing:)`) without running the layers they share with this one.
    public func branches(_ image: Tensor, keeping names: Set<String>) throws -> (branches: DetectorBranches, kept: [String: Tensor]) {
        try branches(image, observer: nil, known: [:], keeping: names)
    }

    /// The head's raw branch outputs for `image` when the outputs of some nodes are known
    /// already (by node name, e.g. the backbone features another network with the same layers
    /// computed on the same image): those nodes are not run, nor anything only they read.
    public func branches(_ image: Tensor, reusing known: [String: Tensor]) throws -> DetectorBranches {
        try branches(image, observer: nil, known: known, keeping: []).branches
    }

    private func branches(_ image: Tensor, observer: ActivationObserver?, known: [String: Tensor],
                          keeping: Set<String>) throws -> (branches: DetectorBranches, kept: [String: Tensor]) {
        let names = graph.output.inputs
        let values = try evaluate(image, upTo: graph.nodes.count - 1, keeping: keeping.union(names), observer: observer, known: known)
        let branches = DetectorBranches(objectness: values[names[0]]!, box: values[names[1]]!, classes: values[names[2]]!)
        return (branches, values.filter { keeping.contains($0.key) })
    }

    private func evaluate(_ image: Tensor, upTo count: Int, keeping: Set<String>, observer: ActivationObserver? = nil,
                          known: [String: Tensor] = [:]) throws -> [String: Tensor] {
        var values = known
        values[DetectorGraph.inputName] = runsChannelsLast ? try image.channelsLast() : image
        return try evaluate(known: values, upTo: count, keeping: keeping, observer: observer)
    }

    /// Runs those of nodes `0..<count` whose outputs are not in `known`; a value is dropped
    /// (and its memory released) after its last reader unless it is in `keeping`.
    private func evaluate(known: [String: Tensor], upTo count: Int, keeping: Set<String>, observer: ActivationObserver?) throws -> [String: Tensor] {
        let nodes = graph.nodes[0..<count].filter { known[$0.name] == nil }
        var lastReader: [String: Int] = [:]
        for (index, node) in nodes.enumerated() {
            for input in node.inputs { lastReader[input] = index }
        }
        var values = known
        for (index, node) in nodes.enumerated() {
            let inputs = try node.inputs.map { input in
                guard let value = values[input] else {
                    throw TorchError(message: "detector node '\(node.name)' reads '\(input)', which was neither given nor computed")
                }
                return value
            }
            values[node.name] = try apply(node, inputs, observer: observer)
            for input in node.inputs where lastReader[input] == index && !keeping.contains(input) {
                values[input] = nil
            }
        }
        return values
    }

    private func apply(_ node: GraphNode, _ inputs: [Tensor], observer: ActivationObserver?) throws -> Tensor {
        switch node.operation {
        case .convolution:
            guard let unit = unitByName[node.name] else { throw TorchError(message: "detector has no convolution unit named '\(node.name)'") }
            if let observer { return try unit.forward(inputs[0], node: node.name, observer: observer) }
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
            guard relu else { return sum }
            let activated = try sum.relu()
            try observer?(node.name, .relu, activated)
            return activated
        case .channelSlice(let start, let count):
            return try inputs[0].narrow(dim: 1, start: start, length: count)
        case .channelShuffle(let groups):
            let shape = inputs[0].shape
            let (batch, channels, height, width) = (shape[0], shape[1], shape[2], shape[3])
            if inputs[0].isChannelsLast {
                // Shuffle along the innermost (channel) axis of the NHWC storage, so the result
                // stays channels-last with one copy.
                return try inputs[0].permute([0, 2, 3, 1]).view([batch, height, width, groups, channels / groups])
                    .transpose(3, 4).contiguous().view([batch, height, width, channels]).permute([0, 3, 1, 2])
            }
            return try inputs[0].view([batch, groups, channels / groups, height, width]).transpose(1, 2)
                .contiguous().view([batch, channels, height, width])
        case .detectionOutput:
            return try Tensor.cat([inputs[0].sigmoid(), inputs[1], inputs[2].softmax(dim: 1)], dim: 1)
        }
    }
}
