import DetectionData
import Torch

/// One batch of letterboxed images and their objects, in network-input pixels.
public struct TrainingBatch {
    /// [N, 3, S, S] float32 in [0, 1].
    public var images: Tensor
    /// Per image, its objects with boxes in input pixels.
    public var targets: [[ObjectAnnotation]]

    public init(images: Tensor, targets: [[ObjectAnnotation]]) {
        self.images = images
        self.targets = targets
    }
}

/// Where training batches come from. Batches are addressed by (epoch, index) rather than
/// streamed, so that a batch's content depends only on the seed, the epoch and its index:
/// the same whatever the thread timing of a prefetching loader, and the same again when a
/// run resumes from a checkpoint.
public protocol TrainingBatchProvider {
    var batchesPerEpoch: Int { get }
    func batch(epoch: Int, index: Int) throws -> TrainingBatch
}
