import DetectionData
import Foundation
import Testing
import Torch
@testable import Vision

/// Two fixed images with fixed objects, or NaN images to provoke a non-finite loss.
private struct FixedBatches: TrainingBatchProvider {
    var poisoned = false
    var batchesPerEpoch: Int { 2 }
    func batch(epoch: Int, index: Int) throws -> TrainingBatch {
        Torch.manualSeed(UInt64(index))
        var images = try Tensor.uniform([2, 3, 224, 224])
        if poisoned { images = try images * Double.nan }
        let box = BoundingBox(x0: 40 + Double(index) * 30, y0: 50, x1: 120 + Double(index) * 30, y1: 200)
        return TrainingBatch(images: images, targets: [[ObjectAnnotation(box: box, classIndex: 0)], []])
    }
}

private func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-trainer-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Test func scheduleWarmsUpThenDecaysToTheFinalFraction() {
    let configuration = TrainingConfiguration(learningRate: 0.01, warmupIterations: 10, finalLearningRateFraction: 0.1)
    #expect(abs(configuration.learningRate(iteration: 0, totalIterations: 110) - 0.01 * 0.19) < 1e-12)
    #expect(abs(configuration.learningRate(iteration: 10, totalIterations: 110) - 0.01) < 1e-12)
    #expect(abs(configuration.learningRate(iteration: 110, totalIterations: 110) - 0.001) < 1e-12)
    let middle = configuration.learningRate(iteration: 60, totalIterations: 110)
    #expect(abs(middle - 0.01 * (0.1 + 0.9 * 0.5)) < 1e-12)
}

@Test func trainingResumesFromItsCheckpoint() throws {
    let directory = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let architecture = try DetectorArchitecture(shortName: "k3-g8-c24-w224")
    Torch.manualSeed(7)
    let first = try Trainer(detector: Detector(architecture), configuration: TrainingConfiguration(epochs: 2, warmupIterations: 2),
                            checkpointDirectory: directory)
    var iterations = 0
    let ends = try first.train(data: FixedBatches()) { _ in iterations += 1 }
    #expect(ends.count == 2 && iterations == 4)
    let saved = try #require(try TrainingCheckpoint.load(from: directory))
    #expect(saved.completedEpochs == 2 && saved.architecture == "k3-g8-c24-w224")

    // A longer run over the same directory continues at epoch 3 with the saved weights.
    let resumed = try Trainer(detector: Detector(architecture), configuration: TrainingConfiguration(epochs: 3, warmupIterations: 2),
                              checkpointDirectory: directory)
    var epochsSeen: Set<Int> = []
    try resumed.train(data: FixedBatches(), resume: true) { epochsSeen.insert($0.epoch) }
    #expect(epochsSeen == [2])
    #expect(try TrainingCheckpoint.load(from: directory)?.completedEpochs == 3)

    // A checkpoint of another architecture is refused by name.
    let other = try Trainer(detector: Detector(try DetectorArchitecture(shortName: "k5-g1-c32-w224")),
                            configuration: TrainingConfiguration(epochs: 4), checkpointDirectory: directory)
    #expect(throws: TrainingError.self) { try other.train(data: FixedBatches(), resume: true) }
}

@Test func nonFiniteLossStopsWithAClearError() throws {
    let trainer = try Trainer(detector: Detector(try DetectorArchitecture(shortName: "k3-g8-c24-w224")),
                              configuration: TrainingConfiguration(epochs: 1))
    do {
        try trainer.train(data: FixedBatches(poisoned: true))
        Issue.record("training on NaN images should have stopped")
    } catch let error as TrainingError {
        guard case .nonFiniteLoss(let epoch, let iteration, _) = error else { Issue.record("wrong error \(error)"); return }
        #expect(epoch == 0 && iteration == 0)
        #expect(error.description.contains("not finite"))
    }
}
