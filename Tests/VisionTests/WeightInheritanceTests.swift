import DetectionData
import Foundation
import Testing
import Torch
@testable import Vision

/// A trained-looking source: the baseline with seeded random weights and distinct batch-norm scales.
private func sourceWeights(_ name: String = "k5-g1-c96-w320", classNames: [String]? = nil) throws -> (PretrainedWeights, Detector) {
    Torch.manualSeed(7)
    let detector = try Detector(try DetectorArchitecture(shortName: name))
    for (_, module) in detector.units {
        let normalization = (module as! ConvolutionUnit).normalization
        let count = normalization.weight.tensor.elementCount
        try normalization.weight.tensor.assign(Tensor.uniform([count], low: 0.1, high: 2))
        try normalization.runningMean.tensor.assign(Tensor.uniform([count], low: -1, high: 1))
    }
    return (try PretrainedWeights(detector, copying: false, classNames: classNames, path: "test"), detector)
}

private func values(_ detector: Detector, _ name: String) throws -> [Float] {
    try detector.namedState().first { $0.name == name }!.tensor.floats()
}

@Test func theSameArchitectureInheritsEverythingAndComputesTheSame() throws {
    let (weights, source) = try sourceWeights()
    Torch.manualSeed(99)
    let target = try Detector(.baseline)
    let report = try WeightInheritance.inherit(weights, into: target)
    #expect(report.inheritedParameters == report.totalParameters)
    #expect(report.inheritedShare == 1)
    source.eval()
    target.eval()
    let image = try Tensor.uniform([1, 3, 320, 320])
    let (a, b) = try Torch.withNoGrad { (try source(image).floats(), try target(image).floats()) }
    #expect(a == b)
}

@Test func anotherInputSizeRescalesTheBoxSizeLogits() throws {
    let (weights, source) = try sourceWeights()
    let target = try Detector(try DetectorArchitecture(shortName: "k5-g1-c96-w224"))
    let report = try WeightInheritance.inherit(weights, into: target)
    #expect(report.inheritedShare == 1)
    let stored = try values(source, "head.box.pw.bn.bias"), shifted = try values(target, "head.box.pw.bn.bias")
    // Centre offsets unchanged; width and height logits + log(320 / 224), so small boxes keep
    // their size in pixels rather than their share of the image.
    #expect(shifted[0] == stored[0] && shifted[1] == stored[1])
    for row in 2...3 { #expect(abs(shifted[row] - stored[row] - Float(log(320.0 / 224.0))) < 1e-6) }
    #expect(try values(target, "head.objectness.pw.bn.bias") == values(source, "head.objectness.pw.bn.bias"))
}

@Test func aSmallerKernelTakesTheCentre() throws {
    let (weights, source) = try sourceWeights()
    let target = try Detector(try DetectorArchitecture(shortName: "k3-g1-c96-w320"))
    try WeightInheritance.inherit(weights, into: target)
    let large = try values(source, "head.box.dw.conv.weight"), small = try values(target, "head.box.dw.conv.weight")
    for channel in [0, 17, 95] {
        for y in 0..<3 {
            for x in 0..<3 {
                #expect(small[(channel * 3 + y) * 3 + x] == large[(channel * 5 + y + 1) * 5 + x + 1])
            }
        }
    }
}

@Test func aGroupedConvolutionTakesTheBlockDiagonal() throws {
    let (weights, source) = try sourceWeights()
    let target = try Detector(try DetectorArchitecture(shortName: "k5-g4-c96-w320"))
    let report = try WeightInheritance.inherit(weights, into: target)
    let dense = try values(source, "head.input.conv.weight"), grouped = try values(target, "head.input.conv.weight")
    // 96 -> 96 in 4 groups: output row o reads inputs (o / 24) * 24 ..< +24.
    for row in [0, 30, 95] {
        for column in 0..<24 {
            #expect(grouped[row * 24 + column] == dense[row * 96 + (row / 24) * 24 + column])
        }
    }
    #expect(report.inheritedParameters == report.totalParameters)
}

@Test func aNarrowerHeadKeepsTheLargestScalesAlongTheChannelPath() throws {
    let (weights, source) = try sourceWeights()
    let target = try Detector(try DetectorArchitecture(shortName: "k5-g1-c24-w320"))
    try WeightInheritance.inherit(weights, into: target)
    let scales = try values(source, "head.input.bn.weight")
    let kept = scales.indices.sorted { abs(scales[$0]) > abs(scales[$1]) }.prefix(24).sorted()
    #expect(try values(target, "head.input.bn.weight") == kept.map { scales[$0] })
    // The input convolution's rows, the depthwise channels and the projection's columns follow the same channels.
    let inputRows = try values(source, "head.input.conv.weight"), narrowRows = try values(target, "head.input.conv.weight")
    for (row, sourceRow) in kept.enumerated() {
        #expect(Array(narrowRows[row * 96..<(row + 1) * 96]) == Array(inputRows[sourceRow * 96..<(sourceRow + 1) * 96]))
    }
    let depthwise = try values(source, "head.class.dw.conv.weight"), narrowDepthwise = try values(target, "head.class.dw.conv.weight")
    #expect(Array(narrowDepthwise[25..<50]) == Array(depthwise[kept[1] * 25..<(kept[1] + 1) * 25]))
    let projection = try values(source, "head.box.pw.conv.weight"), narrowProjection = try values(target, "head.box.pw.conv.weight")
    for output in 0..<4 {
        #expect(Array(narrowProjection[output * 24..<(output + 1) * 24]) == kept.map { projection[output * 96 + $0] })
    }
}

@Test func fewerUnitsTakeTheFirstUnitsAndLaterLayersFollowTheChannels() throws {
    let (weights, source) = try sourceWeights()
    let target = try Detector(try DetectorArchitecture(shortName: "k5-g1-c96-w320-r2.4.2"))
    let report = try WeightInheritance.inherit(weights, into: target)
    // The units kept are the source's first units, whole.
    for name in ["stage3.unit3.branch2.pw1.conv.weight", "stage4.unit1.branch2.dw.conv.weight", "stage2.unit1.branch2.pw2.conv.weight"] {
        #expect(try values(target, name) == values(source, name), "\(name)")
    }
    // A shortened stage's output holds other channels in other places: each column of the neck
    // reads the source column of the same channel, or starts at zero where the source's
    // channel came from a dropped unit.
    let neck = try values(target, "neck.reduce.conv.weight"), sourceNeck = try values(source, "neck.reduce.conv.weight")
    let sourceColumns = Set((0..<336).map { column in (0..<96).map { sourceNeck[$0 * 336 + column] } })
    var zeroColumns = 0
    for column in 0..<336 {
        let values = (0..<96).map { neck[$0 * 336 + column] }
        if values.allSatisfy({ $0 == 0 }) { zeroColumns += 1 } else { #expect(sourceColumns.contains(values)) }
    }
    #expect(zeroColumns > 0 && zeroColumns < 336)
    #expect(report.inheritedShare > 0.7 && report.inheritedShare < 1)
}

@Test func classesMapByNameAndUnknownOnesStartFresh() throws {
    let (weights, source) = try sourceWeights("k5-g1-c96-w320-n3", classNames: ["car", "person", "dog"])
    Torch.manualSeed(3)
    let target = try Detector(try DetectorArchitecture(shortName: "k5-g1-c96-w320-n2"))
    let fresh = try values(target, "head.class.pw.conv.weight")
    let report = try WeightInheritance.inherit(weights, into: target, classNames: ["Person", "cyclist"])
    #expect(report.freshClasses == ["cyclist"])
    let rows = try values(source, "head.class.pw.conv.weight"), mapped = try values(target, "head.class.pw.conv.weight")
    #expect(Array(mapped[0..<96]) == Array(rows[96..<192]))  // person is the source's row 1
    #expect(Array(mapped[96..<192]) == Array(fresh[96..<192]))  // cyclist keeps its initialisation
    #expect(report.totalParameters - report.inheritedParameters == 96 + 2)
}

@Test func recalibrationSetsTheRunningStatisticsToTheDataAverage() throws {
    let (weights, _) = try sourceWeights()
    let target = try Detector(try DetectorArchitecture(shortName: "k3-g2-c48-w224"))
    try WeightInheritance.inherit(weights, into: target)
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-recalibration-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: directory) }
    try SyntheticDataWriter().write(to: directory, seed: 5, trainCount: 8, valCount: 0)
    let images = try VOCDataset(root: directory, split: "train")
    try BatchNormRecalibration.recalibrate(target, on: images, images: 8, batchSize: 4)
    #expect(!target.isTraining)
    // The stem's running mean is the mean of its convolution's output over the two batches.
    let loader = BatchLoader(dataset: images, batchSize: 4, augmentation: .evaluation(width: 224, height: 224), shuffle: false, seed: 0)
    let stem = target.units[0].module as! ConvolutionUnit
    var expected = [Float](repeating: 0, count: 24)
    for index in 0..<2 {
        let batch = try loader.batch(epoch: 0, index: index)
        let convolved = try Torch.withNoGrad { try stem.convolution(Tensor(batch.images, shape: [4, 3, 224, 224])) }
        let means = try convolved.mean(dims: [0, 2, 3]).floats()
        for channel in 0..<24 { expected[channel] += means[channel] / 2 }
    }
    let recalibrated = try stem.normalization.runningMean.tensor.floats()
    #expect(zip(recalibrated, expected).allSatisfy { abs($0 - $1) < 1e-4 })
}

/// A supernet trains its subnetworks through their inheritance plans: the gradient the plan
/// sends back to a supernet element must be the derivative of the subnetwork's loss with
/// respect to that element (central differences, in float64). Covers a grouped narrower layer,
/// a 3x3 kernel cut from a 5x5, a batch-norm scale, an unchanged layer, and an element no
/// subnetwork weight comes from (gradient 0).
@Test func aSubnetworksGradientsReachTheSupernetElementsItCameFrom() throws {
    let (weights, supernet) = try sourceWeights()
    try supernet.convertFloatingPoint(to: .float64)
    Torch.manualSeed(3)
    let subnetwork = try Detector(try DetectorArchitecture(shortName: "k3-g2-c48-w320"))
    try subnetwork.convertFloatingPoint(to: .float64)
    let plan = try WeightInheritance.plan(weights, into: subnetwork)
    try plan.apply(weights)
    supernet.eval()
    subnetwork.eval()
    let image = try Tensor.uniform([1, 3, 64, 64]).to(.float64)
    let probe = try Tensor.uniform([1, 6, 4, 4], low: -1, high: 1).to(.float64)
    func loss() throws -> Tensor { try (subnetwork(image) * probe).sum() }

    let parameters = Dictionary(supernet.namedParameters().map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
    try (supernet(image).sum() * 0).backward()  // the supernet's own (zero) gradients, which the plan adds to
    try loss().backward()
    try plan.addGradients(to: parameters)

    let epsilon = 1e-4
    func numericDerivative(_ key: String, _ element: Int) throws -> Double {
        let tensor = weights.tensors[key]!
        let original = try tensor.to(.float64).reshape([-1]).clone()
        func lossWith(_ delta: Double) throws -> Double {
            var values = try original.to(.float32).floats().map(Double.init)
            values[element] += delta
            try tensor.assign(Tensor(values, shape: tensor.shape))
            try plan.apply(weights)
            return try Torch.withNoGrad { try loss().item() }
        }
        defer { try? tensor.assign(original.reshape(tensor.shape)); try? plan.apply(weights) }
        return (try lossWith(epsilon) - lossWith(-epsilon)) / (2 * epsilon)
    }
    for key in ["head.input.conv.weight", "head.box.dw.conv.weight", "head.objectness.dw.bn.weight", "neck.reduce.conv.weight"] {
        let gradient = try parameters[key]!.grad!.to(.float64).reshape([-1])
        let element = try gradient.abs().argmax(dim: 0).item()
        let analytic = try gradient.narrow(dim: 0, start: Int(element), length: 1).item()
        #expect(analytic != 0, "\(key)")
        let numeric = try numericDerivative(key, Int(element))
        #expect(abs(numeric - analytic) <= 1e-3 * abs(analytic), "\(key)[\(element)]: numeric \(numeric), plan \(analytic)")
    }
    // A corner of a 5x5 depthwise kernel: the 3x3 subnetwork has no weight there.
    let corner = try parameters["head.box.dw.conv.weight"]!.grad!.to(.float64).reshape([-1]).narrow(dim: 0, start: 0, length: 1).item()
    #expect(corner == 0)
    #expect(abs(try numericDerivative("head.box.dw.conv.weight", 0)) < 1e-9)
}
