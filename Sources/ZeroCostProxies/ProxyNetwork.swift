// What a network must offer for the zero-cost proxies to score it, and the detector's adapter.
import DetectionData
import Torch
import Vision

/// A network scored by zero-cost proxies: its module (parameters, buffers, train/eval mode),
/// its weighted layers, a forward pass that shows intermediate activations, and a minibatch loss.
public protocol ProxyNetwork: AnyObject {
    /// What the loss compares the network's output with (class labels, detection targets).
    associatedtype Targets

    var module: any Module { get }
    /// The weights of the convolution and linear layers (not batch norm), in a fixed order:
    /// the per-layer sums of grad_norm, snip, grasp, plain and l2_norm run over these.
    var weightedLayerWeights: [Tensor] { get }
    /// Multiply-accumulates of one forward pass at batch 1 (the `flops` proxy).
    var multiplyAccumulates: Int { get }
    /// The raw output [N, ...] whose sum jacov, EPE-NAS and synflow differentiate, showing
    /// `observer` the activations on the way.
    func output(_ input: Tensor, observer: ActivationObserver?) throws -> Tensor
    /// The feature map Zen-NAS compares (a classifier's map before global pooling).
    func features(_ input: Tensor) throws -> Tensor
    /// The minibatch's scalar training loss, showing `observer` the activations on the way.
    func loss(_ input: Tensor, targets: Targets, observer: ActivationObserver?) throws -> Tensor
}

/// One minibatch for the proxies: inputs, the loss's targets, and a group label per sample
/// (the class for a classifier) that EPE-NAS correlates within.
public struct ProxyBatch<Targets> {
    public var inputs: Tensor
    public var targets: Targets
    public var groups: [Int]

    public init(inputs: Tensor, targets: Targets, groups: [Int]) {
        self.inputs = inputs
        self.targets = targets
        self.groups = groups
    }
}

/// The detector as a proxy network: the output is its three raw head branches (objectness
/// logits, box parameters, class logits) concatenated along channels, before the deployed
/// sigmoid/softmax, whose saturation would hide differences at initialisation; Zen-NAS uses
/// the same map (a detector has no global pooling); the loss is the training loss.
public final class DetectorProxyNetwork: ProxyNetwork {
    public typealias Targets = [[ObjectAnnotation]]

    public let detector: Detector
    public let lossFunction: DetectionLoss

    public init(detector: Detector, loss: DetectionLoss = DetectionLoss()) {
        self.detector = detector
        lossFunction = loss
    }

    public var module: any Module { detector }

    public var weightedLayerWeights: [Tensor] {
        detector.units.compactMap { ($0.module as? ConvolutionUnit)?.convolution.weight.tensor }
    }

    public var multiplyAccumulates: Int { detector.graph.multiplyAccumulates }

    public func output(_ input: Tensor, observer: ActivationObserver?) throws -> Tensor {
        let branches = try detector.branches(input, observer: observer)
        return try Tensor.cat([branches.objectness, branches.box, branches.classes], dim: 1)
    }

    public func features(_ input: Tensor) throws -> Tensor { try output(input, observer: nil) }

    public func loss(_ input: Tensor, targets: Targets, observer: ActivationObserver?) throws -> Tensor {
        let branches = try detector.branches(input, observer: observer)
        return try lossFunction(branches, targets: targets).loss
    }

    /// EPE-NAS groups for detection batches: an image's number of (non-crowd) objects, capped at
    /// `cap`, stands in for a class label, since a detection image has none.
    public static func objectCountGroups(_ targets: Targets, cap: Int = 3) -> [Int] {
        targets.map { min(cap, $0.filter { !$0.crowd }.count) }
    }
}
