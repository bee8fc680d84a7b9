import DetectionData
import Foundation
import Randomness
import Torch

/// Which subnetworks a supernet training step trains besides the supernet itself: BigNAS's
/// sandwich rule, the largest network (the supernet) plus the smallest and a few random members
/// of the search space, so that every member inherits weights that work
/// (`WeightInheritance`), where a network trained alone works only as itself.
///
/// FastestDet's published COCO network is such a network: a head inherited from it with fewer
/// channels or with groups scores AP@0.5 0.005-0.19 on coco128-person against the whole
/// network's 0.43 (docs/experiments.md), and fine-tuning on 61 images barely moves it.
public struct SubnetworkSampling: Sendable {
    /// The space's smallest member (fewest channels, largest groups, smallest kernel).
    public var smallest: DetectorArchitecture
    /// Draws a member of the space.
    public var draw: @Sendable (inout SplitMix64) -> DetectorArchitecture
    /// Input widths the space searches: each step trains its subnetworks at one of them.
    public var inputWidths: [Int]
    /// Random members trained per step, besides the supernet and the smallest member.
    public var randomPerStep: Int
    /// Weight of the labels' detection loss; the rest of every network's loss is distillation
    /// from the network the training started from (the teacher).
    public var labelWeight: Double

    public init(smallest: DetectorArchitecture, inputWidths: [Int], randomPerStep: Int = 2, labelWeight: Double = 1,
                draw: @escaping @Sendable (inout SplitMix64) -> DetectorArchitecture) {
        self.smallest = smallest
        self.draw = draw
        self.inputWidths = inputWidths
        self.randomPerStep = randomPerStep
        self.labelWeight = labelWeight
    }
}

/// One supernet training step's work besides the supernet's own forward and backward pass:
/// the sampled subnetworks inherit the supernet's current weights (`InheritancePlan`), learn
/// from the teacher's outputs (in-place knowledge distillation, as BigNAS and Once-for-All
/// train their subnetworks) and the labels, and their gradients are added to the supernet
/// elements they came from, so one optimizer step trains them all.
///
/// The teacher is the network the training started from (the pretrained weights), frozen: on a
/// few dozen images its outputs on every grid cell and every class carry far more signal than
/// the labels, and they keep the supernet itself from drifting away from what it knew.
final class SandwichStep {
    let sampling: SubnetworkSampling
    private let start: PretrainedWeights
    private var teachers: [Int: Detector] = [:]
    private var generator: SplitMix64

    init(sampling: SubnetworkSampling, supernet: Detector, seed: UInt64) throws {
        self.sampling = sampling
        start = try PretrainedWeights(supernet, copying: true, path: "the supernet at the start")
        generator = SplitMix64(seed: seed ^ 0x5A4D_5749_4348)
    }

    /// The frozen teacher at `width` (the start's weights with the box sizes shifted for it).
    func teacher(width: Int) throws -> Detector {
        if let teacher = teachers[width] { return teacher }
        let teacher = try Detector(start.architecture.atInputWidth(width))
        try WeightInheritance.inherit(start, into: teacher)
        teacher.eval()
        teachers[width] = teacher
        return teacher
    }

    /// The loss of one network on a batch: labels and distillation from the teacher.
    func loss(_ branches: DetectorBranches, teacher: DetectorBranches, targets: [[ObjectAnnotation]],
              detectionLoss: DetectionLoss) throws -> (Tensor, DetectionLossTerms) {
        let (labels, terms) = try detectionLoss(branches, targets: targets)
        let total = try labels * sampling.labelWeight + Self.distillation(branches, from: teacher)
        return (total, terms)
    }

    /// The teacher's raw branches for `images` (no gradients).
    func teacherBranches(_ images: Tensor, width: Int) throws -> DetectorBranches {
        let teacher = try teacher(width: width)
        return try Torch.withNoGrad { try teacher.branches(images) }
    }

    /// Trains the smallest and `randomPerStep` random members on `batch` at a width drawn for
    /// this step, adding their gradients to `supernet`'s (which must have gradients already).
    func trainSubnetworks(of supernet: Detector, on batch: TrainingBatch, detectionLoss: DetectionLoss,
                          epoch: Int, iteration: Int) throws {
        let width = sampling.inputWidths[generator.nextIndex(below: sampling.inputWidths.count)]
        // Every member runs on the step's input: the start's aspect ratio at this width.
        let input = start.architecture.atInputWidth(width)
        let members = ([sampling.smallest] + (0..<sampling.randomPerStep).map { _ in sampling.draw(&generator) }).map { member in
            var member = member
            (member.inputWidthPixels, member.inputHeightPixels) = (input.inputWidthPixels, input.inputHeightPixels)
            return member
        }
        let resized = try batch.resized(toWidth: members[0].inputWidth, height: members[0].inputHeight)
        let (images, targets) = (resized.images, resized.targets)
        let teacher = try teacherBranches(images, width: width)
        let weights = try PretrainedWeights(supernet, copying: false, path: "the supernet")
        let parameters = Dictionary(supernet.namedParameters().map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        for member in members {
            var architecture = member
            architecture.classCount = supernet.architecture.classCount
            let subnetwork = try Detector(architecture)
            let plan = try WeightInheritance.plan(weights, into: subnetwork)
            try plan.apply(weights)
            if supernet.runsChannelsLast { try subnetwork.useChannelsLast() }
            subnetwork.train()
            let (total, terms) = try loss(subnetwork.branches(images), teacher: teacher, targets: targets,
                                          detectionLoss: detectionLoss)
            guard terms.total.isFinite else { throw TrainingError.nonFiniteLoss(epoch: epoch, iteration: iteration, terms: terms) }
            try total.backward()
            try plan.addGradients(to: parameters)
        }
    }

    /// Knowledge distillation of a detector's raw branches from a teacher's: objectness as
    /// binary cross-entropy against the teacher's probability on every cell; class scores
    /// (cross-entropy against the teacher's softmax) and box parameters (squared difference
    /// after the output activations, weighted 5 as in `DetectionLoss`) on the cells where the
    /// teacher sees an object, weighted by its objectness.
    static func distillation(_ student: DetectorBranches, from teacher: DetectorBranches) throws -> Tensor {
        let objectness = try teacher.objectness.sigmoid()
        let objectnessLoss = try Functional.binaryCrossEntropyWithLogits(student.objectness, objectness)
        let cellWeight = try objectness / (objectness.sum().item() + 1e-6)
        let classLoss = try -((teacher.classes.softmax(dim: 1) * student.classes.logSoftmax(dim: 1)).sum(dims: [1], keepDim: true) * cellWeight).sum()
        func activated(_ box: Tensor) throws -> (Tensor, Tensor) {
            (try box.narrow(dim: 1, start: 0, length: 2).tanh(), try box.narrow(dim: 1, start: 2, length: 2).sigmoid())
        }
        let (studentCentre, studentSize) = try activated(student.box)
        let (teacherCentre, teacherSize) = try activated(teacher.box)
        let boxError = try (studentCentre - teacherCentre).pow(2).sum(dims: [1], keepDim: true) + (studentSize - teacherSize).pow(2).sum(dims: [1], keepDim: true)
        let boxLoss = try (boxError * cellWeight).sum()
        return try objectnessLoss + classLoss + boxLoss * 5
    }
}
