import DetectionData
import Foundation
import Randomness
import Testing
import Torch
@testable import Vision

/// One labelled batch at `size` px, the same every step, drawn from a generator of its own
/// (libtorch's global generator is shared with tests running in parallel).
private struct OneLabelledBatch: TrainingBatchProvider {
    var size = 128
    var batchesPerEpoch: Int { 1 }
    func batch(epoch: Int, index: Int) throws -> TrainingBatch {
        var generator = SplitMix64(seed: 5)
        let pixels = (0..<(2 * 3 * 128 * 128)).map { _ in Float(generator.nextUnit()) }
        let batch = TrainingBatch(images: try Tensor(pixels, shape: [2, 3, 128, 128]), targets: [
            [ObjectAnnotation(box: BoundingBox(x0: 20, y0: 30, x1: 60, y1: 110), classIndex: 0)],
            [ObjectAnnotation(box: BoundingBox(x0: 64, y0: 8, x1: 120, y1: 40), classIndex: 0)],
        ])
        return try batch.resized(toWidth: size, height: size)
    }
}

private func seededDetector(_ name: String) throws -> Detector {
    try Torch.seeded(3) { try Detector(DetectorArchitecture(shortName: name)) }
}

@Test func multiScaleWidthsAreDrawnFromTheSeedAndTheStepAlone() throws {
    let configuration = TrainingConfiguration(seed: 4, multiScaleWidths: [96, 128, 160])
    let widths = (0..<300).compactMap { configuration.multiScaleWidth(iteration: $0) }
    #expect(Set(widths) == [96, 128, 160])
    // A resumed run draws the same widths for the same steps.
    #expect((0..<300).compactMap { TrainingConfiguration(seed: 4, multiScaleWidths: [96, 128, 160]).multiScaleWidth(iteration: $0) } == widths)
    #expect((0..<300).compactMap { TrainingConfiguration(seed: 5, multiScaleWidths: [96, 128, 160]).multiScaleWidth(iteration: $0) } != widths)
    #expect(TrainingConfiguration(seed: 4).multiScaleWidth(iteration: 0) == nil)

    let decoded = try JSONDecoder().decode(TrainingConfiguration.self, from: JSONEncoder().encode(configuration))
    #expect(decoded == configuration)
    // A checkpoint written before multi-scale training existed reads as single-scale.
    var json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(configuration)) as? [String: Any])
    json["multiScaleWidths"] = nil
    let old = try JSONDecoder().decode(TrainingConfiguration.self, from: JSONSerialization.data(withJSONObject: json))
    #expect(old.multiScaleWidths.isEmpty)
}

/// A step at another width trains the network exactly as the member that inherits it at that
/// width would be trained: the same outputs (box sizes stay fractions of the network's own
/// input), so the same gradients and the same weights after the step. Without the size shift a
/// person of one pixel size would have to come out as a different fraction at each width.
@Test func aStepAtAnotherWidthTrainsWhatTheInheritedMemberComputes() throws {
    let network = try seededDetector("k5-g1-c96-w128")
    let member = try Detector(network.architecture.atInputWidth(96))
    try WeightInheritance.inherit(PretrainedWeights(network, copying: true, path: "test"), into: member)
    let images = try OneLabelledBatch(size: 96).batch(epoch: 0, index: 0).images
    network.eval()
    member.eval()
    let (shifted, inherited) = try Torch.withNoGrad {
        (try network.branches(images).atOwnBoxScale(of: network.architecture, runningAt: member.architecture), try member.branches(images))
    }
    for (a, b) in [(shifted.box, inherited.box), (shifted.objectness, inherited.objectness), (shifted.classes, inherited.classes)] {
        #expect(try zip(a.floats(), b.floats()).map { abs($0 - $1) }.max()! < 1e-4)
    }

    // One step each: the network multi-scale at 96 px only, the member at its own 96 px. (One:
    // a random network's first step on two images moves weights by about 2, and a second one
    // turns float rounding of 1e-6 into differences of 1e-2.) Without the size shift the two
    // differ by as much as the step.
    let before = try seededDetector("k5-g1-c96-w128")
    let configuration = TrainingConfiguration(epochs: 1, optimizer: .sgd, learningRate: 0.01, warmupIterations: 1, emaDecay: nil, seed: 1)
    var multiScale = configuration
    multiScale.multiScaleWidths = [96]
    try Trainer(detector: network, configuration: multiScale).train(data: OneLabelledBatch())
    try Trainer(detector: member, configuration: configuration).train(data: OneLabelledBatch(size: 96))
    let trained = try Detector(member.architecture)
    try WeightInheritance.inherit(PretrainedWeights(network, copying: true, path: "test"), into: trained)
    let memberWeights = Dictionary(member.namedParameters().map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
    let startWeights = Dictionary(before.namedParameters().map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
    var (difference, moved): (Float, Float) = (0, 0)
    for (name, tensor) in trained.namedParameters() {
        let values = try tensor.floats()
        difference = max(difference, try zip(values, #require(memberWeights[name]).floats()).map { abs($0 - $1) }.max() ?? 0)
    }
    for (name, tensor) in network.namedParameters() {
        moved = max(moved, try zip(tensor.floats(), #require(startWeights[name]).floats()).map { abs($0 - $1) }.max() ?? 0)
    }
    #expect(moved > 0.01, "the step moved the weights by \(moved)")
    #expect(difference < 1e-4 * moved, "largest weight difference \(difference) for a step of \(moved)")
}
