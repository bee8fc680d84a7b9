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

/// A supernet step runs the backbone once: the supernet's pass at the step's width, whose
/// features its members' heads read. It gets exactly the gradients and batch-norm statistics
/// of each network trained on its own at that width: the reference below is the supernet's own
/// step and then every member as a whole network of its own.
@Test func aSupernetStepsOneBackbonePassGivesEachNetworksOwnGradients() throws {
    let base = try DetectorArchitecture(shortName: "k5-g1-c96-w128")
    let sampling = SubnetworkSampling(smallest: try DetectorArchitecture(shortName: "k3-g8-c24-w128"), inputWidths: [96],
                                      randomPerStep: 2) { generator in
        var member = base
        member.headKernelSize = [3, 5][generator.nextIndex(below: 2)]
        member.headGroups = [1, 2, 4][generator.nextIndex(below: 3)]
        member.headChannels = [32, 64, 96][generator.nextIndex(below: 3)]
        return member
    }
    var generator = SplitMix64(seed: 4)
    let box = BoundingBox(x0: 20, y0: 30, x1: 70, y1: 110)
    let batch = TrainingBatch(images: try Tensor((0..<(2 * 3 * 128 * 128)).map { _ in Float(generator.nextUnit()) }, shape: [2, 3, 128, 128]),
                              targets: [[ObjectAnnotation(box: box, classIndex: 0)], []])
    func gradients(_ detector: Detector) throws -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: try detector.namedParameters().map { ($0.name, try #require($0.tensor.grad).floats()) })
    }

    let shared = try randomized(base, seed: 3)
    shared.train()
    _ = try SandwichStep(sampling: sampling, supernet: shared, seed: 9).run(supernet: shared, on: batch, detectionLoss: DetectionLoss(),
                                                                            epoch: 0, iteration: 0)

    let separate = try randomized(base, seed: 3)
    separate.train()
    let step = try SandwichStep(sampling: sampling, supernet: separate, seed: 9)
    let (width, input, members) = step.drawMembers(classCount: base.classCount)
    let resized = try batch.resized(toWidth: input.inputWidth, height: input.inputHeight)
    let teacher = try step.teacherBranches(resized.images, width: width)
    try step.loss(separate.branches(resized.images).atOwnBoxScale(of: base, runningAt: input), teacher: teacher, targets: resized.targets,
                  detectionLoss: DetectionLoss()).0.backward()
    let weights = try PretrainedWeights(separate, copying: false, path: "test")
    let parameters = Dictionary(uniqueKeysWithValues: separate.namedParameters().map { ($0.name, $0.tensor) })
    for member in members {
        let subnetwork = try Detector(member)
        let plan = try WeightInheritance.plan(weights, into: subnetwork)
        try plan.apply(weights)
        subnetwork.train()
        try step.loss(subnetwork.branches(resized.images), teacher: teacher, targets: resized.targets, detectionLoss: DetectionLoss()).0.backward()
        try plan.addGradients(to: parameters)
    }

    let (sharedGradients, separateGradients) = (try gradients(shared), try gradients(separate))
    #expect(Set(sharedGradients.keys) == Set(separateGradients.keys))
    // Against the largest gradient of all: a batch norm's shift followed by another batch norm
    // has a gradient of zero in exact arithmetic, rounding noise of either summation order here.
    let scale = separateGradients.values.flatMap { $0 }.map(abs).max() ?? 0
    #expect(scale > 0.01)
    for (name, expected) in separateGradients {
        let difference = zip(sharedGradients[name]!, expected).map { abs($0 - $1) }.max() ?? 0
        #expect(difference <= 1e-5 * scale, "\(name): gradients differ by \(difference) (largest of all \(scale))")
    }
    // The running statistics moved once, by the supernet's own pass: the members' share of the
    // backbone pass does not move them again.
    for (sharedBuffer, separateBuffer) in zip(shared.namedBuffers(), separate.namedBuffers()) {
        let difference = zip(try sharedBuffer.tensor.floats(), try separateBuffer.tensor.floats()).map { abs($0 - $1) }.max() ?? 0
        #expect(difference < 1e-5, "\(sharedBuffer.name): running statistics differ by \(difference)")
    }
    // The backbone is what the members share with the supernet, the head is their own.
    let read = SandwichStep.sharedLayersRead(by: try DetectorGraph(members[0]), from: separate.graph)
    #expect(!read.isEmpty && read.allSatisfy { name in separate.graph.nodes.first { $0.name == name }?.block != .head })
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
