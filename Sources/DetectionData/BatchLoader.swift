import Dispatch
import Foundation
import Randomness

/// A batch ready for a detector: images as Float32 NCHW in [0, 1] plus per-image boxes.
public struct DetectionBatch: Sendable {
    /// batchSize * 3 * height * width values, channel planes R, G, B.
    public var images: [Float]
    public var batchSize: Int
    public var height: Int
    public var width: Int
    /// Boxes of each image in network-input pixels.
    public var objects: [[ObjectAnnotation]]
    /// Dataset index of each image and the transform that maps its detections back.
    public var itemIndices: [Int]
    public var transforms: [ImageTransform]
    /// Boxes dropped by augmentation (cropped away or too small) in this batch.
    public var droppedObjects: Int
}

/// Loads, augments and batches a dataset. The content of batch b of epoch e depends only on
/// (seed, e, b): the shuffle comes from a generator seeded by (seed, e), and each sample draws its
/// augmentation from a generator seeded by (seed, e, position in the epoch). Images of a batch are
/// decoded and augmented in parallel, and a background thread keeps up to `prefetch` batches ready,
/// but neither changes any value.
public final class BatchLoader: Sendable {
    public let dataset: any DetectionDataset
    public let batchSize: Int
    public let augmentation: AugmentationConfig
    public let shuffle: Bool
    public let seed: UInt64
    /// Drop the last incomplete batch (training) or keep it (evaluation).
    public let dropLast: Bool
    public let prefetch: Int

    public init(dataset: any DetectionDataset, batchSize: Int, augmentation: AugmentationConfig, shuffle: Bool,
                seed: UInt64, dropLast: Bool = false, prefetch: Int = 2) {
        precondition(batchSize > 0 && prefetch > 0, "batchSize and prefetch must be positive")
        self.dataset = dataset
        self.batchSize = batchSize
        self.augmentation = augmentation
        self.shuffle = shuffle
        self.seed = seed
        self.dropLast = dropLast
        self.prefetch = prefetch
    }

    public var batchesPerEpoch: Int {
        dropLast ? dataset.count / batchSize : (dataset.count + batchSize - 1) / batchSize
    }

    /// Dataset indices in the order epoch `epoch` visits them.
    public func order(epoch: Int) -> [Int] {
        var indices = Array(0..<dataset.count)
        if shuffle {
            var rng = SplitMix64.derived(seed: seed, index: UInt64(epoch))
            indices.shuffle(using: &rng)
        }
        return indices
    }

    /// Builds batch `index` of `epoch` (decoding its images in parallel).
    public func batch(epoch: Int, index: Int) throws(ImageCodecError) -> DetectionBatch {
        precondition((0..<batchesPerEpoch).contains(index), "batch index \(index) outside 0..<\(batchesPerEpoch)")
        return try batch(epoch: epoch, index: index, order: order(epoch: epoch))
    }

    private func batch(epoch: Int, index: Int, order: [Int]) throws(ImageCodecError) -> DetectionBatch {
        let positions = Array((index * batchSize)..<min((index + 1) * batchSize, order.count))
        let width = augmentation.outputWidth, height = augmentation.outputHeight
        let plane = width * height
        let slots = ResultSlots<Result<AugmentedSample, ImageCodecError>>(count: positions.count)
        let augmenter = Augmenter(config: augmentation)
        let epochSeed = seed ^ (UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        DispatchQueue.concurrentPerform(iterations: positions.count) { slot in
            let item = dataset.item(at: order[positions[slot]])
            var rng = SplitMix64.derived(seed: epochSeed, index: UInt64(positions[slot]))
            slots.set(slot, Result { () throws(ImageCodecError) -> AugmentedSample in
                let image = try ImageCodec.decode(contentsOf: item.imageURL)
                return augmenter.apply(to: image, objects: item.objects, using: &rng)
            })
        }
        var images = [Float](repeating: 0, count: positions.count * 3 * plane)
        var objects: [[ObjectAnnotation]] = []
        var transforms: [ImageTransform] = []
        var dropped = 0
        for (slot, result) in slots.values.enumerated() {
            guard let result else { preconditionFailure("concurrentPerform skipped slot \(slot)") }
            let sample = try result.get()
            let base = slot * 3 * plane
            sample.image.pixels.withUnsafeBufferPointer { pixels in
                for p in 0..<plane {
                    images[base + p] = Float(pixels[p * 3]) / 255
                    images[base + plane + p] = Float(pixels[p * 3 + 1]) / 255
                    images[base + 2 * plane + p] = Float(pixels[p * 3 + 2]) / 255
                }
            }
            objects.append(sample.objects)
            transforms.append(sample.transform)
            dropped += sample.droppedObjects
        }
        return DetectionBatch(images: images, batchSize: positions.count, height: height, width: width, objects: objects,
                              itemIndices: positions.map { order[$0] }, transforms: transforms, droppedObjects: dropped)
    }

    /// The batches of one epoch, produced ahead on a background thread (at most `prefetch` waiting).
    /// Stops at the first image that fails to decode, with its error.
    public func batches(epoch: Int) -> BatchStream {
        let (stream, continuation) = AsyncThrowingStream<DetectionBatch, any Error>.makeStream(bufferingPolicy: .unbounded)
        // Created at 0 and signalled up to `prefetch`: libdispatch traps when a semaphore is
        // freed while its count is below the value it was created with, which a finished
        // epoch's producer (waiting on a slot) would otherwise leave behind.
        let slotsFree = DispatchSemaphore(value: 0)
        for _ in 0..<prefetch { slotsFree.signal() }
        let state = ProducerState()
        continuation.onTermination = { _ in
            state.cancel()
            slotsFree.signal()
        }
        let order = order(epoch: epoch)
        let count = batchesPerEpoch
        let thread = Thread { [self] in
            for index in 0..<count {
                slotsFree.wait()
                if state.isCancelled { return }
                do {
                    continuation.yield(try batch(epoch: epoch, index: index, order: order))
                } catch {
                    continuation.finish(throwing: error)
                    return
                }
            }
            continuation.finish()
        }
        thread.name = "edgenas.BatchLoader"
        thread.start()
        return BatchStream(stream: stream, slotsFree: slotsFree)
    }
}

/// The batches of one epoch in order. Taking a batch frees a prefetch slot for the producer.
public struct BatchStream: AsyncSequence, Sendable {
    public typealias Element = DetectionBatch
    let stream: AsyncThrowingStream<DetectionBatch, any Error>
    let slotsFree: DispatchSemaphore

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<DetectionBatch, any Error>.AsyncIterator
        let slotsFree: DispatchSemaphore

        public mutating func next() async throws -> DetectionBatch? {
            let batch = try await base.next()
            slotsFree.signal()
            return batch
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator(), slotsFree: slotsFree)
    }
}

/// Cancellation flag shared by the producer thread and the stream's termination handler.
private final class ProducerState: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false

    var isCancelled: Bool {
        lock.lock()
        defer { lock.unlock() }
        return cancelled
    }

    func cancel() {
        lock.lock()
        cancelled = true
        lock.unlock()
    }
}
