import Torch

/// What inheriting pretrained weights into a detector did.
public struct InheritanceReport: Codable, Hashable, Sendable {
    /// The checkpoint the weights came from and the network they were trained as.
    public var source: String
    public var sourceArchitecture: String
    /// Trainable elements (convolution weights, batch-norm scale and shift) that were copied.
    public var inheritedParameters: Int
    public var totalParameters: Int
    /// Classes of the new network that the checkpoint did not have (their rows start fresh).
    public var freshClasses: [String]

    /// The share of the network's parameters that was inherited, 0...1.
    public var inheritedShare: Double { totalParameters == 0 ? 0 : Double(inheritedParameters) / Double(totalParameters) }
}

/// Copies pretrained weights into a detector of any architecture of the family, as weight-sharing
/// NAS (Once-for-All) initialises its subnetworks:
/// - tensors of the same shape are copied;
/// - a narrower layer keeps the source's most important output channels (largest batch-norm
///   scale |γ|), in their original order, and every layer reading it takes the same channels;
///   a residual sum's two operands keep the same channels;
/// - a smaller kernel takes the centre of the larger one (a larger one gets the smaller one
///   in its centre, zeros around);
/// - a grouped convolution takes the block-diagonal slices of a dense one;
/// - fewer units in a stage take the first units; more units, or anything the source lacks
///   (a backbone-only checkpoint's neck and head), keep their fresh initialisation;
/// - class rows are matched by class name.
/// Batch-norm statistics no longer fit a network whose channels changed: recalibrate them
/// (`BatchNormRecalibration`) before evaluating.
public enum WeightInheritance {
    /// Inherits `weights` into `detector` (whose other tensors keep their initialisation).
    /// - Parameter classNames: the detector's classes, in output order; matched by name against
    ///   the checkpoint's. Without names on either side, classes match by position when the
    ///   counts agree and start fresh otherwise.
    @discardableResult
    public static func inherit(_ weights: PretrainedWeights, into detector: Detector, classNames: [String]? = nil) throws -> InheritanceReport {
        let source = try DetectorGraph(weights.architecture)
        let target = detector.graph
        let sourceNodes = Dictionary(source.nodes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        func sourceChannels(_ name: String) -> Int? { sourceNodes[name]?.outputShape.channels }

        // A residual sum's later operand keeps the channels its earlier operand kept.
        var residualPartner: [String: String] = [:]
        for node in target.nodes {
            if case .add = node.operation, node.inputs.count == 2 { residualPartner[node.inputs[1]] = node.inputs[0] }
        }
        let freshClasses = classRows(target: detector.architecture.classCount, names: classNames, source: weights)

        // channels[X][c]: which channel of the source's node X (same name) target channel c of X is; nil: none.
        var channels: [String: [Int?]] = [DetectorGraph.inputName: [0, 1, 2]]
        var inherited = 0
        let units = Dictionary(detector.units.map { ($0.name, $0.module) }, uniquingKeysWith: { a, _ in a })
        for node in target.nodes {
            let width = node.outputShape.channels
            let input = channels[node.inputs[0]] ?? []
            let counterpart = sourceNodes[node.name]
            switch node.operation {
            case .convolution(let spec):
                guard let unit = units[node.name] as? ConvolutionUnit else { continue }
                var outputs: [Int?]
                if spec.isDepthwise {
                    outputs = input
                } else if let partner = residualPartner[node.name], let kept = channels[partner] {
                    outputs = kept
                } else if node.name == "head.class.pw" {
                    outputs = freshClasses.rows
                } else if let counterpart, case .convolution = counterpart.operation,
                          weights.tensors["\(node.name).bn.weight"] != nil {
                    outputs = try mostImportant(width, of: counterpart.outputShape.channels,
                                                scales: weights.tensors["\(node.name).bn.weight"]!.floats())
                } else {
                    outputs = [Int?](repeating: nil, count: width)
                }
                channels[node.name] = outputs
                if let counterpart, case .convolution(let sourceSpec) = counterpart.operation {
                    inherited += try copy(unit: unit, spec: spec, from: weights, node: node.name, sourceSpec: sourceSpec,
                                          inputs: input, outputs: outputs)
                }
            case .maxPool, .averagePool, .upsampleNearest, .add:
                channels[node.name] = input
            case .concatenate:
                var joined: [Int?] = []
                let sourceInputs = counterpart?.inputs ?? []
                for (position, name) in node.inputs.enumerated() {
                    let part = channels[name] ?? []
                    guard position < sourceInputs.count else { joined += part.map { _ in nil }; continue }
                    let offset = sourceInputs[..<position].reduce(0) { $0 + (sourceChannels($1) ?? 0) }
                    joined += part.map { $0.map { $0 + offset } }
                }
                channels[node.name] = joined
            case .channelSlice(let start, let count):
                guard let counterpart, case .channelSlice(let sourceStart, let sourceCount) = counterpart.operation else {
                    channels[node.name] = [Int?](repeating: nil, count: width)
                    continue
                }
                // The slice's channels, as channels of the source's slice (nil where the source sliced elsewhere).
                let kept = sourceStart..<(sourceStart + sourceCount)
                channels[node.name] = input[start..<(start + count)].map { value in value.flatMap { kept.contains($0) ? $0 - sourceStart : nil } }
            case .channelShuffle(let groups):
                // Output channel j·groups + g is input channel g·(C/groups) + j, on both sides.
                let perGroup = width / groups
                let sourcePerGroup = (sourceChannels(node.name) ?? width) / groups
                channels[node.name] = (0..<width).map { index in
                    input[(index % groups) * perGroup + index / groups].map { ($0 % sourcePerGroup) * groups + $0 / sourcePerGroup }
                }
            case .detectionOutput:
                break
            }
        }
        return InheritanceReport(
            source: weights.path, sourceArchitecture: weights.architecture.description, inheritedParameters: inherited,
            totalParameters: detector.graph.parameterCount, freshClasses: freshClasses.fresh)
    }

    /// Which source class row each target class takes (nil: fresh), and the fresh classes' names.
    private static func classRows(target count: Int, names: [String]?, source: PretrainedWeights) -> (rows: [Int?], fresh: [String]) {
        let sourceCount = source.architecture.classCount
        guard let names, let sourceNames = source.classNames else {
            let rows: [Int?] = count == sourceCount ? (0..<count).map { $0 } : [Int?](repeating: nil, count: count)
            return (rows, count == sourceCount ? [] : (names ?? (0..<count).map { "class \($0)" }))
        }
        let index = Dictionary(sourceNames.enumerated().map { ($1.lowercased(), $0) }, uniquingKeysWith: { a, _ in a })
        let rows = names.map { index[$0.lowercased()] }
        return (rows, zip(names, rows).filter { $1 == nil }.map(\.0))
    }

    /// The `count` output channels to keep of `available`: all (then fresh ones) when there is
    /// room, else the largest |scale|, in channel order.
    static func mostImportant(_ count: Int, of available: Int, scales: [Float]) throws -> [Int?] {
        guard count < available else { return (0..<available).map { $0 } + [Int?](repeating: nil, count: count - available) }
        let ranked = scales.indices.sorted { (abs(scales[$0]), $1) > (abs(scales[$1]), $0) }
        return ranked.prefix(count).sorted().map { $0 }
    }

    /// Copies one convolution unit's weights and batch norm for the channels both sides have.
    /// Returns the number of trainable elements copied.
    private static func copy(unit: ConvolutionUnit, spec: ConvolutionSpec, from weights: PretrainedWeights, node: String,
                             sourceSpec: ConvolutionSpec, inputs: [Int?], outputs: [Int?]) throws -> Int {
        guard let sourceWeight = weights.tensors["\(node).conv.weight"] else { return 0 }
        let source = try sourceWeight.floats()
        var weight = try unit.convolution.weight.tensor.floats()
        let (perGroupIn, perGroupOut) = (spec.inputChannels / spec.groups, spec.outputChannels / spec.groups)
        let (sourcePerGroupIn, sourcePerGroupOut) = (sourceSpec.inputChannels / sourceSpec.groups, sourceSpec.outputChannels / sourceSpec.groups)
        let (k, sourceK) = (spec.kernelSize, sourceSpec.kernelSize)
        let shift = (sourceK - k) / 2  // centre crop (> 0) or centre pad (< 0)
        var copied = 0
        for (row, sourceRow) in outputs.enumerated() {
            guard let sourceRow else { continue }
            let sourceGroup = sourceRow / sourcePerGroupOut
            for column in 0..<perGroupIn {
                let absolute = (row / perGroupOut) * perGroupIn + column
                guard absolute < inputs.count, let sourceInput = inputs[absolute] else { continue }
                let sourceColumn = sourceInput - sourceGroup * sourcePerGroupIn
                guard (0..<sourcePerGroupIn).contains(sourceColumn) else { continue }
                for y in 0..<k {
                    for x in 0..<k {
                        let (sy, sx) = (y + shift, x + shift)
                        let value = (0..<sourceK).contains(sy) && (0..<sourceK).contains(sx)
                            ? source[((sourceRow * sourcePerGroupIn + sourceColumn) * sourceK + sy) * sourceK + sx] : 0
                        weight[((row * perGroupIn + column) * k + y) * k + x] = value
                    }
                }
                copied += k * k
            }
        }
        try unit.convolution.weight.tensor.assign(Tensor(weight, shape: unit.convolution.weight.tensor.shape))

        let normalization = unit.normalization
        for (parameter, field, trainable) in [(normalization.weight, "weight", true), (normalization.bias, "bias", true),
                                              (normalization.runningMean, "running_mean", false), (normalization.runningVar, "running_var", false)] {
            guard let stored = weights.tensors["\(node).bn.\(field)"] else { continue }
            let values = try stored.floats()
            var current = try parameter.tensor.floats()
            for (row, sourceRow) in outputs.enumerated() {
                guard let sourceRow else { continue }
                current[row] = values[sourceRow]
                if trainable { copied += 1 }
            }
            try parameter.tensor.assign(Tensor(current, shape: [current.count]))
        }
        return copied
    }
}
