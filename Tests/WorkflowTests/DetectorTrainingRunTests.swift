import DetectionData
import Foundation
import Testing
import Vision
@testable import Workflow

struct DetectorTrainingRunTests {
    /// `train` is the selection's reference training at full length, and a run over a finished
    /// checkpoint trains nothing but still measures the final AP.
    @Test func trainIsTheReferenceTrainingAndResumesFromItsCheckpoint() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-training-run-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try SyntheticDataWriter().write(to: directory.appendingPathComponent("data"), seed: 3, trainCount: 8, valCount: 4)
        let config = try ProjectConfig.parse(yaml: """
            dataset: {path: \(directory.appendingPathComponent("data").path)}
            budget: {trials: 4}
            training: {batch_size: 2}
            """, baseDirectory: directory)
        let run = try DetectorTrainingRun(splits: try DatasetSplits.load(config.dataset), recipe: TrainingRecipe(config.training, seed: 5))
        let architecture = try DetectorArchitecture(shortName: "k3-g8-c24-w224")
        // Twelve epochs: fewer leave AP@0.5 at 0 on these images, and the comparison says little.
        let epochs = 12
        let checkpoint = directory.appendingPathComponent("checkpoint")

        let validated = try run.train(architecture, epochs: epochs, validateEachEpoch: true, checkpoint: checkpoint)
        let reference = try run.onTrainingMachine { try run.referenceTrainer.train(architecture, epochs: epochs) }
        #expect(validated.curve.trainingLosses == reference.trainingLosses)
        #expect(validated.curve.validationMetric == reference.validationAP)
        #expect(validated.finalAP50 == reference.finalAP && validated.finalAP50 > 0)

        // Without per-epoch validation: the same training, no AP curve, the final AP still measured.
        let plain = try run.train(architecture, epochs: epochs)
        #expect(plain.curve.trainingLosses == reference.trainingLosses)
        #expect(plain.curve.validationMetric.isEmpty && plain.finalAP50 == reference.finalAP)

        // The checkpoint had finished every epoch: none is trained or observed again.
        let resumed = try run.train(architecture, epochs: epochs, checkpoint: checkpoint)
        #expect(resumed.curve.trainingLosses.count == epochs && resumed.curve.trainingLosses.allSatisfy(\.isNaN))
        #expect(resumed.curve.validationMetric.isEmpty && resumed.finalAP50 == reference.finalAP)
    }
}
