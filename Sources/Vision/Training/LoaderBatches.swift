import DetectionData
import Dispatch
import Foundation
import Torch

/// Feeds a `BatchLoader`'s batches to the trainer, building the next batch on a background
/// queue while the current one trains. Batches still depend only on (seed, epoch, index), so
/// the lookahead changes timing, never content.
public final class LoaderBatches: TrainingBatchProvider, @unchecked Sendable {
    public let loader: BatchLoader
    private let queue = DispatchQueue(label: "edgenas.LoaderBatches")
    private let lock = NSLock()
    /// The batch being built ahead: its address and, once done, its result.
    private var ahead: (epoch: Int, index: Int, done: DispatchSemaphore, result: Result<DetectionBatch, ImageCodecError>?)?

    public init(loader: BatchLoader) { self.loader = loader }

    public var batchesPerEpoch: Int { loader.batchesPerEpoch }

    public func batch(epoch: Int, index: Int) throws -> TrainingBatch {
        let batch = try take(epoch: epoch, index: index)
        let next = index + 1 < batchesPerEpoch ? (epoch, index + 1) : (epoch + 1, 0)
        startBuilding(epoch: next.0, index: next.1)
        let images = try Tensor(batch.images, shape: [batch.batchSize, 3, batch.height, batch.width])
        return TrainingBatch(images: images, targets: batch.objects)
    }

    private func take(epoch: Int, index: Int) throws(ImageCodecError) -> DetectionBatch {
        lock.lock()
        let pending = ahead
        lock.unlock()
        if let pending, pending.epoch == epoch, pending.index == index {
            pending.done.wait()
            lock.lock()
            let result = ahead?.result
            ahead = nil
            lock.unlock()
            if let result { return try result.get() }
        }
        return try loader.batch(epoch: epoch, index: index)
    }

    private func startBuilding(epoch: Int, index: Int) {
        let done = DispatchSemaphore(value: 0)
        lock.lock()
        ahead = (epoch, index, done, nil)
        lock.unlock()
        queue.async { [self] in
            let result = Result { () throws(ImageCodecError) -> DetectionBatch in try loader.batch(epoch: epoch, index: index) }
            lock.lock()
            if ahead?.epoch == epoch && ahead?.index == index { ahead?.result = result }
            lock.unlock()
            done.signal()
        }
    }
}
