import DetectionData
import Estimators
import Foundation
import Testing
import Vision
@testable import Workflow

struct ZeroCostProxyEstimatorTests {
    @Test func aConfigNamesAProxyAndTheSearchScoresWithIt() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-proxy-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try SyntheticDataWriter().write(to: directory, seed: 3, trainCount: 4, valCount: 2)
        let config = try ProjectConfig.parse(yaml: """
            dataset: {path: \(directory.path)}
            budget: {trials: 4}
            estimator: proxy:params
            training: {batch_size: 2}
            """, baseDirectory: directory)
        #expect(config.estimator == "proxy:params")
        #expect(EstimatorCatalog.summary("proxy:params", training: config.training).contains("zero-cost proxy params"))

        let splits = try DatasetSplits.load(config.dataset)
        let run = try DetectorTrainingRun(splits: splits, recipe: TrainingRecipe(config.training, seed: config.seed))
        let estimator = try EstimatorCatalog.make("proxy:params", run: run, training: config.training)
        #expect(estimator.name == "proxy:params" && !estimator.isFullFidelity)
        let architecture = try DetectorArchitecture(shortName: "k3-g8-c24-w224")
        let estimate = try estimator.estimate(architecture, trialNumber: 0)
        // The params proxy counts the network's parameters: the graph's analytic count.
        #expect(estimate.score == Double(try DetectorGraph(architecture).parameterCount))
        #expect(estimate.epochs == 0 && estimate.ap50 == nil && estimate.seconds >= 0)
    }

    @Test func anUnknownProxyIsRefusedByName() throws {
        #expect(throws: ProjectConfigError.self) {
            try ProjectConfig.parse(yaml: "dataset: {path: data}\nbudget: {trials: 4}\nestimator: proxy:bogus\n",
                                    baseDirectory: FileManager.default.temporaryDirectory)
        }
    }
}
