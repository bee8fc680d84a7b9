import DetectionData
import Foundation
import Estimators
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
        var referenceTrainer = run.referenceTrainer
        referenceTrainer.weightsDirectory = directory.appendingPathComponent("reference-weights")
        let reference = try run.onTrainingMachine { try referenceTrainer.train(architecture, epochs: epochs, validatingAfter: Set(0...epochs)) }
        #expect(validated.curve.trainingLosses == reference.trainingLosses)
        #expect(validated.curve.validationMetric == reference.validationAP)
        #expect(validated.finalAP50 == reference.finalAP && validated.finalAP50 > 0)

        // Validated after two epochs only (what a selection with one epoch budget reads): the
        // same training, the other epochs unmeasured.
        let sparse = try run.onTrainingMachine { try run.referenceTrainer.train(architecture, epochs: epochs, validatingAfter: [2, epochs]) }
        #expect(sparse.trainingLosses == reference.trainingLosses)
        #expect(sparse.validationAP[1] == reference.validationAP[1] && sparse.finalAP == reference.finalAP)
        #expect(sparse.validationAP.enumerated().filter { $0.element.isNaN }.map(\.offset) == Array(0..<epochs).filter { $0 != 1 && $0 != epochs - 1 })
        #expect(sparse.evaluationSeconds[0] == 0 && sparse.evaluationSeconds[1] > 0)

        // Watched (a pruner's view): each epoch's AP@0.5 as the validated run saw it, until the
        // watcher stops the training by throwing.
        struct Stop: Error {}
        var watched: [Int: Double] = [:]
        #expect(throws: Stop.self) {
            try FullTrainingEstimator(run: run, epochs: epochs).estimate(architecture, trialNumber: 0) { epoch, ap in
                watched[epoch] = ap
                if epoch == 3 { throw Stop() }
            }
        }
        #expect(watched == [1: reference.validationAP[0], 2: reference.validationAP[1], 3: reference.validationAP[2]])

        // Without per-epoch validation: the same training, no AP curve, the final AP still measured.
        let plain = try run.train(architecture, epochs: epochs)
        #expect(plain.curve.trainingLosses == reference.trainingLosses)
        #expect(plain.curve.validationMetric.isEmpty && plain.finalAP50 == reference.finalAP)

        // The checkpoint had finished every epoch: none is trained or observed again.
        let resumed = try run.train(architecture, epochs: epochs, checkpoint: checkpoint)
        #expect(resumed.curve.trainingLosses.count == epochs && resumed.curve.trainingLosses.allSatisfy(\.isNaN))
        #expect(resumed.curve.validationMetric.isEmpty && resumed.finalAP50 == reference.finalAP)

        // The checkpoint's weights quantized to INT8 keep most of the FP32 AP; the reference
        // trainer left the same weights for the front's references.
        let weights = checkpoint.appendingPathComponent(try #require(try TrainingCheckpoint.load(from: checkpoint)).deployedModelFile)
        let int8 = try #require(try run.int8AP50(architecture, weights: weights))
        #expect(int8 > 0 && abs(int8 - validated.finalAP50) < 0.15, "INT8 \(int8), FP32 \(validated.finalAP50)")
        let kept = DetectorReferenceTrainer.weightsFile(architecture, in: try #require(referenceTrainer.weightsDirectory))
        #expect(try run.int8AP50(architecture, weights: kept) == int8)
    }
}

struct FineTuningTests {
    /// `training.init`: every run starts from the inherited weights; a reference run records the
    /// starting network's AP (val_ap@0ep) and the share inherited, and the estimator for
    /// val_ap@0ep trains nothing and scores that AP.
    @Test func runsFromPretrainedWeightsStartFromTheInheritedNetwork() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-fine-tuning-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("data")
        _ = try SyntheticDataWriter().write(to: data, seed: 3, trainCount: 8, valCount: 4)
        // The pretrained weights: a short training of the baseline, as the demo makes its base model.
        let base = directory.appendingPathComponent("base")
        let scratch = try ProjectConfig.parse(yaml: "dataset: {path: \(data.path)}\nbudget: {trials: 4}\ntraining: {batch_size: 4}",
                                              baseDirectory: directory)
        let splits = try DatasetSplits.load(scratch.dataset)
        _ = try DetectorTrainingRun(splits: splits, recipe: TrainingRecipe(scratch.training, seed: 1))
            .train(DetectorArchitecture(shortName: "k5-g1-c96-w224"), epochs: 2, checkpoint: base)

        let config = try ProjectConfig.parse(yaml: """
            dataset: {path: data}
            budget: {trials: 4}
            training: {batch_size: 4, init: base, freeze_backbone_epochs: 1}
            """, baseDirectory: directory)
        #expect(config.training.initialization == base.path)
        #expect(config.training.learningRate == TrainingConfiguration.defaults(fineTuning: true).learningRate)
        let run = try DetectorTrainingRun(splits: splits, recipe: TrainingRecipe(config.training, seed: 5))
        #expect(run.initialization?.weights.format == .edgenas)

        let narrower = try DetectorArchitecture(shortName: "k3-g2-c48-w224")
        let record = try run.onTrainingMachine { try run.referenceTrainer.train(narrower, epochs: 2, validatingAfter: [0, 2]) }
        let share = try #require(record.inheritedShare)
        #expect(share == 1)  // a narrower, grouped, smaller-kernel head is a subnetwork of the base model's
        let initialAP = try #require(record.initialAP)
        #expect(initialAP.isFinite && record.validationAP.count == 2)

        let estimate = try EstimatorCatalog.make("val_ap@0ep", run: run, training: config.training).estimate(narrower, trialNumber: 0)
        #expect(estimate.epochs == 0 && estimate.score == initialAP && estimate.ap50 == initialAP)
    }

    @Test func aMissingInitIsNamed() {
        #expect(throws: ProjectConfigError.self) {
            try ProjectConfig.parse(yaml: "dataset: {path: data}\nbudget: {trials: 4}\ntraining: {init: nowhere.pth}",
                                    baseDirectory: URL(fileURLWithPath: "/tmp"))
        }
    }
}
