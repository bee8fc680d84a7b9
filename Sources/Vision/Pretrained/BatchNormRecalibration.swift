import DetectionData
import Torch

/// Re-estimates a detector's batch-norm statistics from data, as Once-for-All does for each
/// subnetwork it evaluates: an inherited network's channels changed, so the running means and
/// variances it was given no longer describe its activations.
public enum BatchNormRecalibration {
    /// Sets every batch norm's running mean and variance to the average of the batch statistics
    /// over the first `images` training images (letterboxed as for evaluation, in file order),
    /// then leaves the detector in evaluation mode. Weights are not touched.
    public static func recalibrate(_ detector: Detector, on dataset: any DetectionDataset, images: Int = 256, batchSize: Int = 32) throws {
        let loader = BatchLoader(dataset: dataset, batchSize: batchSize,
                                 augmentation: .evaluation(at: detector.architecture),
                                 shuffle: false, seed: 0)
        let batchCount = min(loader.batchesPerEpoch, max(1, (images + batchSize - 1) / batchSize))
        let normalizations = detector.units.compactMap { ($0.module as? ConvolutionUnit)?.normalization }
        let momenta = normalizations.map(\.momentum)
        for normalization in normalizations {
            try normalization.runningMean.tensor.assign(Tensor.zeros(normalization.runningMean.tensor.shape))
            try normalization.runningVar.tensor.assign(Tensor.ones(normalization.runningVar.tensor.shape))
        }
        detector.train()
        defer {
            for (normalization, momentum) in zip(normalizations, momenta) { normalization.momentum = momentum }
            detector.eval()
        }
        try Torch.withNoGrad {
            for index in 0..<batchCount {
                // Momentum 1/(n+1) makes the running value the plain mean of the n+1 batches seen.
                for normalization in normalizations { normalization.momentum = 1 / Double(index + 1) }
                let batch = try loader.batch(epoch: 0, index: index)
                _ = try detector.forward(Tensor(batch.images, shape: detector.architecture.inputShape(batch: batch.batchSize)))
            }
        }
    }
}
