@testable import DetectionData
import Foundation
import Randomness
import Testing

@Suite struct AugmentationTests {
    @Test func letterboxKeepsAspectPadsGreyAndMapsBoxesBack() {
        let image = Image(width: 40, height: 20, fill: [200, 10, 30])
        let (boxed, transform) = ImageOps.letterbox(image, width: 32, height: 32)
        #expect(transform.scale == 0.8 && transform.offsetX == 0 && transform.offsetY == 8)
        #expect(Array(boxed.pixels[0..<3]) == [114, 114, 114])  // top padding
        #expect(Array(boxed.pixels[(16 * 32 + 16) * 3..<(16 * 32 + 17) * 3]) == [200, 10, 30])
        #expect(Array(boxed.pixels[(31 * 32) * 3..<(31 * 32 + 1) * 3]) == [114, 114, 114])  // bottom padding
        let box = BoundingBox(x0: 5, y0: 2.5, x1: 30, y1: 17)
        let mapped = transform.toOutput(box)
        #expect(mapped == BoundingBox(x0: 4, y0: 10, x1: 24, y1: 21.6))
        let back = transform.toSource(mapped)
        #expect(abs(back.x0 - box.x0) < 1e-9 && abs(back.y1 - box.y1) < 1e-9)
    }

    @Test func identityWarpAndFlipAreExact() {
        let image = patternImage(width: 9, height: 7)
        let identity = ImageTransform(scale: 1, offsetX: 0, offsetY: 0, outputWidth: 9, outputHeight: 7)
        #expect(ImageOps.warp(image, identity) == image)
        var flipped = identity
        flipped.flipped = true
        #expect(ImageOps.warp(image, flipped) == ImageOps.flippedHorizontally(image))
        #expect(flipped.toOutput(BoundingBox(x0: 1, y0: 2, x1: 3, y1: 4)) == BoundingBox(x0: 6, y0: 2, x1: 8, y1: 4))
        #expect(ImageOps.adjustColour(image, brightness: 1, contrast: 1, saturation: 1) == image)
        let grey = ImageOps.adjustColour(image, brightness: 1, contrast: 1, saturation: 0)
        for p in 0..<(9 * 7) {
            #expect(abs(Int(grey.pixels[p * 3]) - Int(grey.pixels[p * 3 + 2])) <= 1)
        }
    }

    @Test func augmentedBoxesFollowTheImageContent() {
        // A white rectangle on black: after any scale/shift/flip its pixels must sit in the box.
        var image = Image(width: 120, height: 80, fill: [0, 0, 0])
        for y in 20..<60 { for x in 30..<50 { for c in 0..<3 { image.pixels[(y * 120 + x) * 3 + c] = 255 } } }
        let object = ObjectAnnotation(box: BoundingBox(x0: 30, y0: 20, x1: 50, y1: 60), classIndex: 0)
        var config = AugmentationConfig(outputWidth: 96, outputHeight: 96)
        config.brightness = 0
        config.contrast = 0
        config.saturation = 0
        let augmenter = Augmenter(config: config)
        var checked = 0, dropped = 0
        for seed in 0..<20 {
            var rng = SplitMix64(seed: UInt64(seed))
            let sample = augmenter.apply(to: image, objects: [object], using: &rng)
            var again = SplitMix64(seed: UInt64(seed))
            #expect(augmenter.apply(to: image, objects: [object], using: &again) == sample)
            dropped += sample.droppedObjects
            guard let box = sample.objects.first?.box else { continue }
            var bright: (Int, Int, Int, Int) = (Int.max, Int.max, Int.min, Int.min)
            for y in 0..<96 { for x in 0..<96 where sample.image.pixels[(y * 96 + x) * 3] > 128 {
                bright = (min(bright.0, x), min(bright.1, y), max(bright.2, x + 1), max(bright.3, y + 1))
            } }
            #expect(abs(Double(bright.0) - box.x0) <= 1 && abs(Double(bright.2) - box.x1) <= 1)
            #expect(abs(Double(bright.1) - box.y0) <= 1 && abs(Double(bright.3) - box.y1) <= 1)
            checked += 1
        }
        #expect(checked + dropped == 20 && checked >= 15)
        // Shifted entirely out of view: the box is dropped and counted.
        config.scaleRange = 1...1
        var shifted = ImageTransform.letterbox(sourceWidth: 120, sourceHeight: 80, targetWidth: 96, targetHeight: 96)
        shifted.offsetX -= 60
        #expect(shifted.toOutput(object.box).x1 < 0)
    }
}

@Suite struct BatchLoaderTests {
    @Test func batchesAreDeterministicAndMatchTheirDirectComputation() async throws {
        let root = try makeTemporaryDirectory("loader")
        defer { cleanUp(root) }
        var synthetic = SyntheticDataConfig()
        synthetic.imageWidth = 64
        synthetic.imageHeight = 48
        synthetic.figureHeight = 16...40
        try SyntheticDataWriter(config: synthetic).write(to: root, seed: 11, trainCount: 7, valCount: 0)
        let dataset = try VOCDataset(root: root, split: "train")
        let loader = BatchLoader(dataset: dataset, batchSize: 3, augmentation: AugmentationConfig(outputWidth: 32, outputHeight: 32),
                                 shuffle: true, seed: 5, prefetch: 1)
        #expect(loader.batchesPerEpoch == 3)
        var streamed: [DetectionBatch] = []
        for try await batch in loader.batches(epoch: 1) { streamed.append(batch) }
        #expect(streamed.map(\.batchSize) == [3, 3, 1])
        #expect(Set(streamed.flatMap(\.itemIndices)) == Set(0..<7))
        for (index, batch) in streamed.enumerated() {
            let direct = try loader.batch(epoch: 1, index: index)
            #expect(batch.images == direct.images && batch.objects == direct.objects && batch.itemIndices == direct.itemIndices)
            #expect(batch.images.count == batch.batchSize * 3 * 32 * 32)
            #expect(batch.images.allSatisfy { $0 >= 0 && $0 <= 1 })
        }
        #expect(loader.order(epoch: 1) != loader.order(epoch: 2))
        let evaluation = BatchLoader(dataset: dataset, batchSize: 4, augmentation: .evaluation(width: 32, height: 32),
                                     shuffle: false, seed: 0)
        let first = try evaluation.batch(epoch: 0, index: 0)
        #expect(first.itemIndices == [0, 1, 2, 3])
        // Without augmentation the boxes are the letterboxed annotations.
        let transform = first.transforms[0]
        #expect(first.objects[0].map(\.box) == dataset.item(at: 0).objects.map { transform.toOutput($0.box) })
        // Stopping early cancels the producer without hanging.
        for try await _ in loader.batches(epoch: 3) { break }
    }
}
