import DetectionData
import Foundation

/// `edgenas demo`'s project: synthetic person images made on the spot and a config whose whole
/// pipeline (profile, plan, two-stage selection, search, retraining, report) fits in 15 minutes
/// on 2 cores. Tests run the same project at a smaller scale.
public struct DemoProject: Sendable {
    public var trainImages = 96
    public var validationImages = 32
    public var trials = 12
    /// The search phase's budget; too small for full training of every trial, so `auto` plans.
    public var searchHours = 0.05
    public var epochs = 12
    public var shortEpochs = 3
    /// Fully trained references of the selection (the baseline among them).
    public var references = 5
    public var retrainCandidates = 3
    public var batchSize = 16
    public var bootstrapResamples = 1000
    public var seed: UInt64
    public var threads: Int

    public init(seed: UInt64 = 0, threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.seed = seed
        self.threads = threads
    }

    /// Writes the data (unless a previous run left it) and the config into `directory`;
    /// returns the config's path.
    public func prepare(in directory: URL, log: (String) -> Void = { _ in }) throws -> URL {
        let data = directory.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: data.appendingPathComponent("ImageSets/Main/val.txt").path) {
            var synthetic = SyntheticDataConfig()
            synthetic.imageWidth = 256
            synthetic.imageHeight = 256
            synthetic.figureHeight = 48...160
            synthetic.figuresPerImage = 1...3
            let summary = try SyntheticDataWriter(config: synthetic).write(
                to: data, seed: seed, trainCount: trainImages, valCount: validationImages)
            log("demo: wrote \(summary.trainImages) training and \(summary.valImages) validation images to \(data.path)")
        }
        let config = directory.appendingPathComponent("edgenas.yaml")
        try configText.write(to: config, atomically: true, encoding: .utf8)
        return config
    }

    public var configText: String {
        """
        # Written by 'edgenas demo': the whole pipeline at small scale on synthetic data.
        name: demo
        dataset: {format: voc, path: data, train: train, val: val, classes: [person]}
        base_model: k5-g1-c96-w320
        search_space: default
        objectives: [ap50, latency]
        budget: {trials: \(trials), hours: \(searchHours)}
        estimator: auto
        selection: {references: \(references), resamples: \(bootstrapResamples)}
        sampler: auto
        latency: {backend: int8, threads: 1}
        storage: sqlite://study.db
        seed: \(seed)
        training: {epochs: \(epochs), short_epochs: \(shortEpochs), batch_size: \(batchSize), learning_rate: 0.01, optimizer: adamw, threads: \(threads)}
        retrain: {candidates: \(retrainCandidates)}
        output: report

        """
    }
}
