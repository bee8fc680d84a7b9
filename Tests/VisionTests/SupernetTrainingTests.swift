import DetectionData
import Foundation
import Randomness
import Testing
import Torch
@testable import Vision

/// The same two unlabelled images every step: distillation alone drives the training. Drawn
/// from a generator of their own, as the test networks' weights (`randomized`): libtorch's
/// global generator is shared with tests running in parallel.
private struct UnlabelledBatches: TrainingBatchProvider {
    var batchesPerEpoch: Int { 1 }
    func batch(epoch: Int, index: Int) throws -> TrainingBatch {
        var generator = SplitMix64(seed: 11)
        let pixels = (0..<(2 * 3 * 128 * 128)).map { _ in Float(generator.nextUnit()) }
        return TrainingBatch(images: try Tensor(pixels, shape: [2, 3, 128, 128]), targets: [[], []])
    }
}

/// A detector of `architecture` whose convolution weights are uniform in ±1/sqrt(fan-in) (as
/// PyTorch's default), drawn from `seed`'s own generator.
private func randomized(_ architecture: DetectorArchitecture, seed: UInt64) throws -> Detector {
    let detector = try Detector(architecture)
    var generator = SplitMix64(seed: seed)
    for (name, parameter) in detector.namedParameters() where name.hasSuffix("conv.weight") {
        let bound = 1 / Double(parameter.elementCount / parameter.shape[0]).squareRoot()
        let values = (0..<parameter.elementCount).map { _ in Float(generator.uniform(-bound...bound)) }
        try parameter.assign(Tensor(values, shape: parameter.shape))
    }
    return detector
}

/// Distillation loss of `architecture` inheriting `supernet`'s weights against `teacher`'s
/// output. The member's batch norms use the batch's statistics (as recalibration would give).
private func distillationLoss(_ architecture: DetectorArchitecture, from supernet: Detector, teacher: Detector) throws -> Double {
    let member = try Detector(architecture)
    try WeightInheritance.inherit(PretrainedWeights(supernet, copying: false, path: "test"), into: member)
    member.train()
    let images = try UnlabelledBatches().batch(epoch: 0, index: 0).images
    return try Torch.withNoGrad { try SandwichStep.distillation(member.branches(images), from: teacher.branches(images)).item() }
}

/// A supernet step trains its subnetworks through the weights they inherit: the smallest
/// member's distillation loss against the starting network falls. Without the subnetworks'
/// gradients nothing would move: the supernet itself starts equal to its teacher, where the
/// distillation gradient is zero, and the images carry no labels.
@Test func aSupernetStepTeachesTheSmallestMemberWhatTheWholeNetworkKnows() throws {
    let base = try DetectorArchitecture(shortName: "k5-g1-c96-w128")
    let smallest = try DetectorArchitecture(shortName: "k3-g8-c24-w128")
    let supernet = try randomized(base, seed: 5)
    // Batch-norm statistics of the images, so that the teacher's outputs (evaluation mode) are
    // the varied ones of a network that fits its input.
    for case let unit as ConvolutionUnit in supernet.units.map(\.module) { unit.normalization.momentum = 1 }
    _ = try Torch.withNoGrad { try supernet.forward(UnlabelledBatches().batch(epoch: 0, index: 0).images) }
    for case let unit as ConvolutionUnit in supernet.units.map(\.module) { unit.normalization.momentum = 0.1 }
    let teacher = try Detector(base)
    try WeightInheritance.inherit(PretrainedWeights(supernet, copying: true, path: "test"), into: teacher)
    teacher.eval()
    let before = try distillationLoss(smallest, from: supernet, teacher: teacher)
    let wholeBefore = try distillationLoss(base, from: supernet, teacher: teacher)  // the teacher's own entropy

    let sampling = SubnetworkSampling(smallest: smallest, inputWidths: [128], randomPerStep: 1, labelWeight: 0) { generator in
        var member = base
        member.headChannels = [24, 48, 96][generator.nextIndex(below: 3)]
        return member
    }
    let configuration = TrainingConfiguration(epochs: 20, learningRate: 0.003, warmupIterations: 1, emaDecay: nil)
    let trainer = try Trainer(detector: supernet, configuration: configuration, subnetworks: sampling)
    try trainer.train(data: UnlabelledBatches())

    let after = try distillationLoss(smallest, from: supernet, teacher: teacher)
    #expect(after < 0.8 * before, "smallest member's distillation loss \(before) -> \(after)")
    // The supernet itself stays close to what it started as.
    let wholeAfter = try distillationLoss(base, from: supernet, teacher: teacher)
    #expect(wholeAfter < wholeBefore + 0.1 * (before - wholeBefore), "whole network's distillation loss \(wholeBefore) -> \(wholeAfter)")
}

/// Subnetworks (and multi-scale training) run at other input widths: the batch is resized and its boxes scaled.
@Test func aBatchIsLetterboxedAgainAtAnotherWidth() throws {
    let box = BoundingBox(x0: 32, y0: 64, x1: 96, y1: 128)
    let batch = TrainingBatch(images: try Tensor.ones([1, 3, 128, 128]), targets: [[ObjectAnnotation(box: box, classIndex: 0)]])
    let square = try batch.resized(toWidth: 96, height: 96)
    let (images, targets) = (square.images, square.targets)
    #expect(images.shape == [1, 3, 96, 96])
    #expect(try images.floats().allSatisfy { abs($0 - 1) < 1e-6 })
    #expect(targets[0][0].box == BoundingBox(x0: 24, y0: 48, x1: 72, y1: 96))
    // A landscape member: each axis scales on its own.
    let landscape = try batch.resized(toWidth: 96, height: 64)
    let (wide, wideTargets) = (landscape.images, landscape.targets)
    #expect(wide.shape == [1, 3, 64, 96])
    #expect(wideTargets[0][0].box == BoundingBox(x0: 24, y0: 32, x1: 72, y1: 64))
}

/// A supernet's checkpoint says what it trained, and a run that trains otherwise does not resume it.
@Test func aSupernetCheckpointRecordsItsMembersAndResumesOnlyAsOne() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-supernet-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: directory) }
    let base = try DetectorArchitecture(shortName: "k5-g1-c96-w128")
    let sampling = SubnetworkSampling(smallest: try DetectorArchitecture(shortName: "k3-g8-c24-w128"), inputWidths: [96, 128],
                                      randomPerStep: 1) { _ in base }
    let configuration = TrainingConfiguration(epochs: 1, warmupIterations: 1, emaDecay: nil)
    try Trainer(detector: randomized(base, seed: 2), configuration: configuration, checkpointDirectory: directory, subnetworks: sampling)
        .train(data: UnlabelledBatches())
    let saved = try #require(try TrainingCheckpoint.load(from: directory))
    #expect(saved.supernet == TrainingCheckpoint.SupernetRecord(sampling))
    #expect(saved.supernet?.smallest == "k3-g8-c24-w128" && saved.supernet?.inputWidths == [96, 128])

    let alone = try Trainer(detector: Detector(base), configuration: TrainingConfiguration(epochs: 2, warmupIterations: 1, emaDecay: nil),
                            checkpointDirectory: directory)
    #expect {
        try alone.train(data: UnlabelledBatches(), resume: true)
    } throws: { error in
        "\(error)".contains("was trained as a supernet (smallest member k3-g8-c24-w128") && "\(error)".contains("this run trains as one network")
    }
}
