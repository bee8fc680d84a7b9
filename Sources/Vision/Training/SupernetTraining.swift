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

/// One supernet training step's forward and backward pass: the supernet and the sampled
/// subnetworks, which inherit the supernet's current weights (`InheritancePlan`), learn
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

    /// This step's input width, its input (the start's architecture at that width, aspect ratio
    /// kept) and members: the smallest and `randomPerStep` random ones, all on that input.
    func drawMembers(classCount: Int) -> (width: Int, input: DetectorArchitecture, members: [DetectorArchitecture]) {
        let width = sampling.inputWidths[generator.nextIndex(below: sampling.inputWidths.count)]
        let input = start.architecture.atInputWidth(width)
        let members = ([sampling.smallest] + (0..<sampling.randomPerStep).map { _ in sampling.draw(&generator) }).map { member in
            var member = member
            (member.inputWidthPixels, member.inputHeightPixels) = (input.inputWidthPixels, input.inputHeightPixels)
            member.classCount = classCount
            return member
        }
        return (width, input, members)
    }

    /// One step's forward and backward pass: the supernet, its smallest member and
    /// `randomPerStep` random ones, all on `batch` at a width drawn for this step, each learning
    /// from the labels and the teacher; the members' gradients are added to the supernet
    /// elements they came from, so the optimizer step that follows trains them all. Returns the
    /// supernet's own loss terms.
    ///
    /// The members differ from the supernet only in some layers (the default space: the head)
    /// and run on the same input, so the layers they share with it (the backbone) run once, in
    /// the supernet's own pass, every member's head reads those features, and the summed loss
    /// is back-propagated once: the gradients of every network trained on its own, in one
    /// backbone pass instead of two (a member's shared layers hold the supernet's very weights,
    /// since inheritance copies a layer of the same shape whole, in order). So the supernet
    /// trains at the step's width too, as multi-scale training does, not at its own alone. A
    /// frozen backbone runs frozen for the members too (evaluation mode, no gradients).
    func run(supernet: Detector, on batch: TrainingBatch, detectionLoss: DetectionLoss, epoch: Int, iteration: Int) throws -> DetectionLossTerms {
        let (width, input, members) = drawMembers(classCount: supernet.architecture.classCount)
        let resized = try batch.resized(toWidth: input.inputWidth, height: input.inputHeight)
        let (images, targets) = (resized.images, resized.targets)
        let teacher = try teacherBranches(images, width: width)
        let weights = try PretrainedWeights(supernet, copying: false, path: "the supernet")
        let subnetworks = try members.map { member in
            let subnetwork = try Detector(member)
            let plan = try WeightInheritance.plan(weights, into: subnetwork)
            try plan.apply(weights)
            if supernet.runsChannelsLast { try subnetwork.useChannelsLast() }
            subnetwork.train()
            return (subnetwork, plan, reused: Self.sharedLayersRead(by: subnetwork.graph, from: supernet.graph))
        }
        let (branches, features) = try supernet.branches(images, keeping: subnetworks.reduce(into: Set<String>()) { $0.formUnion($1.reused) })
        var (total, terms) = try loss(branches.atOwnBoxScale(of: supernet.architecture, runningAt: input), teacher: teacher, targets: targets,
                                      detectionLoss: detectionLoss)
        guard terms.total.isFinite else { throw TrainingError.nonFiniteLoss(epoch: epoch, iteration: iteration, terms: terms) }
        for (subnetwork, _, reused) in subnetworks {
            let (memberLoss, memberTerms) = try loss(subnetwork.branches(images, reusing: features.filter { reused.contains($0.key) }),
                                                     teacher: teacher, targets: targets, detectionLoss: detectionLoss)
            guard memberTerms.total.isFinite else { throw TrainingError.nonFiniteLoss(epoch: epoch, iteration: iteration, terms: memberTerms) }
            total = try total + memberLoss
        }
        try total.backward()
        let parameters = Dictionary(supernet.namedParameters().map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        for (_, plan, _) in subnetworks { try plan.addGradients(to: parameters) }
        return terms
    }

    /// The layers of `member` that are the same as `supernet`'s (same name, operation and inputs,
    /// all of them shared too, back to the image) and that a layer of its own reads: the features
    /// the supernet can compute for it.
    static func sharedLayersRead(by member: DetectorGraph, from supernet: DetectorGraph) -> Set<String> {
        let supernetNodes = Dictionary(supernet.nodes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var shared: Set<String> = [DetectorGraph.inputName]
        var read: Set<String> = []
        for node in member.nodes {
            let same = supernetNodes[node.name].map { $0.operation == node.operation && $0.inputs == node.inputs } ?? false
            if same && node.inputs.allSatisfy(shared.contains) {
                shared.insert(node.name)
            } else {
                read.formUnion(node.inputs.filter(shared.contains))
            }
        }
        return read.subtracting([DetectorGraph.inputName])
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
