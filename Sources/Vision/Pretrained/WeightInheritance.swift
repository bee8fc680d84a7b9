import Foundation
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
///   scale |γ|), in their original order, and every layer reading them takes the same channels;
///   a residual sum's two operands keep the same channels;
/// - a smaller kernel takes the centre of the larger one (a larger one gets the smaller one
///   in its centre, zeros around);
/// - a grouped convolution takes the block-diagonal slices of a dense one;
/// - fewer units in a stage take the first units; more units, or anything the source lacks
///   (a backbone-only checkpoint's neck and head), keep their fresh initialisation;
/// - class rows are matched by class name.
///
/// "The same channels" is followed by identity, not position: every channel is labelled by the
/// convolution row that makes it (a depthwise channel by its input's label), labels flow through
/// splits, concatenations and shuffles in both networks, and a layer's input column takes the
/// source column that carries the same label. So a shortened or narrowed ShuffleNet stage, whose
/// channels reach the next layers in other positions, still feeds them what they were trained
/// on; an input column whose channel the source never fed that layer starts at zero.
/// Batch-norm statistics no longer fit a network whose channels changed: recalibrate them
/// (`BatchNormRecalibration`) before evaluating.
public enum WeightInheritance {
    /// Inherits `weights` into `detector` (whose other tensors keep their initialisation).
    /// - Parameter classNames: the detector's classes, in output order; matched by name against
    ///   the checkpoint's. Without names on either side, classes match by position when the
    ///   counts agree and start fresh otherwise.
    @discardableResult
    public static func inherit(_ weights: PretrainedWeights, into detector: Detector, classNames: [String]? = nil) throws -> InheritanceReport {
        let plan = try plan(weights, into: detector, classNames: classNames)
        try plan.apply(weights)
        return plan.report
    }

    /// Where each element of `detector`'s tensors comes from in `weights`, without copying:
    /// `InheritancePlan.apply` copies, and a supernet's training sends a subnetwork's gradients
    /// back along the same map (`InheritancePlan.addGradients`).
    public static func plan(_ weights: PretrainedWeights, into detector: Detector, classNames: [String]? = nil) throws -> InheritancePlan {
        let source = try DetectorGraph(weights.architecture)
        let sourceNodes = Dictionary(source.nodes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let sourceLabels = channelLabels(source) { node, _ in (0..<node.outputShape.channels).map { $0 } }

        // A residual sum's later operand keeps the rows its earlier operand kept.
        var residualPartner: [String: String] = [:]
        for node in detector.graph.nodes {
            if case .add = node.operation, node.inputs.count == 2 { residualPartner[node.inputs[1]] = node.inputs[0] }
        }
        let freshClasses = classRows(target: detector.architecture.classCount, names: classNames, source: weights)
        // The source rows each (non-depthwise) convolution of the target keeps; nil: a fresh row.
        var keptRows: [String: [Int?]] = [:]
        let targetLabels = try channelLabels(detector.graph) { node, _ in
            let width = node.outputShape.channels
            let rows: [Int?]
            if let partner = residualPartner[node.name], let kept = keptRows[partner] {
                rows = kept
            } else if node.name == "head.class.pw" {
                rows = freshClasses.rows
            } else if let counterpart = sourceNodes[node.name], case .convolution = counterpart.operation,
                      let scales = weights.tensors["\(node.name).bn.weight"] {
                rows = try mostImportant(width, of: counterpart.outputShape.channels, scales: scales.floats())
            } else {
                rows = [Int?](repeating: nil, count: width)
            }
            keptRows[node.name] = rows
            return rows
        }

        var entries: [InheritancePlan.Entry] = []
        var inherited = 0
        for (name, module) in detector.units {
            guard let unit = module as? ConvolutionUnit, let node = detector.graph.node(named: name),
                  let counterpart = sourceNodes[name], case .convolution(let sourceSpec) = counterpart.operation,
                  let sourceInputs = sourceLabels[counterpart.inputs[0]], let inputs = targetLabels[node.inputs[0]] else { continue }
            let sourceColumn = Dictionary(sourceInputs.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
            let columns = inputs.map { sourceColumn[$0] }
            // A depthwise channel is the source's channel that reads the same input.
            let rows = unit.spec.isDepthwise ? columns : keptRows[name] ?? []
            let (unitEntries, copied) = map(unit: unit, from: weights, node: name, sourceSpec: sourceSpec, rows: rows, columns: columns)
            entries += unitEntries
            inherited += copied
        }
        var boxSizeShift: (Tensor, [Float])?
        let (from, to) = (weights.architecture, detector.architecture)
        if let rows = keptRows[boxLayer], rows.count == 4, rows[2] == 2, rows[3] == 3,
           let unit = detector.units.first(where: { $0.name == boxLayer })?.module as? ConvolutionUnit,
           (from.inputWidth, from.inputHeight) != (to.inputWidth, to.inputHeight) {
            boxSizeShift = (unit.normalization.bias.tensor, BoxCoding.sizeLogitShift(trainedAt: from, runningAt: to))
        }
        let report = InheritanceReport(
            source: weights.path, sourceArchitecture: weights.architecture.description, inheritedParameters: inherited,
            totalParameters: detector.graph.parameterCount, freshClasses: freshClasses.fresh)
        return InheritancePlan(entries: entries, boxSizeShift: boxSizeShift, report: report)
    }

    /// Labels every node's output channels: the image's channels, each convolution row (its
    /// `rows(node, labels so far)` names the source row it is, nil for a fresh one), a depthwise
    /// channel by its input's label, and the other operations moving labels as they move channels.
    private static func channelLabels(
        _ graph: DetectorGraph, rows: (GraphNode, [String: [String]]) throws -> [Int?]
    ) rethrows -> [String: [String]] {
        var labels: [String: [String]] = [DetectorGraph.inputName: ["image#0", "image#1", "image#2"]]
        for node in graph.nodes {
            let input = labels[node.inputs[0]] ?? []
            switch node.operation {
            case .convolution(let spec) where spec.isDepthwise:
                labels[node.name] = input.map { "\(node.name)(\($0))" }
            case .convolution:
                labels[node.name] = try rows(node, labels).enumerated().map { index, row in
                    row.map { "\(node.name)#\($0)" } ?? "\(node.name)#fresh\(index)"
                }
            case .maxPool, .averagePool, .upsampleNearest, .add:
                labels[node.name] = input
            case .concatenate:
                labels[node.name] = node.inputs.flatMap { labels[$0] ?? [] }
            case .channelSlice(let start, let count):
                labels[node.name] = Array(input[start..<(start + count)])
            case .channelShuffle(let groups):
                // Output channel j·groups + g is input channel g·(C/groups) + j.
                let perGroup = input.count / groups
                labels[node.name] = input.indices.map { input[($0 % groups) * perGroup + $0 / groups] }
            case .detectionOutput:
                break
            }
        }
        return labels
    }

    /// The head's box layer: rows 0-1 centre offsets, 2-3 width and height logits.
    static let boxLayer = "head.box.pw"

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

    /// Maps one convolution unit's weights and batch norm: target row r is source row `rows[r]`
    /// (nil: the row keeps its initialisation), target input column c (across groups) is source
    /// input channel `columns[c]` (nil: zero in an inherited row). Returns the entries and the
    /// number of trainable elements they copy.
    private static func map(unit: ConvolutionUnit, from weights: PretrainedWeights, node: String, sourceSpec: ConvolutionSpec,
                            rows: [Int?], columns: [Int?]) -> (entries: [InheritancePlan.Entry], copied: Int) {
        guard weights.tensors["\(node).conv.weight"] != nil else { return ([], 0) }
        let spec = unit.spec
        var weight = [Int32](repeating: InheritancePlan.keep, count: unit.convolution.weight.tensor.elementCount)
        let (perGroupIn, perGroupOut) = (spec.inputChannels / spec.groups, spec.outputChannels / spec.groups)
        let (sourcePerGroupIn, sourcePerGroupOut) = (sourceSpec.inputChannels / sourceSpec.groups, sourceSpec.outputChannels / sourceSpec.groups)
        let (k, sourceK) = (spec.kernelSize, sourceSpec.kernelSize)
        let shift = (sourceK - k) / 2  // centre crop (> 0) or centre pad (< 0)
        var copied = 0
        for (row, sourceRow) in rows.enumerated() {
            guard let sourceRow else { continue }
            let sourceGroup = sourceRow / sourcePerGroupOut
            for column in 0..<perGroupIn {
                let absolute = (row / perGroupOut) * perGroupIn + column
                let sourceColumn = columns[absolute].map { $0 - sourceGroup * sourcePerGroupIn }
                let available = sourceColumn.map { (0..<sourcePerGroupIn).contains($0) } ?? false
                for y in 0..<k {
                    for x in 0..<k {
                        let (sy, sx) = (y + shift, x + shift)
                        let inside = available && (0..<sourceK).contains(sy) && (0..<sourceK).contains(sx)
                        weight[((row * perGroupIn + column) * k + y) * k + x] =
                            inside ? Int32(((sourceRow * sourcePerGroupIn + sourceColumn!) * sourceK + sy) * sourceK + sx) : InheritancePlan.zero
                    }
                }
                if available { copied += k * k }
            }
        }
        var entries = [InheritancePlan.Entry(target: unit.convolution.weight.tensor, sourceKey: "\(node).conv.weight", indices: weight, trainable: true)]

        let normalization = unit.normalization
        for (parameter, field, trainable) in [(normalization.weight, "weight", true), (normalization.bias, "bias", true),
                                              (normalization.runningMean, "running_mean", false), (normalization.runningVar, "running_var", false)] {
            guard weights.tensors["\(node).bn.\(field)"] != nil else { continue }
            let indices = rows.map { $0.map(Int32.init) ?? InheritancePlan.keep }
            if trainable { copied += rows.count { $0 != nil } }
            entries.append(InheritancePlan.Entry(target: parameter.tensor, sourceKey: "\(node).bn.\(field)", indices: indices, trainable: trainable))
        }
        return (entries, copied)
    }
}

/// Where every element of a detector's convolution and batch-norm tensors comes from in a
/// source network's tensors (`WeightInheritance.plan`). Applied, it copies the weights; read
/// backwards, it adds a subnetwork's gradients to the elements of the supernet they came from,
/// which is how weight-sharing NAS trains every subnetwork through one set of weights.
public struct InheritancePlan {
    /// Element i of `target` is source element `indices[i]` of `sourceKey`, or keeps its value
    /// (`keep`), or is zero (`zero`: an inherited row's input channel the source lacks).
    struct Entry {
        let target: Tensor
        let sourceKey: String
        let indices: [Int32]
        /// A parameter (false: a batch-norm statistic, copied but never trained).
        let trainable: Bool
    }
    static let keep: Int32 = -1
    static let zero: Int32 = -2

    let entries: [Entry]
    /// Box sizes are regressed relative to the image (sigmoid of a logit), but from features of
    /// the object's size in pixels, so a network inherited at another input size predicts the
    /// sizes it learned for the source's pixels: FastestDet's COCO network at 224 px draws boxes
    /// about 0.64x too small and scores AP@0.5 0.02 on coco128-person instead of 0.33. Shifting
    /// the size logits by log(source / target) scales small boxes by that ratio (sigmoid(t + log r)
    /// is about r sigmoid(t) while the box is small), each axis by its own ratio. The shift goes
    /// into the box layer's batch-norm shift (this tensor), rows 2 (width) and 3 (height), which
    /// adds to its output.
    let boxSizeShift: (shift: Tensor, logRatios: [Float])?
    public let report: InheritanceReport

    /// Copies the mapped elements of `weights` (the source the plan was made for, or one with
    /// the same tensor shapes) into the detector.
    public func apply(_ weights: PretrainedWeights) throws {
        for entry in entries {
            guard let source = weights.tensors[entry.sourceKey] else {
                throw PretrainedWeightsError.missingTensor(path: weights.path, key: entry.sourceKey)
            }
            let values = try source.floats()
            var current = try entry.target.floats()
            for (index, from) in entry.indices.enumerated() where from != Self.keep {
                current[index] = from == Self.zero ? 0 : values[Int(from)]
            }
            try entry.target.assign(Tensor(current, shape: entry.target.shape))
        }
        if let (shift, logRatios) = boxSizeShift {
            var values = try shift.floats()
            for (row, logRatio) in zip(2...3, logRatios) { values[row] += logRatio }
            try shift.assign(Tensor(values, shape: [values.count]))
        }
    }

    /// Adds the gradients accumulated in the detector's inherited parameters to the gradients of
    /// the source parameters they came from (`parameters` by source key, each with a gradient
    /// already, e.g. from the supernet's own backward pass).
    public func addGradients(to parameters: [String: Tensor]) throws {
        for entry in entries where entry.trainable {
            guard let gradient = entry.target.grad, let parameter = parameters[entry.sourceKey] else { continue }
            guard let accumulated = parameter.grad else {
                if !parameter.requiresGrad { continue }  // frozen (a frozen backbone's first epochs)
                throw TorchError(message: "InheritancePlan.addGradients: \(entry.sourceKey) has no gradient to add to")
            }
            let values = try gradient.floats()
            var sum = [Float](repeating: 0, count: parameter.elementCount)
            for (index, from) in entry.indices.enumerated() where from >= 0 { sum[Int(from)] += values[index] }
            try accumulated.assign(accumulated + Tensor(sum, shape: parameter.shape))
        }
    }
}
