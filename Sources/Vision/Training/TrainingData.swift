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

    /// The batch at another input size, `width` x `height`: images resized bilinearly, boxes scaled.
    public func resized(toWidth width: Int, height: Int) throws -> TrainingBatch {
        let (currentHeight, currentWidth) = (images.shape[2], images.shape[3])
        guard width != currentWidth || height != currentHeight else { return self }
        let (scaleX, scaleY) = (Double(width) / Double(currentWidth), Double(height) / Double(currentHeight))
        let scaled = targets.map { objects in
            objects.map { object in
                var scaled = object
                scaled.box = BoundingBox(x0: object.box.x0 * scaleX, y0: object.box.y0 * scaleY, x1: object.box.x1 * scaleX, y1: object.box.y1 * scaleY)
                return scaled
            }
        }
        return TrainingBatch(images: try Functional.resizeBilinear(images, size: (height, width)), targets: scaled)
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
